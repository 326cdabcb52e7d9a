package workerclient

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/buildinfo"
	"github.com/mxgateway/mxgateway/internal/frame"
	"github.com/mxgateway/mxgateway/internal/itemtable"
	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

// State is the lifecycle state of a Client.
type State int

// Client states. Closed and Faulted are terminal.
const (
	StateCreated State = iota
	StateHandshaking
	StateReady
	StateClosing
	StateClosed
	StateFaulted
)

var stateNames = [...]string{"created", "handshaking", "ready", "closing", "closed", "faulted"}

// String names the state.
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// terminal reports whether s is Closed or Faulted.
func (s State) terminal() bool { return s == StateClosed || s == StateFaulted }

// Defaults of Options.
const (
	DefaultEventBuffer      = protocol.DefaultGatewayQueueEvents
	DefaultEventBufferBytes = protocol.DefaultGatewayQueueBytes
	// DefaultCommandTimeout applies when Invoke gets a timeout <= 0.
	DefaultCommandTimeout = 30 * time.Second
	// cancelWriteWait bounds the write of a Cancel frame on a full pipe; a
	// Cancel that cannot start within it is dropped (best effort).
	cancelWriteWait = time.Second
	// goneWait bounds how long the first sign that the worker is gone (the
	// pipe's end, or the process exit) waits for the other: the exit
	// status makes the reason precise, and the pipe may still hold frames
	// the worker wrote before it died (a ShutdownAck, a Fault, replies).
	goneWait = 500 * time.Millisecond
)

// Options configure a Client. The zero value uses the defaults.
type Options struct {
	// HeartbeatInterval is announced to the worker in GatewayHello; default
	// protocol.DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// HeartbeatGrace is how long the worker may stay silent; default
	// protocol.DefaultHeartbeatGrace.
	HeartbeatGrace time.Duration
	// HeartbeatCeiling is how long the worker may stay silent while at least
	// one command is pending (a long backend call may block the worker's
	// heartbeats); default protocol.DefaultHeartbeatCeiling, and never less
	// than HeartbeatGrace.
	HeartbeatCeiling time.Duration
	// EventBuffer bounds the events queued between the pipe and
	// NextEvents; default DefaultEventBuffer.
	EventBuffer int
	// EventBufferBytes bounds the frame bytes of those events; default
	// DefaultEventBufferBytes. While either bound is reached the read loop
	// stops reading the pipe (flow control): the pipe fills and the worker
	// buffers up to WorkerQueueEvents and WorkerQueueBytes.
	EventBufferBytes int64
	// WorkerQueueEvents and WorkerQueueBytes bound the worker's outbound
	// event queue; they are announced in GatewayHello. Default
	// protocol.DefaultWorkerQueueEvents and protocol.DefaultWorkerQueueBytes.
	// A worker past them faults with FAULT_CODE_EVENT_OVERFLOW: the gateway
	// did not keep up at all.
	WorkerQueueEvents int
	WorkerQueueBytes  int64
	// EventStallTimeout, when positive, is how long the read loop waits for
	// room in a full event queue before faulting with ErrEventOverflow. The
	// default, 0, waits as long as the queue's reader lives (flow control).
	EventStallTimeout time.Duration
	// MaxFrameBytes limits frames both ways and is announced in
	// GatewayHello; default protocol.DefaultMaxFrameBytes.
	MaxFrameBytes int
	// GatewayVersion is announced in GatewayHello; default the build version.
	GatewayVersion string
	// PID is the process id the supervisor started (and verified as the
	// pipe's peer). When set, WorkerHello must report the same pid; when 0
	// the client takes the pid from WorkerHello.
	PID int
	// Logger receives the client's logs; nil discards them.
	Logger *slog.Logger
	// Exited, when set, is closed by the owner of the worker process when
	// the process has exited. A pending command then fails with
	// ErrWorkerGone, and a clean Shutdown waits for it.
	Exited <-chan struct{}
	// ExitStatus, when set, describes how the process exited ("exit status
	// 3"); it is called only after Exited is closed.
	ExitStatus func() string
	// ExitCode, when set, is the process's exit code (-1 when a signal
	// ended it); it is called only after Exited is closed. A worker that
	// exited with protocol.ExitEventOverflow overflowed even when its Fault
	// could not reach the pipe (flow control had filled it).
	ExitCode func() int
	// Kill, when set, kills the worker process (and its group or job). The
	// client calls it at most once, on any fault and on Kill.
	Kill func()
}

