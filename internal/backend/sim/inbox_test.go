package sim

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestPostsDoNotStarveCommands: the runtime's changes reach the STA as
// posts; a stream of them that never pauses (here a posted function that
// posts itself again, so the inbox is never empty) must still leave the
// STA to run a command. Draining the inbox until it was empty did not: a
// 10,000-item SubscribeBulk under 100,000 changes/s never ran.
func TestPostsDoNotStarveCommands(t *testing.T) {
	e := newEnv(t, envOpt{standalone: true})
	var stop atomic.Bool
	var passes atomic.Int64
	var again func()
	again = func() {
		passes.Add(1)
		if !stop.Load() {
			e.b.post(again)
		}
	}
	e.b.post(again)
	defer stop.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ran := false
	if err := e.b.do(ctx, false, func() { ran = true }); err != nil || !ran {
		t.Fatalf("a command behind a stream of posts: ran %v, err %v (%d posted passes ran)", ran, err, passes.Load())
	}
}
