package session

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	"github.com/mxgateway/mxgateway/internal/protocol"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

func TestOptionsValidation(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without Launch succeeded")
	}
	launch := func(context.Context, string) (Worker, error) { return nil, errors.New("x") }
	if _, err := New(Options{Launch: launch, MaxSessions: -1, Lease: -time.Second, SlowConsumerPolicy: "drop"}); err == nil {
		t.Fatal("New with negative limits and unknown policy succeeded")
	}
	// The command budget may not outgrow the worker's queue.
	if _, err := New(Options{Launch: launch, MaxPendingCommands: protocol.CommandQueueSize + 1}); err == nil {
		t.Fatal("New with MaxPendingCommands above the worker's command queue succeeded")
	}
	if _, err := New(Options{Launch: launch, MaxPendingCommands: protocol.CommandQueueSize}); err != nil {
		t.Fatalf("New with MaxPendingCommands at the worker's command queue: %v", err)
	}
	m, err := New(Options{Launch: launch})
	if err != nil {
		t.Fatal(err)
	}
	o := m.Options()
	if o.MaxSessions != DefaultMaxSessions || o.SlowConsumerPolicy != PolicyFaultSession || o.SweepInterval != time.Second {
		t.Fatalf("defaults not applied: %+v", o)
	}
	if _, err := ParseSlowConsumerPolicy("fault-session"); err != nil {
		t.Fatal(err)
	}
}

func TestOpenGetListClose(t *testing.T) {
	h := newHarness(t, Options{})
	s, w := h.open()
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(s.ID()) {
		t.Fatalf("session id %q is not 128 random bits in hex", s.ID())
	}
	s2, _ := h.open()
	if s.ID() == s2.ID() {
		t.Fatal("two sessions share an id")
	}
	got, err := h.m.Get(s.ID())
	if err != nil || got != s {
		t.Fatalf("Get = %v, %v", got, err)
	}
	if _, err := h.m.Get("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(unknown) = %v, want ErrNotFound", err)
	}
	infos := h.m.List()
	if len(infos) != 2 {
		t.Fatalf("List: %d sessions, want 2", len(infos))
	}
	info := s.Info()
	if info.State != mxgatewayv1.SessionState_SESSION_STATE_READY || info.WorkerPID != w.pid || info.OwnerKeyID != "key1" || info.ClientName != "test" || !info.Backend.GetSimulated() {
		t.Fatalf("Info = %+v", info)
	}

	res, err := h.m.CloseSession(context.Background(), s.ID())
	if err != nil || res.AlreadyClosed || res.State != mxgatewayv1.SessionState_SESSION_STATE_CLOSED || len(res.Warnings) != 1 {
		t.Fatalf("CloseSession = %+v, %v", res, err)
	}
	if w.shutdown != 1 || w.killCount() != 0 {
		t.Fatalf("worker shutdown=%d kills=%d, want a graceful shutdown only", w.shutdown, w.killCount())
	}
	res, err = h.m.CloseSession(context.Background(), s.ID())
	if err != nil || !res.AlreadyClosed || res.State != mxgatewayv1.SessionState_SESSION_STATE_CLOSED {
		t.Fatalf("second CloseSession = %+v, %v", res, err)
	}
	if res := s.Close(context.Background()); !res.AlreadyClosed {
		t.Fatalf("Session.Close after close = %+v", res)
	}
	if _, err := h.m.CloseSession(context.Background(), "unknown"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("CloseSession(unknown) = %v", err)
	}
	if _, err := h.m.Get(s.ID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(closed) = %v", err)
	}
	if _, err := s.Invoke(context.Background(), &mxgatewayv1.Command{}, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Invoke on closed session = %v, want ErrClosed", err)
	}
	if h.m.Len() != 1 {
		t.Fatalf("Len = %d, want 1", h.m.Len())
	}
}