func (o *Options) setDefaults() {
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = protocol.DefaultHeartbeatInterval
	}
	if o.HeartbeatGrace <= 0 {
		o.HeartbeatGrace = protocol.DefaultHeartbeatGrace
	}
	if o.HeartbeatCeiling <= 0 {
		o.HeartbeatCeiling = protocol.DefaultHeartbeatCeiling
	}
	o.HeartbeatCeiling = max(o.HeartbeatCeiling, o.HeartbeatGrace)
	if o.EventBuffer <= 0 {
		o.EventBuffer = DefaultEventBuffer
	}
	if o.EventBufferBytes <= 0 {
		o.EventBufferBytes = DefaultEventBufferBytes
	}
	if o.WorkerQueueEvents <= 0 {
		o.WorkerQueueEvents = protocol.DefaultWorkerQueueEvents
	}
	if o.WorkerQueueBytes <= 0 {
		o.WorkerQueueBytes = protocol.DefaultWorkerQueueBytes
	}
	if o.MaxFrameBytes <= 0 {
		o.MaxFrameBytes = protocol.DefaultMaxFrameBytes
	}
	if o.GatewayVersion == "" {
		o.GatewayVersion = buildinfo.Get().Version
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// result completes one pending command.
type result struct {
	reply *mxgatewayv1.Reply
	err   error
}

type pendingCmd struct {
	kind *catalog.Kind
	// cmd is kept while the reply may change the item table, so that the
	// reply is applied even after the caller stopped waiting.
	cmd *mxgatewayv1.Command
	ch  chan result // buffered 1; written once, by whoever removes the entry
	// abandoned is set when the caller stopped waiting for a command the
	// worker got: the entry stays until the reply (or the terminal state)
	// so the reply still updates the item table.
	abandoned bool
}

// Client is the gateway's end of one worker connection. Its methods are safe
// for concurrent use.
type Client struct {
	conn      net.Conn
	sessionID string
	nonce     []byte
	opts      Options
	log       *slog.Logger

	// pc numbers and checks every envelope both ways: Start uses it, then
	// the read loop receives on it and senders send on it under the write
	// lock.
	pc *frame.Conn

	// wlock is the write lock: after the handshake every outbound
	// envelope is numbered and written by its sender while holding it. A
	// channel with room for one token, so that waiting for it can give up.
	wlock   chan struct{}
	wbroken bool // a frame was cut short: write nothing more; guarded by wlock

	// cancels holds correlation ids whose Cancel frame is still to be
	// written: whoever holds the write lock writes them before releasing
	// it, so that abandoning a command never waits for the pipe.
	cancelMu sync.Mutex
	cancels  []uint64

	// items mirrors the worker's item table: the read loop applies every
	// reply, in the order the worker ran the commands, before the caller
	// (if still waiting) sees it.
	items *itemtable.Table

	events *eventQueue    // filled by the read loop; closed by run
	stop   chan struct{}  // closed on the terminal transition
	done   chan struct{}  // closed when every goroutine has ended
	loops  sync.WaitGroup // the read loop

	killOnce sync.Once

	mu            sync.Mutex
	state         State
	err           error
	started       bool // loops running; run owns closing events and done
	pid           int
	backend       *mxgatewayv1.BackendInfo
	pending       map[uint64]*pendingCmd
	abandoned     int // entries of pending whose caller stopped waiting
	lastCorr      uint64
	lastHeartbeat time.Time
	ceilingLogged bool
	eventsBlocked bool
	ackReceived   bool
	warnings      []string

	// The read loop reports the pipe's end (with its error) and the
	// ShutdownAck to run, which alone decides what they mean together
	// with the process exit.
	eof    chan struct{} // closed by the read loop at the pipe's end
	eofErr error
	acked  chan struct{} // closed by the read loop on ShutdownAck
}

// New returns a Client in state Created for conn, which must already be
// connected to the worker. nonce is the raw one-time nonce written to the
// worker's stdin. New starts nothing; call Start.
func New(conn net.Conn, sessionID string, nonce []byte, opts Options) (*Client, error) {
	var errs []error
	if conn == nil {
		errs = append(errs, errors.New("workerclient: conn is required"))
	}
	if sessionID == "" {
		errs = append(errs, errors.New("workerclient: session id is required"))
	}
	if len(nonce) == 0 {
		errs = append(errs, errors.New("workerclient: nonce is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	opts.setDefaults()
	return &Client{
		conn:      conn,
		sessionID: sessionID,
		nonce:     append([]byte(nil), nonce...),
		opts:      opts,
		log:       opts.Logger.With(logging.KeySession, sessionID),
		pc:        frame.NewConn(conn, conn, frame.ConnOptions{SessionID: sessionID, MaxFrameBytes: opts.MaxFrameBytes}),
		wlock:     make(chan struct{}, 1),
		events:    newEventQueue(opts.EventBuffer, opts.EventBufferBytes),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		eof:       make(chan struct{}),
		acked:     make(chan struct{}),
		pid:       opts.PID,
		pending:   make(map[uint64]*pendingCmd),
		items:     itemtable.New(),
	}, nil
}

// PID returns the worker's process id (0 before the handshake when the
// supervisor did not supply it).
func (c *Client) PID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pid
}

// Backend returns what the worker drives, as reported in WorkerReady; nil
// before Ready.
func (c *Client) Backend() *mxgatewayv1.BackendInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.backend
}

// Items returns the gateway's mirror of the worker's item table. It holds
// what the worker did, including the effect of commands whose caller timed
// out or was cancelled: their late replies are applied in worker order. A
// reply is applied before Invoke returns it.
func (c *Client) Items() *itemtable.Table { return c.items }

// Unanswered returns how many commands the worker got and has not answered
// whose callers stopped waiting (timed out, cancelled); they still run.
func (c *Client) Unanswered() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.abandoned
}

// LastHeartbeat is when the worker was last heard from (a heartbeat, or
// any frame that counts as one).
func (c *Client) LastHeartbeat() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastHeartbeat
}

