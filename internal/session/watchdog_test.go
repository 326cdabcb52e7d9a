package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

const wdRef = "Line1.Clock"

// mxWorker makes w answer like MXAccess: Register hands out server handles
// from 1, AddItem item handles from 1; refuse, when set, fails that method
// with E_FAIL.
func mxWorker(w *fakeWorker, refuse string) {
	var mu sync.Mutex
	server, item := int32(0), int32(0)
	ok := mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK
	w.invoke = func(ctx context.Context, cmd *mxgatewayv1.Command, timeout time.Duration) (*mxgatewayv1.Reply, error) {
		mu.Lock()
		defer mu.Unlock()
		switch cmd.GetKind().(type) {
		case *mxgatewayv1.Command_Register:
			server++
			return &mxgatewayv1.Reply{Status: ok, Result: &mxgatewayv1.Reply_Register{Register: &mxgatewayv1.RegisterResult{ServerHandle: server}}}, nil
		case *mxgatewayv1.Command_AddItem:
			if refuse == "AddItem" {
				return &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_MXACCESS_FAILURE, Hresult: -2147467259}, nil
			}
			item++
			return &mxgatewayv1.Reply{Status: ok, Result: &mxgatewayv1.Reply_ItemHandle{ItemHandle: &mxgatewayv1.ItemHandleResult{ItemHandle: item}}}, nil
		}
		return &mxgatewayv1.Reply{Status: ok}, nil
	}
}

func wdOptions(clk *fakeClock, hooks Hooks) Options {
	return Options{
		Now:      clk.Now,
		Watchdog: WatchdogOptions{Reference: wdRef, StaleAfter: 10 * time.Second, FailAfter: 30 * time.Second, CheckInterval: time.Millisecond},
		Hooks:    hooks,
	}
}

// tick is a good-quality OnDataChange of the watchdog's registration (1).
func tick(seq uint64) *mxgatewayv1.Event {
	ev := dataChange(seq, 1, 1, int32(seq))
	ev.GetDataChange().Quality = &mxgatewayv1.Quality{Raw: 192, QualityClass: mxgatewayv1.QualityClass_QUALITY_CLASS_GOOD}
	return ev
}

func waitHealth(t *testing.T, s *Session, want mxgatewayv1.DataHealth) Info {
	t.Helper()
	var info Info
	testutil.Eventually(t, 5*time.Second, func() error {
		if info = s.Info(); info.DataHealth != want {
			return fmt.Errorf("data health %v (%q), want %v", info.DataHealth, info.DataHealthReason, want)
		}
		return nil
	})
	return info
}

func expectHealthEvent(t *testing.T, sub *Subscription, seq uint64, prev, health mxgatewayv1.DataHealth) *mxgatewayv1.DataHealthChange {
	t.Helper()
	ev, err := next(t, sub)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	dh := ev.GetDataHealth()
	if ev.GetSequence() != seq || !ev.GetGatewayGenerated() || ev.GetFamily() != mxgatewayv1.EventFamily_EVENT_FAMILY_DATA_HEALTH ||
		dh.GetPrevious() != prev || dh.GetHealth() != health || dh.GetReference() != wdRef {
		t.Fatalf("event %v: want gateway-generated data health %v -> %v at sequence %d", ev, prev, health, seq)
	}
	return dh
}