func TestConcurrentCloseWaitsForFirst(t *testing.T) {
	h := newHarness(t, Options{})
	s, _ := h.open()
	var wg sync.WaitGroup
	results := make([]CloseResult, 8)
	for i := range results {
		wg.Go(func() { results[i] = s.Close(context.Background()) })
	}
	wg.Wait()
	first := 0
	for _, r := range results {
		if r.State != mxgatewayv1.SessionState_SESSION_STATE_CLOSED {
			t.Fatalf("result %+v, want CLOSED", r)
		}
		if !r.AlreadyClosed {
			first++
		}
	}
	if first != 1 {
		t.Fatalf("%d closes did the work, want exactly 1", first)
	}
}

func TestMaxSessionsCountsStartingSessions(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 4)
	var workers []*fakeWorker
	var mu sync.Mutex
	h := newHarness(t, Options{MaxSessions: 2, Launch: func(ctx context.Context, id string) (Worker, error) {
		started <- struct{}{}
		<-release
		w := newFakeWorker()
		mu.Lock()
		workers = append(workers, w)
		mu.Unlock()
		return w, nil
	}})
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := h.m.Open(context.Background(), OpenRequest{})
			errs <- err
		}()
	}
	<-started
	<-started
	if _, err := h.m.Open(context.Background(), OpenRequest{}); !errors.Is(err, ErrLimit) {
		t.Fatalf("third Open while two are starting = %v, want ErrLimit", err)
	}
	close(release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("Open: %v", err)
		}
	}
	if _, err := h.m.Open(context.Background(), OpenRequest{}); !errors.Is(err, ErrLimit) {
		t.Fatalf("third Open with two open = %v, want ErrLimit", err)
	}
	id := h.m.List()[0].ID
	if _, err := h.m.CloseSession(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	s, err := h.m.Open(context.Background(), OpenRequest{})
	if err != nil {
		t.Fatalf("Open after a close freed a slot: %v", err)
	}
	_ = s
}

func TestLaunchFailureLeavesNothing(t *testing.T) {
	boom := errors.New("boom")
	h := newHarness(t, Options{MaxSessions: 1, Launch: func(ctx context.Context, id string) (Worker, error) {
		return nil, boom
	}})
	for range 3 { // the slot is released every time
		_, err := h.m.Open(context.Background(), OpenRequest{})
		if !errors.Is(err, ErrStartFailed) || !errors.Is(err, boom) {
			t.Fatalf("Open = %v, want ErrStartFailed wrapping the launch error", err)
		}
	}
	if h.m.Len() != 0 {
		t.Fatalf("Len = %d after failed opens", h.m.Len())
	}
}

func TestOpenCancelledByCaller(t *testing.T) {
	var w *fakeWorker
	ctx, cancel := context.WithCancel(context.Background())
	h := newHarness(t, Options{Launch: func(context.Context, string) (Worker, error) {
		w = newFakeWorker()
		cancel() // the caller gives up just as the worker becomes ready
		return w, nil
	}})
	if _, err := h.m.Open(ctx, OpenRequest{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Open = %v, want context.Canceled", err)
	}
	if w.killCount() != 1 || h.m.Len() != 0 {
		t.Fatalf("kills=%d len=%d: the orphan worker must be killed", w.killCount(), h.m.Len())
	}
}

func TestShutdownAbortsLaunchAndRefusesOpens(t *testing.T) {
	inLaunch := make(chan struct{})
	h := newHarness(t, Options{Launch: func(ctx context.Context, id string) (Worker, error) {
		close(inLaunch)
		<-ctx.Done()
		return nil, ctx.Err()
	}})
	errc := make(chan error, 1)
	go func() {
		_, err := h.m.Open(context.Background(), OpenRequest{})
		errc <- err
	}()
	<-inLaunch
	if err := h.m.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-errc; !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("Open during shutdown = %v, want ErrShuttingDown", err)
	}
	if _, err := h.m.Open(context.Background(), OpenRequest{}); !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("Open after shutdown = %v, want ErrShuttingDown", err)
	}
}