// State returns the current state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// NextEvents appends the next worker events, in pipe order, to dst, each
// stamped with the session id and the gateway receive time and sized by its
// frame. It waits while none is queued; ok is false after the terminal
// state, once every event was handed out. It has one intended caller.
func (c *Client) NextEvents(dst []*protocol.Event) (_ []*protocol.Event, ok bool) {
	return c.events.take(dst)
}

// QueuedEvents reports the events (and their frame bytes) received from the
// worker and not yet taken by NextEvents.
func (c *Client) QueuedEvents() (events int, bytes int64) { return c.events.depth() }

// Done is closed when the client reaches Closed or Faulted and its
// goroutines have ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns nil while the client is not terminal and after a clean close;
// otherwise the terminal reason.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Start runs the handshake: GatewayHello → WorkerHello (protocol version,
// nonce in constant time, pid) → WorkerReady. It returns once the client is
// Ready, or with an error wrapping ErrHandshake after faulting the client.
// ctx bounds the whole handshake, including the worker's backend
// initialisation.
func (c *Client) Start(ctx context.Context) error {
	c.mu.Lock()
	if c.state != StateCreated {
		st, err := c.state, c.err
		c.mu.Unlock()
		if err != nil {
			return err
		}
		return fmt.Errorf("%w: start in state %v", ErrNotReady, st)
	}
	c.state = StateHandshaking
	c.mu.Unlock()

	ready, err := c.handshake(ctx)
	if err != nil {
		c.terminate(StateFaulted, err)
		return c.Err()
	}

	c.mu.Lock()
	if c.state != StateHandshaking { // Kill during the handshake
		err := c.err
		c.mu.Unlock()
		return err
	}
	c.state = StateReady
	c.started = true
	c.backend = ready.GetBackend()
	c.lastHeartbeat = time.Now()
	pid := c.pid
	c.mu.Unlock()

	c.loops.Add(1)
	go c.readLoop()
	go c.run()
	c.log.Info("workerclient: ready", logging.KeyWorkerPID, pid,
		"backend", ready.GetBackend().GetKind(), "worker_version", ready.GetBackend().GetWorkerVersion())
	return nil
}

// handshake performs the exchange on the connection directly; the loops do
// not exist yet, so it is the only reader and writer.
func (c *Client) handshake(ctx context.Context) (*workerv1.WorkerReady, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.conn.SetDeadline(dl)
	}
	// Cancelling ctx unblocks a pending read or write at once.
	stopAfter := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		stopAfter()
		_ = c.conn.SetDeadline(time.Time{})
	}()
	fail := func(cause error, format string, args ...any) error {
		return fmt.Errorf("%w: %w: %s", ErrHandshake, cause, fmt.Sprintf(format, args...))
	}
	ioFail := func(step string, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return fail(cerr, "%s", step)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The connection deadline is ctx's deadline; it may fire a
			// moment before ctx reports it.
			return fail(context.DeadlineExceeded, "%s", step)
		}
		return fail(c.classify(err), "%s: %v", step, err)
	}

	hello := &workerv1.WorkerEnvelope{
		Body: &workerv1.WorkerEnvelope_GatewayHello{GatewayHello: &workerv1.GatewayHello{
			ProtocolVersion:     protocol.Version,
			Nonce:               c.nonce,
			HeartbeatInterval:   durationpb.New(c.opts.HeartbeatInterval),
			MaxFrameBytes:       uint32(c.opts.MaxFrameBytes),
			GatewayVersion:      c.opts.GatewayVersion,
			MaxQueuedEvents:     uint32(c.opts.WorkerQueueEvents),
			MaxQueuedEventBytes: uint64(c.opts.WorkerQueueBytes),
		}},
	}
	if _, err := c.pc.Send(hello); err != nil {
		return nil, ioFail("send GatewayHello", err)
	}

	env, _, err := c.pc.Recv()
	if err != nil {
		return nil, ioFail("read WorkerHello", err)
	}
	if f := env.GetFault(); f != nil {
		return nil, fmt.Errorf("%w: %w", ErrHandshake, &FaultError{Code: f.GetCode(), Message: f.GetMessage()})
	}
	wh := env.GetWorkerHello()
	if wh == nil {
		return nil, fail(ErrProtocol, "expected WorkerHello, got %s", bodyName(env))
	}
	if wh.GetProtocolVersion() != protocol.Version {
		return nil, fail(ErrVersionMismatch, "worker speaks %d, gateway speaks %d", wh.GetProtocolVersion(), protocol.Version)
	}
	if subtle.ConstantTimeCompare(wh.GetNonce(), c.nonce) != 1 {
		return nil, fail(ErrNonceMismatch, "WorkerHello echoed another nonce")
	}
	c.mu.Lock()
	switch {
	case c.pid == 0:
		c.pid = int(wh.GetPid())
	case int(wh.GetPid()) != c.pid:
		want := c.pid
		c.mu.Unlock()
		return nil, fail(ErrProtocol, "WorkerHello reports pid %d, the launched process is %d", wh.GetPid(), want)
	}
	c.mu.Unlock()

	env, _, err = c.pc.Recv()
	if err != nil {
		return nil, ioFail("read WorkerReady", err)
	}
	if f := env.GetFault(); f != nil {
		return nil, fmt.Errorf("%w: %w", ErrHandshake, &FaultError{Code: f.GetCode(), Message: f.GetMessage()})
	}
	ready := env.GetWorkerReady()
	if ready == nil {
		return nil, fail(ErrProtocol, "expected WorkerReady, got %s", bodyName(env))
	}
	return ready, nil
}

