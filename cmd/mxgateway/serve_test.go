package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/config"
	"github.com/mxgateway/mxgateway/internal/metrics"
	"github.com/mxgateway/mxgateway/internal/opshttp"
	"github.com/mxgateway/mxgateway/internal/protocol"
	"github.com/mxgateway/mxgateway/internal/testutil"
	"github.com/mxgateway/mxgateway/internal/workerclient"
)

func TestWorkerCommand(t *testing.T) {
	c := config.Default()
	exe, args, err := workerCommand(&c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	// The test binary has no mxworker beside it: the gateway re-executes itself.
	if exe == "" || args[0] != "worker" || !slices.Contains(args, "--backend=sim") || !slices.Contains(args, "--sim-profile=default") {
		t.Fatalf("worker command %s %q", exe, args)
	}
	c.WorkerExe, c.WorkerBackend, c.MXAccessProgID = "/opt/mxworker.exe", config.BackendMXAccess, "My.ProgID"
	exe, args, _ = workerCommand(&c, slog.New(slog.DiscardHandler))
	if exe != "/opt/mxworker.exe" || args[0] != "--backend=mxaccess" || !slices.Contains(args, "--prog-id=My.ProgID") ||
		slices.Contains(args, "--sim-profile=default") || slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--max-procs") }) {
		t.Fatalf("configured worker command %s %q", exe, args)
	}
	c.WorkerMaxProcs = 2
	if _, args, _ = workerCommand(&c, slog.New(slog.DiscardHandler)); !slices.Contains(args, "--max-procs=2") {
		t.Fatalf("worker_max_procs 2: worker command %q", args)
	}
}

func TestKillReason(t *testing.T) {
	cases := map[string]error{
		"gateway_shutdown": nil,
		"heartbeat":        fmt.Errorf("%w: silent for 15s", workerclient.ErrHeartbeatExpired),
		"shutdown_timeout": &workerclient.KillError{Reason: protocol.KillShutdownTimeout},
		"slow_consumer":    fmt.Errorf("session: %w", &workerclient.KillError{Reason: protocol.KillSlowConsumer}),
		"after_fault":      &workerclient.KillError{Reason: protocol.KillAfterFault},
		"not_opened":       &workerclient.KillError{Reason: protocol.KillNotOpened},
		"protocol_error":   fmt.Errorf("%w: bad frame", workerclient.ErrProtocol),
		"event_overflow":   &workerclient.FaultError{Code: workerv1.FaultCode_FAULT_CODE_EVENT_OVERFLOW, Message: "the gateway did not keep up"},
		"worker_fault":     &workerclient.FaultError{Code: workerv1.FaultCode_FAULT_CODE_INTERNAL},
		"gateway":          &workerclient.KillError{Reason: protocol.KillGateway},
		"other":            errors.New("something else"),
	}
	for want, err := range cases {
		if got := killReason(err); got != want {
			t.Errorf("killReason(%v) = %q, want %q", err, got, want)
		}
	}
}

// metricValue returns the value of the series name{labels} in reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

