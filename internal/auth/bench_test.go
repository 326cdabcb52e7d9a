package auth

import (
	"context"
	"testing"
	"time"
)

// BenchmarkVerify measures Authenticate, what the guard runs on every RPC,
// for one valid key: from the verified-key cache, and with the cache
// disabled (a store lookup per call, as before the cache).
func BenchmarkVerify(b *testing.B) {
	for _, bc := range []struct {
		name string
		ttl  time.Duration
	}{{"cache=on", 0}, {"cache=off", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			e := newEnv(b)
			m, err := NewManager(ManagerConfig{Store: e.store, Peppers: e.mgr.peppers, KeyCacheTTL: bc.ttl})
			if err != nil {
				b.Fatal(err)
			}
			raw, _ := e.mustCreate(b, "bench", Constraints{AllowRead: []string{"A.*"}}, ScopeInvokeRead)
			key := raw.Reveal()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Authenticate(ctx, key); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
