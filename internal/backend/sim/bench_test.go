package sim

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/backend"
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
	h, _ := sb.Register("bench")
	v, _ := sb.AddItem(h, "Sim.StormValue")
	sb.Advise(h, v)
	s, _ := sb.AddItem(h, "Sim.Storm")
	sb.Advise(h, s)
	for got.Load() < 2 {
		sb.Ping(context.Background())
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	start := got.Load()
	sb.Write(h, s, backend.IntegerValue(int32(events)), 0)
	for got.Load() < start+int64(events) {
		if err := sb.Ping(context.Background()); err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(events), "B/event")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(events), "allocs/event")
	b.ReportMetric(float64(maxHeap)/(1<<20), "max-heap-MB")
	b.ReportMetric(float64(events), "events")
}