// classify maps a read or write error to the sentinel it means.
func (c *Client) classify(err error) error {
	switch frame.CodeOf(err) {
	case frame.CodeEndOfStream, frame.CodeTruncated:
		return ErrWorkerGone
	case frame.CodeVersionMismatch:
		return ErrVersionMismatch
	case 0:
		// Not a frame error: the connection itself failed (reset, broken
		// pipe, closed).
		return ErrWorkerGone
	default:
		return ErrProtocol
	}
}

// Invoke sends cmd to the worker and waits for its reply, at most timeout
// (DefaultCommandTimeout when timeout <= 0) and at most until ctx ends. A
// timeout or cancellation fails only this command (the worker is asked to
// drop it if it has not started it) and the client stays Ready; a reply
// that arrives later is still applied to Items, then dropped. When the
// client reaches a terminal state every pending command fails with the
// terminal reason.
//
// guard, when not nil, is the command's item guard: the worker runs a
// write only where its own item table still names the approved reference,
// and refuses a single command with a *GuardError (bulk entries carry their
// refusal in place).
//
// The command frame is written by the calling goroutine. While the pipe is
// full (the worker is not reading), waiting for the write lock honours ctx
// and the timeout; a write already under way is bounded by the command's
// deadline (the earlier of ctx's deadline and the timeout). A frame cut short
// by that deadline faults the client, since the stream cannot be resumed.
func (c *Client) Invoke(ctx context.Context, cmd *mxgatewayv1.Command, guard *workerv1.ItemGuard, timeout time.Duration) (*mxgatewayv1.Reply, error) {
	k := catalog.Of(cmd)
	if k == nil {
		return nil, errors.New("workerclient: command has no kind")
	}
	kind := k.Name()
	if timeout <= 0 {
		timeout = DefaultCommandTimeout
	}

	p := &pendingCmd{kind: k, ch: make(chan result, 1)}
	if k.Changes() {
		p.cmd = cmd
	}
	c.mu.Lock()
	if c.state != StateReady {
		err := c.notReadyErr()
		c.mu.Unlock()
		return nil, err
	}
	c.lastCorr++
	corr := c.lastCorr
	c.pending[corr] = p
	c.mu.Unlock()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	env := &workerv1.WorkerEnvelope{
		CorrelationId: corr,
		Body: &workerv1.WorkerEnvelope_Command{Command: &workerv1.WorkerCommand{
			Command:   cmd,
			Timeout:   durationpb.New(timeout),
			ItemGuard: guard,
		}},
	}
	select {
	case c.wlock <- struct{}{}:
	case r := <-p.ch: // terminal fault while waiting for the pipe
		return r.reply, r.err
	case <-timer.C:
		return c.abandon(corr, p, fmt.Errorf("%w: %s not sent within %v", ErrCommandTimeout, kind, timeout), false)
	case <-ctx.Done():
		return c.abandon(corr, p, fmt.Errorf("workerclient: invoke %s: %w", kind, ctx.Err()), false)
	}
	err := c.writeLocked(env, deadline)
	c.unlockWrite()
	if err != nil {
		var ns *notSentError
		switch {
		case !errors.As(err, &ns):
			// The client is terminal; the pending entry has its outcome.
		case isTimeout(ns.err) && ctx.Err() != nil:
			err = fmt.Errorf("workerclient: invoke %s: %w", kind, ctx.Err())
		case isTimeout(ns.err):
			err = fmt.Errorf("%w: %s not sent within %v", ErrCommandTimeout, kind, timeout)
		case frame.CodeOf(ns.err) == frame.CodeOversized:
			err = fmt.Errorf("%w: %s not sent: %w", ErrCommandTooLarge, kind, ns.err)
		default:
			err = fmt.Errorf("workerclient: %s not sent: %w", kind, ns.err)
		}
		return c.abandon(corr, p, err, false)
	}

	select {
	case r := <-p.ch:
		return r.reply, r.err
	case <-timer.C:
		return c.abandon(corr, p, fmt.Errorf("%w: %s after %v", ErrCommandTimeout, kind, timeout), true)
	case <-ctx.Done():
		return c.abandon(corr, p, fmt.Errorf("workerclient: invoke %s: %w", kind, ctx.Err()), true)
	}
}

// abandon gives up on a command that timed out, was cancelled or could not
// be sent. One that was sent stays pending, marked abandoned, until its
// reply: the worker may run it anyway, and its reply must still reach the
// item table. If a reply or the terminal fault won the race, that outcome
// is returned instead.
func (c *Client) abandon(corr uint64, p *pendingCmd, err error, sent bool) (*mxgatewayv1.Reply, error) {
	c.mu.Lock()
	_, still := c.pending[corr]
	switch {
	case !still:
	case sent:
		p.abandoned = true
		c.abandoned++
	default:
		delete(c.pending, corr)
	}
	c.mu.Unlock()
	if !still {
		r := <-p.ch
		return r.reply, r.err
	}
	if sent {
		// Best effort: a queued command is dropped by the worker; a running
		// one completes and its reply is discarded as late.
		c.sendCancel(corr)
	}
	c.log.Debug("workerclient: command abandoned", logging.KeyCorrelation, corr, logging.KeyCommand, p.kind.Name(), logging.KeyErr, err)
	return nil, err
}

