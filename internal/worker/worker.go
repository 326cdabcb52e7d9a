package worker

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/buildinfo"
	"github.com/mxgateway/mxgateway/internal/frame"
	"github.com/mxgateway/mxgateway/internal/itemtable"
	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

// Defaults of Config.
const (
	DefaultEventQueueSize   = protocol.DefaultWorkerQueueEvents
	DefaultEventQueueBytes  = protocol.DefaultWorkerQueueBytes
	DefaultCommandQueueSize = protocol.CommandQueueSize
	// DefaultReadTimeout is how long ReadBulk waits for a transient item's
	// first OnDataChange when the command does not say (sized for the 3-8 s
	// first-bind latency of a real Galaxy).
	DefaultReadTimeout = 10 * time.Second
	// faultFlushWait bounds how long a faulting worker waits for the pipe
	// to take its Fault frame.
	faultFlushWait = time.Second
)

// DialFunc connects to the gateway's endpoint (a Unix socket path on Linux,
// a named pipe name on Windows).
type DialFunc func(ctx context.Context, endpoint string) (net.Conn, error)

// Config configures Run. SessionID, Endpoint, Nonce, Backend and Dial are
// required.
type Config struct {
	// SessionID is the session this worker serves; every envelope carries it.
	SessionID string
	// Endpoint is where the gateway listens.
	Endpoint string
	// ProtocolVersion is the version the gateway asked for on the command
	// line; 0 means protocol.Version. Any other value ends the worker with
	// protocol.ExitVersionMismatch.
	ProtocolVersion uint32
	// Nonce is where the one-time nonce comes from (the process's stdin): one
	// line of 2*protocol.NonceBytes lowercase hex characters.
	Nonce io.Reader
	// Backend is what the worker drives. Run calls Open after the handshake
	// and Close on every way out once Open succeeded.
	Backend backend.Backend
	// Dial connects to Endpoint.
	Dial DialFunc
	// Logger receives the worker's logs; nil discards them.
	Logger *slog.Logger
	// EventQueueSize bounds the events queued for the gateway; default
	// DefaultEventQueueSize. A GatewayHello that announces a bound
	// (max_queued_events) replaces it. Overflow faults the worker.
	EventQueueSize int
	// EventQueueBytes bounds the encoded bytes of the events queued for the
	// gateway; default DefaultEventQueueBytes, replaced by the GatewayHello's
	// max_queued_event_bytes when set. Overflow faults the worker.
	EventQueueBytes int64
	// CommandQueueSize bounds the commands queued behind the running one;
	// default DefaultCommandQueueSize. Overflow is a protocol fault.
	CommandQueueSize int
	// HandshakeTimeout bounds dialling and the hello exchange; default
	// protocol.DefaultStartupTimeout.
	HandshakeTimeout time.Duration
	// CloseTimeout bounds the backend teardown and the final flush when the
	// worker stops without a Shutdown (fault, lost connection); default
	// protocol.DefaultShutdownTimeout.
	CloseTimeout time.Duration
	// ReadTimeout is the default ReadBulk first-value wait; default
	// DefaultReadTimeout.
	ReadTimeout time.Duration
	// Exiter, when set, is the Exiter whose Exit the backend was given (the
	// simulator's crash fault); Run connects it to the running worker so that
	// an exit requested by the backend first flushes the reply and events
	// already queued. Run itself never exits the process.
	Exiter *Exiter

	// ready, when set, is called once WorkerReady is sent, before the
	// start-up garbage is returned to the OS: Main's end of the relaxed
	// start-up collector (relaxStartupGC).
	ready func()
}

