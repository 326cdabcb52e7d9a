package sim

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

// BenchmarkStorm pushes an event storm of at least one million OnDataChange
// events through a discarding sink and reports the allocation per event and
// the largest live heap seen during the storm (sampled after a GC every
// 100,000 events). A flat max-heap-MB that does
// not grow with the event count shows the storm is not buffered anywhere.
//
//	go test -run='^$' -bench=Storm -benchtime=1x ./internal/backend/sim/
func BenchmarkStorm(b *testing.B) {
	const minEvents = 1_000_000
	events := max(b.N, minEvents)
	clk := NewFakeClock(testStart)
	sb, err := New(Options{Profile: ProfileTest, Clock: clk})
	if err != nil {
		b.Fatal(err)
	}
	var got atomic.Int64
	var maxHeap uint64
	var ms runtime.MemStats
	sink := backend.SinkFunc(func(ev *mxgatewayv1.Event) {
		if n := got.Add(1); n%100_000 == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			maxHeap = max(maxHeap, ms.HeapAlloc)
		}
	})
	if _, err := sb.Open(context.Background(), sink); err != nil {
		b.Fatal(err)
	}
	defer sb.Close()
	h, err := sb.Register("bench")
	if err != nil {
		b.Fatal(err)
	}
	v, err := sb.AddItem(h, "Sim.StormValue")
	if err != nil {
		b.Fatal(err)
	}
	if err := sb.Advise(h, v); err != nil {
		b.Fatal(err)
	}
	s, err := sb.AddItem(h, "Sim.Storm")
	if err != nil {
		b.Fatal(err)
	}
	if err := sb.Advise(h, s); err != nil {
		b.Fatal(err)
	}
	// waitEvents polls (pinging so a dead backend fails fast) until the
	// sink has seen n events.
	waitEvents := func(n int64, timeout time.Duration) {
		b.Helper()
		testutil.Eventually(b, timeout, func() error {
			if err := sb.Ping(context.Background()); err != nil {
				b.Fatal(err)
			}
			if g := got.Load(); g < n {
				return fmt.Errorf("sink saw %d of %d events", g, n)
			}
			return nil
		})
	}
	waitEvents(2, 10*time.Second)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	start := got.Load()
	if err := sb.Write(h, s, mxtypes.IntegerValue(int32(events)), 0); err != nil {
		b.Fatal(err)
	}
	waitEvents(start+int64(events), 5*time.Minute)
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(events), "B/event")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(events), "allocs/event")
	b.ReportMetric(float64(maxHeap)/(1<<20), "max-heap-MB")
	b.ReportMetric(float64(events), "events")
}