// sendCancel asks the worker to drop command corr, which was written. It
// never waits: when another sender holds the write lock, that sender writes
// the Cancel before releasing it.
func (c *Client) sendCancel(corr uint64) {
	c.cancelMu.Lock()
	c.cancels = append(c.cancels, corr)
	c.cancelMu.Unlock()
	select {
	case c.wlock <- struct{}{}:
		c.unlockWrite()
	default:
	}
}

// unlockWrite writes the queued Cancels and releases the write lock. A
// Cancel queued while the lock was held is seen either here (after the
// release, the queue is checked again) or by the sender that takes the lock
// next.
func (c *Client) unlockWrite() {
	for {
		c.writeCancelsLocked()
		<-c.wlock
		c.cancelMu.Lock()
		more := len(c.cancels) > 0
		c.cancelMu.Unlock()
		if !more {
			return
		}
		select {
		case c.wlock <- struct{}{}:
		default:
			return // the new holder writes them
		}
	}
}

// writeCancelsLocked writes the queued Cancels; the caller holds the write
// lock. On a terminal client they are dropped.
func (c *Client) writeCancelsLocked() {
	c.cancelMu.Lock()
	queued := c.cancels
	c.cancels = nil
	c.cancelMu.Unlock()
	for _, corr := range queued {
		env := &workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_Cancel{
			Cancel: &workerv1.Cancel{TargetCorrelationId: corr}}}
		err := c.writeLocked(env, time.Now().Add(cancelWriteWait))
		var ns *notSentError
		if err != nil && !errors.As(err, &ns) {
			return
		}
	}
}

// notReadyErr explains why a command cannot run. c.mu must be held.
func (c *Client) notReadyErr() error {
	switch {
	case c.state.terminal() && c.err != nil:
		return c.err
	case c.state.terminal():
		return ErrClosed
	default:
		return fmt.Errorf("%w: state %v", ErrNotReady, c.state)
	}
}

// Shutdown asks the worker to tear down (Shutdown frame) and waits for its
// ShutdownAck and, when Options.Exited is set, its exit (otherwise for the
// pipe to close). It returns the worker's teardown warnings. If ctx ends first
// (protocol.DefaultShutdownTimeout when ctx has no deadline) the worker is
// killed and the error wraps ErrShutdownTimeout. Shutdown of a closed client
// returns nil; of a faulted client, its terminal reason. Concurrent calls all
// wait for the same outcome.
func (c *Client) Shutdown(ctx context.Context) (teardownWarnings []string, err error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, protocol.DefaultShutdownTimeout)
		defer cancel()
	}
	c.mu.Lock()
	switch c.state {
	case StateCreated, StateHandshaking:
		c.mu.Unlock()
		// No worker protocol yet: nothing to tear down gracefully.
		c.terminate(StateFaulted, fmt.Errorf("%w: shut down before ready", ErrClosed))
		<-c.done
		return nil, nil
	case StateReady:
		c.state = StateClosing
		c.mu.Unlock()
		timeout := protocol.DefaultShutdownTimeout
		if dl, ok := ctx.Deadline(); ok {
			timeout = time.Until(dl)
		}
		c.log.Info("workerclient: shutting down")
		env := &workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_Shutdown{Shutdown: &workerv1.Shutdown{
			Timeout: durationpb.New(timeout),
			Reason:  "gateway: close session",
		}}}
		select {
		case c.wlock <- struct{}{}:
			dl, _ := ctx.Deadline()
			// On failure the client is terminal, or the deadline passed
			// and the wait below faults it.
			_ = c.writeLocked(env, dl)
			c.unlockWrite()
		case <-c.stop:
		case <-ctx.Done():
		}
	default:
		c.mu.Unlock()
	}

	select {
	case <-c.done:
	case <-ctx.Done():
		c.terminate(StateFaulted, fmt.Errorf("%w: no ShutdownAck and exit before the deadline (%v)", ErrShutdownTimeout, ctx.Err()))
		<-c.done
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.warnings...), c.err
}

// Kill kills the worker process (Options.Kill) and faults the client with a
// *KillError carrying reason (it matches ErrKilled). It does not wait; use
// Done.
func (c *Client) Kill(reason protocol.KillReason) {
	c.terminate(StateFaulted, &KillError{Reason: reason})
}

// kill runs Options.Kill at most once.
func (c *Client) kill() {
	c.killOnce.Do(func() {
		if c.opts.Kill != nil {
			c.opts.Kill()
		}
	})
}