func (c *Config) setDefaults() {
	if c.ProtocolVersion == 0 {
		c.ProtocolVersion = protocol.Version
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.EventQueueSize <= 0 {
		c.EventQueueSize = DefaultEventQueueSize
	}
	if c.EventQueueBytes <= 0 {
		c.EventQueueBytes = DefaultEventQueueBytes
	}
	if c.CommandQueueSize <= 0 {
		c.CommandQueueSize = DefaultCommandQueueSize
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = protocol.DefaultStartupTimeout
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = protocol.DefaultShutdownTimeout
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.SessionID == "" {
		errs = append(errs, errors.New("worker: session id is required"))
	}
	if c.Endpoint == "" {
		errs = append(errs, errors.New("worker: endpoint is required"))
	}
	if c.Nonce == nil {
		errs = append(errs, errors.New("worker: nonce reader is required"))
	}
	if c.Backend == nil {
		errs = append(errs, errors.New("worker: backend is required"))
	}
	if c.Dial == nil {
		errs = append(errs, errors.New("worker: dial func is required"))
	}
	return errors.Join(errs...)
}

// Errors of the nonce bootstrap.
var (
	ErrNoNonce  = errors.New("worker: no nonce on stdin")
	ErrBadNonce = errors.New("worker: malformed nonce on stdin")
)

// ReadNonce reads the one-time nonce: one line of 2*protocol.NonceBytes
// lowercase hex characters, ended by "\n" (or "\r\n", or the end of input).
// It reads no further than that line.
func ReadNonce(r io.Reader) ([]byte, error) {
	const want = 2 * protocol.NonceBytes
	line := make([]byte, 0, want+2)
	var b [1]byte
	for len(line) <= want+1 {
		n, err := r.Read(b[:])
		if n == 1 {
			if b[0] == '\n' {
				break
			}
			line = append(line, b[0])
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNoNonce, err)
		}
	}
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if len(line) == 0 {
		return nil, ErrNoNonce
	}
	if len(line) != want {
		return nil, fmt.Errorf("%w: want %d hex characters, got %d", ErrBadNonce, want, len(line))
	}
	for _, c := range line {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return nil, fmt.Errorf("%w: not lowercase hex", ErrBadNonce)
		}
	}
	nonce := make([]byte, protocol.NonceBytes)
	if _, err := hex.Decode(nonce, line); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadNonce, err)
	}
	return nonce, nil
}

