package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Backoff is an exponential reconnect schedule with full jitter: attempt n
// waits a random time in [Initial*Factor^n / 2, Initial*Factor^n], capped at
// Max. MaxAttempts > 0 gives up after that many failed attempts in a row;
// 0 retries until the context ends. A delivered event resets the count.
type Backoff struct {
	// Initial is the first delay.
	Initial time.Duration
	// Max caps every delay.
	Max time.Duration
	// Factor multiplies the delay per attempt (>= 1).
	Factor float64
	// MaxAttempts limits consecutive failed attempts; 0 means no limit.
	MaxAttempts int
}

// DefaultBackoff starts at 100 ms, doubles, caps at 5 s and never gives up.
var DefaultBackoff = Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Factor: 2}

func (b Backoff) validate() error {
	if b.Initial <= 0 || b.Max < b.Initial || b.Factor < 1 || b.MaxAttempts < 0 {
		return errors.New("client: backoff needs Initial > 0, Max >= Initial, Factor >= 1, MaxAttempts >= 0")
	}
	return nil
}

// Delay returns the upper bound of the wait before attempt n (0-based).
func (b Backoff) Delay(n int) time.Duration {
	d := float64(b.Initial)
	for i := 0; i < n && d < float64(b.Max); i++ {
		d *= b.Factor
	}
	if d > float64(b.Max) {
		d = float64(b.Max)
	}
	return time.Duration(d)
}

// jittered returns a delay in [Delay(n)/2, Delay(n)].
func (b Backoff) jittered(n int) time.Duration {
	d := b.Delay(n)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

// sleep waits for the jittered delay of attempt n or until ctx ends.
func (b Backoff) sleep(ctx context.Context, n int) error {
	t := time.NewTimer(b.jittered(n))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