// terminate moves the client to a terminal state once: it records err, stops
// the loops, closes the connection, kills the worker on a fault and fails
// every pending command. Later calls do nothing.
func (c *Client) terminate(state State, err error) {
	c.mu.Lock()
	if c.state.terminal() {
		c.mu.Unlock()
		return
	}
	prev := c.state
	c.state = state
	c.err = err
	pending := c.pending
	c.pending = make(map[uint64]*pendingCmd)
	c.abandoned = 0
	started := c.started
	pid := c.pid
	c.mu.Unlock()

	if state == StateFaulted {
		c.log.Warn("workerclient: faulted", "from", prev.String(), logging.KeyWorkerPID, pid, logging.KeyErr, err)
		c.kill()
	} else {
		c.log.Info("workerclient: closed", logging.KeyWorkerPID, pid)
	}
	close(c.stop)
	_ = c.conn.Close()
	perr := err
	if perr == nil {
		perr = ErrClosed
	}
	for _, p := range pending {
		p.ch <- result{err: perr}
	}
	if !started {
		c.events.close()
		close(c.done)
	}
}

// run owns the loops once Ready: it watches heartbeats, and it is the one
// place that decides what the worker's going means: the pipe's end (from
// the read loop), the process exit (Options.Exited) and the ShutdownAck are
// events here, and one timer bounds the wait for the second of the first
// two. After the terminal transition it waits for the loops, then closes
// the event queue and Done.
func (c *Client) run() {
	check := min(c.opts.HeartbeatGrace/4, time.Second)
	check = max(check, time.Millisecond)
	ticker := time.NewTicker(check)
	g := gone{exitKnown: c.opts.Exited != nil}
	eof, exited, acked := c.eof, c.opts.Exited, c.acked
	var grace *time.Timer
	var graceC <-chan time.Time
loop:
	for {
		select {
		case <-c.stop:
			break loop
		case <-eof:
			eof, g.eof = nil, true
		case <-exited:
			exited, g.exit = nil, true
		case <-acked:
			acked = nil
		case <-graceC:
			graceC, g.waited = nil, true
		case now := <-ticker.C:
			c.checkHeartbeat(now)
			continue
		}
		if c.workerGone(g) && grace == nil && (g.eof || g.exit) {
			grace = time.NewTimer(goneWait)
			graceC = grace.C
		}
	}
	if grace != nil {
		grace.Stop()
	}
	ticker.Stop()
	_ = c.conn.Close()
	c.loops.Wait()
	c.events.close()
	close(c.done)
}

// gone is what run knows of the worker's going.
type gone struct {
	eof, exit bool // the pipe ended; the process exit was reported
	exitKnown bool // the process exit is reported at all (Options.Exited)
	waited    bool // goneWait passed since the first of them
}

// workerGone acts on what run knows: a clean close once the ack arrived and
// the worker is gone, a fault once the worker is gone (both signs, or one
// and goneWait). It reports whether run should wait for more.
func (c *Client) workerGone(g gone) (wait bool) {
	c.mu.Lock()
	closing, acked := c.state == StateClosing, c.ackReceived
	eofErr := c.eofErr
	c.mu.Unlock()
	done := g.exit || !g.exitKnown && g.eof // the process is gone
	switch {
	case closing && acked && done:
		c.terminate(StateClosed, nil)
		return false
	case closing && acked:
		return true // the ack is in; the worker is on its way out
	case g.exit && c.opts.ExitCode != nil && c.opts.ExitCode() == protocol.ExitEventOverflow && (g.eof || g.waited):
		c.terminate(StateFaulted, &FaultError{Code: workerv1.FaultCode_FAULT_CODE_EVENT_OVERFLOW,
			Message: fmt.Sprintf("the worker exited with code %d: its event queue overflowed; the gateway did not keep up", protocol.ExitEventOverflow)})
		return false
	case g.eof && (g.exit || !g.exitKnown || g.waited):
		detail := "pipe closed"
		if eofErr != nil {
			detail += ": " + eofErr.Error()
		}
		if g.exit {
			detail = "process exited: " + c.exitStatus()
		}
		c.terminate(StateFaulted, fmt.Errorf("%w: %s", ErrWorkerGone, detail))
		return false
	case g.exit && g.waited:
		c.terminate(StateFaulted, fmt.Errorf("%w: process exited: %s", ErrWorkerGone, c.exitStatus()))
		return false
	}
	return g.eof || g.exit
}

func (c *Client) exitStatus() string {
	if c.opts.ExitStatus == nil {
		return "status unknown"
	}
	return c.opts.ExitStatus()
}

// checkHeartbeat faults the client when the worker has been silent too long.
// Only Ready is watched: during Closing the worker stops heartbeating to tear
// down, and the Shutdown deadline bounds it instead.
func (c *Client) checkHeartbeat(now time.Time) {
	c.mu.Lock()
	if c.state != StateReady || c.eventsBlocked {
		c.mu.Unlock()
		return
	}
	silence := now.Sub(c.lastHeartbeat)
	pending := len(c.pending)
	if silence <= c.opts.HeartbeatGrace {
		c.ceilingLogged = false
		c.mu.Unlock()
		return
	}
	if pending > 0 && silence <= c.opts.HeartbeatCeiling {
		first := !c.ceilingLogged
		c.ceilingLogged = true
		c.mu.Unlock()
		if first {
			c.log.Warn("workerclient: worker silent past the heartbeat grace while a command runs",
				"silence", silence.String(), "ceiling", c.opts.HeartbeatCeiling.String(), "pending", pending)
		}
		return
	}
	c.mu.Unlock()
	limit := c.opts.HeartbeatGrace
	if pending > 0 {
		limit = c.opts.HeartbeatCeiling
	}
	c.terminate(StateFaulted, fmt.Errorf("%w: no heartbeat for %v (limit %v, %d commands pending)",
		ErrHeartbeatExpired, silence.Round(time.Millisecond), limit, pending))
}