func TestWatchdogClassifiesAndReports(t *testing.T) {
	clk := newFakeClock()
	var mu sync.Mutex
	var changes []string
	h := newHarness(t, wdOptions(clk, Hooks{DataHealthChanged: func(_ string, from, to mxgatewayv1.DataHealth) {
		mu.Lock()
		changes = append(changes, from.String()+">"+to.String())
		mu.Unlock()
	}}))
	h.prepare = func(w *fakeWorker) { mxWorker(w, "") }
	s, w := h.open()
	if info := s.Info(); info.DataHealth != mxgatewayv1.DataHealth_DATA_HEALTH_STARTING {
		t.Fatalf("data health after open %v, want STARTING", info.DataHealth)
	}
	// The watchdog took the first registration; the client gets the next.
	r, err := s.Invoke(context.Background(), &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{ClientName: "c"}}}, 0)
	if err != nil || r.GetRegister().GetServerHandle() != 2 {
		t.Fatalf("client Register: %v, %v; want server handle 2", r, err)
	}
	sub := subAfter(t, s, 0)

	// The worker numbers every event; the client sees its own, renumbered.
	w.send(t, tick(1))
	w.send(t, dataChange(2, 2, 1, 42))
	ev, err := next(t, sub)
	if err != nil || ev.GetSequence() != 1 || ev.GetDataChange().GetServerHandle() != 2 {
		t.Fatalf("first client event %v, %v: want the client's data change as sequence 1", ev, err)
	}
	info := waitHealth(t, s, mxgatewayv1.DataHealth_DATA_HEALTH_HEALTHY)
	if !info.DataLastChange.Equal(clk.Now()) || info.DataHealthReason != "" {
		t.Fatalf("healthy info: last change %v reason %q", info.DataLastChange, info.DataHealthReason)
	}

	clk.Add(11 * time.Second)
	waitHealth(t, s, mxgatewayv1.DataHealth_DATA_HEALTH_DEGRADED)
	expectHealthEvent(t, sub, 2, mxgatewayv1.DataHealth_DATA_HEALTH_HEALTHY, mxgatewayv1.DataHealth_DATA_HEALTH_DEGRADED)
	clk.Add(20 * time.Second)
	info = waitHealth(t, s, mxgatewayv1.DataHealth_DATA_HEALTH_FAILED)
	if info.State != mxgatewayv1.SessionState_SESSION_STATE_READY || info.DataHealthReason == "" {
		t.Fatalf("failed data: state %v reason %q; want READY with a reason", info.State, info.DataHealthReason)
	}
	dh := expectHealthEvent(t, sub, 3, mxgatewayv1.DataHealth_DATA_HEALTH_DEGRADED, mxgatewayv1.DataHealth_DATA_HEALTH_FAILED)
	if dh.GetLastChange() == nil || dh.GetReason() == "" {
		t.Fatalf("failed event %v: want last_change and a reason", dh)
	}
	if got := h.m.DataHealthCounts(); got[mxgatewayv1.DataHealth_DATA_HEALTH_FAILED] != 1 {
		t.Fatalf("DataHealthCounts = %v, want one FAILED", got)
	}

	// Data again: healthy, reported; the client's numbering stays contiguous.
	w.send(t, tick(3))
	waitHealth(t, s, mxgatewayv1.DataHealth_DATA_HEALTH_HEALTHY)
	expectHealthEvent(t, sub, 4, mxgatewayv1.DataHealth_DATA_HEALTH_FAILED, mxgatewayv1.DataHealth_DATA_HEALTH_HEALTHY)
	w.send(t, dataChange(4, 2, 1, 43))
	expectSeqs(t, sub, 5)
	// A replay from the start yields the same contiguous numbering.
	replay := subAfter(t, s, 0)
	for want := uint64(1); want <= 5; want++ {
		if ev, err := next(t, replay); err != nil || ev.GetSequence() != want || ev.GetGatewayGenerated() != (want >= 2 && want <= 4) {
			t.Fatalf("replayed %v, %v: want sequence %d", ev, err, want)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	want := []string{"DATA_HEALTH_STARTING>DATA_HEALTH_HEALTHY", "DATA_HEALTH_HEALTHY>DATA_HEALTH_DEGRADED",
		"DATA_HEALTH_DEGRADED>DATA_HEALTH_FAILED", "DATA_HEALTH_FAILED>DATA_HEALTH_HEALTHY"}
	if fmt.Sprint(changes) != fmt.Sprint(want) {
		t.Fatalf("hook saw %v, want %v", changes, want)
	}
}

func TestWatchdogRegistrationIsReserved(t *testing.T) {
	clk := newFakeClock()
	h := newHarness(t, wdOptions(clk, Hooks{}))
	h.prepare = func(w *fakeWorker) { mxWorker(w, "") }
	s, _ := h.open()
	for _, cmd := range []*mxgatewayv1.Command{
		{Kind: &mxgatewayv1.Command_Unregister{Unregister: &mxgatewayv1.UnregisterCommand{ServerHandle: 1}}},
		{Kind: &mxgatewayv1.Command_UnAdvise{UnAdvise: &mxgatewayv1.UnAdviseCommand{ServerHandle: 1, ItemHandle: 1}}},
	} {
		if _, err := s.Invoke(context.Background(), cmd, 0); !errors.Is(err, ErrReservedHandle) {
			t.Errorf("%v: err %v, want ErrReservedHandle", cmd, err)
		}
	}
	if _, err := s.Invoke(context.Background(), &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Unregister{Unregister: &mxgatewayv1.UnregisterCommand{ServerHandle: 2}}}, 0); err != nil {
		t.Errorf("Unregister of another handle: %v", err)
	}
}

