package workerclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/frame"
	"github.com/mxgateway/mxgateway/internal/ipc"
	"github.com/mxgateway/mxgateway/internal/protocol"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

const (
	testSession = "session-worker-client"
	testPID     = 4321
	waitFor     = 5 * time.Second
)

var testNonce = bytes.Repeat([]byte{0xA5}, protocol.NonceBytes)

// connPair returns two ends of a real local socket (or pipe on Windows): the
// gateway's end as accepted by ipc, and the worker's end as dialled. net.Pipe
// is not enough: it has no kernel buffering and different deadline behaviour.
func connPair(t testing.TB) (gateway, worker net.Conn) {
	t.Helper()
	dir := os.TempDir()
	if runtime.GOOS != "windows" {
		d, err := os.MkdirTemp("", "wct")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		dir = d
	}
	ln, err := ipc.Listen(dir, "wc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	w, err := ipc.Dial(ctx, ln.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	g, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { w.Close(); g.Close() })
	return g, w
}

// fakeWorker speaks the worker side of the protocol from the test goroutine.
type fakeWorker struct {
	t     *testing.T
	conn  net.Conn
	r     *frame.Reader
	w     *frame.Writer
	seq   uint64
	evSeq uint64
	// alarmConsumer is what WorkerReady reports.
	alarmConsumer bool
}

func newFakeWorker(t *testing.T, conn net.Conn) *fakeWorker {
	return &fakeWorker{
		t:    t,
		conn: conn,
		r:    frame.NewReader(conn, frame.Options{SessionID: testSession}),
		w:    frame.NewWriter(conn, frame.Options{}),
	}
}

// read returns the next envelope from the gateway, failing the test after
// waitFor.
func (f *fakeWorker) read() *workerv1.WorkerEnvelope {
	f.t.Helper()
	_ = f.conn.SetReadDeadline(time.Now().Add(waitFor))
	env, err := f.r.Read()
	if err != nil {
		f.t.Fatalf("fake worker read: %v", err)
	}
	return env
}

// readUntil skips envelopes until one satisfies ok.
func (f *fakeWorker) readUntil(ok func(*workerv1.WorkerEnvelope) bool) *workerv1.WorkerEnvelope {
	f.t.Helper()
	for {
		if env := f.read(); ok(env) {
			return env
		}
	}
}

// send numbers env with the next sequence and writes it; fields already set
// (a wrong version or session for a negative test) are kept.
func (f *fakeWorker) send(env *workerv1.WorkerEnvelope) {
	f.t.Helper()
	f.seq++
	if env.ProtocolVersion == 0 {
		env.ProtocolVersion = protocol.Version
	}
	if env.SessionId == "" {
		env.SessionId = testSession
	}
	if env.Sequence == 0 {
		env.Sequence = f.seq
	}
	f.write(env)
}

func (f *fakeWorker) write(env *workerv1.WorkerEnvelope) {
	f.t.Helper()
	_ = f.conn.SetWriteDeadline(time.Now().Add(waitFor))
	if err := f.w.Write(env); err != nil {
		f.t.Fatalf("fake worker write: %v", err)
	}
}

func (f *fakeWorker) writeRaw(b []byte) {
	f.t.Helper()
	_ = f.conn.SetWriteDeadline(time.Now().Add(waitFor))
	if _, err := f.conn.Write(b); err != nil {
		f.t.Fatalf("fake worker raw write: %v", err)
	}
}

func (f *fakeWorker) hello(nonce []byte) {
	f.send(&workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_WorkerHello{WorkerHello: &workerv1.WorkerHello{
		ProtocolVersion: protocol.Version, Nonce: nonce, Pid: testPID, WorkerVersion: "fake-worker",
	}}})
}

func (f *fakeWorker) ready() {
	f.send(&workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_WorkerReady{WorkerReady: &workerv1.WorkerReady{
		Backend:       &mxgatewayv1.BackendInfo{Kind: "sim", ModelName: "fake", Simulated: true, WorkerVersion: "fake-worker"},
		AlarmConsumer: f.alarmConsumer,
	}}})
}

func (f *fakeWorker) reply(corr uint64, reply *mxgatewayv1.Reply) {
	f.send(&workerv1.WorkerEnvelope{CorrelationId: corr, Body: &workerv1.WorkerEnvelope_CommandReply{
		CommandReply: &workerv1.WorkerCommandReply{Reply: reply}}})
}

func (f *fakeWorker) event(family mxgatewayv1.EventFamily) {
	f.evSeq++
	f.eventSeq(f.evSeq, family)
}

func (f *fakeWorker) eventSeq(seq uint64, family mxgatewayv1.EventFamily) {
	f.send(&workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_Event{Event: &workerv1.WorkerEvent{
		Event: &mxgatewayv1.Event{Sequence: seq, Family: family},
	}}})
}

func (f *fakeWorker) heartbeat() {
	f.send(&workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_Heartbeat{Heartbeat: &workerv1.Heartbeat{BackendResponsive: true}}})
}

// fakeProcess is a worker process the test ends: Kill is counted and ends
// it at once ("signal: killed"), exitWith ends it by itself.
type fakeProcess struct {
	pid    int
	kills  atomic.Int32
	exited chan struct{}
	once   sync.Once

	mu sync.Mutex
	x  Exit
}

func newFakeProcess(pid int) *fakeProcess {
	return &fakeProcess{pid: pid, exited: make(chan struct{})}
}

func (p *fakeProcess) PID() int                { return p.pid }
func (p *fakeProcess) Exited() <-chan struct{} { return p.exited }

func (p *fakeProcess) Exit() Exit {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.x
}

