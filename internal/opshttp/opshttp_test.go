package opshttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mxgateway/mxgateway/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

// start runs s.Serve in the background and stops it at cleanup, checking
// that Serve returned.
func start(t *testing.T, s *Server) (base string) {
	t.Helper()
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) && !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return")
		}
	})
	return "http://" + s.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// switchCheck is a check whose result the test controls and whose runs it
// counts.
type switchCheck struct {
	err   atomic.Pointer[error]
	calls atomic.Int64
}

func (c *switchCheck) set(err error) { c.err.Store(&err) }
func (c *switchCheck) run(context.Context) error {
	c.calls.Add(1)
	if p := c.err.Load(); p != nil {
		return *p
	}
	return nil
}

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "mxgateway_test_gauge", Help: "t"})
	g.Set(42)
	reg.MustRegister(g)

	var keystore, worker switchCheck
	var changes []bool
	var mu sync.Mutex
	s, err := New(Options{
		Addr:     "127.0.0.1:0",
		Gatherer: reg,
		Checks: []Check{
			{Name: "keystore", Func: keystore.run},
			{Name: "worker_start", Func: worker.run},
		},
		RefreshInterval: 5 * time.Millisecond,
		OnReadyChange: func(r bool) {
			mu.Lock()
			changes = append(changes, r)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	base := start(t, s)

	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, "mxgateway_test_gauge 42") {
		t.Fatalf("/metrics = %d %q", code, body)
	}

	testutil.Eventually(t, 5*time.Second, func() error {
		if code, body := get(t, base+"/readyz"); code != 200 || body != "ready\nkeystore: ok\nworker_start: ok\n" {
			return fmt.Errorf("/readyz = %d %q", code, body)
		}
		return nil
	})
	if !s.Ready() {
		t.Fatal("Ready() false while /readyz is 200")
	}

	worker.set(errors.New("start worker:\n exec: mxworker.exe not found, key mxgw_ab1_secretsecret"))
	testutil.Eventually(t, 5*time.Second, func() error {
		code, body := get(t, base+"/readyz")
		if code != 503 {
			return fmt.Errorf("/readyz = %d %q", code, body)
		}
		if !strings.Contains(body, "worker_start: failed: start worker: exec: mxworker.exe not found") ||
			!strings.Contains(body, "keystore: ok") || strings.Contains(body, "secretsecret") {
			return fmt.Errorf("/readyz body %q", body)
		}
		return nil
	})
	if st := s.Statuses(); len(st) != 2 || st[1].Err == nil || st[0].Err != nil || st[0].Checked.IsZero() {
		t.Fatalf("Statuses = %+v", st)
	}

	worker.set(nil)
	testutil.Eventually(t, 5*time.Second, func() error {
		if code, _ := get(t, base+"/readyz"); code != 200 {
			return fmt.Errorf("/readyz = %d", code)
		}
		return nil
	})

	s.SetDraining()
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.HasPrefix(body, "not ready: shutting down") {
		t.Fatalf("draining /readyz = %d %q", code, body)
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Fatalf("draining /healthz = %d", code)
	}

	mu.Lock()
	got := fmt.Sprint(changes)
	mu.Unlock()
	if got != "[true false true false]" {
		t.Fatalf("OnReadyChange calls %s, want [true false true false]", got)
	}
}

// TestChecksAreCached proves a probe never runs a check: with a long
// refresh interval the check runs once, however many requests come.
func TestChecksAreCached(t *testing.T) {
	var c switchCheck
	s, err := New(Options{Addr: "127.0.0.1:0", Gatherer: prometheus.NewRegistry(),
		Checks: []Check{{Name: "c", Func: c.run}}, RefreshInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	base := start(t, s)
	testutil.Eventually(t, 5*time.Second, func() error {
		if code, _ := get(t, base+"/readyz"); code != 200 {
			return fmt.Errorf("not ready yet")
		}
		return nil
	})
	c.set(errors.New("broken"))
	for range 20 {
		if code, _ := get(t, base+"/readyz"); code != 200 {
			t.Fatal("a request saw a fresh check result")
		}
	}
	if n := c.calls.Load(); n != 1 {
		t.Fatalf("check ran %d times, want 1", n)
	}
}

func TestNotReadyBeforeFirstRun(t *testing.T) {
	release := make(chan struct{})
	s, err := New(Options{Addr: "127.0.0.1:0", Gatherer: prometheus.NewRegistry(),
		Checks: []Check{{Name: "slow", Func: func(ctx context.Context) error {
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}}}, RefreshInterval: time.Hour, CheckTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	base := start(t, s)
	code, body := get(t, base+"/readyz")
	if code != 503 || !strings.Contains(body, "checks have not run yet") {
		t.Fatalf("/readyz before first run = %d %q", code, body)
	}
	close(release)
	testutil.Eventually(t, 5*time.Second, func() error {
		if code, _ := get(t, base+"/readyz"); code != 200 {
			return fmt.Errorf("not ready")
		}
		return nil
	})
}

func TestCheckTimeoutAndPanic(t *testing.T) {
	s, err := New(Options{Addr: "127.0.0.1:0", Gatherer: prometheus.NewRegistry(),
		Checks: []Check{
			{Name: "hang", Func: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
			{Name: "boom", Func: func(context.Context) error { panic("bad check") }},
		}, RefreshInterval: time.Hour, CheckTimeout: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	base := start(t, s)
	testutil.Eventually(t, 5*time.Second, func() error {
		code, body := get(t, base+"/readyz")
		if code != 503 || !strings.Contains(body, "hang: failed: context deadline exceeded") ||
			!strings.Contains(body, "boom: failed: check panicked: bad check") {
			return fmt.Errorf("/readyz = %d %q", code, body)
		}
		return nil
	})
}

func TestNoChecksReadyWhenServing(t *testing.T) {
	s, err := New(Options{Addr: "127.0.0.1:0", Gatherer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	base := start(t, s)
	testutil.Eventually(t, 5*time.Second, func() error {
		if code, body := get(t, base+"/readyz"); code != 200 || body != "ready\n" {
			return fmt.Errorf("/readyz = %d %q", code, body)
		}
		return nil
	})
	if code, _ := get(t, base+"/nope"); code != 404 {
		t.Fatalf("unknown path = %d", code)
	}
}

func TestShutdownAndClose(t *testing.T) {
	s, err := New(Options{Addr: "127.0.0.1:0", Gatherer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	testutil.Eventually(t, 5*time.Second, func() error {
		if s.Addr() == nil {
			return errors.New("not listening")
		}
		return nil
	})
	addr := s.Addr().String()
	testutil.Eventually(t, 5*time.Second, func() error {
		if code, _ := get(t, "http://"+addr+"/healthz"); code != 200 {
			return errors.New("not serving")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown = %v", err)
	}
	if s.Ready() {
		t.Fatal("ready after Shutdown")
	}
	if err := s.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Close after Shutdown: %v", err)
	}
	s.Close()
	if err := s.Serve(context.Background()); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Close = %v", err)
	}
	// The port is free again.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("port still held: %v", err)
	}
	ln.Close()
}

func TestListenErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	s, err := New(Options{Addr: busy.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err == nil {
		t.Fatal("Listen on a busy port succeeded")
	}
	if err := s.Serve(context.Background()); err == nil || errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve on a busy port = %v", err)
	}
	s.Close()

	// Listen without Serve, then Close, releases the port.
	s2, _ := New(Options{Addr: "127.0.0.1:0"})
	if err := s2.Listen(); err != nil {
		t.Fatal(err)
	}
	addr := s2.Addr().String()
	s2.Close()
	s2.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("port still held: %v", err)
	}
	ln.Close()
}

func TestNewValidates(t *testing.T) {
	ok := func(context.Context) error { return nil }
	for name, opts := range map[string]Options{
		"no addr":        {},
		"unnamed check":  {Addr: "127.0.0.1:0", Checks: []Check{{Func: ok}}},
		"nil func":       {Addr: "127.0.0.1:0", Checks: []Check{{Name: "a"}}},
		"duplicate name": {Addr: "127.0.0.1:0", Checks: []Check{{Name: "a", Func: ok}, {Name: "a", Func: ok}}},
	} {
		if _, err := New(opts); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}
