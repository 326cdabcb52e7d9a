package workerclient

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/frame"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

// hugeCmd is a command far larger than any socket or pipe buffer, so that
// writing it blocks while the worker does not read.
func hugeCmd() *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{
		ClientName: strings.Repeat("x", 8<<20)}}}
}

// waitWriteLockHeld waits until some caller holds the write lock.
func (h *harness) waitWriteLockHeld() {
	h.t.Helper()
	testutil.Eventually(h.t, waitFor, func() error {
		if len(h.c.wlock) == 0 {
			return errors.New("write lock not held")
		}
		return nil
	})
}

// Concurrent callers, cancellations and their Cancels: the worker sees
// contiguous sequence numbers in wire order.
func TestOutboundSequenceContiguous(t *testing.T) {
	h := newHarness(t)
	h.start()
	want := uint64(1) // GatewayHello
	next := func() *workerv1.WorkerEnvelope {
		t.Helper()
		env := h.w.read()
		want++
		if env.GetSequence() != want {
			t.Fatalf("gateway envelope sequence %d, want %d", env.GetSequence(), want)
		}
		return env
	}
	const n = 20
	var results []<-chan invokeResult
	var cancels []context.CancelFunc
	invoke := func(cancellable bool) {
		ctx := context.Background()
		if cancellable {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			cancels = append(cancels, cancel)
		}
		results = append(results, h.invokeAsync(ctx, registerCmd(), waitFor))
	}
	var cmds []uint64
	read := func(wantCmds, wantCancels int) {
		t.Helper()
		for wantCmds > 0 || wantCancels > 0 {
			env := next()
			switch {
			case env.GetCommand() != nil:
				cmds = append(cmds, env.GetCorrelationId())
				wantCmds--
			case env.GetCancel() != nil:
				wantCancels--
			default:
				t.Fatalf("unexpected %s", frame.BodyName(env))
			}
		}
	}
	// Round 1: concurrent commands, some of them cancellable.
	for i := range n {
		invoke(i%2 == 0)
	}
	read(n, 0)
	// Round 2: the cancellations' Cancel frames race new commands.
	for i := range n {
		if i < len(cancels) {
			cancels[i]()
		}
		invoke(false)
	}
	read(n, n/2)
	for _, corr := range cmds {
		h.w.reply(corr, &mxgatewayv1.Reply{Message: fmt.Sprint(corr)})
	}
	cancelled := 0
	for _, ch := range results {
		r := wait(t, ch)
		switch {
		case errors.Is(r.err, context.Canceled):
			cancelled++
		case r.err != nil:
			t.Fatal(r.err)
		}
	}
	if cancelled != n/2 {
		t.Fatalf("%d commands cancelled, want %d", cancelled, n/2)
	}
	// The next command continues the sequence.
	res := h.invokeAsync(context.Background(), unregisterCmd(), waitFor)
	env := next()
	h.w.reply(env.GetCorrelationId(), &mxgatewayv1.Reply{})
	if r := wait(t, res); r.err != nil {
		t.Fatal(r.err)
	}
	if h.c.State() != StateReady {
		t.Fatalf("state %v", h.c.State())
	}
}

// A command too large for a frame fails alone: nothing reached the pipe, so
// the client stays Ready and the sequence has no gap.
func TestOversizedCommandFailsOnlyThatCommand(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxFrameBytes = 1024 })
	h.start()
	big := &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{ClientName: strings.Repeat("n", 2048)}}}
	_, err := h.c.Invoke(context.Background(), big, nil, waitFor)
	if frame.CodeOf(err) != frame.CodeOversized {
		t.Fatalf("oversized command: %v, want a frame error %v", err, frame.CodeOversized)
	}
	if h.c.State() != StateReady {
		t.Fatalf("state %v after an oversized command", h.c.State())
	}
	res := h.invokeAsync(context.Background(), registerCmd(), waitFor)
	env := h.w.read()
	if env.GetSequence() != 2 || env.GetCommand() == nil {
		t.Fatalf("next envelope: %s with sequence %d, want a command with 2", frame.BodyName(env), env.GetSequence())
	}
	h.w.reply(env.GetCorrelationId(), &mxgatewayv1.Reply{})
	if r := wait(t, res); r.err != nil {
		t.Fatal(r.err)
	}
}

