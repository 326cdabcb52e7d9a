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

// workerTracker turns the lives of session workers into the worker
// metrics. A worker counts from the moment a session takes it (adopt) to
// its terminal point (workerclient.Client.End): one goroutine per counted
// worker waits for Done and reports the End, so every counted worker is
// reported exactly once, with its typed cause. Readiness probes and spares
// no session took are never counted, so workers_running matches the
// sessions' workers and never goes negative.
type workerTracker struct {
	m *metrics.Metrics

	mu   sync.Mutex
	live map[int]trackedWorker // counted, not yet ended
	wg   sync.WaitGroup        // one per counted worker, until reported
}

// trackedWorker is what the tracker needs of a worker client.
type trackedWorker interface {
	PID() int
	// Done is closed at the worker's terminal point, once End is complete.
	Done() <-chan struct{}
	End() workerclient.End
}

func newWorkerTracker(m *metrics.Metrics) *workerTracker {
	return &workerTracker{m: m, live: map[int]trackedWorker{}}
}

// adopt starts counting a worker when a session takes it, startup being its
// launch-to-ready time. A spare that ended while it waited in the pool is
// not counted: no session ran on it.
func (t *workerTracker) adopt(c trackedWorker, startup time.Duration) {
	select {
	case <-c.Done():
		return
	default:
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m.WorkerStarted(startup)
	t.live[c.PID()] = c
	t.wg.Add(1)
	go t.watch(c)
}

// watch reports c's end once it is terminal.
func (t *workerTracker) watch(c trackedWorker) {
	defer t.wg.Done()
	<-c.Done()
	end := c.End()
	t.mu.Lock()
	delete(t.live, c.PID())
	t.mu.Unlock()
	t.report(end)
}

// wait returns once every counted worker's end was reported (after the
// supervisor reaped them all, at shutdown).
func (t *workerTracker) wait() { t.wg.Wait() }

// exitUnknown is the exit reason of a worker whose End has no process exit.
const exitUnknown = "other"

// report counts one worker's end: its typed cause, how its process exited,
// and the kill with its reason when the gateway killed it.
func (t *workerTracker) report(end workerclient.End) {
	t.m.WorkerEnded(end.Cause.String())
	if end.Exit == nil { // a client without a process: no exit to name
		t.m.WorkerExited(exitUnknown)
		return
	}
	t.m.WorkerExited(protocol.ExitReason(end.Exit.Code, end.Exit.Killed))
	if end.Exit.Killed {
		t.m.WorkerKilled(killReason(end.Err))
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
func probeWorker(ctx context.Context, sup *supervisor.Supervisor) error {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	c, err := sup.Launch(ctx, "readyprobe-"+hex.EncodeToString(b))
	if err != nil {
		return fmt.Errorf("start a worker: %w", err)
	}
	if _, err := c.Shutdown(ctx); err != nil {
		c.Kill(protocol.KillGateway)
	}
	<-c.Done()
	return nil
}
