// Package workerpool keeps a few spare workers started and handshaken, so
// that opening a session does not wait for a process to start. A spare is
// handed to exactly one session and never comes back: it is never shared
// and never reused. The pool refills itself in the background.
//
// The pool knows workers only through Launch; the gateway passes the
// supervisor's launcher (see cmd/mxgateway).
package workerpool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Worker is what the pool needs of a worker.
type Worker interface {
	// Done is closed when the worker reached a terminal state.
	Done() <-chan struct{}
	// Kill ends the worker at once.
	Kill(reason string)
}

// ErrClosed is returned by Get after Close.
var ErrClosed = errors.New("workerpool: closed")

// Options configure a Pool.
type Options[W Worker] struct {
	// Size is how many spares the pool keeps ready; 0 disables the pool
	// (Get then always launches).
	Size int
	// Launch starts a worker for a session id and returns it ready.
	// Required.
	Launch func(ctx context.Context, id string) (W, error)
	// NewID returns a fresh session id. Required.
	NewID func() (string, error)
	// Retry is how long the pool waits after a failed spare launch before
	// trying again; it doubles with every further failure, up to MaxRetry.
	// Default 1s.
	Retry time.Duration
	// MaxRetry bounds the wait between failed launches. Default 1m.
	MaxRetry time.Duration
	// Logger receives launch failures; nil discards them.
	Logger *slog.Logger
}

// Spare is a worker and the session id it was started for.
type Spare[W Worker] struct {
	ID      string
	Worker  W
	Startup time.Duration // how long its launch took
	Spare   bool          // true when it came ready from the pool
}

// Pool is a set of spare workers. Its methods are safe for concurrent use.
type Pool[W Worker] struct {
	opts   Options[W]
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	spares []Spare[W]
	closed bool
	wake   chan struct{} // a spare was taken or failed: refill
}

// New validates opts and starts filling the pool.
func New[W Worker](opts Options[W]) (*Pool[W], error) {
	switch {
	case opts.Launch == nil || opts.NewID == nil:
		return nil, errors.New("workerpool: Launch and NewID are required")
	case opts.Size < 0:
		return nil, fmt.Errorf("workerpool: Size must not be negative (got %d)", opts.Size)
	}
	if opts.Retry <= 0 {
		opts.Retry = time.Second
	}
	if opts.MaxRetry < opts.Retry {
		opts.MaxRetry = max(opts.Retry, time.Minute)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool[W]{opts: opts, log: log, ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1)}
	if opts.Size > 0 {
		p.wg.Add(1)
		go p.fill()
	}
	return p, nil
}

// Get returns a ready spare when there is one (and refills behind it), or
// launches a worker with ctx. A spare whose worker died meanwhile is
// discarded.
func (p *Pool[W]) Get(ctx context.Context) (Spare[W], error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return Spare[W]{}, ErrClosed
		}
		if len(p.spares) == 0 {
			p.mu.Unlock()
			break
		}
		s := p.spares[0]
		p.spares = p.spares[1:]
		p.mu.Unlock()
		p.poke()
		select {
		case <-s.Worker.Done():
			continue // died while waiting; never handed out
		default:
		}
		s.Spare = true
		return s, nil
	}
	id, err := p.opts.NewID()
	if err != nil {
		return Spare[W]{}, err
	}
	began := time.Now()
	w, err := p.opts.Launch(ctx, id)
	if err != nil {
		return Spare[W]{}, err
	}
	return Spare[W]{ID: id, Worker: w, Startup: time.Since(began)}, nil
}

// Ready is how many spares are ready now.
func (p *Pool[W]) Ready() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.spares)
}

// Close stops refilling and kills every spare; it returns when no launch of
// the pool is running. Safe to call twice.
func (p *Pool[W]) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return
	}
	p.closed = true
	spares := p.spares
	p.spares = nil
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	for _, s := range spares {
		s.Worker.Kill("spare worker pool closed")
	}
	for _, s := range spares {
		<-s.Worker.Done()
	}
}

func (p *Pool[W]) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// fill keeps Size spares ready, one launch at a time, and discards spares
// that died.
func (p *Pool[W]) fill() {
	defer p.wg.Done()
	backoff := p.opts.Retry
	for {
		p.mu.Lock()
		live := p.spares[:0]
		for _, s := range p.spares {
			select {
			case <-s.Worker.Done():
			default:
				live = append(live, s)
			}
		}
		p.spares = live
		need := !p.closed && len(p.spares) < p.opts.Size
		p.mu.Unlock()
		if need {
			if p.launchOne() {
				backoff = p.opts.Retry
				continue
			}
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, p.opts.MaxRetry)
			continue
		}
		select {
		case <-p.ctx.Done():
			return
		case <-p.wake:
		case <-time.After(p.opts.Retry):
			// look for spares that died
		}
	}
}

// launchOne starts one spare; false when the launch failed.
func (p *Pool[W]) launchOne() bool {
	id, err := p.opts.NewID()
	if err != nil {
		p.log.Warn("spare worker: no session id", slog.Any("err", err))
		return false
	}
	began := time.Now()
	w, err := p.opts.Launch(p.ctx, id)
	if err != nil {
		if p.ctx.Err() == nil {
			p.log.Warn("spare worker launch failed", slog.Any("err", err))
		}
		return false
	}
	s := Spare[W]{ID: id, Worker: w, Startup: time.Since(began)}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		w.Kill("spare worker pool closed")
		<-w.Done()
		return true
	}
	p.spares = append(p.spares, s)
	p.mu.Unlock()
	return true
}