func TestStopAcceptingKeepsSessions(t *testing.T) {
	h := newHarness(t, Options{})
	s, _ := h.open()
	h.m.StopAccepting()
	if _, err := h.m.Open(context.Background(), OpenRequest{}); !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("Open = %v, want ErrShuttingDown", err)
	}
	if _, err := s.Invoke(context.Background(), &mxgatewayv1.Command{}, 0); err != nil {
		t.Fatalf("Invoke on existing session: %v", err)
	}
}

func TestPendingLimitAndDefaultTimeout(t *testing.T) {
	block := make(chan struct{})
	entered := make(chan time.Duration, 4)
	h := newHarness(t, Options{MaxPendingCommands: 2, CommandTimeout: 7 * time.Second})
	h.prepare = func(w *fakeWorker) {
		w.invoke = func(ctx context.Context, cmd *mxgatewayv1.Command, timeout time.Duration) (*mxgatewayv1.Reply, error) {
			entered <- timeout
			<-block
			return &mxgatewayv1.Reply{}, nil
		}
	}
	s, _ := h.open()
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if _, err := s.Invoke(context.Background(), &mxgatewayv1.Command{}, 0); err != nil {
				t.Errorf("Invoke: %v", err)
			}
		})
	}
	for range 2 {
		if d := <-entered; d != 7*time.Second {
			t.Errorf("worker got timeout %v, want the default 7s", d)
		}
	}
	if got := s.Info().CommandsPending; got != 2 {
		t.Fatalf("CommandsPending = %d, want 2", got)
	}
	if _, err := s.Invoke(context.Background(), &mxgatewayv1.Command{}, time.Second); !errors.Is(err, ErrPendingLimit) {
		t.Fatalf("third Invoke = %v, want ErrPendingLimit", err)
	}
	close(block)
	wg.Wait()
	if _, err := s.Invoke(context.Background(), &mxgatewayv1.Command{}, 3*time.Second); err != nil {
		t.Fatalf("Invoke after the others finished: %v", err)
	}
	if d := <-entered; d != 3*time.Second {
		t.Fatalf("worker got timeout %v, want the caller's 3s", d)
	}
	if got := s.Info().CommandsCompleted; got != 3 {
		t.Fatalf("CommandsCompleted = %d, want 3", got)
	}
}