// notSentError reports a write that put nothing of its frame on the pipe
// (the frame could not be encoded, or the deadline passed before the pipe
// took a byte): the stream is intact and only that envelope is lost.
type notSentError struct{ err error }

func (e *notSentError) Error() string { return "workerclient: frame not sent: " + e.err.Error() }
func (e *notSentError) Unwrap() error { return e.err }

// isTimeout reports whether err is a deadline expiry.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// writeLocked numbers env with the next outbound sequence and writes it as
// one frame; the caller holds the write lock, so wire order and sequence
// agree. deadline (zero: none) bounds a write blocked by a full pipe; a
// terminal transition closes the connection, which ends a blocked write at
// once. Nothing is written once the client is terminal. It returns a
// *notSentError when the frame did not reach the pipe at all (the sequence
// number is then reused); any other error means the client is terminal
// (faulted here if it was not already).
func (c *Client) writeLocked(env *workerv1.WorkerEnvelope, deadline time.Time) error {
	select {
	case <-c.stop:
		return c.terminalErr()
	default:
	}
	if c.wbroken {
		return c.terminalErr()
	}
	_ = c.conn.SetWriteDeadline(deadline)
	written, err := c.pc.Send(env)
	if err == nil {
		return nil
	}
	if written == 0 && (frame.CodeOf(err) != 0 || isTimeout(err)) {
		// Nothing reached the pipe (and no sequence number was used): an
		// envelope we cannot encode (too large) or a pipe that stayed full
		// until the deadline.
		return &notSentError{err: err}
	}
	c.wbroken = true
	select {
	case <-c.stop:
		return c.terminalErr()
	default:
	}
	if isTimeout(err) {
		c.terminate(StateFaulted, fmt.Errorf("%w: write stalled: the worker did not read its pipe before the deadline; frame cut short after %d bytes", ErrWorkerGone, written))
	} else {
		c.terminate(StateFaulted, fmt.Errorf("%w: write: %v", ErrWorkerGone, err))
	}
	return c.terminalErr()
}

// terminalErr is the error of a write refused because the client is
// terminal.
func (c *Client) terminalErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	return ErrClosed
}

// readLoop is the only reader after the handshake.
func (c *Client) readLoop() {
	defer c.loops.Done()
	var lastEvent uint64
	for {
		env, event, size, err := c.pc.RecvEvent()
		if err != nil {
			c.readFailed(err)
			return
		}
		if event != nil {
			if !c.deliverEvent(event, size, &lastEvent) {
				return
			}
			continue
		}
		if !c.dispatch(env, size, &lastEvent) {
			return
		}
	}
}

// readFailed ends the read loop: quietly when the client is already
// stopping or the pipe closed after a ShutdownAck, otherwise with a fault.
func (c *Client) readFailed(err error) {
	select {
	case <-c.stop:
		return
	default:
	}
	cause := c.classify(err)
	if cause == ErrWorkerGone {
		// What the pipe's end means (a clean close, a crash) run decides,
		// with the process exit.
		c.mu.Lock()
		c.eofErr = err
		c.mu.Unlock()
		close(c.eof)
		return
	}
	if errors.Is(cause, ErrVersionMismatch) {
		c.terminate(StateFaulted, fmt.Errorf("%w: %w: %v", ErrProtocol, ErrVersionMismatch, err))
		return
	}
	c.terminate(StateFaulted, fmt.Errorf("%w: %v", ErrProtocol, err))
}

// dispatch handles one envelope; it returns false when the loop must end.
func (c *Client) dispatch(env *workerv1.WorkerEnvelope, size int, lastEvent *uint64) bool {
	switch b := env.GetBody().(type) {
	case *workerv1.WorkerEnvelope_CommandReply:
		return c.completeCommand(env.GetCorrelationId(), b.CommandReply)
	case *workerv1.WorkerEnvelope_Event:
		// An event envelope the fast path did not take (RecvEvent); it
		// travels encoded like the others.
		if b.Event.GetEvent() == nil {
			c.terminate(StateFaulted, fmt.Errorf("%w: event envelope without an event", ErrProtocol))
			return false
		}
		wire, err := proto.Marshal(b.Event.GetEvent())
		if err != nil {
			c.terminate(StateFaulted, fmt.Errorf("%w: event: %v", ErrProtocol, err))
			return false
		}
		return c.deliverEvent(wire, size, lastEvent)
	case *workerv1.WorkerEnvelope_Heartbeat:
		c.mu.Lock()
		c.lastHeartbeat = time.Now()
		c.mu.Unlock()
		return true
	case *workerv1.WorkerEnvelope_Fault:
		c.terminate(StateFaulted, &FaultError{Code: b.Fault.GetCode(), Message: b.Fault.GetMessage()})
		return false
	case *workerv1.WorkerEnvelope_ShutdownAck:
		c.mu.Lock()
		closing, again := c.state == StateClosing, c.ackReceived
		if closing && !again {
			c.ackReceived = true
			c.warnings = b.ShutdownAck.GetTeardownWarnings()
		}
		c.mu.Unlock()
		switch {
		case !closing:
			c.terminate(StateFaulted, fmt.Errorf("%w: ShutdownAck without Shutdown", ErrProtocol))
			return false
		case again:
			c.terminate(StateFaulted, fmt.Errorf("%w: a second ShutdownAck", ErrProtocol))
			return false
		}
		close(c.acked) // run completes the close once the worker is gone
		return true
	default:
		c.terminate(StateFaulted, fmt.Errorf("%w: unexpected body %s", ErrProtocol, bodyName(env)))
		return false
	}
}

