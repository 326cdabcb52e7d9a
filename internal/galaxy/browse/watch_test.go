package browse

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/backend/sim"
)

func next(t *testing.T, w *Watch) Change {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := w.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return c
}

// A watcher gets the current state first, then every change once, with
// the objects each deploy changed; a change of freshness only changes
// none.
func TestWatchChanges(t *testing.T) {
	var st Store
	if _, err := st.Watch(); !errors.Is(err, ErrNoModel) {
		t.Fatalf("Watch before a model: %v", err)
	}
	s1 := demo(t, 1)
	st.Set(s1)
	w, err := st.Watch()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if c := next(t, w); c.Seq != 1 || c.Info.GetDeploySequence() != 1 || c.Changed != nil || c.Gap {
		t.Fatalf("first change %+v", c)
	}

	// Deploy 2: Tank1 loses an attribute, Pump1 gets a new contained
	// name, the rest is as it was.
	m := sim.DemoModel()
	var tank1, pump1 int32
	for _, o := range m.Objects {
		switch o.Tag {
		case "Tank1":
			tank1 = o.ID
			o.Attributes = o.Attributes[1:]
		case "Pump1":
			pump1 = o.ID
			o.Contained = "FeedPump"
		}
	}
	if tank1 == 0 || pump1 == 0 {
		t.Fatal("demo model has no Tank1 or Pump1")
	}
	s2 := FromModel(m, 2, deployed.Add(time.Minute), mxgatewayv1.Freshness_FRESHNESS_LIVE)
	st.Set(s2)
	c := next(t, w)
	if c.Seq != 2 || c.Info.GetDeploySequence() != 2 || c.Gap {
		t.Fatalf("deploy change %+v", c)
	}
	if want := []int32{min(tank1, pump1), max(tank1, pump1)}; !slices.Equal(c.Changed, want) {
		t.Errorf("changed %v, want Tank1 and Pump1 %v", c.Changed, want)
	}

	st.Set(s2.withFreshness(mxgatewayv1.Freshness_FRESHNESS_STALE))
	if c := next(t, w); c.Seq != 3 || c.Changed != nil || c.Info.GetFreshness() != mxgatewayv1.Freshness_FRESHNESS_STALE {
		t.Fatalf("freshness change %+v", c)
	}
	st.Set(st.Load()) // the same snapshot again is no change
	st.Set(s2)
	if c := next(t, w); c.Seq != 4 || c.Info.GetFreshness() != mxgatewayv1.Freshness_FRESHNESS_LIVE {
		t.Fatalf("back live %+v", c)
	}
}

// A watcher that does not keep up loses the oldest changes, never more
// than WatchQueue are kept, and the first it then gets says Gap; the
// sequence shows what it missed.
func TestWatchGap(t *testing.T) {
	var st Store
	st.Set(demo(t, 1))
	w, err := st.Watch()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const n = WatchQueue + 5
	for i := range n {
		st.Set(demo(t, uint64(i+2)))
	}
	w.mu.Lock()
	queued := len(w.queue)
	w.mu.Unlock()
	if queued != WatchQueue {
		t.Fatalf("%d changes queued, want %d", queued, WatchQueue)
	}
	c := next(t, w)
	if !c.Gap || c.Seq != n+1-WatchQueue+1 {
		t.Fatalf("first after the drop %+v, want gap at sequence %d", c, n+1-WatchQueue+1)
	}
	prev := c.Seq
	for range WatchQueue - 1 {
		c := next(t, w)
		if c.Gap || c.Seq != prev+1 {
			t.Fatalf("change %+v after %d", c, prev)
		}
		prev = c.Seq
	}
	if prev != n+1 {
		t.Fatalf("last sequence %d, want %d", prev, n+1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := w.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next with nothing queued and ctx ended: %v", err)
	}
}

// A constrained viewer learns only the ids of objects it can see.
func TestVisibleIDs(t *testing.T) {
	s := demo(t, 1)
	all := []int32{s.byTag["tank1"].obj.ObjectId, s.byTag["tank2"].obj.ObjectId, s.byTag["tankfarm"].obj.ObjectId, 999999}
	if got := s.VisibleIDs(Viewer{}, all); !slices.Equal(got, all) {
		t.Errorf("unconstrained: %v", got)
	}
	v := Viewer{ID: "k", Allow: func(ref string) bool { return len(ref) >= 6 && ref[:6] == "Tank1." }}
	if got, want := s.VisibleIDs(v, all), []int32{all[0], all[2]}; !slices.Equal(got, want) {
		t.Errorf("constrained to Tank1: %v, want %v", got, want)
	}
}