func TestWatchdogRefusedReferenceDegradesThenFails(t *testing.T) {
	clk := newFakeClock()
	h := newHarness(t, wdOptions(clk, Hooks{}))
	h.prepare = func(w *fakeWorker) { mxWorker(w, "AddItem") }
	s, w := h.open()
	info := waitHealth(t, s, mxgatewayv1.DataHealth_DATA_HEALTH_DEGRADED)
	if info.DataHealthReason == "" {
		t.Fatal("degraded without a reason")
	}
	sub := subAfter(t, s, 0)
	expectHealthEvent(t, sub, 1, mxgatewayv1.DataHealth_DATA_HEALTH_STARTING, mxgatewayv1.DataHealth_DATA_HEALTH_DEGRADED)
	clk.Add(31 * time.Second)
	waitHealth(t, s, mxgatewayv1.DataHealth_DATA_HEALTH_FAILED)
	expectHealthEvent(t, sub, 2, mxgatewayv1.DataHealth_DATA_HEALTH_DEGRADED, mxgatewayv1.DataHealth_DATA_HEALTH_FAILED)
	w.send(t, dataChange(1, 2, 1, 1))
	expectSeqs(t, sub, 3)
}

func TestWatchdogDisabled(t *testing.T) {
	h := newHarness(t, Options{})
	s, w := h.open()
	if got := s.Info().DataHealth; got != mxgatewayv1.DataHealth_DATA_HEALTH_DISABLED {
		t.Fatalf("data health %v, want DISABLED", got)
	}
	sub := subAfter(t, s, 0)
	w.send(t, tick(1)) // handle 1 is the client's own without a watchdog
	expectSeqs(t, sub, 1)
}

func TestClassify(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	o := &WatchdogOptions{Reference: wdRef, StaleAfter: 10 * time.Second, FailAfter: 30 * time.Second}
	for _, c := range []struct {
		name string
		w    watchdog
		at   time.Duration
		want mxgatewayv1.DataHealth
	}{
		{"no value yet", watchdog{began: t0}, 5 * time.Second, mxgatewayv1.DataHealth_DATA_HEALTH_STARTING},
		{"no value in stale_after", watchdog{began: t0}, 10 * time.Second, mxgatewayv1.DataHealth_DATA_HEALTH_DEGRADED},
		{"no value in fail_after", watchdog{began: t0}, 30 * time.Second, mxgatewayv1.DataHealth_DATA_HEALTH_FAILED},
		{"fresh", watchdog{began: t0, lastChange: t0.Add(time.Minute)}, 65 * time.Second, mxgatewayv1.DataHealth_DATA_HEALTH_HEALTHY},
		{"fresh but bad quality since", watchdog{began: t0, lastChange: t0, badQuality: 1<<16 | 24}, time.Second, mxgatewayv1.DataHealth_DATA_HEALTH_DEGRADED},
		{"bad quality for fail_after", watchdog{began: t0, lastChange: t0, badQuality: 1<<16 | 24}, 30 * time.Second, mxgatewayv1.DataHealth_DATA_HEALTH_FAILED},
		{"not advised", watchdog{began: t0, setupErr: "refused"}, time.Second, mxgatewayv1.DataHealth_DATA_HEALTH_DEGRADED},
	} {
		got, reason := classify(&c.w, o, t0.Add(c.at))
		if got != c.want || (got != mxgatewayv1.DataHealth_DATA_HEALTH_HEALTHY && got != mxgatewayv1.DataHealth_DATA_HEALTH_STARTING && reason == "") {
			t.Errorf("%s: %v (%q), want %v with a reason", c.name, got, reason, c.want)
		}
	}
}

func TestWatchdogOptionsValidation(t *testing.T) {
	_, err := New(Options{Launch: func(context.Context, string) (Worker, error) { return nil, errors.New("x") },
		Watchdog: WatchdogOptions{Reference: wdRef, StaleAfter: 10 * time.Second, FailAfter: 5 * time.Second}})
	if err == nil {
		t.Fatal("FailAfter below StaleAfter accepted")
	}
}

// TestDataHealthCountsOnlyReady: a faulted session's data no longer counts
// (for the gauge and /readyz).
func TestDataHealthCountsOnlyReady(t *testing.T) {
	clk := newFakeClock()
	h := newHarness(t, wdOptions(clk, Hooks{}))
	h.prepare = func(w *fakeWorker) { mxWorker(w, "") }
	a, _ := h.open()
	b, bw := h.open()
	clk.Add(31 * time.Second)
	waitHealth(t, a, mxgatewayv1.DataHealth_DATA_HEALTH_FAILED)
	waitHealth(t, b, mxgatewayv1.DataHealth_DATA_HEALTH_FAILED)
	if got := h.m.DataHealthCounts(); got[mxgatewayv1.DataHealth_DATA_HEALTH_FAILED] != 2 {
		t.Fatalf("DataHealthCounts = %v, want two FAILED", got)
	}
	bw.finish(errors.New("crashed"))
	testutil.Eventually(t, 5*time.Second, func() error {
		if got := h.m.DataHealthCounts(); got[mxgatewayv1.DataHealth_DATA_HEALTH_FAILED] != 1 {
			return fmt.Errorf("DataHealthCounts = %v, want only the READY session's FAILED", got)
		}
		return nil
	})
}