// Run runs the worker until the gateway shuts it down, the connection ends
// or something fatal happens, and returns the process exit code (one of the
// protocol.Exit* constants). It never calls os.Exit.
func Run(ctx context.Context, cfg Config) (code int) {
	cfg.setDefaults()
	log := cfg.Logger.With(logging.KeySession, cfg.SessionID)
	defer func() {
		if r := recover(); r != nil {
			log.Error("worker: panic", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			code = protocol.ExitInternal
		}
	}()
	if err := cfg.validate(); err != nil {
		log.Error("worker: bad configuration", logging.KeyErr, err)
		return protocol.ExitBadArguments
	}
	if cfg.ProtocolVersion != protocol.Version {
		log.Error("worker: protocol version not spoken", "requested", cfg.ProtocolVersion, "supported", protocol.Version)
		return protocol.ExitVersionMismatch
	}
	nonce, err := ReadNonce(cfg.Nonce)
	if err != nil {
		log.Error("worker: bootstrap failed", logging.KeyErr, err)
		return protocol.ExitNoNonce
	}
	conn, err := dial(ctx, cfg, log)
	if err != nil {
		log.Error("worker: cannot reach the gateway", "endpoint", cfg.Endpoint, logging.KeyErr, err)
		return protocol.ExitHandshakeFailed
	}
	defer conn.Close()

	w := newWorker(cfg, log, conn)
	if cfg.Exiter != nil {
		cfg.Exiter.attach(w)
		defer cfg.Exiter.detach()
	}
	return w.run(ctx, nonce)
}

// dial connects with a bounded retry: the gateway creates its listener before
// it starts the worker, so a failure is normally final, but a short retry
// rides out a slow file system or pipe server.
func dial(ctx context.Context, cfg Config, log *slog.Logger) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
	defer cancel()
	const attempts = 8
	wait := 25 * time.Millisecond
	var last error
	for i := 0; i < attempts; i++ {
		conn, err := cfg.Dial(ctx, cfg.Endpoint)
		if err == nil {
			return conn, nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
		log.Debug("worker: dial failed, retrying", logging.KeyErr, err, "attempt", i+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("worker: dial: %w (last error: %w)", ctx.Err(), last)
		case <-t.C:
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
	return nil, fmt.Errorf("worker: dial: %w", last)
}

// worker is one run of the protocol.
type worker struct {
	cfg  Config
	log  *slog.Logger
	be   backend.Backend
	conn net.Conn

	heartbeat time.Duration
	maxFrame  int
	// pc numbers and checks every envelope both ways: the handshake uses
	// it, then the writer goroutine sends and the reader goroutine
	// receives on it.
	pc *frame.Conn

	out  *outbox
	cmds *cmdQueue

	// table is the authoritative item table: the command goroutine
	// applies every MXAccess call to it; the sink reads it.
	table *itemtable.Table

	// mu guards the event sequence, the cached values and the transient
	// reads. Lock order: worker.mu → itemtable.Table.mu, worker.mu →
	// outbox.mu.
	mu        sync.Mutex
	eventSeq  uint64
	cache     map[itemtable.Key]cached
	transient map[itemtable.Key]chan *mxgatewayv1.OnDataChange
	encChunk  []byte // the sink's encodings are carved from it (sink.go)

	endMu    sync.Mutex
	end      *ending
	stopping chan struct{} // closed by the first terminate
}

// ending is why the worker stops.
type ending struct {
	code     int
	reason   string
	fault    *workerv1.Fault    // sent before exiting, when set
	shutdown *workerv1.Shutdown // set for an orderly Shutdown
}

func newWorker(cfg Config, log *slog.Logger, conn net.Conn) *worker {
	cfg.setDefaults()
	return &worker{
		cfg:       cfg,
		log:       log,
		be:        cfg.Backend,
		conn:      conn,
		pc:        frame.NewConn(conn, conn, frame.ConnOptions{SessionID: cfg.SessionID, WriteBufferBytes: 64 << 10}),
		heartbeat: protocol.DefaultHeartbeatInterval,
		maxFrame:  protocol.DefaultMaxFrameBytes,
		out:       newOutbox(cfg.EventQueueSize, cfg.EventQueueBytes),
		cmds:      newCmdQueue(cfg.CommandQueueSize),
		table:     itemtable.New(),
		cache:     make(map[itemtable.Key]cached),
		transient: make(map[itemtable.Key]chan *mxgatewayv1.OnDataChange),
		stopping:  make(chan struct{}),
	}
}

// terminate records why the worker stops; the first call wins. It never
// blocks, so the event sink may call it.
func (w *worker) terminate(e ending) {
	w.endMu.Lock()
	if w.end != nil {
		w.endMu.Unlock()
		return
	}
	w.end = &e
	close(w.stopping)
	w.endMu.Unlock()

	if e.fault != nil {
		w.out.setFault(e.fault)
	}
	if e.shutdown != nil {
		// Queued commands will never run: answer them so nobody waits.
		for _, c := range w.cmds.close() {
			w.replyNotRun(c, "worker: shutting down")
		}
	} else {
		w.cmds.close()
	}
}

func (w *worker) ending() *ending {
	w.endMu.Lock()
	defer w.endMu.Unlock()
	return w.end
}

func (w *worker) fatal(code int, fc workerv1.FaultCode, msg string) {
	w.terminate(ending{code: code, reason: msg, fault: &workerv1.Fault{Code: fc, Message: msg}})
}

// handshake runs GatewayHello → WorkerHello. It writes directly to the
// connection; the writer goroutine does not exist yet.
func (w *worker) handshake(nonce []byte) (code int, ok bool) {
	_ = w.conn.SetDeadline(time.Now().Add(w.cfg.HandshakeTimeout))
	defer func() { _ = w.conn.SetDeadline(time.Time{}) }()

	// The exchange and its checks are frame.Conn's (Accept, Answer); what
	// a failure means for the worker is decided here.
	hello, err := w.pc.Accept(nonce)
	var he *frame.HandshakeError
	switch {
	case err == nil:
	case errors.As(err, &he):
		code := protocol.ExitProtocolError
		switch he.Reason {
		case frame.HandshakeVersion:
			code = protocol.ExitVersionMismatch
		case frame.HandshakeNonce:
			code = protocol.ExitHandshakeFailed
		}
		msg := "worker: " + err.Error()
		w.handshakeFault(workerv1.FaultCode_FAULT_CODE_PROTOCOL, msg)
		w.log.Error("worker: handshake refused", logging.KeyErr, err)
		return code, false
	case frame.CodeOf(err) == frame.CodeVersionMismatch:
		w.handshakeFault(workerv1.FaultCode_FAULT_CODE_PROTOCOL, fmt.Sprintf("worker: protocol version mismatch: %v; worker speaks %d", err, protocol.Version))
		w.log.Error("worker: gateway speaks another protocol version", logging.KeyErr, err)
		return protocol.ExitVersionMismatch, false
	case frame.CodeOf(err) != 0 && frame.CodeOf(err) != frame.CodeEndOfStream && frame.CodeOf(err) != frame.CodeTruncated:
		w.handshakeFault(workerv1.FaultCode_FAULT_CODE_PROTOCOL, "worker: bad GatewayHello: "+err.Error())
		w.log.Error("worker: bad GatewayHello", logging.KeyErr, err)
		return protocol.ExitProtocolError, false
	default:
		w.log.Error("worker: no GatewayHello", logging.KeyErr, err)
		return protocol.ExitHandshakeFailed, false
	}
	if d := hello.GetHeartbeatInterval(); d != nil && d.AsDuration() > 0 {
		w.heartbeat = d.AsDuration()
	}
	if n := hello.GetMaxFrameBytes(); n > 0 {
		w.maxFrame = int(n) // Accept applied it to the connection, both ways
	}
	// The gateway sizes the burst we buffer for it; the loop has not
	// started, so nothing is queued yet.
	w.out.setLimits(int(hello.GetMaxQueuedEvents()), int64(hello.GetMaxQueuedEventBytes()))
	// What the gateway has room for (Accept checked it is positive).
	w.out.setCredit(hello.GetEventCredit(), hello.GetEventCreditBytes())

	if err := w.pc.Answer(&workerv1.WorkerHello{Pid: int32(os.Getpid()), WorkerVersion: buildinfo.Get().Version}); err != nil {
		w.log.Error("worker: cannot send WorkerHello", logging.KeyErr, err)
		return protocol.ExitHandshakeFailed, false
	}
	w.log.Info("worker: handshake done", "gateway_version", hello.GetGatewayVersion(),
		"heartbeat_interval", w.heartbeat.String(), "max_frame_bytes", w.maxFrame,
		"max_queued_events", w.out.limit, "max_queued_event_bytes", w.out.limitBytes)
	return 0, true
}

// handshakeFault sends a Fault during the handshake, best effort.
func (w *worker) handshakeFault(code workerv1.FaultCode, msg string) {
	_ = w.conn.SetWriteDeadline(time.Now().Add(time.Second))
	if err := w.pc.SendFault(code, msg); err != nil {
		w.log.Debug("worker: cannot send fault", logging.KeyErr, err)
	}
}

// run performs the handshake, opens the backend and runs the loop.
func (w *worker) run(ctx context.Context, nonce []byte) int {
	if code, ok := w.handshake(nonce); !ok {
		return code
	}

	info, err := w.openBackend(ctx)
	if err != nil {
		msg := "worker: backend init failed: " + err.Error()
		w.log.Error("worker: backend init failed", logging.KeyErr, err)
		w.handshakeFault(workerv1.FaultCode_FAULT_CODE_BACKEND_INIT, msg)
		return protocol.ExitBackendInit
	}
	if info == nil {
		info = &mxgatewayv1.BackendInfo{}
	}
	if info.GetWorkerVersion() == "" {
		info.WorkerVersion = buildinfo.Get().Version
	}
	if err := w.pc.SendReady(&workerv1.WorkerReady{Backend: info, AlarmConsumer: w.hasAlarmConsumer()}); err != nil {
		w.log.Error("worker: cannot send WorkerReady", logging.KeyErr, err)
		w.closeBackend(w.cfg.CloseTimeout)
		return protocol.ExitConnectionLost
	}
	w.log.Info("worker: ready", "backend", info.GetKind(), "simulated", info.GetSimulated(),
		"interface_level", info.GetInterfaceLevel(), "model", info.GetModelName())
	// What the start left behind (the model as the runtime sent it, the
	// handshake) is garbage from here on: collect it and give its pages
	// back now rather than when the scavenger gets to them, since an idle
	// worker may wait a long time (a spare) and a gateway runs hundreds.
	// Done before the loop, not beside it: a heap this small is collected
	// in about a millisecond, and nothing outlives the worker's run. The
	// collector is back to its settings first (it was off during a
	// simulator's start-up: see relaxStartupGC).
	if w.cfg.ready != nil {
		w.cfg.ready()
	}
	debug.FreeOSMemory()
	return w.loop(ctx)
}

// openBackend opens the backend, turning a panic into an error.
func (w *worker) openBackend(ctx context.Context) (info *mxgatewayv1.BackendInfo, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("worker: panic in backend Open: %v", r)
		}
	}()
	return w.be.Open(ctx, backend.SinkFunc(w.sink))
}

// closeBackend calls Close outside the loop (when the loop never started),
// bounded by d.
func (w *worker) closeBackend(d time.Duration) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { _ = recover() }()
		for _, warn := range w.be.Close() {
			w.log.Warn("worker: teardown", "warning", warn)
		}
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		w.log.Error("worker: backend did not close in time", "timeout", d.String())
	}
}

