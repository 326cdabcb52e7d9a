package workerclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/protocol"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

// endLog counts the client's terminal log records ("workerclient: faulted",
// "workerclient: closed").
type endLog struct {
	mu    sync.Mutex
	count int
}

func (l *endLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *endLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *endLog) WithGroup(string) slog.Handler            { return l }
func (l *endLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "workerclient: faulted" || r.Message == "workerclient: closed" {
		l.mu.Lock()
		l.count++
		l.mu.Unlock()
	}
	return nil
}

func (l *endLog) n() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.count
}

// TestEndReportsEachCauseOnce drives every way a worker's life ends and
// checks the one terminal point: its typed cause, the error's sentinel,
// whether the gateway killed the process, the exit the End carries, and
// that the end was reported (logged) exactly once, however many of the
// other signs follow it.
func TestEndReportsEachCauseOnce(t *testing.T) {
	shutdown := func(h *harness, ctx context.Context) <-chan error {
		done := make(chan error, 1)
		go func() { _, err := h.c.Shutdown(ctx); done <- err }()
		h.w.readUntil(func(e *workerv1.WorkerEnvelope) bool { return e.GetShutdown() != nil })
		return done
	}
	cases := []struct {
		name   string
		mods   []harnessOpt
		noRun  bool // the case runs the handshake itself
		drive  func(t *testing.T, h *harness)
		cause  Cause
		is     error // nil: a clean close
		killed bool
		code   int
	}{
		{name: "pipe ends, then the process exits", drive: func(t *testing.T, h *harness) {
			h.w.conn.Close()
			h.waitGoing(CausePipeEnded)
			h.exit()
		}, cause: CausePipeEnded, is: ErrWorkerGone, code: 42},
		{name: "process exits, then the pipe ends", drive: func(t *testing.T, h *harness) {
			h.exit()
			h.waitGoing(CauseExited)
			h.w.conn.Close()
		}, cause: CauseExited, is: ErrWorkerGone, code: 42},
		{name: "process exits, a grandchild holds the pipe", drive: func(t *testing.T, h *harness) {
			h.exit()
		}, cause: CauseExited, is: ErrWorkerGone, code: 42},
		{name: "exit code event overflow", drive: func(t *testing.T, h *harness) {
			h.proc.exitWith(Exit{Code: protocol.ExitEventOverflow, Status: "exit status 12"})
			h.waitGoing(CauseExited)
			h.w.conn.Close()
		}, cause: CauseExited, is: ErrWorkerOverflow, code: protocol.ExitEventOverflow},
		{name: "heartbeat silence", mods: []harnessOpt{func(o *Options) { o.HeartbeatGrace = 50 * time.Millisecond }},
			drive: func(t *testing.T, h *harness) {}, cause: CauseHeartbeat, is: ErrHeartbeatExpired, killed: true, code: -1},
		{name: "worker fault", drive: func(t *testing.T, h *harness) {
			h.w.send(&workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_Fault{Fault: &workerv1.Fault{
				Code: workerv1.FaultCode_FAULT_CODE_BACKEND_HUNG, Message: "hung"}}})
		}, cause: CauseFault, is: ErrWorkerFault, killed: true, code: -1},
		{name: "protocol violation", drive: func(t *testing.T, h *harness) {
			h.w.send(&workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_Cancel{Cancel: &workerv1.Cancel{}}})
		}, cause: CauseProtocol, is: ErrProtocol, killed: true, code: -1},
		{name: "killed by the gateway", drive: func(t *testing.T, h *harness) {
			h.c.Kill(protocol.KillGateway)
			h.c.Kill(protocol.KillAfterFault)
		}, cause: CauseKilled, is: ErrKilled, killed: true, code: -1},
		{name: "clean close", drive: func(t *testing.T, h *harness) {
			done := shutdown(h, context.Background())
			h.w.send(&workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_ShutdownAck{ShutdownAck: &workerv1.ShutdownAck{}}})
			h.w.conn.Close()
			h.exit()
			if err := wait(t, done); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		}, cause: CauseClosed, code: 42},
		{name: "clean close, exit seen before the ack", drive: func(t *testing.T, h *harness) {
			done := shutdown(h, context.Background())
			h.exit()
			h.waitGoing(CauseExited)
			h.w.send(&workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_ShutdownAck{ShutdownAck: &workerv1.ShutdownAck{}}})
			h.w.conn.Close()
			if err := wait(t, done); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		}, cause: CauseClosed, code: 42},
		{name: "shutdown deadline", drive: func(t *testing.T, h *harness) {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			if err := wait(t, shutdown(h, ctx)); !errors.Is(err, ErrShutdownTimeout) {
				t.Errorf("Shutdown: %v", err)
			}
		}, cause: CauseShutdownTimeout, is: ErrShutdownTimeout, killed: true, code: -1},
		{name: "handshake nonce mismatch", noRun: true, drive: func(t *testing.T, h *harness) {
			errc := h.startAsync(context.Background())
			h.w.read()
			h.w.hello([]byte("another nonce"))
			if err := wait(t, errc); !errors.Is(err, ErrNonceMismatch) {
				t.Errorf("Start: %v", err)
			}
		}, cause: CauseHandshake, is: ErrHandshake, killed: true, code: -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			log := &endLog{}
			mods := append([]harnessOpt{func(o *Options) { o.Logger = slog.New(log) }}, tc.mods...)
			h := newHarness(t, mods...)
			if !tc.noRun {
				h.start()
			}
			tc.drive(t, h)
			err := h.waitDone()
			end := h.c.End()
			if end.Cause != tc.cause {
				t.Errorf("cause %v, want %v (err %v)", end.Cause, tc.cause, err)
			}
			if end.Err != err {
				t.Errorf("End.Err %v, Err %v", end.Err, err)
			}
			switch {
			case tc.is == nil && err != nil:
				t.Errorf("err %v, want a clean close", err)
			case tc.is != nil && !errors.Is(err, tc.is):
				t.Errorf("err %v, want %v", err, tc.is)
			}
			if end.Exit == nil || end.Exit.Killed != tc.killed || end.Exit.Code != tc.code {
				t.Errorf("exit %+v, want killed %v code %d", end.Exit, tc.killed, tc.code)
			}
			if want := int32(map[bool]int{true: 1}[tc.killed]); h.kills() != want {
				t.Errorf("killed %d times, want %d", h.kills(), want)
			}
			if tc.cause == CauseExited && tc.is == ErrWorkerGone && !strings.Contains(err.Error(), "exit status 42") {
				t.Errorf("err %q lacks the exit status", err)
			}
			// Every other sign after the end changes nothing.
			h.c.Kill("late")
			h.exit()
			if again := h.c.End(); again.Cause != end.Cause || again.Err != end.Err {
				t.Errorf("end changed after the fact: %+v, was %+v", again, end)
			}
			if n := log.n(); n != 1 {
				t.Errorf("end logged %d times, want once", n)
			}
		})
	}
}