// completeCommand handles a reply: it applies it to the item table (the
// worker ran the command, whether or not its caller still waits), then
// hands it to the caller, if any.
func (c *Client) completeCommand(corr uint64, reply *workerv1.WorkerCommandReply) bool {
	c.mu.Lock()
	p, ok := c.pending[corr]
	delete(c.pending, corr)
	if ok && p.abandoned {
		c.abandoned--
	}
	issued := c.lastCorr
	c.mu.Unlock()
	switch {
	case corr == 0 || corr > issued:
		c.terminate(StateFaulted, fmt.Errorf("%w: reply to correlation id %d, never issued", ErrProtocol, corr))
		return false
	case !ok:
		// Never pending, or already failed by a fault: nothing to apply.
		c.log.Debug("workerclient: reply without a pending command dropped", logging.KeyCorrelation, corr)
		return true
	case reply.GetOversizedReplyBytes() > 0 && (p.cmd == nil || p.abandoned):
		if !p.abandoned {
			p.ch <- result{err: fmt.Errorf("%w: the reply of %s is %d bytes, the limit %d", ErrReplyTooLarge,
				p.kind.Name(), reply.GetOversizedReplyBytes(), c.opts.MaxFrameBytes)}
		}
		return true
	case reply.GetReply() == nil:
		p.ch <- result{err: fmt.Errorf("%w: reply %d has no body", ErrProtocol, corr)}
		c.terminate(StateFaulted, fmt.Errorf("%w: reply %d has no body", ErrProtocol, corr))
		return false
	}
	if p.cmd != nil && reply.GetDenial() == nil {
		c.items.Apply(p.cmd, reply.GetReply())
	}
	if p.abandoned {
		c.log.Debug("workerclient: late reply applied to the item table", logging.KeyCorrelation, corr,
			logging.KeyCommand, p.kind.Name(), "status", reply.GetReply().GetStatus().String())
		return true
	}
	if d := reply.GetDenial(); d != nil {
		p.ch <- result{err: &GuardError{Denial: d}}
		return true
	}
	p.ch <- result{reply: reply.GetReply()}
	return true
}

// deliverEvent validates the event sequence, stamps the event and queues it.
// A full queue is waited on (flow control; at most EventStallTimeout when
// set); meanwhile the heartbeat check is suspended, because the read loop is
// not reading them.
func (c *Client) deliverEvent(wire []byte, size int, lastEvent *uint64) bool {
	ev, err := protocol.DecodeEvent(wire, size)
	if err != nil {
		c.terminate(StateFaulted, fmt.Errorf("%w: event: %v", ErrProtocol, err))
		return false
	}
	want := *lastEvent + 1
	if ev.Sequence != want {
		what := "gap"
		if ev.Sequence <= *lastEvent {
			what = "duplicate"
		}
		c.terminate(StateFaulted, fmt.Errorf("%w: event sequence %s: got %d, want %d", ErrProtocol, what, ev.Sequence, want))
		return false
	}
	*lastEvent = want
	// Arrival time; the session, which numbers what its clients see,
	// stamps the session id once (internal/session publishLocked). The
	// event stays encoded as the worker sent it (protocol.Event).
	ev.GatewayTime = time.Now()

	sized := ev
	if c.events.tryPush(sized) {
		return true
	}
	c.mu.Lock()
	c.eventsBlocked = true
	c.mu.Unlock()
	var expire <-chan struct{}
	if d := c.opts.EventStallTimeout; d > 0 {
		ch := make(chan struct{})
		t := time.AfterFunc(d, func() { close(ch) })
		defer t.Stop()
		expire = ch
	}
	ok := c.events.push(sized, c.stop, expire)
	if !ok {
		select {
		case <-c.stop:
		default:
			n, b := c.events.depth()
			c.terminate(StateFaulted, fmt.Errorf("%w: %d events (%d bytes) unread for %v", ErrEventOverflow, n, b, c.opts.EventStallTimeout))
		}
	}
	c.mu.Lock()
	c.eventsBlocked = false
	// Heartbeats queued in the pipe while we waited were not read; restart
	// the silence clock rather than blame the worker for our stall.
	c.lastHeartbeat = time.Now()
	c.mu.Unlock()
	return ok
}

// bodyName names an envelope's body for errors ("worker_hello").
func bodyName(env *workerv1.WorkerEnvelope) string {
	m := env.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("body"))
	if fd == nil {
		return "none"
	}
	return string(fd.Name())
}
