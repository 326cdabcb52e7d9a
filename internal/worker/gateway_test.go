package worker

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/frame"
	"github.com/mxgateway/mxgateway/internal/protocol"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(childMain())
	}
	testutil.VerifyNoLeaks(m)
}

const testSession = "sess-1"

var testNonce = bytes.Repeat([]byte{0xab}, protocol.NonceBytes)

func nonceLine() string { return hex.EncodeToString(testNonce) + "\n" }

// harness is an in-test gateway: it listens on a real Unix socket, runs the
// worker in a goroutine and speaks the protocol frame by frame.
type harness struct {
	t         testing.TB
	ln        net.Listener
	conn      net.Conn
	w         *frame.Writer
	inProcess bool  // the worker runs in this process (Run), not a child
	readyPID  int32 // the pid WorkerHello announced
	frames    chan *workerv1.WorkerEnvelope
	readDone  chan struct{}
	readErr   error // set before frames closes
	sendSeq   uint64
	recvSeq   uint64
	code      chan int
	logs      *syncBuffer
	proc      *os.ProcessState // a child worker's, set before code
}

type harnessOpts struct {
	stdin *string // stdin content; default nonceLine()
	cfg   func(*Config)
	ctx   context.Context // default context.Background()
}

func socketPath(t testing.TB) string {
	dir, err := os.MkdirTemp("", "mxw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "w.sock")
}

func dialUnix(ctx context.Context, endpoint string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", endpoint)
}

// start runs the worker against be and accepts its connection.
func start(t testing.TB, be backend.Backend, o harnessOpts) *harness {
	t.Helper()
	return launch(t, func(h *harness, path string) {
		stdin := nonceLine()
		if o.stdin != nil {
			stdin = *o.stdin
		}
		cfg := Config{
			SessionID:    testSession,
			Endpoint:     path,
			Nonce:        strings.NewReader(stdin),
			Backend:      be,
			Dial:         dialUnix,
			Logger:       slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			CloseTimeout: 5 * time.Second,
		}
		if o.cfg != nil {
			o.cfg(&cfg)
		}
		h.inProcess = true
		ctx := o.ctx
		if ctx == nil {
			ctx = context.Background()
		}
		go func() { h.code <- Run(ctx, cfg) }()
	})
}

// launch listens on a fresh socket, lets run start a worker that reports
// its exit code on h.code, and accepts the worker's connection (unless the
// worker exits first).
func launch(t testing.TB, run func(h *harness, path string)) *harness {
	t.Helper()
	path := socketPath(t)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, ln: ln, code: make(chan int, 1), logs: &syncBuffer{}}
	run(h, path)
	t.Cleanup(func() {
		ln.Close()
		if h.conn != nil {
			h.conn.Close()
			for range h.frames {
			}
		}
		select {
		case <-h.code:
		case <-time.After(10 * time.Second):
			t.Error("worker did not exit")
		}
	})
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	select {
	case c, ok := <-accepted:
		if !ok {
			t.Fatal("accept failed")
		}
		h.conn = c
	case code := <-h.code:
		h.code <- code // keep it for exitCode
		ln.Close()
		<-accepted
		return h
	case <-time.After(10 * time.Second):
		t.Fatal("worker did not connect")
	}
	h.frames = make(chan *workerv1.WorkerEnvelope, 1024)
	h.readDone = make(chan struct{})
	go h.readLoop()
	h.w = frame.NewWriter(h.conn, frame.Options{})
	return h
}

// readLoop feeds h.frames until the connection ends; it stops reading (and
// so applies back-pressure to the worker) while the channel is full.
func (h *harness) readLoop() {
	defer close(h.readDone)
	defer close(h.frames)
	r := frame.NewReader(h.conn, frame.Options{SessionID: testSession})
	for {
		env, err := r.Read()
		if err != nil {
			h.readErr = err
			return
		}
		h.frames <- env
	}
}

func (h *harness) send(correlation uint64, env *workerv1.WorkerEnvelope) {
	h.t.Helper()
	h.sendSeq++
	env.ProtocolVersion = protocol.Version
	if env.SessionId == "" {
		env.SessionId = testSession
	}
	env.Sequence = h.sendSeq
	env.CorrelationId = correlation
	if err := h.w.Write(env); err != nil {
		h.t.Fatalf("send: %v", err)
	}
}

func (h *harness) hello(interval time.Duration, mut ...func(*workerv1.GatewayHello)) {
	h.t.Helper()
	gh := &workerv1.GatewayHello{
		ProtocolVersion:   protocol.Version,
		Nonce:             testNonce,
		HeartbeatInterval: durationpb.New(interval),
		MaxFrameBytes:     1 << 20,
		GatewayVersion:    "test",
		// Credit for more than any test sends: the tests that are about
		// credit set their own.
		EventCredit:      1 << 30,
		EventCreditBytes: 1 << 40,
	}
	for _, m := range mut {
		m(gh)
	}
	h.send(0, &workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_GatewayHello{GatewayHello: gh}})
}

// recv reads the next frame and checks the worker's sequence numbering.
func (h *harness) recv() *workerv1.WorkerEnvelope {
	h.t.Helper()
	env, ok := h.tryRecv(10 * time.Second)
	if !ok {
		h.t.Fatalf("recv: no frame within 10s (read error: %v)", h.err())
	}
	return env
}