// loop runs the protocol after WorkerReady and returns the exit code.
func (w *worker) loop(ctx context.Context) int {
	hbCtx, hbCancel := context.WithCancel(ctx)
	defer hbCancel()

	var wg sync.WaitGroup
	writerDone := make(chan error, 1)
	closed := make(chan []string, 1) // the command goroutine's teardown warnings
	cmdDone := make(chan struct{})
	hbDone := make(chan struct{})

	wg.Add(2)
	go func() { defer wg.Done(); writerDone <- w.writeLoop() }()
	go func() { defer wg.Done(); w.readLoop() }()
	go func() { defer close(cmdDone); w.commandLoop(closed) }()
	go func() { defer close(hbDone); w.heartbeatLoop(hbCtx) }()

	select {
	case <-w.stopping:
	case <-ctx.Done():
		w.terminate(ending{code: protocol.ExitConnectionLost, reason: "worker: context cancelled"})
	}
	hbCancel()
	end := w.ending()
	if end.code != protocol.ExitOK || end.shutdown == nil {
		w.log.Info("worker: stopping", "reason", end.reason, "exit_code", end.code)
	}

	// Wait for the running command to finish and the backend to close.
	timeout := w.cfg.CloseTimeout
	if end.shutdown != nil {
		if d := end.shutdown.GetTimeout(); d != nil && d.AsDuration() > 0 {
			// Leave the gateway a margin to receive the ack before its kill.
			timeout = d.AsDuration() * 9 / 10
		}
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var warnings []string
	teardownDone := false
	select {
	case warnings = <-closed:
		teardownDone = true
	case <-deadline.C:
		w.log.Error("worker: backend teardown did not finish in time", "timeout", timeout.String())
	}
	for _, warn := range warnings {
		w.log.Warn("worker: teardown", "warning", warn)
	}

	code := end.code
	var ack *workerv1.WorkerEnvelope
	if end.shutdown != nil && teardownDone {
		ack = &workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_ShutdownAck{
			ShutdownAck: &workerv1.ShutdownAck{TeardownWarnings: warnings}}}
	} else if end.shutdown != nil {
		code = protocol.ExitInternal
	}
	w.out.finish(ack) // nothing follows the ack

	if end.fault != nil {
		// A pipe the gateway stopped reading (the overflow's cause) takes
		// the Fault within a moment or never: do not wait the whole close
		// timeout for it.
		_ = w.conn.SetWriteDeadline(time.Now().Add(faultFlushWait))
	}
	var werr error
	flush := time.NewTimer(w.cfg.CloseTimeout)
	defer flush.Stop()
	select {
	case werr = <-writerDone:
	case <-flush.C:
		werr = errors.New("worker: flush timed out")
	}
	if end.shutdown != nil && code == protocol.ExitOK && werr != nil {
		w.log.Error("worker: could not deliver ShutdownAck", logging.KeyErr, werr)
		code = protocol.ExitConnectionLost
	}
	// Closing the connection ends the reader (and a writer still blocked).
	_ = w.conn.Close()
	wg.Wait()
	waitBounded(hbDone, time.Second, w.log, "heartbeat")
	if teardownDone {
		<-cmdDone
	}
	if end.shutdown != nil && code == protocol.ExitOK {
		w.log.Info("worker: shut down", "reason", end.shutdown.GetReason(), "teardown_warnings", len(warnings))
	}
	return code
}

func waitBounded(ch <-chan struct{}, d time.Duration, log *slog.Logger, what string) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
		log.Error("worker: goroutine did not stop", "goroutine", what)
	}
}

// replyCancelled answers a command that never ran.
func (w *worker) replyCancelled(correlation uint64, msg string) {
	w.out.push(&workerv1.WorkerEnvelope{
		CorrelationId: correlation,
		Body: &workerv1.WorkerEnvelope_CommandReply{CommandReply: &workerv1.WorkerCommandReply{
			Reply:    &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_CANCELLED, Message: msg},
			Duration: durationpb.New(0),
		}},
	})
}
