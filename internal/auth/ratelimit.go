package auth

import (
	"sync"
	"time"
)

// bucket is a token bucket.
type bucket struct {
	tokens     float64
	last       time.Time
	suppressed int // denials not audited since the last audited one
}

func (b *bucket) take(rate, burst float64, now time.Time) bool {
	if b.last.IsZero() {
		b.tokens = burst
	} else if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(burst, b.tokens+dt*rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

// auditLimiter decides which denials reach the audit log: a token bucket per
// source (key id, or remote IP when unauthenticated) and a global one, so
// that a flood of bad calls costs bounded disk. Suppressed denials are
// counted and reported on the source's next audited row.
type auditLimiter struct {
	mu            sync.Mutex
	rate, burst   float64 // per source
	grate, gburst float64 // global
	global        bucket
	sources       map[string]*bucket
	maxSources    int
}

func newAuditLimiter(rate float64, burst int, grate float64, gburst int) *auditLimiter {
	return &auditLimiter{
		rate: rate, burst: float64(burst),
		grate: grate, gburst: float64(gburst),
		sources:    make(map[string]*bucket),
		maxSources: 4096,
	}
}

// allow reports whether a denial from source may be audited now, and how
// many of its denials were suppressed since its last audited one.
func (l *auditLimiter) allow(source string, now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, found := l.sources[source]
	if !found {
		if len(l.sources) >= l.maxSources {
			l.prune(now)
		}
		if len(l.sources) >= l.maxSources {
			// Too many distinct sources: only the global bucket decides, and
			// the new source is not remembered.
			b = &bucket{}
		} else {
			b = &bucket{}
			l.sources[source] = b
		}
	}
	if !b.take(l.rate, l.burst, now) || !l.global.take(l.grate, l.gburst, now) {
		b.suppressed++
		return false, 0
	}
	suppressed, b.suppressed = b.suppressed, 0
	return true, suppressed
}

// prune forgets sources whose bucket has refilled and that owe no report.
func (l *auditLimiter) prune(now time.Time) {
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	for k, b := range l.sources {
		if b.suppressed == 0 && now.Sub(b.last) >= full {
			delete(l.sources, k)
		}
	}
}
