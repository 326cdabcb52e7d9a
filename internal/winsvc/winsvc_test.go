package winsvc

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxgateway/mxgateway/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

// recorder collects reported states.
type recorder struct {
	mu     sync.Mutex
	states []state
}

func (r *recorder) report(s state) {
	r.mu.Lock()
	r.states = append(r.states, s)
	r.mu.Unlock()
}

func (r *recorder) get() []state {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]state(nil), r.states...)
}

func (r *recorder) count(s state) int {
	n := 0
	for _, x := range r.get() {
		if x == s {
			n++
		}
	}
	return n
}

func TestControlStopCancelsRun(t *testing.T) {
	for _, req := range []request{reqStop, reqShutdown} {
		var rec recorder
		reqs := make(chan request)
		runErr := errors.New("stopped cleanly? no: test error")
		started := make(chan struct{})
		release := make(chan struct{})
		result := make(chan error, 1)
		go func() {
			result <- control(context.Background(), func(ctx context.Context) error {
				close(started)
				<-ctx.Done()
				<-release // shutting down takes a while
				return runErr
			}, reqs, rec.report, time.Hour)
		}()
		<-started
		reqs <- reqInterrogate
		reqs <- reqOther
		reqs <- req
		reqs <- req // a second stop is harmless
		reqs <- reqInterrogate
		close(release)
		if err := <-result; !errors.Is(err, runErr) {
			t.Fatalf("control returned %v, want run's error", err)
		}
		want := []state{stateStartPending, stateRunning, stateRunning, stateStopPending, stateStopPending}
		if got := rec.get(); !equalStates(got, want) {
			t.Fatalf("req %v: states %v, want %v", req, got, want)
		}
	}
}

func TestControlRunReturnsOnItsOwn(t *testing.T) {
	var rec recorder
	reqs := make(chan request)
	err := control(withName(context.Background(), "gw2"), func(ctx context.Context) error {
		if name, ok := NameFromContext(ctx); !ok || name != "gw2" {
			return errors.New("service name not on the context")
		}
		return nil
	}, reqs, rec.report, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.get(); !equalStates(got, []state{stateStartPending, stateRunning, stateStopPending}) {
		t.Fatalf("states %v", got)
	}
}

func TestControlReportsStopProgress(t *testing.T) {
	var rec recorder
	reqs := make(chan request)
	release := make(chan struct{})
	result := make(chan error, 1)
	go func() {
		result <- control(context.Background(), func(ctx context.Context) error {
			<-ctx.Done()
			<-release // a slow shutdown
			return nil
		}, reqs, rec.report, time.Millisecond)
	}()
	reqs <- reqStop
	testutil.Eventually(t, 5*time.Second, func() error {
		if rec.count(stateStopPending) < 3 {
			return errors.New("no stop progress reported")
		}
		return nil
	})
	close(release)
	if err := <-result; err != nil {
		t.Fatal(err)
	}
}

func equalStates(a, b []state) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// fakeEvents records event log writes.
type fakeEvents struct {
	mu     sync.Mutex
	events []string
}

func (f *fakeEvents) add(kind string, eid uint32, msg string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, kind+"/"+string(rune('0'+eid))+": "+msg)
	return nil
}
func (f *fakeEvents) Info(eid uint32, msg string) error    { return f.add("info", eid, msg) }
func (f *fakeEvents) Warning(eid uint32, msg string) error { return f.add("warning", eid, msg) }
func (f *fakeEvents) Error(eid uint32, msg string) error   { return f.add("error", eid, msg) }

func TestEventLogHandler(t *testing.T) {
	var out fakeEvents
	closed := 0
	el := newEventLog(&out, slog.LevelInfo, func() error { closed++; return nil })
	l := slog.New(el.Handler()).With("session", "s-1")
	l.Debug("not written")
	l.Info("gateway started", "addr", "127.0.0.1:5000")
	l.Warn("worker restarted", "api_key", "mxgw_ab_secretpart")
	l.WithGroup("g").Error("worker crashed", "exit_code", 42, "err", errors.New("key mxgw_ab_secretpart leaked?"))
	if err := el.Close(); err != nil {
		t.Fatal(err)
	}
	el.Close()
	if closed != 1 {
		t.Fatalf("closer ran %d times", closed)
	}
	want := []string{
		`info/1: msg="gateway started" session=s-1 addr=127.0.0.1:5000`,
		`warning/2: msg="worker restarted" session=s-1 api_key=REDACTED`,
		`error/3: msg="worker crashed" session=s-1 g.exit_code=42 g.err="key mxgw_ab_REDACTED leaked?"`,
	}
	if got := strings.Join(out.events, "\n"); got != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

// TestConcurrentEventLog checks that derived handlers share the buffer
// safely (run with -race).
func TestConcurrentEventLog(t *testing.T) {
	var out fakeEvents
	el := newEventLog(&out, slog.LevelInfo, func() error { return nil })
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			l := slog.New(el.Handler()).With("n", i)
			for range 50 {
				l.Info("m")
			}
		})
	}
	wg.Wait()
	if len(out.events) != 400 {
		t.Fatalf("%d events, want 400", len(out.events))
	}
	for _, e := range out.events {
		if !strings.HasPrefix(e, `info/1: msg=m n=`) {
			t.Fatalf("mangled event %q", e)
		}
	}
}

func TestStubsOffWindows(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the real SCM glue runs on Windows")
	}
	if ok, err := IsWindowsService(); ok || err != nil {
		t.Fatalf("IsWindowsService = %v, %v", ok, err)
	}
	for name, err := range map[string]error{
		"install":   Install(DefaultName, "/bin/true", nil),
		"uninstall": Uninstall(DefaultName),
		"start":     Start(DefaultName),
		"stop":      Stop(DefaultName),
		"run":       Run(DefaultName, func(context.Context) error { return nil }),
	} {
		if !errors.Is(err, ErrNotSupported) {
			t.Errorf("%s: %v, want ErrNotSupported", name, err)
		}
	}
	if _, err := OpenEventLog(DefaultName, nil); !errors.Is(err, ErrNotSupported) {
		t.Errorf("OpenEventLog: %v", err)
	}
}

func TestNameFromContext(t *testing.T) {
	if _, ok := NameFromContext(context.Background()); ok {
		t.Fatal("name on a bare context")
	}
	if _, ok := NameFromContext(withName(context.Background(), "")); ok {
		t.Fatal("empty name reported")
	}
}
