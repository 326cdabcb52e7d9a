package auth

import (
	"fmt"
	"testing"
	"time"
)

func TestAuditLimiter(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	l := newAuditLimiter(1, 2, 10, 3) // per source 1/s burst 2; global 10/s burst 3
	allowed := func(src string, at time.Time) bool { ok, _ := l.allow(src, at); return ok }
	if !allowed("a", t0) || !allowed("a", t0) || allowed("a", t0) {
		t.Fatal("per-source burst of 2 not enforced")
	}
	if !allowed("b", t0) || allowed("c", t0) {
		t.Fatal("global burst of 3 not enforced")
	}
	ok, suppressed := l.allow("a", t0.Add(2*time.Second))
	if !ok || suppressed != 1 {
		t.Fatalf("refill: ok=%v suppressed=%d, want true 1", ok, suppressed)
	}
	// Many distinct sources never grow the map beyond its cap.
	l = newAuditLimiter(1, 1, 1e9, 1e9)
	l.maxSources = 8
	for i := range 100 {
		l.allow(fmt.Sprint(i), t0)
	}
	if len(l.sources) > 8 {
		t.Fatalf("%d sources remembered, cap 8", len(l.sources))
	}
	// Once their buckets refill, old sources are pruned for new ones.
	l.allow("new", t0.Add(time.Hour))
	if _, ok := l.sources["new"]; !ok {
		t.Fatal("refilled sources were not pruned")
	}
}
