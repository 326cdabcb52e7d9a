package auth

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/mxgateway/mxgateway/internal/store"
)

// wrongSecret returns raw's id with another secret.
func wrongSecret(t *testing.T, raw RawKey) string {
	t.Helper()
	cred, err := ParseKey(raw.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	secret := make([]byte, SecretBytes)
	copy(secret, cred.secret)
	secret[0] ^= 0xFF
	return FormatKey(cred.ID, secret).Reveal()
}

// A verified key is served from the cache: with the store closed it still
// authenticates (no lookup), a wrong secret is still rejected, and once the
// TTL has passed the store is read again.
func TestKeyCacheServesVerifiedKeys(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	raw, k := e.mustCreate(t, "svc", Constraints{AllowRead: []string{"A.*"}}, ScopeInvokeRead)
	p1, err := e.mgr.Authenticate(ctx, raw.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	e.clock.t = e.clock.t.Add(DefaultKeyCacheTTL - time.Millisecond)
	p2, err := e.mgr.Authenticate(ctx, raw.Reveal())
	if err != nil {
		t.Fatalf("cached key with the store closed: %v", err)
	}
	if p2.KeyID != k.ID || !p2.Has(ScopeInvokeRead) || p2.Has(ScopeInvokeWrite) || !p2.AllowRead("a.x") || p2.AllowRead("B.x") {
		t.Fatalf("cached principal = %+v", p2)
	}
	if p1 != p2 {
		t.Fatal("cache hit built a new principal")
	}
	if _, err := e.mgr.Authenticate(ctx, wrongSecret(t, raw)); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("wrong secret for a cached key: %v, want ErrInvalidKey", err)
	}
	e.clock.t = e.clock.t.Add(time.Millisecond) // TTL reached
	_, err = e.mgr.Authenticate(ctx, raw.Reveal())
	if err == nil || errors.Is(err, ErrInvalidKey) {
		t.Fatalf("after the TTL with the store closed: %v, want a store error", err)
	}
}

// A wrong secret is rejected from the cache, and the cache entry stays
// valid for the right secret (a wrong guess does not evict the key).
func TestKeyCacheWrongSecret(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	raw, _ := e.mustCreate(t, "svc", Constraints{}, ScopeInvokeRead)
	if _, err := e.mgr.Authenticate(ctx, raw.Reveal()); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := e.mgr.Authenticate(ctx, wrongSecret(t, raw)); !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("wrong secret: %v", err)
		}
	}
	if _, err := e.mgr.Authenticate(ctx, raw.Reveal()); err != nil {
		t.Fatal(err)
	}
	if e.mgr.cache.len() != 1 {
		t.Fatalf("cache holds %d keys, want 1", e.mgr.cache.len())
	}
}