func (p *fakeProcess) Kill() {
	p.kills.Add(1)
	p.exitWith(Exit{Code: -1, Status: "signal: killed", Killed: true})
}

// exitWith ends the process with x, unless it already ended.
func (p *fakeProcess) exitWith(x Exit) {
	p.once.Do(func() {
		p.mu.Lock()
		p.x = x
		p.mu.Unlock()
		close(p.exited)
	})
}

// harness is a Client wired to a fake worker, with a fake process: kills are
// counted and the test decides when the "process" exits.
type harness struct {
	t    *testing.T
	c    *Client
	w    *fakeWorker
	proc *fakeProcess // nil with noProcess

	evOnce sync.Once
	evch   chan *mxgatewayv1.Event
}

// events returns the client's events as a channel, fed from NextEvents by
// one goroutine and closed when NextEvents reports the end.
func (h *harness) events() <-chan *mxgatewayv1.Event {
	h.evOnce.Do(func() {
		h.evch = make(chan *mxgatewayv1.Event)
		go func() {
			defer close(h.evch)
			var buf []*protocol.Event
			for {
				var ok bool
				buf, ok = h.c.NextEvents(buf[:0])
				for _, ev := range buf {
					h.evch <- ev.Msg()
				}
				if !ok {
					return
				}
			}
		}()
	})
	return h.evch
}

type harnessOpt func(*Options)

func newHarness(t *testing.T, mods ...harnessOpt) *harness {
	t.Helper()
	g, w := connPair(t)
	h := &harness{t: t, w: newFakeWorker(t, w), proc: newFakeProcess(testPID)}
	opts := Options{Process: h.proc}
	for _, m := range mods {
		m(&opts)
	}
	if opts.Process == nil {
		h.proc = nil
	}
	c, err := New(g, testSession, testNonce, opts)
	if err != nil {
		t.Fatal(err)
	}
	h.c = c
	t.Cleanup(func() {
		c.Kill("test cleanup")
		select {
		case <-c.Done():
		case <-time.After(waitFor):
			t.Error("client did not finish after Kill")
		}
	})
	return h
}

// noProcess runs the client without a process: the pipe's end is the
// worker's end.
func noProcess(o *Options) { o.Process = nil }

// exit ends the fake process by itself with exit status 42.
func (h *harness) exit() { h.proc.exitWith(Exit{Code: 42, Status: "exit status 42"}) }

// kills is how often the client killed the process.
func (h *harness) kills() int32 { return h.proc.kills.Load() }

// startAsync runs Start in the background.
func (h *harness) startAsync(ctx context.Context) <-chan error {
	errc := make(chan error, 1)
	go func() { errc <- h.c.Start(ctx) }()
	return errc
}

// start completes the handshake and checks the GatewayHello.
func (h *harness) start() {
	h.t.Helper()
	h.startHello()
}

// startHello is start, returning the GatewayHello.
func (h *harness) startHello() *workerv1.GatewayHello {
	h.t.Helper()
	errc := h.startAsync(context.Background())
	env := h.w.read()
	gh := env.GetGatewayHello()
	if gh == nil {
		h.t.Fatalf("first frame is %s, want gateway_hello", frame.BodyName(env))
	}
	if env.GetSequence() != 1 || gh.GetProtocolVersion() != protocol.Version || !bytes.Equal(gh.GetNonce(), testNonce) {
		h.t.Fatalf("bad GatewayHello: seq %d version %d", env.GetSequence(), gh.GetProtocolVersion())
	}
	h.w.hello(gh.GetNonce())
	h.w.ready()
	if err := wait(h.t, errc); err != nil {
		h.t.Fatalf("Start: %v", err)
	}
	return gh
}

func wait[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitFor):
		t.Fatal("timed out waiting")
		panic("unreachable")
	}
}

type invokeResult struct {
	reply *mxgatewayv1.Reply
	err   error
}

func (h *harness) invokeAsync(ctx context.Context, cmd *mxgatewayv1.Command, timeout time.Duration) <-chan invokeResult {
	ch := make(chan invokeResult, 1)
	go func() {
		r, err := h.c.Invoke(ctx, cmd, nil, timeout)
		ch <- invokeResult{r, err}
	}()
	return ch
}

// waitDone waits for the terminal state and returns Err.
func (h *harness) waitDone() error {
	h.t.Helper()
	select {
	case <-h.c.Done():
	case <-time.After(waitFor):
		h.t.Fatalf("client did not reach a terminal state (state %v)", h.c.State())
	}
	return h.c.Err()
}

// drainEvents reads Events until it is closed and returns what it got.
func (h *harness) drainEvents() []*mxgatewayv1.Event {
	h.t.Helper()
	var got []*mxgatewayv1.Event
	timeout := time.After(waitFor)
	for {
		select {
		case ev, ok := <-h.events():
			if !ok {
				return got
			}
			got = append(got, ev)
		case <-timeout:
			h.t.Fatal("Events not closed")
		}
	}
}

func registerCmd() *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{ClientName: "t"}}}
}

func unregisterCmd() *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Unregister{Unregister: &mxgatewayv1.UnregisterCommand{}}}
}

func isCommand(env *workerv1.WorkerEnvelope) bool { return env.GetCommand() != nil }

// waitGoing waits until the client saw the first sign of the worker's
// going, and checks it is want.
func (h *harness) waitGoing(want Cause) {
	h.t.Helper()
	testutil.Eventually(h.t, waitFor, func() error {
		h.c.mu.Lock()
		got := h.c.going
		h.c.mu.Unlock()
		switch got {
		case CauseNone:
			return errors.New("no sign of the worker's going yet")
		case want:
			return nil
		}
		return fmt.Errorf("first sign %v, want %v", got, want)
	})
}
