package runtime_test

import (
	"testing"
	"time"

	"github.com/mxgateway/mxgateway/api/mxgateway/galaxy/v1"
	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/galaxy/runtime"
)

const benchModel = `
galaxy: BenchGalaxy
objects:
  - tag: Obj
    attributes:
      - {name: Count, type: MxInteger, value: 0}
`

// BenchmarkRuntimeStorm: an event storm made in the runtime reaches a
// session over the runtime endpoint (batched value changes, decoded and
// applied by the session's simulator, delivered as OnDataChange). It
// reports the changes per second that arrive as events.
//
//	go test -run='^$' -bench=RuntimeStorm -benchtime=1x ./internal/galaxy/runtime/
func BenchmarkRuntimeStorm(b *testing.B) {
	const minChanges = 500_000
	n := max(b.N, minChanges)
	dir := benchDir(b)
	r := startBenchRig(b, dir)
	s := openBenchSession(b, dir, r)
	hi, err := s.b.AddItem(s.h, "Obj.Count")
	if err != nil {
		b.Fatal(err)
	}
	if err := s.b.Advise(s.h, hi); err != nil {
		b.Fatal(err)
	}
	waitCount(b, s, 0)
	b.ResetTimer()
	start := time.Now()
	if rep := r.rt.Admin(&galaxyv1.AdminRequest{Action: runtime.ActionStorm, Target: "Obj.Count", DurationMs: int64(n)}); rep.GetError() != "" {
		b.Fatal(rep.GetError())
	}
	waitCount(b, s, int32(n))
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(n)/el.Seconds(), "changes/s")
	b.ReportMetric(float64(s.count.Load()), "events")
}

// waitCount waits until the session has seen Obj.Count reach v.
func waitCount(b *testing.B, s *benchSession, v int32) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for s.last.Load() != v || !s.seen.Load() {
		if time.Now().After(deadline) {
			b.Fatalf("Obj.Count at %d, want %d", s.last.Load(), v)
		}
		time.Sleep(time.Millisecond) // a benchmark polls; no test asserts on time
	}
}

// benchSink counts OnDataChange events and keeps the last value.
func (s *benchSession) Event(ev *mxgatewayv1.Event) {
	if dc := ev.GetDataChange(); dc != nil {
		s.count.Add(1)
		s.last.Store(dc.GetValue().GetInt32Value())
		s.seen.Store(true)
	}
}