// Last use is still recorded when the key comes from the cache.
func TestKeyCacheStampsLastUsed(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	raw, k := e.mustCreate(t, "k", Constraints{}, ScopeAdmin)
	if _, err := e.mgr.Authenticate(ctx, raw.Reveal()); err != nil {
		t.Fatal(err)
	}
	e.clock.t = e.clock.t.Add(time.Second)
	if _, err := e.mgr.Authenticate(ctx, raw.Reveal()); err != nil {
		t.Fatal(err)
	}
	if err := e.store.FlushLastUsed(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := e.store.GetKey(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.LastUsedAt.Equal(e.clock.t) {
		t.Fatalf("last used = %v, want %v (the cached use)", got.LastUsedAt, e.clock.t)
	}
}

// Revoking and rotating through the Manager take effect on the next call.
func TestKeyCacheRevokeAndRotateAreImmediate(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	raw, k := e.mustCreate(t, "revoked", Constraints{}, ScopeInvokeRead)
	rawR, kR := e.mustCreate(t, "rotated", Constraints{}, ScopeInvokeRead)
	for _, r := range []RawKey{raw, rawR} {
		if _, err := e.mgr.Authenticate(ctx, r.Reveal()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.mgr.RevokeKey(ctx, k.ID, Actor{KeyID: CLIActor}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.mgr.Authenticate(ctx, raw.Reveal()); !errors.Is(err, ErrKeyRevoked) {
		t.Fatalf("revoked key: %v, want ErrKeyRevoked", err)
	}
	newRaw, _, err := e.mgr.RotateKey(ctx, kR.ID, Actor{KeyID: CLIActor})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.mgr.Authenticate(ctx, rawR.Reveal()); !errors.Is(err, ErrKeyRevoked) {
		t.Fatalf("rotated-away key: %v, want ErrKeyRevoked", err)
	}
	if _, err := e.mgr.Authenticate(ctx, newRaw.Reveal()); err != nil {
		t.Fatalf("replacement key: %v", err)
	}
}

// otherProcess opens a second store and Manager on e's database file, as the
// offline apikey command does.
func otherProcess(t *testing.T, e *env) *Manager {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(e.dir, store.DBFileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	pep, err := LoadPeppers(PepperConfig{DataDir: e.dir, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(ManagerConfig{Store: st, Peppers: pep, Now: e.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A key revoked by another process on the same database keeps working from
// the cache until the TTL, then fails.
func TestKeyCacheRevokeElsewhereWithinTTL(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	raw, k := e.mustCreate(t, "svc", Constraints{}, ScopeInvokeRead)
	if _, err := e.mgr.Authenticate(ctx, raw.Reveal()); err != nil {
		t.Fatal(err)
	}
	if _, err := otherProcess(t, e).RevokeKey(ctx, k.ID, Actor{KeyID: CLIActor}); err != nil {
		t.Fatal(err)
	}
	e.clock.t = e.clock.t.Add(DefaultKeyCacheTTL - time.Millisecond)
	if _, err := e.mgr.Authenticate(ctx, raw.Reveal()); err != nil {
		t.Fatalf("within the TTL the cached key still works: %v", err)
	}
	e.clock.t = e.clock.t.Add(time.Millisecond)
	if _, err := e.mgr.Authenticate(ctx, raw.Reveal()); !errors.Is(err, ErrKeyRevoked) {
		t.Fatalf("after the TTL: %v, want ErrKeyRevoked", err)
	}
}

// A configured TTL is honoured, and a negative TTL disables the cache: a
// revocation elsewhere is then seen on the next call.
func TestKeyCacheTTLConfig(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		ttl   time.Duration
		works time.Duration // the longest a revoked-elsewhere key still works
	}{
		{"custom", 300 * time.Millisecond, 300*time.Millisecond - 1},
		{"disabled", -1, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			m, err := NewManager(ManagerConfig{Store: e.store, Peppers: e.mgr.peppers, Now: e.clock.now, KeyCacheTTL: tc.ttl})
			if err != nil {
				t.Fatal(err)
			}
			raw, k := e.mustCreate(t, "svc", Constraints{}, ScopeInvokeRead)
			if _, err := m.Authenticate(ctx, raw.Reveal()); err != nil {
				t.Fatal(err)
			}
			if _, err := otherProcess(t, e).RevokeKey(ctx, k.ID, Actor{KeyID: CLIActor}); err != nil {
				t.Fatal(err)
			}
			if tc.works >= 0 {
				e.clock.t = e.clock.t.Add(tc.works)
				if _, err := m.Authenticate(ctx, raw.Reveal()); err != nil {
					t.Fatalf("within the TTL: %v", err)
				}
				e.clock.t = e.clock.t.Add(1)
			}
			if _, err := m.Authenticate(ctx, raw.Reveal()); !errors.Is(err, ErrKeyRevoked) {
				t.Fatalf("after the TTL: %v, want ErrKeyRevoked", err)
			}
			if tc.ttl < 0 && m.cache.len() != 0 {
				t.Fatal("disabled cache holds keys")
			}
		})
	}
}

// Unknown ids and revoked keys are never cached; the cache never holds more
// than its size.
func TestKeyCacheBounds(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	m, err := NewManager(ManagerConfig{Store: e.store, Peppers: e.mgr.peppers, Now: e.clock.now, KeyCacheSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	otherRaw, _, _ := validKey(t)
	if _, err := m.Authenticate(ctx, otherRaw.Reveal()); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("unknown id: %v", err)
	}
	rawRev, kRev := e.mustCreate(t, "revoked", Constraints{}, ScopeInvokeRead)
	if _, err := e.mgr.RevokeKey(ctx, kRev.ID, Actor{}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Authenticate(ctx, rawRev.Reveal()); !errors.Is(err, ErrKeyRevoked) {
		t.Fatalf("revoked: %v", err)
	}
	if n := m.cache.len(); n != 0 {
		t.Fatalf("cache holds %d entries after an unknown id and a revoked key", n)
	}
	var raws []RawKey
	for range 5 {
		raw, _ := e.mustCreate(t, "k", Constraints{}, ScopeInvokeRead)
		raws = append(raws, raw)
		if _, err := m.Authenticate(ctx, raw.Reveal()); err != nil {
			t.Fatal(err)
		}
		if n := m.cache.len(); n > 2 {
			t.Fatalf("cache holds %d entries, limit 2", n)
		}
	}
	for _, raw := range raws { // evicted keys are looked up again
		if _, err := m.Authenticate(ctx, raw.Reveal()); err != nil {
			t.Fatal(err)
		}
	}
}

// A lookup that started before an invalidation does not cache its result:
// the key may have been revoked in between.
func TestKeyCacheStaleLookupNotCached(t *testing.T) {
	c := newKeyCache(0, 0)
	now := time.Unix(1000, 0)
	gen := c.generation()
	c.invalidate("id1") // a revoke completes while the lookup runs
	c.put("id1", &cachedKey{}, gen, now)
	if _, ok := c.get("id1", now); ok {
		t.Fatal("stale lookup was cached")
	}
	c.put("id1", &cachedKey{}, c.generation(), now)
	if _, ok := c.get("id1", now); !ok {
		t.Fatal("fresh lookup was not cached")
	}
	if _, ok := c.get("id1", now.Add(DefaultKeyCacheTTL)); ok {
		t.Fatal("entry outlived its TTL")
	}
	var disabled *keyCache = newKeyCache(-1, 0)
	disabled.put("id1", &cachedKey{}, disabled.generation(), now)
	if _, ok := disabled.get("id1", now); ok || disabled != nil {
		t.Fatal("negative TTL did not disable the cache")
	}
}
