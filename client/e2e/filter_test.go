package e2e

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/mxgateway/mxgateway/client"
	"github.com/mxgateway/mxgateway/internal/testutil"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// TestFilteredEvents runs three readers of one session on a real gateway:
// unfiltered, with an absolute deadband, and with a minimum interval. The
// unfiltered reader sees every event (the filter never reaches the worker
// or other readers); the deadband reader sees exactly what a deadband over
// the unfiltered stream keeps; the interval reader sees fewer events, each
// one an event of the session unchanged.
func TestFilteredEvents(t *testing.T) {
	leakCheck(t)
	g := harness.Start(t)
	ctx := harness.Context(t, 90*time.Second)
	c := dial(t, ctx, g, "")
	s := open(t, ctx, c)
	all := watchEvents(t, s)
	const band = 2.5
	banded := watchEvents(t, s, client.Filter(client.EventFilter{AbsoluteDeadband: band}))
	paced := watchEvents(t, s, client.Filter(client.EventFilter{MinInterval: 1500 * time.Millisecond}))
	// Tank2.Level ramps by 1 a second; Pump1.Speed walks at random.
	if _, err := s.Subscribe(ctx, "Tank2.Level", "Pump1.Speed"); err != nil {
		t.Fatal(err)
	}

	// model is the deadband applied to the unfiltered events up to seq.
	model := func(evs []client.Event, upTo uint64) []uint64 {
		last := map[int32]float64{}
		var keep []uint64
		for _, ev := range evs {
			d := ev.DataChange()
			if d == nil || ev.Sequence() > upTo {
				continue
			}
			v, err := d.Value.AsFloat64()
			if err != nil {
				t.Fatalf("%v: %v", ev, err)
			}
			if prev, ok := last[d.ItemHandle]; ok && math.Abs(v-prev) < band {
				continue
			}
			last[d.ItemHandle] = v
			keep = append(keep, ev.Sequence())
		}
		return keep
	}
	seqs := func(evs []client.Event, upTo uint64) []uint64 {
		var out []uint64
		for _, ev := range evs {
			if ev.DataChange() != nil && ev.Sequence() <= upTo {
				out = append(out, ev.Sequence())
			}
		}
		return out
	}
	lastSeq := func(evs []client.Event) uint64 {
		if len(evs) == 0 {
			return 0
		}
		return evs[len(evs)-1].Sequence()
	}
	testutil.Eventually(t, 60*time.Second, func() error {
		u, err := all.snapshot()
		if err != nil {
			return err
		}
		b, err := banded.snapshot()
		if err != nil {
			return err
		}
		upTo := min(lastSeq(u), lastSeq(b))
		want, got := model(u, upTo), seqs(b, upTo)
		if fmt.Sprint(want) != fmt.Sprint(got) {
			return fmt.Errorf("deadband reader has %v up to %d, the deadband keeps %v", got, upTo, want)
		}
		if n := len(seqs(u, upTo)); n < 12 || len(got) >= n {
			return fmt.Errorf("%d events of which %d kept: not enough yet", n, len(got))
		}
		return nil
	})
	u, _ := all.snapshot()
	bySeq := map[uint64]client.Event{}
	for i, ev := range u {
		if i > 0 && ev.Sequence() != u[i-1].Sequence()+1 {
			t.Fatalf("the unfiltered reader is not contiguous at %d", ev.Sequence())
		}
		bySeq[ev.Sequence()] = ev
	}
	p, err := paced.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	changes := 0
	for _, ev := range p {
		if d := ev.DataChange(); d != nil {
			changes++
			if want, ok := bySeq[ev.Sequence()]; ok && want.DataChange().Value.String() != d.Value.String() {
				t.Fatalf("the interval reader's event %d differs from the session's: %v, %v", ev.Sequence(), ev, want)
			}
		}
	}
	if n := len(seqs(u, lastSeq(p))); changes == 0 || changes >= n {
		t.Fatalf("the interval reader got %d changes where the session had %d", changes, n)
	}
}

// TestFilterValidation: a filter out of range is refused before the stream
// starts, with INVALID_ARGUMENT.
func TestFilterValidation(t *testing.T) {
	leakCheck(t)
	g := harness.Start(t)
	ctx := harness.Context(t, 30*time.Second)
	c := dial(t, ctx, g, "")
	s := open(t, ctx, c)
	for _, f := range []client.EventFilter{{PercentDeadband: 200}, {AbsoluteDeadband: -1}, {AbsoluteDeadband: math.Inf(1)}, {MinInterval: 2 * time.Hour}} {
		ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var got error
		for _, err := range s.Events(ectx, client.Filter(f)) {
			got = err
			break
		}
		cancel()
		if !errors.Is(got, client.ErrInvalidRequest) {
			t.Errorf("filter %+v: %v, want ErrInvalidRequest", f, got)
		}
	}
}
