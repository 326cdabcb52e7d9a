package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/metrics"
	"github.com/mxgateway/mxgateway/internal/protocol"
	"github.com/mxgateway/mxgateway/internal/supervisor"
	"github.com/mxgateway/mxgateway/internal/workerclient"
)

// earlyExitKeep bounds how long the tracker remembers the exit of a worker
// it was not told about (a failed launch, or an exit that overtook the end
// of its launch).
const earlyExitKeep = time.Minute

// workerTracker turns worker launches and process exits into the worker
// metrics. Only session workers count (not readiness probes), so that
// workers_running never goes negative and matches the sessions' workers:
// the supervisor reports every exit, including launches that never
// finished their handshake.
type workerTracker struct {
	m   *metrics.Metrics
	now func() time.Time

	mu     sync.Mutex
	live   map[int]trackedWorker // counted, still running
	ignore map[int]bool          // probes, still running
	early  map[int]earlyExit     // exits of pids not (yet) known
}

type earlyExit struct {
	code   int
	killed bool
	at     time.Time
}

// trackedWorker is what the tracker needs of a worker client.
type trackedWorker interface {
	PID() int
	Err() error
}

func newWorkerTracker(m *metrics.Metrics) *workerTracker {
	return &workerTracker{m: m, now: time.Now, live: map[int]trackedWorker{},
		ignore: map[int]bool{}, early: map[int]earlyExit{}}
}

// started records a worker whose launch succeeded after startup; count is
// false for readiness probes.
func (t *workerTracker) started(c trackedWorker, startup time.Duration, count bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	pid := c.PID()
	e, exited := t.early[pid]
	delete(t.early, pid)
	if !count {
		if !exited {
			t.ignore[pid] = true
		}
		return
	}
	t.m.WorkerStarted(startup)
	if exited {
		t.report(e.code, e.killed, c)
		return
	}
	t.live[pid] = c
}

// adopt starts counting a spare worker (started with count false) when a
// session takes it. A spare that already exited is not counted.
func (t *workerTracker) adopt(c trackedWorker, startup time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	pid := c.PID()
	if !t.ignore[pid] {
		return
	}
	delete(t.ignore, pid)
	t.m.WorkerStarted(startup)
	t.live[pid] = c
}

// exited is the supervisor's OnExit.
func (t *workerTracker) exited(pid, code int, killed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.live[pid]; ok {
		delete(t.live, pid)
		t.report(code, killed, c)
		return
	}
	if t.ignore[pid] {
		delete(t.ignore, pid)
		return
	}
	now := t.now()
	for p, e := range t.early {
		if now.Sub(e.at) > earlyExitKeep {
			delete(t.early, p)
		}
	}
	t.early[pid] = earlyExit{code: code, killed: killed, at: now}
}

func (t *workerTracker) report(code int, killed bool, c trackedWorker) {
	t.m.WorkerExited(protocol.ExitReason(code, killed))
	if killed {
		t.m.WorkerKilled(killReason(c.Err()))
	}
}

// killReason is the bounded reason label of a kill, from the worker
// client's terminal error (nil when the gateway killed the worker without
// a fault of its own, at shutdown). Every label comes from a typed value:
// a sentinel, the worker's fault code or the gateway's kill reason.
func killReason(err error) string {
	var kill *workerclient.KillError
	var fault *workerclient.FaultError
	switch {
	case err == nil:
		return "gateway_shutdown"
	case errors.As(err, &kill):
		return string(kill.Reason)
	case errors.As(err, &fault):
		return faultLabel(fault.Code)
	case errors.Is(err, workerclient.ErrHeartbeatExpired):
		return "heartbeat"
	case errors.Is(err, workerclient.ErrShutdownTimeout):
		return "shutdown_timeout"
	case errors.Is(err, workerclient.ErrProtocol):
		return "protocol_error"
	case errors.Is(err, workerclient.ErrWorkerGone):
		return "worker_gone"
	}
	return "other"
}

// faultLabel names a worker fault code for the kill metric.
func faultLabel(c workerv1.FaultCode) string {
	switch c {
	case workerv1.FaultCode_FAULT_CODE_EVENT_OVERFLOW:
		return "event_overflow"
	case workerv1.FaultCode_FAULT_CODE_PROTOCOL:
		return "protocol_error"
	case workerv1.FaultCode_FAULT_CODE_BACKEND_INIT:
		return "backend_init"
	case workerv1.FaultCode_FAULT_CODE_BACKEND_HUNG:
		return "backend_hung"
	}
	return "worker_fault"
}

// workerProbe caches the worker_start readiness check: a success is
// trusted for interval, a failure is retried on the next readiness round.
// Probes never run per request.
type workerProbe struct {
	interval time.Duration
	run      func(ctx context.Context) error

	mu   sync.Mutex
	last time.Time // of the last success
}

func (p *workerProbe) check(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.last.IsZero() && time.Since(p.last) < p.interval {
		return nil
	}
	if err := p.run(ctx); err != nil {
		return err
	}
	p.last = time.Now()
	return nil
}

// probeWorker starts a worker, waits for its handshake and shuts it down.
func probeWorker(ctx context.Context, sup *supervisor.Supervisor, t *workerTracker) error {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	c, err := sup.Launch(ctx, "readyprobe-"+hex.EncodeToString(b))
	if err != nil {
		return fmt.Errorf("start a worker: %w", err)
	}
	t.started(c, 0, false)
	if _, err := c.Shutdown(ctx); err != nil {
		c.Kill(protocol.KillGateway)
	}
	<-c.Done()
	return nil
}