// TestEOFAndExitRace lets the pipe's end and the process exit race, many
// times: the cause is whichever run saw first, the error is the same
// worker-gone error either way, and the end is reported once without a kill.
func TestEOFAndExitRace(t *testing.T) {
	seen := map[Cause]int{}
	for range 30 {
		log := &endLog{}
		h := newHarness(t, func(o *Options) { o.Logger = slog.New(log) })
		h.start()
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); h.w.conn.Close() }()
		go func() { defer wg.Done(); h.exit() }()
		wg.Wait()
		err := h.waitDone()
		end := h.c.End()
		seen[end.Cause]++
		if end.Cause != CausePipeEnded && end.Cause != CauseExited {
			t.Fatalf("cause %v, want the pipe's end or the exit", end.Cause)
		}
		if !errors.Is(err, ErrWorkerGone) || !strings.Contains(err.Error(), "exit status 42") {
			t.Fatalf("err %v", err)
		}
		if h.kills() != 0 || log.n() != 1 {
			t.Fatalf("kills %d, end logged %d times", h.kills(), log.n())
		}
	}
	t.Logf("causes seen: %v", seen)
}

func TestCauseString(t *testing.T) {
	for c := CauseNone; c <= CauseKilled; c++ {
		if s := c.String(); s == "" || strings.HasPrefix(s, "cause(") {
			t.Errorf("cause %d has no name", int(c))
		}
	}
	if Cause(99).String() != "cause(99)" {
		t.Error(Cause(99).String())
	}
}

