package sim

import (
	"context"
	"errors"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
)

func TestFaultCrashExitsAfterWriteReturned(t *testing.T) {
	// No code (0) is passed on as 0: the worker's Exiter exits with the
	// protocol's simulated-crash code then.
	for _, c := range []struct{ write, want int32 }{{7, 7}, {0, 0}, {-3, 0}} {
		e := newEnv(t, envOpt{})
		h := e.reg()
		hi, _ := e.sub(h, "Sim.Crash")
		if err := e.b.Write(h, hi, mxtypes.IntegerValue(c.write), 0); err != nil {
			t.Fatalf("Write Sim.Crash: %v (the write is accepted before the crash)", err)
		}
		select {
		case <-e.exits:
			t.Fatal("crashed before updateLatency")
		default:
		}
		e.clk.Advance(20 * time.Millisecond)
		select {
		case code := <-e.exits:
			if code != int(c.want) {
				t.Fatalf("exit code %d, want %d", code, c.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Exit not called")
		}
		if n := len(writeCompletes(e.rec.take())); n != 0 {
			t.Fatalf("%d OnWriteComplete for the crash write, want 0", n)
		}
		if _, err := e.b.Register("x"); !errors.Is(err, ErrCrashed) {
			t.Fatalf("Register after crash: %v", err)
		}
		if err := e.b.Ping(context.Background()); !errors.Is(err, ErrCrashed) {
			t.Fatalf("Ping after crash: %v", err)
		}
		if w := e.b.Close(); len(w) != 1 {
			t.Fatalf("Close after crash: %v", w)
		}
	}
}

func TestFaultHangStopsTheSTA(t *testing.T) {
	e := newEnv(t, envOpt{})
	h := e.reg()
	hi, _ := e.sub(h, "Sim.HangMs")
	e.write(h, hi, mxtypes.IntegerValue(5000))
	e.clk.Advance(20 * time.Millisecond) // the write applies, then the STA hangs
	end := e.clk.Now().Add(5 * time.Second)
	if !e.clk.WaitFor(end, 10*time.Second) {
		t.Fatal("hang did not start")
	}
	if f := families(e.rec.take()); len(f) != 2 || f[0] != mxgatewayv1.EventFamily_EVENT_FAMILY_ON_WRITE_COMPLETE {
		t.Fatalf("events before the hang: %v", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := e.b.Ping(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ping during hang: %v, want deadline exceeded", err)
	}
	e.clk.Advance(4999 * time.Millisecond)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if err := e.b.Ping(ctx2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ping 1 ms before the hang ends: %v, want deadline exceeded", err)
	}
	e.clk.Advance(time.Millisecond)
	if err := e.b.Ping(context.Background()); err != nil {
		t.Fatalf("Ping after hang: %v", err)
	}
}

func TestFaultHangIsInterruptedByClose(t *testing.T) {
	e := newEnv(t, envOpt{})
	h := e.reg()
	hi, _ := e.sub(h, "Sim.HangMs")
	e.write(h, hi, mxtypes.IntegerValue(60000))
	e.clk.Advance(20 * time.Millisecond)
	if !e.clk.WaitFor(e.clk.Now().Add(time.Minute), 10*time.Second) {
		t.Fatal("hang did not start")
	}
	e.b.Close() // returns although the fake clock never reaches the end of the hang
}

func TestFaultSlowCallDelaysEveryLaterCall(t *testing.T) {
	e := newEnv(t, envOpt{})
	h := e.reg()
	hi, _ := e.sub(h, "Sim.SlowCallMs")
	e.write(h, hi, mxtypes.IntegerValue(1000))
	e.advance(20 * time.Millisecond)
	done := make(chan int32, 1)
	go func() {
		h2, _ := e.b.Register("slow")
		done <- h2
	}()
	if !e.clk.WaitFor(e.clk.Now().Add(time.Second), 10*time.Second) {
		t.Fatal("call not delayed by the slow-call fault")
	}
	select {
	case <-done:
		t.Fatal("call returned before the slow-call delay")
	default:
	}
	e.clk.Advance(999 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("call returned before the slow-call delay")
	case <-time.After(50 * time.Millisecond):
	}
	e.clk.Advance(time.Millisecond)
	select {
	case h2 := <-done:
		if h2 <= 0 {
			t.Fatalf("Register = %d", h2)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("slow call never returned")
	}
}

func TestFaultStormEmitsNChangesInOrder(t *testing.T) {
	e := newEnv(t, envOpt{})
	h := e.reg()
	e.sub(h, "Sim.StormValue")
	hi, _ := e.sub(h, "Sim.Storm")
	e.write(h, hi, mxtypes.IntegerValue(5000))
	e.advance(20 * time.Millisecond)
	var vals []int32
	for _, dc := range dataChanges(e.rec.take()) {
		if dc.GetItemHandle() == 1 {
			vals = append(vals, dc.GetValue().GetInt32Value())
		}
	}
	if len(vals) != 5000 {
		t.Fatalf("%d storm events, want 5000", len(vals))
	}
	for i, v := range vals {
		if v != int32(i+1) {
			t.Fatalf("storm event %d has value %d", i, v)
		}
	}
}

func TestFaultQualityFlipTurnsObjectBadAndBack(t *testing.T) {
	e := newEnv(t, envOpt{})
	h := e.reg()
	pv, _ := e.sub(h, "Other.PV")
	ms, _ := e.sub(h, "Sim.QualityFlipMs")
	e.write(h, ms, mxtypes.IntegerValue(2000))
	e.advance(time.Second)
	e.rec.take()
	flip, _ := e.sub(h, "Sim.QualityFlip")
	e.write(h, flip, mxtypes.StringValue("other"))
	e.advance(20 * time.Millisecond)
	var q []uint32
	collect := func() {
		for _, dc := range dataChanges(e.rec.take()) {
			if dc.GetItemHandle() == pv {
				q = append(q, dc.GetQuality().GetRaw())
				if dc.GetValue().GetInt32Value() != 9 {
					t.Fatalf("value changed by the flip: %v", dc.GetValue())
				}
			}
		}
	}
	collect()
	e.advance(1999 * time.Millisecond)
	collect()
	if len(q) != 1 || q[0] != uint32(mxtypes.QualityBadCommFailure) {
		t.Fatalf("qualities %v, want [24] during the flip", q)
	}
	e.advance(time.Millisecond)
	collect()
	if len(q) != 2 || q[1] != 192 {
		t.Fatalf("qualities %v, want [24 192]", q)
	}
}

func TestFaultWithholdWriteComplete(t *testing.T) {
	e := newEnv(t, envOpt{})
	h := e.reg()
	w, _ := e.sub(h, "Sim.WithholdWriteComplete")
	e.write(h, w, mxtypes.BoolValue(true))
	e.advance(time.Second)
	e.rec.take()
	hi, _ := e.sub(h, "Obj.Int")
	if err := e.b.Write(h, hi, mxtypes.IntegerValue(77), 0); err != nil {
		t.Fatalf("withheld write must still be accepted: %v", err)
	}
	e.advance(time.Minute)
	if n := e.rec.count(); n != 0 {
		t.Fatalf("%d events for a withheld write", n)
	}
}

func TestFaultFailMethodInjectsHResult(t *testing.T) {
	e := newEnv(t, envOpt{})
	h := e.reg()
	hr, _ := e.sub(h, "Sim.FailHResult")
	e.write(h, hr, mxtypes.IntegerValue(mxtypes.E_ACCESSDENIED))
	e.advance(time.Second)
	e.rec.take()
	m, _ := e.sub(h, "Sim.FailMethod")
	e.write(h, m, mxtypes.StringValue("additem"))
	e.advance(time.Second)
	if _, err := e.b.AddItem(h, "Obj.PV"); hresult(err) != mxtypes.E_ACCESSDENIED {
		t.Fatalf("AddItem with injected fault: %v", err)
	}
	e.write(h, m, mxtypes.StringValue("")) // writes to Sim are exempt
	e.advance(time.Second)
	if _, err := e.b.AddItem(h, "Obj.PV"); err != nil {
		t.Fatalf("AddItem after clearing: %v", err)
	}
}

func TestFaultSilentDeath(t *testing.T) {
	e := newEnv(t, envOpt{})
	h := e.reg()
	r, _ := e.sub(h, "Obj.Ramp")
	sd, _ := e.sub(h, "Sim.SilentDeath")
	e.write(h, sd, mxtypes.BoolValue(true))
	e.advance(20 * time.Millisecond)
	e.rec.take()
	if _, err := e.b.AddItem(h, "Obj.PV"); err != nil {
		t.Fatalf("calls must still succeed: %v", err)
	}
	e.advance(5 * time.Second)
	if n := e.rec.count(); n != 0 {
		t.Fatalf("%d events during silent death", n)
	}
	_ = r
}

func TestFaultsScriptedInModel(t *testing.T) {
	model := testModelYAML + `
faults:
  - {kind: hresult, method: Register, hresult: 0x80040154, calls: 1}
  - {kind: hresult, method: AddItem, hresult: 0x80070005, reference: "obj.p*"}
  - {kind: qualityFlip, object: Other, at: 2s, duration: 1s}
  - {kind: crash, at: 10s, code: 3}
`
	e := newEnv(t, envOpt{model: model})
	if _, err := e.b.Register("x"); hresult(err) != mxtypes.REGDB_E_CLASSNOTREG {
		t.Fatalf("first Register: %v, want REGDB_E_CLASSNOTREG", err)
	}
	h := e.reg() // calls: 1 — the second works
	if _, err := e.b.AddItem(h, "Obj.PV"); hresult(err) != mxtypes.E_ACCESSDENIED {
		t.Fatalf("AddItem Obj.PV: %v, want E_ACCESSDENIED", err)
	}
	pv, _ := e.sub(h, "Other.PV") // glob does not match
	e.advance(1700 * time.Millisecond)
	e.advance(time.Second)
	e.advance(time.Second)
	var q []uint32
	for _, dc := range dataChanges(e.rec.take()) {
		if dc.GetItemHandle() == pv {
			q = append(q, dc.GetQuality().GetRaw())
		}
	}
	if len(q) != 2 || q[0] != 24 || q[1] != 192 {
		t.Fatalf("scripted flip qualities %v", q)
	}
	e.clk.Advance(10 * time.Second)
	select {
	case code := <-e.exits:
		if code != 3 {
			t.Fatalf("scripted crash code %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("scripted crash did not fire")
	}
}