// TestWorkerTracker: a worker counts from its adoption by a session to its
// terminal point, reported once with its typed cause, however the end and
// the adoption are ordered; a spare that ended before a session took it is
// not counted.
func TestWorkerTracker(t *testing.T) {
	reg := prometheus.NewRegistry()
	tr := newWorkerTracker(metrics.New(reg))
	value := func(name string, labels map[string]string) float64 { return metricValue(t, reg, name, labels) }
	want := func(name string, labels map[string]string, v float64) func() error {
		return func() error {
			if got := value(name, labels); got != v {
				return fmt.Errorf("%s%v = %v, want %v", name, labels, got, v)
			}
			return nil
		}
	}

	clean := newFakeTracked(10)
	tr.adopt(clean, time.Millisecond)
	if r := value("mxgateway_workers_running", nil); r != 1 {
		t.Fatalf("running %v after an adoption", r)
	}
	clean.end(workerclient.End{Cause: workerclient.CauseClosed, Exit: &workerclient.Exit{Code: protocol.ExitOK}})
	testutil.Eventually(t, 10*time.Second, want("mxgateway_workers_running", nil, 0))

	// A worker the gateway killed after a heartbeat expiry.
	hung := newFakeTracked(11)
	tr.adopt(hung, time.Millisecond)
	hung.end(workerclient.End{Cause: workerclient.CauseHeartbeat,
		Err:  fmt.Errorf("%w: silent", workerclient.ErrHeartbeatExpired),
		Exit: &workerclient.Exit{Code: -1, Killed: true}})

	// A spare that ended in the pool is not counted.
	gone := newFakeTracked(12)
	gone.end(workerclient.End{Cause: workerclient.CauseExited, Exit: &workerclient.Exit{Code: protocol.ExitCrashed}})
	tr.adopt(gone, time.Millisecond)

	// Every counted worker ended: the tracker reports them all.
	tr.wait()
	for _, c := range []struct {
		name   string
		labels map[string]string
		v      float64
	}{
		{"mxgateway_workers_running", nil, 0},
		{"mxgateway_workers_started_total", nil, 2},
		{"mxgateway_workers_ended_total", map[string]string{"cause": "closed"}, 1},
		{"mxgateway_workers_ended_total", map[string]string{"cause": "heartbeat"}, 1},
		{"mxgateway_workers_ended_total", map[string]string{"cause": "exited"}, 0},
		{"mxgateway_workers_exited_total", map[string]string{"reason": "ok"}, 1},
		{"mxgateway_workers_exited_total", map[string]string{"reason": "killed"}, 1},
		{"mxgateway_workers_exited_total", map[string]string{"reason": "crashed"}, 0},
		{"mxgateway_workers_killed_total", map[string]string{"reason": "heartbeat"}, 1},
	} {
		if err := want(c.name, c.labels, c.v)(); err != nil {
			t.Error(err)
		}
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.live) != 0 {
		t.Fatalf("tracker still holds %v", tr.live)
	}
}

// TestFollowChecks: the readiness result reaches set at the end of every
// round, the first included.
func TestFollowChecks(t *testing.T) {
	fail := errors.New("down")
	var aErr, bErr error
	var got []bool
	checks := followChecks([]opshttp.Check{
		{Name: "a", Func: func(context.Context) error { return aErr }},
		{Name: "b", Func: func(context.Context) error { return bErr }},
	}, func(ready bool) { got = append(got, ready) })
	round := func() {
		for _, c := range checks {
			c.Func(context.Background())
		}
	}
	aErr = fail
	round()
	aErr = nil
	round()
	bErr = fail
	round()
	if !slices.Equal(got, []bool{false, true, false}) {
		t.Fatalf("set calls %v", got)
	}
}

// TestWorkerProbeCaches: a success is trusted for the interval, a failure
// is retried at once.
func TestWorkerProbeCaches(t *testing.T) {
	runs := 0
	var err error
	p := &workerProbe{interval: time.Hour, run: func(context.Context) error { runs++; return err }}
	err = errors.New("no worker")
	if p.check(context.Background()) == nil {
		t.Fatal("failure not reported")
	}
	err = nil
	for range 3 {
		if e := p.check(context.Background()); e != nil {
			t.Fatal(e)
		}
	}
	if runs != 2 {
		t.Fatalf("%d probe runs, want 2", runs)
	}
}

// fakeTracked is a worker client's life: end makes it terminal.
type fakeTracked struct {
	pid  int
	done chan struct{}

	mu  sync.Mutex
	fin workerclient.End
}

func newFakeTracked(pid int) *fakeTracked { return &fakeTracked{pid: pid, done: make(chan struct{})} }

func (f *fakeTracked) end(e workerclient.End) {
	f.mu.Lock()
	f.fin = e
	f.mu.Unlock()
	close(f.done)
}

func (f *fakeTracked) PID() int              { return f.pid }
func (f *fakeTracked) Done() <-chan struct{} { return f.done }
func (f *fakeTracked) End() workerclient.End {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fin
}