// fullQueue starts a client and has the fake worker send n events, its
// whole credit (the options' EventBuffer), which nobody takes; it returns
// once the client queued them all.
func fullQueue(t *testing.T, h *harness, n int) {
	t.Helper()
	h.start()
	for range n {
		h.w.event(mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE)
	}
	testutil.Eventually(t, waitFor, func() error {
		if q, _ := h.c.QueuedEvents(); q != n {
			return fmt.Errorf("%d events queued, want %d", q, n)
		}
		return nil
	})
}

// TestExitWhileEventsUntaken: the worker overflowed and exited while its
// credit is spent and nobody takes the events (the session waits for a
// stalled subscriber), its pipe held open (a grandchild). The life still ends, at
// the drainWait bound, with the worker's reason (EVENT_OVERFLOW, from the
// exit code), without a kill; so a session waiting on Done ends with the
// worker's fault, not with its own stall bound.
func TestExitWhileEventsUntaken(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.EventBuffer = 1 })
	h.c.drainWait = time.Millisecond // the bound's length is not under test
	fullQueue(t, h, 1)               // the pipe stays open, as after a crash with a grandchild
	h.proc.exitWith(Exit{Code: protocol.ExitEventOverflow, Status: "exit status 9"})
	err := h.waitDone()
	var fe *FaultError
	if !errors.As(err, &fe) || fe.Code != workerv1.FaultCode_FAULT_CODE_EVENT_OVERFLOW || !errors.Is(err, ErrWorkerOverflow) {
		t.Fatalf("err %v, want the EVENT_OVERFLOW fault", err)
	}
	end := h.c.End()
	if end.Cause != CauseExited || end.Exit == nil || end.Exit.Code != protocol.ExitEventOverflow || end.Exit.Killed {
		t.Fatalf("end %+v (exit %+v), want exited by itself with code %d", end, end.Exit, protocol.ExitEventOverflow)
	}
	if h.kills() != 0 {
		t.Fatalf("killed %d times, want 0", h.kills())
	}
	// What was queued before the end is still handed out, then the end.
	if got := h.drainEvents(); len(got) != 1 || got[0].GetSequence() != 1 {
		t.Fatalf("drained %v, want event 1", got)
	}
}

// TestExitWhileEventsUntakenOtherCode: the same wait for a worker that
// exited with another code ends as ErrWorkerGone naming the exit status and
// the pipe that was not read out.
func TestExitWhileEventsUntakenOtherCode(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.EventBuffer = 1 })
	h.c.drainWait = time.Millisecond
	fullQueue(t, h, 1)
	h.exit()
	err := h.waitDone()
	if !errors.Is(err, ErrWorkerGone) || !strings.Contains(err.Error(), "exit status 42") || !strings.Contains(err.Error(), "not read out") {
		t.Fatalf("err %v", err)
	}
	if end := h.c.End(); end.Cause != CauseExited || h.kills() != 0 {
		t.Fatalf("cause %v, kills %d", end.Cause, h.kills())
	}
}

// TestExitThenReaderResumes: the process exited with its credit spent and
// nobody taking events; the reader resumes, so every event the worker
// wrote before it died is delivered, in order, and the life ends at the
// pipe's end with the exit's reason.
func TestExitThenReaderResumes(t *testing.T) {
	const n = 20
	h := newHarness(t, func(o *Options) { o.EventBuffer = n })
	h.c.drainWait = time.Hour
	fullQueue(t, h, n)
	h.proc.exitWith(Exit{Code: protocol.ExitEventOverflow, Status: "exit status 9"})
	h.waitGoing(CauseExited)
	h.w.conn.Close()
	got := h.drainEvents()
	if len(got) != n {
		t.Fatalf("delivered %d events, want %d", len(got), n)
	}
	for i, ev := range got {
		if ev.GetSequence() != uint64(i+1) {
			t.Fatalf("event %d has sequence %d", i, ev.GetSequence())
		}
	}
	err := h.waitDone()
	if !errors.Is(err, ErrWorkerOverflow) {
		t.Fatalf("err %v, want the EVENT_OVERFLOW fault", err)
	}
	if end := h.c.End(); end.Cause != CauseExited || h.kills() != 0 {
		t.Fatalf("cause %v, kills %d", end.Cause, h.kills())
	}
}
