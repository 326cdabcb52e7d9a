package auth

import (
	"sync"
	"time"
)

// Defaults of the verified-key cache.
const (
	// DefaultKeyCacheTTL is how long a verified key is trusted without
	// reading the store again.
	DefaultKeyCacheTTL = 5 * time.Second
	// DefaultKeyCacheSize bounds the number of cached keys.
	DefaultKeyCacheSize = 10000
)

// cachedKey is a key that verified recently: the HMAC it verified against
// (every later call still compares the presented secret's HMAC with it) and
// the principal it yields.
type cachedKey struct {
	mac           []byte
	pepperVersion int
	principal     *Principal
	expires       time.Time
}

// keyCache holds verified, unrevoked keys by id for a short TTL, so that
// authentication does not read the store on every RPC. Only successful
// verifications are cached; unknown ids, wrong secrets and revoked keys
// always go to the store. A nil *keyCache is a disabled cache.
type keyCache struct {
	ttl time.Duration
	max int

	mu      sync.RWMutex
	entries map[string]*cachedKey
	// gen counts invalidations. A verification that read the store before
	// an invalidation must not cache what it read (the key may have been
	// revoked in between), so put compares the generation seen before the
	// read with the current one.
	gen uint64
}

// newKeyCache returns a cache for ttl and size (0 = defaults), or nil
// (disabled) when ttl is negative.
func newKeyCache(ttl time.Duration, size int) *keyCache {
	if ttl < 0 {
		return nil
	}
	if ttl == 0 {
		ttl = DefaultKeyCacheTTL
	}
	if size <= 0 {
		size = DefaultKeyCacheSize
	}
	return &keyCache{ttl: ttl, max: size, entries: make(map[string]*cachedKey)}
}

// get returns the unexpired entry for id.
func (c *keyCache) get(id string, now time.Time) (*cachedKey, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.RLock()
	e, ok := c.entries[id]
	c.mu.RUnlock()
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	return e, true
}

// generation returns the invalidation count, to pass to put.
func (c *keyCache) generation() uint64 {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// put caches e for id until now+TTL, unless an invalidation happened since
// gen was read. A full cache first drops expired entries, then an arbitrary
// one.
func (c *keyCache) put(id string, e *cachedKey, gen uint64, now time.Time) {
	if c == nil {
		return
	}
	e.expires = now.Add(c.ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if _, ok := c.entries[id]; !ok && len(c.entries) >= c.max {
		c.evictLocked(now)
	}
	c.entries[id] = e
}

// evictLocked makes room for one entry. c.mu must be held.
func (c *keyCache) evictLocked(now time.Time) {
	for id, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, id)
		}
	}
	if len(c.entries) < c.max {
		return
	}
	for id := range c.entries { // map order: an arbitrary victim
		delete(c.entries, id)
		if len(c.entries) < c.max {
			return
		}
	}
}

// invalidate forgets id at once; verifications reading the store at this
// moment (of any key) will not cache what they read.
func (c *keyCache) invalidate(id string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.entries, id)
	c.gen++
	c.mu.Unlock()
}

// len returns the number of entries, expired ones included.
func (c *keyCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
