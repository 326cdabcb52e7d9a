package workerpool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxgateway/mxgateway/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

type fakeWorker struct {
	id     string
	done   chan struct{}
	once   sync.Once
	killed atomic.Bool
}

func (w *fakeWorker) Done() <-chan struct{} { return w.done }
func (w *fakeWorker) Kill(string) {
	w.killed.Store(true)
	w.die()
}
func (w *fakeWorker) die() { w.once.Do(func() { close(w.done) }) }

// launcher counts launches and records every worker it made.
type launcher struct {
	mu      sync.Mutex
	made    []*fakeWorker
	fail    atomic.Bool
	ids     atomic.Int64
	blocked chan struct{} // when not nil, launches wait for it
}

func (l *launcher) launch(ctx context.Context, id string) (*fakeWorker, error) {
	if l.blocked != nil {
		select {
		case <-l.blocked:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if l.fail.Load() {
		return nil, errors.New("fake: launch failed")
	}
	w := &fakeWorker{id: id, done: make(chan struct{})}
	l.mu.Lock()
	l.made = append(l.made, w)
	l.mu.Unlock()
	return w, nil
}

func (l *launcher) newID() (string, error) { return fmt.Sprintf("id%d", l.ids.Add(1)), nil }

func (l *launcher) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.made)
}

func newPool(t *testing.T, size int, l *launcher) *Pool[*fakeWorker] {
	t.Helper()
	p, err := New(Options[*fakeWorker]{Size: size, Launch: l.launch, NewID: l.newID, Retry: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func waitReady(t *testing.T, p *Pool[*fakeWorker], n int) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, func() error {
		if got := p.Ready(); got != n {
			return fmt.Errorf("%d spares ready, want %d", got, n)
		}
		return nil
	})
}

func TestSparesAreHandedOutOnceAndRefilled(t *testing.T) {
	l := &launcher{}
	p := newPool(t, 2, l)
	waitReady(t, p, 2)
	seen := map[*fakeWorker]bool{}
	for range 5 {
		waitReady(t, p, 2)
		s, err := p.Get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !s.Spare || s.ID != s.Worker.id || seen[s.Worker] {
			t.Fatalf("Get = %+v: want a fresh spare started for its own id", s)
		}
		seen[s.Worker] = true
	}
	waitReady(t, p, 2)
	if got := l.count(); got != 7 {
		t.Fatalf("%d launches, want 7 (2 spares, 5 refills)", got)
	}
}

func TestEmptyPoolLaunchesForTheCaller(t *testing.T) {
	l := &launcher{blocked: make(chan struct{})}
	p := newPool(t, 1, l)
	close(l.blocked) // the refill and the caller's launch both run now
	s, err := p.Get(context.Background())
	if err != nil || s.Worker == nil {
		t.Fatalf("Get = %+v, %v", s, err)
	}
	waitReady(t, p, 1)
}

func TestDeadSpareIsNeverHandedOut(t *testing.T) {
	l := &launcher{}
	p := newPool(t, 1, l)
	waitReady(t, p, 1)
	l.mu.Lock()
	dead := l.made[0]
	l.mu.Unlock()
	dead.die()
	s, err := p.Get(context.Background())
	if err != nil || s.Worker == dead {
		t.Fatalf("Get = %+v, %v: want a worker other than the dead spare", s, err)
	}
}

func TestFailedLaunchesAreRetried(t *testing.T) {
	l := &launcher{}
	l.fail.Store(true)
	p := newPool(t, 1, l)
	if _, err := p.Get(context.Background()); err == nil {
		t.Fatal("Get with a failing launcher succeeded")
	}
	l.fail.Store(false)
	waitReady(t, p, 1)
}

func TestCloseKillsSpares(t *testing.T) {
	l := &launcher{}
	p := newPool(t, 3, l)
	waitReady(t, p, 3)
	p.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range l.made {
		if !w.killed.Load() {
			t.Fatalf("spare %s not killed at Close", w.id)
		}
	}
	if _, err := p.Get(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}
}

func TestCloseAbortsLaunchInProgress(t *testing.T) {
	l := &launcher{blocked: make(chan struct{})} // never released
	p := newPool(t, 1, l)
	p.Close() // returns although the launch never would
}

func TestZeroSizeNeverLaunchesSpares(t *testing.T) {
	l := &launcher{}
	p := newPool(t, 0, l)
	s, err := p.Get(context.Background())
	if err != nil || s.Spare || l.count() != 1 {
		t.Fatalf("Get = %+v, %v; %d launches", s, err, l.count())
	}
}
