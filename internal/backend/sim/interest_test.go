package sim

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	"github.com/mxgateway/mxgateway/internal/itemtable"
)

// filterLink is an interest link to an in-process hub that sends nothing by
// itself: the test plays the runtime's answers (Apply, InterestApplied).
type filterLink struct {
	hub *Backend

	mu    sync.Mutex
	calls []string // "+Obj.Arr", "-Obj.Arr"
	id    uint64
}

func (l *filterLink) Write(attr int32, v *mxgatewayv1.MxValue, ts time.Time, force bool, operator string) {
	l.hub.ApplyWrite(attr, v, ts, force, 1, operator)
}

func (l *filterLink) Interest(ref string, on bool) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.id++
	sign := "-"
	if on {
		sign = "+"
	}
	l.calls = append(l.calls, sign+ref)
	return l.id
}

func (l *filterLink) took() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.calls
	l.calls = nil
	return c
}

// hubValue is the hub's current value of ref.
func hubValue(t *testing.T, hub *Backend, ref string) Change {
	t.Helper()
	ord, ok := hub.model.SharedAttribute(ref)
	vals, err := hub.Values(context.Background())
	if !ok || err != nil {
		t.Fatalf("hub value of %s: %v, %v", ref, ok, err)
	}
	for _, c := range vals {
		if c.Attr == ord {
			return c
		}
	}
	t.Fatalf("the hub has no value of %s", ref)
	return Change{}
}

// TestInterestWaitsForCurrentValue: with an interest link, an advise adds
// the attribute to the interest set, its first OnDataChange and a write to
// an element of it wait for the runtime's current value (the session's
// copy is stale: the runtime changed the array meanwhile), and the last
// UnAdvise removes it. While the runtime is lost nothing waits.
func TestInterestWaitsForCurrentValue(t *testing.T) {
	e := &env{t: t, table: itemtable.New(), rec: &recorder{}, clk: NewFakeClock(testStart), exits: make(chan int, 4)}
	m, err := ParseModel([]byte(testModelYAML), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	k, _ := DefaultKnobs(ProfileDefault)
	e.hub, _ = newTestHub(t, testModelYAML, e.clk, func([]Change) {}) // forwards nothing
	link := &filterLink{hub: e.hub}
	if e.b, err = New(Options{Model: m, Knobs: &k, Clock: e.clk, Seed: 1, Galaxy: link}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.b.Open(context.Background(), e.rec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.b.Close() })
	ord, _ := m.SharedAttribute("Obj.Arr")
	e.hub.ApplyWrite(ord, buildArray(tInt, []*mxgatewayv1.MxValue{intValue(7), intValue(8), intValue(9)}), testStart, false, 2, "other")
	e.settle()

	h := e.reg()
	hi := e.add(h, "Obj.Arr[2]")
	if err := e.b.Advise(h, hi); err != nil {
		t.Fatal(err)
	}
	e.advance(k.FirstBindDelay)
	if got := link.took(); !slices.Equal(got, []string{"+Obj.Arr"}) {
		t.Fatalf("Interest calls %v, want +Obj.Arr", got)
	}
	if n := len(dataChanges(e.rec.take())); n != 0 {
		t.Fatalf("%d OnDataChange before the current value arrived", n)
	}
	e.write(h, hi, mxtypes.IntegerValue(100))
	e.settle()

	// The runtime's answer: the current value, then the change applied.
	e.b.Apply([]Change{hubValue(t, e.hub, "Obj.Arr")})
	e.b.InterestApplied(1)
	e.advance(k.UpdateLatency)
	dcs := dataChanges(e.rec.take())
	if len(dcs) == 0 || dcs[0].GetValue().GetInt32Value() != 8 {
		t.Fatalf("first value %v, want the Galaxy's element 8", dcs)
	}
	e.settle()
	if got := hubValue(t, e.hub, "Obj.Arr").Value.GetArrayValue().GetInt32S().GetValues(); !slices.Equal(got, []int32{7, 100, 9}) {
		t.Fatalf("the write of element 2 gave %v, want [7 100 9]", got)
	}

	if err := e.b.UnAdvise(h, hi); err != nil {
		t.Fatal(err)
	}
	e.settle()
	if got := link.took(); !slices.Equal(got, []string{"-Obj.Arr"}) {
		t.Fatalf("Interest calls %v, want -Obj.Arr", got)
	}

	// The runtime is lost: an advise reads the session's own (bad) value.
	e.b.GalaxyLost()
	if err := e.b.Advise(h, hi); err != nil {
		t.Fatal(err)
	}
	e.advance(k.RebindDelay)
	dcs = dataChanges(e.rec.take())
	if len(dcs) != 1 || dcs[0].GetQuality().GetRaw() != uint32(mxtypes.QualityBadCommFailure) {
		t.Fatalf("advise while the runtime is lost: %v", dcs)
	}
}