// While one write is blocked on a pipe the worker does not read, other
// callers still time out or are cancelled on their own, and Kill ends the
// blocked write and the client at once.
func TestBlockedWriteDoesNotBlockOthersOrKill(t *testing.T) {
	h := newHarness(t)
	h.start()
	blocked := h.invokeAsync(context.Background(), hugeCmd(), time.Minute)
	h.waitWriteLockHeld()

	r := wait(t, h.invokeAsync(context.Background(), registerCmd(), 50*time.Millisecond))
	if !errors.Is(r.err, ErrCommandTimeout) || !strings.Contains(r.err.Error(), "not sent") {
		t.Fatalf("command behind a blocked write: %v, want ErrCommandTimeout (not sent)", r.err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	res := h.invokeAsync(ctx, registerCmd(), time.Minute)
	cancel()
	if r := wait(t, res); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled command behind a blocked write: %v", r.err)
	}
	if h.c.State() != StateReady {
		t.Fatalf("state %v while a write is blocked", h.c.State())
	}

	h.c.Kill("operator request")
	if err := h.waitDone(); !errors.Is(err, ErrKilled) {
		t.Fatalf("err %v", err)
	}
	if r := wait(t, blocked); !errors.Is(r.err, ErrKilled) {
		t.Fatalf("blocked command: %v, want ErrKilled", r.err)
	}
}

// A write still blocked at its command's deadline has cut its frame short;
// the stream cannot continue, so the client faults.
func TestStalledWriteFaults(t *testing.T) {
	h := newHarness(t)
	h.start()
	// The worker never reads, so the frame stalls for the whole deadline;
	// the deadline only has to be long enough for the first bytes to go out
	// on a loaded machine (a short one can expire before the write starts,
	// which is the "not sent" case tested above).
	r := wait(t, h.invokeAsync(context.Background(), hugeCmd(), 3*time.Second))
	if !errors.Is(r.err, ErrWorkerGone) || !strings.Contains(r.err.Error(), "write stalled") {
		t.Fatalf("stalled write: %v, want ErrWorkerGone (write stalled)", r.err)
	}
	if err := h.waitDone(); !errors.Is(err, ErrWorkerGone) {
		t.Fatalf("client err %v", err)
	}
	if h.kills() != 1 {
		t.Fatalf("worker killed %d times, want 1", h.kills())
	}
	if _, err := h.c.Invoke(context.Background(), registerCmd(), nil, waitFor); !errors.Is(err, ErrWorkerGone) {
		t.Fatalf("invoke after the fault: %v", err)
	}
}

// Shutdown waits for a blocked write like any sender, and its deadline
// still ends the client.
func TestShutdownBehindBlockedWrite(t *testing.T) {
	h := newHarness(t)
	h.start()
	blocked := h.invokeAsync(context.Background(), hugeCmd(), time.Minute)
	h.waitWriteLockHeld()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := h.c.Shutdown(ctx); !errors.Is(err, ErrShutdownTimeout) {
		t.Fatalf("shutdown: %v, want ErrShutdownTimeout", err)
	}
	if r := wait(t, blocked); !errors.Is(r.err, ErrShutdownTimeout) {
		t.Fatalf("blocked command: %v", r.err)
	}
}

// Abandoning a command never waits for a busy pipe: its Cancel is queued
// and written by the sender holding the pipe, right after its own frame.
func TestCancelQueuedBehindBlockedWrite(t *testing.T) {
	h := newHarness(t)
	h.start()
	ctx, cancel := context.WithCancel(context.Background())
	first := h.invokeAsync(ctx, registerCmd(), time.Minute)
	testutil.Eventually(t, waitFor, func() error { // written, now awaiting its reply
		select {
		case h.c.wlock <- struct{}{}:
		default:
			return errors.New("write lock busy")
		}
		seq := h.c.pc.Sent()
		<-h.c.wlock
		if seq != 2 {
			return errors.New("first command not written yet")
		}
		return nil
	})
	blocked := h.invokeAsync(context.Background(), hugeCmd(), time.Minute)
	h.waitWriteLockHeld()
	cancel()
	if r := wait(t, first); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled command: %v", r.err)
	}
	a, b, c := h.w.read(), h.w.read(), h.w.read()
	if a.GetCommand() == nil || b.GetCommand() == nil || c.GetCancel().GetTargetCorrelationId() != a.GetCorrelationId() {
		t.Fatalf("worker got %s, %s, %s (cancel of %d), want command, command, cancel of the first",
			frame.BodyName(a), frame.BodyName(b), frame.BodyName(c), c.GetCancel().GetTargetCorrelationId())
	}
	if a.GetSequence() != 2 || b.GetSequence() != 3 || c.GetSequence() != 4 {
		t.Fatalf("sequences %d %d %d", a.GetSequence(), b.GetSequence(), c.GetSequence())
	}
	h.w.reply(b.GetCorrelationId(), &mxgatewayv1.Reply{Message: "big"})
	if r := wait(t, blocked); r.err != nil || r.reply.GetMessage() != "big" {
		t.Fatalf("blocked command: %v %v", r.reply, r.err)
	}
}