// tryRecv waits up to d for a frame; false on timeout or end of stream.
func (h *harness) tryRecv(d time.Duration) (*workerv1.WorkerEnvelope, bool) {
	h.t.Helper()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case env, ok := <-h.frames:
		if !ok {
			return nil, false
		}
		h.recvSeq++
		if env.GetSequence() != h.recvSeq {
			h.t.Fatalf("envelope sequence %d, want %d", env.GetSequence(), h.recvSeq)
		}
		return env, true
	case <-t.C:
		return nil, false
	}
}

// err is the reader's error once the stream has ended.
func (h *harness) err() error {
	select {
	case <-h.readDone:
		return h.readErr
	default:
		return nil
	}
}

// next reads the next frame that is not a heartbeat.
func (h *harness) next() *workerv1.WorkerEnvelope {
	h.t.Helper()
	for {
		env := h.recv()
		if env.GetHeartbeat() == nil {
			return env
		}
	}
}

// ready performs a successful handshake with a heartbeat interval.
func (h *harness) ready(interval time.Duration, mut ...func(*workerv1.GatewayHello)) *workerv1.WorkerReady {
	h.t.Helper()
	h.hello(interval, mut...)
	wh := h.next().GetWorkerHello()
	if wh == nil {
		h.t.Fatal("no WorkerHello")
	}
	h.readyPID = wh.GetPid()
	if !bytes.Equal(wh.GetNonce(), testNonce) || wh.GetProtocolVersion() != protocol.Version || (h.inProcess && wh.GetPid() != int32(os.Getpid())) {
		h.t.Fatalf("bad WorkerHello: version %d pid %d", wh.GetProtocolVersion(), wh.GetPid())
	}
	r := h.next().GetWorkerReady()
	if r == nil {
		h.t.Fatal("no WorkerReady")
	}
	return r
}

func (h *harness) command(correlation uint64, cmd *mxgatewayv1.Command) {
	h.t.Helper()
	h.send(correlation, &workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_Command{Command: &workerv1.WorkerCommand{
		Command: cmd, Timeout: durationpb.New(30 * time.Second),
	}}})
}

// call sends a command and returns its reply, collecting events that
// arrive before it.
func (h *harness) call(correlation uint64, cmd *mxgatewayv1.Command, events *[]*mxgatewayv1.Event) *mxgatewayv1.Reply {
	h.t.Helper()
	h.command(correlation, cmd)
	for {
		env := h.next()
		switch b := env.GetBody().(type) {
		case *workerv1.WorkerEnvelope_Event:
			if events != nil {
				*events = append(*events, b.Event.GetEvent())
			}
		case *workerv1.WorkerEnvelope_CommandReply:
			if env.GetCorrelationId() != correlation {
				h.t.Fatalf("reply correlation %d, want %d", env.GetCorrelationId(), correlation)
			}
			return b.CommandReply.GetReply()
		default:
			h.t.Fatalf("unexpected %s while waiting for reply %d", bodyName(env), correlation)
		}
	}
}

// event reads frames until an event arrives.
func (h *harness) event() *mxgatewayv1.Event {
	h.t.Helper()
	env := h.next()
	ev := env.GetEvent().GetEvent()
	if ev == nil {
		h.t.Fatalf("expected an event, got %s", bodyName(env))
	}
	return ev
}

func (h *harness) shutdown() *workerv1.ShutdownAck {
	h.t.Helper()
	h.send(0, &workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_Shutdown{Shutdown: &workerv1.Shutdown{
		Timeout: durationpb.New(5 * time.Second), Reason: "test",
	}}})
	for {
		env := h.next()
		if ack := env.GetShutdownAck(); ack != nil {
			return ack
		}
		if env.GetFault() != nil {
			h.t.Fatalf("fault instead of ack: %v", env.GetFault().GetMessage())
		}
	}
}

func (h *harness) exitCode() int {
	h.t.Helper()
	select {
	case c := <-h.code:
		h.code <- c
		return c
	case <-time.After(10 * time.Second):
		h.t.Fatal("worker did not exit")
		return -1
	}
}

// expectFault reads until a Fault arrives and returns it.
func (h *harness) expectFault() *workerv1.Fault {
	h.t.Helper()
	for {
		env := h.next()
		if f := env.GetFault(); f != nil {
			return f
		}
	}
}

// expectEOF asserts the worker closed the connection, allowing only
// heartbeats and events before the end.
func (h *harness) expectEOF() {
	h.t.Helper()
	for {
		env, ok := h.tryRecv(10 * time.Second)
		if !ok {
			break
		}
		if env.GetHeartbeat() == nil && env.GetEvent() == nil {
			h.t.Fatalf("unexpected %s after the end", bodyName(env))
		}
	}
	select {
	case <-h.readDone:
	case <-time.After(time.Second):
		h.t.Fatal("connection still open")
	}
	if frame.CodeOf(h.readErr) != frame.CodeEndOfStream {
		h.t.Fatalf("want end of stream, got %v", h.readErr)
	}
}

// syncBuffer collects logs from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var _ io.Writer = (*syncBuffer)(nil)