func TestWorkerFaultFaultsSession(t *testing.T) {
	workerErr := errors.New("worker: process exited with code 42")
	var done []string
	var mu sync.Mutex
	h := newHarness(t, Options{Hooks: Hooks{
		SessionFaulted: func(id, reason string, _ error) { mu.Lock(); done = append(done, reason); mu.Unlock() },
	}})
	s, w := h.open()
	sub, err := s.Subscribe(SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	w.emit(t, 1, 2, 3)
	w.finish(workerErr)
	// Every event received before the fault is delivered, then the fault.
	expectSeqs(t, sub, 1, 2, 3)
	_, err = next(t, sub)
	var fe *FaultError
	if !errors.As(err, &fe) || !errors.Is(err, workerErr) || !errors.Is(err, ErrWorkerFailed) {
		t.Fatalf("stream end = %v, want a FaultError wrapping the worker error", err)
	}
	if s.State() != mxgatewayv1.SessionState_SESSION_STATE_FAULTED || s.Info().FaultReason != workerErr.Error() {
		t.Fatalf("state %v reason %q", s.State(), s.Info().FaultReason)
	}
	if _, err := s.Invoke(context.Background(), &mxgatewayv1.Command{}, 0); !errors.Is(err, ErrFaulted) {
		t.Fatalf("Invoke after fault = %v, want ErrFaulted", err)
	}
	if _, err := s.Subscribe(SubscribeRequest{}); !errors.Is(err, ErrFaulted) {
		t.Fatalf("Subscribe after fault = %v, want ErrFaulted", err)
	}
	mu.Lock()
	if len(done) != 1 {
		t.Errorf("SessionFaulted ran %d times", len(done))
	}
	mu.Unlock()
	res, err := h.m.CloseSession(context.Background(), s.ID())
	if err != nil || res.State != mxgatewayv1.SessionState_SESSION_STATE_FAULTED {
		t.Fatalf("CloseSession of faulted session = %+v, %v", res, err)
	}
}

func TestInFlightInvokeFailsWithWorkerError(t *testing.T) {
	gone := errors.New("worker gone")
	h := newHarness(t, Options{})
	entered := make(chan struct{})
	h.prepare = func(w *fakeWorker) {
		w.invoke = func(ctx context.Context, cmd *mxgatewayv1.Command, timeout time.Duration) (*mxgatewayv1.Reply, error) {
			close(entered)
			<-w.done
			return nil, gone
		}
	}
	s, w := h.open()
	errc := make(chan error, 1)
	go func() {
		_, err := s.Invoke(context.Background(), &mxgatewayv1.Command{}, 0)
		errc <- err
	}()
	<-entered
	w.finish(gone)
	if err := <-errc; !errors.Is(err, gone) {
		t.Fatalf("in-flight Invoke = %v, want the worker's error", err)
	}
}

func TestCloseKillsWorkerThatWillNotShutDown(t *testing.T) {
	h := newHarness(t, Options{CloseTimeout: 20 * time.Millisecond})
	h.prepare = func(w *fakeWorker) { w.hangShutdown = true }
	s, w := h.open()
	sub, err := s.Subscribe(SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	res := s.Close(context.Background())
	if res.State != mxgatewayv1.SessionState_SESSION_STATE_CLOSED || w.killCount() != 1 {
		t.Fatalf("Close = %+v, kills %d; want CLOSED after one kill", res, w.killCount())
	}
	if _, err := next(t, sub); !errors.Is(err, ErrClosed) {
		t.Fatalf("subscription end = %v, want ErrClosed", err)
	}
}

func TestShutdownClosesAllInParallel(t *testing.T) {
	h := newHarness(t, Options{CloseTimeout: time.Hour})
	h.prepare = func(w *fakeWorker) { w.hangShutdown = true }
	var ws []*fakeWorker
	for range 5 {
		_, w := h.open()
		ws = append(ws, w)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := h.m.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the deadline error (workers had to be killed)", err)
	}
	for i, w := range ws {
		if w.shutdown != 1 || w.killCount() != 1 {
			t.Fatalf("worker %d: shutdown %d kills %d, want 1 and 1", i, w.shutdown, w.killCount())
		}
	}
	if h.m.Len() != 0 {
		t.Fatalf("Len = %d after Shutdown", h.m.Len())
	}
	if err := h.m.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

func TestLeaseExpiry(t *testing.T) {
	clk := newFakeClock()
	var closed []string
	var mu sync.Mutex
	h := newHarness(t, Options{
		Now: clk.Now, Lease: time.Minute, DetachGrace: 10 * time.Minute, SweepInterval: 5 * time.Millisecond,
		Hooks: Hooks{SessionClosed: func(id string, final mxgatewayv1.SessionState, reason string) {
			mu.Lock()
			closed = append(closed, reason)
			mu.Unlock()
		}},
	})
	s, _ := h.open()
	if want := clk.Now().Add(time.Minute); !s.LeaseExpiresAt().Equal(want) {
		t.Fatalf("lease expires %v, want %v", s.LeaseExpiresAt(), want)
	}
	clk.Add(50 * time.Second)
	if _, err := s.Invoke(context.Background(), &mxgatewayv1.Command{}, 0); err != nil { // renews
		t.Fatal(err)
	}
	clk.Add(50 * time.Second) // 100s after open, 50s after the call
	// Give the sweeper several rounds; the session must survive them.
	waitSweeps(t, clk, h.m, s)
	clk.Add(11 * time.Second)
	testutil.Eventually(t, 5*time.Second, func() error {
		if _, err := h.m.Get(s.ID()); err == nil {
			return errors.New("session still registered")
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if len(closed) != 1 || closed[0] != "lease expired" {
		t.Fatalf("closed hooks %q, want one lease expiry", closed)
	}
}

func TestStreamKeepsLeaseAndDetachGrace(t *testing.T) {
	clk := newFakeClock()
	h := newHarness(t, Options{Now: clk.Now, Lease: time.Minute, DetachGrace: 5 * time.Minute, SweepInterval: 5 * time.Millisecond})
	s, _ := h.open()
	sub, err := s.Subscribe(SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour) // far past the lease, but a stream is attached
	if got := s.LeaseExpiresAt(); !got.After(clk.Now()) {
		t.Fatalf("lease %v not kept alive by the stream (now %v)", got, clk.Now())
	}
	waitSweeps(t, clk, h.m, s)
	sub.Close()
	sub.Close() // twice is fine
	if got, want := s.LeaseExpiresAt(), clk.Now().Add(5*time.Minute); !got.Equal(want) {
		t.Fatalf("after detach lease = %v, want the detach grace %v", got, want)
	}
	clk.Add(4 * time.Minute)
	waitSweeps(t, clk, h.m, s)
	clk.Add(2 * time.Minute)
	testutil.Eventually(t, 5*time.Second, func() error {
		if _, err := h.m.Get(s.ID()); err == nil {
			return errors.New("session still registered after the detach grace")
		}
		return nil
	})
}

// waitSweeps waits until the sweeper has read clk three more times, so at
// least two whole sweeps ran after the last clock change, and fails if s
// expired meanwhile. Nothing but the sweeper may read clk while it waits.
func waitSweeps(t *testing.T, clk *fakeClock, m *Manager, s *Session) {
	t.Helper()
	want := clk.Reads() + 3
	testutil.Eventually(t, 5*time.Second, func() error {
		if _, err := m.Get(s.ID()); err != nil {
			t.Fatalf("session %s expired too early: %v", s.ID(), err)
		}
		if st := s.State(); st != mxgatewayv1.SessionState_SESSION_STATE_READY {
			t.Fatalf("session %s is %v, want it still READY", s.ID(), st)
		}
		if n := clk.Reads(); n < want {
			return fmt.Errorf("sweeper read the clock %d of %d times", n, want)
		}
		return nil
	})
}

func TestCommandDoneHook(t *testing.T) {
	var kinds []string
	var mu sync.Mutex
	h := newHarness(t, Options{Hooks: Hooks{CommandDone: func(kind *catalog.Kind, _ time.Duration, _ *mxgatewayv1.Reply, err error) {
		mu.Lock()
		kinds = append(kinds, fmt.Sprintf("%s:%v", kind, err))
		mu.Unlock()
	}}})
	s, _ := h.open()
	cmd := &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{}}}
	if _, err := s.Invoke(context.Background(), cmd, 0); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(kinds) != 1 || kinds[0] != "register:<nil>" {
		t.Fatalf("hook calls %q", kinds)
	}
}

// TestAcquireProvidesIDAndWorker: with Options.Acquire the session takes
// the id the worker was started for.
func TestAcquireProvidesIDAndWorker(t *testing.T) {
	w := newFakeWorker()
	m, err := New(Options{Acquire: func(context.Context) (string, Worker, error) { return "spare-id", w, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := m.Open(context.Background(), OpenRequest{ClientName: "c"})
	if err != nil || s.ID() != "spare-id" || s.WorkerPID() != w.PID() {
		t.Fatalf("Open = %v, %v; want the acquired worker under its id", s, err)
	}
	if got, err := m.Get("spare-id"); err != nil || got != s {
		t.Fatalf("Get(spare-id) = %v, %v", got, err)
	}
}
