package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/config"
	"github.com/mxgateway/mxgateway/internal/metrics"
	"github.com/mxgateway/mxgateway/internal/opshttp"
	"github.com/mxgateway/mxgateway/internal/protocol"
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
		slices.Contains(args, "--sim-profile=default") {
		t.Fatalf("configured worker command %s %q", exe, args)
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

// TestWorkerTracker: exits are counted once per started session worker,
// whatever order the launch and the exit report arrive in; probes and
// failed launches are not counted.
func TestWorkerTracker(t *testing.T) {
	reg := prometheus.NewRegistry()
	tr := newWorkerTracker(metrics.New(reg))
	client := func(pid int) trackedWorker { return fakeTracked(pid) }
	running := func() float64 { return metricValue(t, reg, "mxgateway_workers_running", nil) }

	tr.started(client(10), time.Millisecond, true)
	if running() != 1 {
		t.Fatalf("running %v after a start", running())
	}
	tr.exited(10, 0, false)
	// The exit overtakes the launch's return.
	tr.exited(11, 3, true)
	if running() != 0 {
		t.Fatalf("running %v", running())
	}
	tr.started(client(11), time.Millisecond, true)
	// A probe and a failed launch.
	tr.started(client(12), 0, false)
	tr.exited(12, 0, false)
	tr.exited(13, -1, true)

	if r := running(); r != 0 {
		t.Fatalf("running %v, want 0", r)
	}
	if v := metricValue(t, reg, "mxgateway_workers_started_total", nil); v != 2 {
		t.Fatalf("started %v, want 2", v)
	}
	if v := metricValue(t, reg, "mxgateway_workers_exited_total", map[string]string{"reason": "ok"}); v != 1 {
		t.Fatalf("exited ok %v, want 1", v)
	}
	if v := metricValue(t, reg, "mxgateway_workers_exited_total", map[string]string{"reason": "killed"}); v != 1 {
		t.Fatalf("exited killed %v, want 1", v)
	}
	if v := metricValue(t, reg, "mxgateway_workers_killed_total", nil); v != 1 {
		t.Fatalf("killed %v, want 1", v)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.live) != 0 || len(tr.ignore) != 0 || len(tr.early) != 1 {
		t.Fatalf("tracker state live=%v ignore=%v early=%v", tr.live, tr.ignore, tr.early)
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

type fakeTracked int

func (f fakeTracked) PID() int   { return int(f) }
func (f fakeTracked) Err() error { return nil }
