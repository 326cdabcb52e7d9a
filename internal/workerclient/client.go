package workerclient

import (
	"context"
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
	// grantWriteWait bounds the write of an EventCredit.
	grantWriteWait = 10 * time.Second
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
	// EventBufferBytes bounds the worker-encoded bytes of those events;
	// default DefaultEventBufferBytes. Both are the worker's event credit
	// (flow control): the worker sends no more than the queue has room
	// for, so the read loop never waits and a reply or heartbeat never
	// waits behind events in the pipe; the rest waits in the worker, up to
	// WorkerQueueEvents and WorkerQueueBytes.
	EventBufferBytes int64
	// WorkerQueueEvents and WorkerQueueBytes bound the worker's outbound
	// event queue; they are announced in GatewayHello. Default
	// protocol.DefaultWorkerQueueEvents and protocol.DefaultWorkerQueueBytes.
	// A worker past them faults with FAULT_CODE_EVENT_OVERFLOW: the gateway
	// did not keep up at all.
	WorkerQueueEvents int
	WorkerQueueBytes  int64
	// MaxFrameBytes limits frames both ways and is announced in
	// GatewayHello; default protocol.DefaultMaxFrameBytes.
	MaxFrameBytes int
	// GatewayVersion is announced in GatewayHello; default the build version.
	GatewayVersion string
	// Logger receives the client's logs; nil discards them.
	Logger *slog.Logger
	// Process, when set, is the worker process behind the connection: its
	// pid must be the one WorkerHello reports, the client kills it on any
	// fault, and the client's life ends only once it exited. Without it
	// (tests) the pipe's end is the worker's end, and the pid is taken from
	// WorkerHello.
	Process Process
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

// result completes one pending command or alarm consumer request.
type result struct {
	reply *mxgatewayv1.Reply
	alarm *workerv1.AlarmConsumerReply
	err   error
}

type pendingCmd struct {
	name string // what the request is, for logs and errors
	// kind is the command's kind; nil for an alarm consumer request, which
	// is answered by an AlarmConsumerReply instead.
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

	events  *eventQueue    // filled by the read loop; closed by run
	credit  *credit        // the worker's event credit: the queue's room
	stop    chan struct{}  // closed on the terminal transition
	done    chan struct{}  // closed by run once the life is over
	loops   sync.WaitGroup // the read loop
	runOnce sync.Once      // run, the owner of the life, starts once
	// pipeEnd carries the read loop's error when the pipe ended (buffered
	// 1); what it means, together with the process exit, run decides.
	pipeEnd chan error
	// drainWait is the package's drainWait; a test may shorten or lengthen
	// it before Start.
	drainWait time.Duration

	mu            sync.Mutex
	state         State
	end           End   // the terminal point, set once by terminate
	going         Cause // run's first sign of the worker's going, if any
	pid           int
	backend       *mxgatewayv1.BackendInfo
	alarmConsumer bool // WorkerReady: the backend has the native alarm consumer
	pending       map[uint64]*pendingCmd
	abandoned     int // entries of pending whose caller stopped waiting
	lastCorr      uint64
	lastHeartbeat time.Time
	ceilingLogged bool
	ackReceived   bool
	warnings      []string
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
	pid := 0
	if opts.Process != nil {
		pid = opts.Process.PID()
	}
	return &Client{
		conn:      conn,
		sessionID: sessionID,
		nonce:     append([]byte(nil), nonce...),
		opts:      opts,
		log:       opts.Logger.With(logging.KeySession, sessionID),
		pc:        frame.NewConn(conn, conn, frame.ConnOptions{SessionID: sessionID, MaxFrameBytes: opts.MaxFrameBytes}),
		wlock:     make(chan struct{}, 1),
		events:    newEventQueue(),
		credit:    newCredit(opts.EventBuffer, opts.EventBufferBytes, opts.MaxFrameBytes),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		pipeEnd:   make(chan error, 1),
		drainWait: drainWait,
		pid:       pid,
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

// HasAlarmConsumer reports whether the worker's backend has the native
// alarm consumer (WorkerReady); false before Ready.
func (c *Client) HasAlarmConsumer() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.alarmConsumer
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
	from := len(dst)
	dst, ok, drained := c.events.take(dst)
	if taken := dst[from:]; len(taken) > 0 {
		c.credit.taken(taken, drained)
		c.sendCredit()
	}
	return dst, ok
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
	return c.end.Err
}

// Start runs the handshake: GatewayHello → WorkerHello (protocol version,
// nonce in constant time, pid) → WorkerReady. It returns once the client is
// Ready, or with an error wrapping ErrHandshake after faulting the client.
// ctx bounds the whole handshake, including the worker's backend
// initialisation.
func (c *Client) Start(ctx context.Context) error {
	c.mu.Lock()
	if c.state != StateCreated {
		st, err := c.state, c.end.Err
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
		if errors.Is(err, ErrWorkerGone) && c.opts.Process != nil {
			// The pipe ended: the worker is on its way out. Its exit, not
			// a kill, says why (within the start-up deadline).
			select {
			case <-c.exited():
			case <-ctx.Done():
			case <-c.stop: // Kill, Shutdown: already ending
			}
		} else if ctx.Err() != nil && c.opts.Process != nil {
			// Given up (the start-up deadline, or a launch cancelled by a
			// gateway shutting down): the process goes before its
			// connection, so that it does not log the closed connection
			// as an error of its own.
			c.opts.Process.Kill()
		}
		c.terminate(CauseHandshake, err)
		return c.Err()
	}

	c.mu.Lock()
	if c.state != StateHandshaking { // Kill during the handshake
		err := c.end.Err
		c.mu.Unlock()
		return err
	}
	c.state = StateReady
	c.backend = ready.GetBackend()
	c.alarmConsumer = ready.GetAlarmConsumer()
	c.lastHeartbeat = time.Now()
	pid := c.pid
	c.loops.Add(1) // under mu: a terminate from now on waits for the loop
	c.mu.Unlock()

	go c.readLoop()
	c.startRun()
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

	// The exchange and its checks are frame.Conn's (Offer, AwaitReady);
	// what they mean for the gateway is decided here.
	stepFail := func(step string, err error) error {
		var he *frame.HandshakeError
		if !errors.As(err, &he) {
			return ioFail(step, err)
		}
		switch he.Reason {
		case frame.HandshakeFault:
			return fmt.Errorf("%w: %w", ErrHandshake, &FaultError{Code: he.Fault.GetCode(), Message: he.Fault.GetMessage()})
		case frame.HandshakeVersion:
			return fail(ErrVersionMismatch, "%s", he.Detail)
		case frame.HandshakeNonce:
			return fail(ErrNonceMismatch, "%s", he.Detail)
		}
		return fail(ErrProtocol, "expected %s, %s", step, he.Detail)
	}
	wh, err := c.pc.Offer(&workerv1.GatewayHello{
		Nonce:               c.nonce,
		HeartbeatInterval:   durationpb.New(c.opts.HeartbeatInterval),
		MaxFrameBytes:       uint32(c.opts.MaxFrameBytes),
		GatewayVersion:      c.opts.GatewayVersion,
		MaxQueuedEvents:     uint32(c.opts.WorkerQueueEvents),
		MaxQueuedEventBytes: uint64(c.opts.WorkerQueueBytes),
		EventCredit:         uint32(c.opts.EventBuffer),
		EventCreditBytes:    uint64(c.opts.EventBufferBytes),
	})
	if err != nil {
		return nil, stepFail("WorkerHello", err)
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

	ready, err := c.pc.AwaitReady()
	if err != nil {
		return nil, stepFail("WorkerReady", err)
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
	p := &pendingCmd{name: k.Name(), kind: k, ch: make(chan result, 1)}
	if k.Changes() {
		p.cmd = cmd
	}
	r := c.roundTrip(ctx, p, timeout, func(corr uint64, timeout time.Duration) *workerv1.WorkerEnvelope {
		return &workerv1.WorkerEnvelope{
			CorrelationId: corr,
			Body: &workerv1.WorkerEnvelope_Command{Command: &workerv1.WorkerCommand{
				Command:   cmd,
				Timeout:   durationpb.New(timeout),
				ItemGuard: guard,
			}},
		}
	})
	return r.reply, r.err
}

// AlarmConsumer sends one gateway-internal request to the worker's native
// alarm consumer (only the alarm monitor's session makes them) and waits
// for its reply, with the same pipe, timeout and cancellation rules as
// Invoke. A refusal by the consumer is the reply's status, not an error.
func (c *Client) AlarmConsumer(ctx context.Context, req *workerv1.AlarmConsumerRequest, timeout time.Duration) (*workerv1.AlarmConsumerReply, error) {
	p := &pendingCmd{name: "alarm consumer request", ch: make(chan result, 1)}
	r := c.roundTrip(ctx, p, timeout, func(corr uint64, _ time.Duration) *workerv1.WorkerEnvelope {
		return &workerv1.WorkerEnvelope{CorrelationId: corr,
			Body: &workerv1.WorkerEnvelope_AlarmConsumerRequest{AlarmConsumerRequest: req}}
	})
	return r.alarm, r.err
}

// roundTrip registers p under a new correlation id, writes the envelope
// body builds for it (with the timeout in force: DefaultCommandTimeout
// when timeout <= 0) and waits for its outcome.
func (c *Client) roundTrip(ctx context.Context, p *pendingCmd, timeout time.Duration, body func(corr uint64, timeout time.Duration) *workerv1.WorkerEnvelope) result {
	if timeout <= 0 {
		timeout = DefaultCommandTimeout
	}
	kind := p.name
	c.mu.Lock()
	if c.state != StateReady {
		err := c.notReadyErr()
		c.mu.Unlock()
		return result{err: err}
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
	env := body(corr, timeout)
	select {
	case c.wlock <- struct{}{}:
	case r := <-p.ch: // terminal fault while waiting for the pipe
		return r
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
		return r
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
func (c *Client) abandon(corr uint64, p *pendingCmd, err error, sent bool) result {
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
		return <-p.ch
	}
	if sent {
		// Best effort: a queued command is dropped by the worker; a running
		// one completes and its reply is discarded as late.
		c.sendCancel(corr)
	}
	c.log.Debug("workerclient: command abandoned", logging.KeyCorrelation, corr, logging.KeyCommand, p.name, logging.KeyErr, err)
	return result{err: err}
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
		more = more || c.credit.due()
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
	if events, bytes, ok := c.credit.grant(); ok {
		env := &workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_EventCredit{
			EventCredit: &workerv1.EventCredit{Events: events, Bytes: bytes}}}
		var ns *notSentError
		if err := c.writeFrameLocked(env, time.Now().Add(grantWriteWait), false); errors.As(err, &ns) {
			// A grant that is not written leaves the worker without
			// credit for good: a worker that does not read its pipe for
			// that long is gone.
			c.terminate(CauseWriteFailed, fmt.Errorf("%w: event credit not written within %v: %v", ErrWorkerGone, grantWriteWait, ns.err))
		}
	}
}

// sendCredit writes a due grant. It never waits: when another sender
// holds the write lock, that sender writes the grant before releasing it.
func (c *Client) sendCredit() {
	if !c.credit.due() {
		return
	}
	select {
	case c.wlock <- struct{}{}:
		c.unlockWrite()
	default:
	}
}

// notReadyErr explains why a command cannot run. c.mu must be held.
func (c *Client) notReadyErr() error {
	switch {
	case c.state.terminal() && c.end.Err != nil:
		return c.end.Err
	case c.state.terminal():
		return ErrClosed
	default:
		return fmt.Errorf("%w: state %v", ErrNotReady, c.state)
	}
}

// Shutdown asks the worker to tear down (Shutdown frame) and waits for its
// ShutdownAck and for the worker's going: its pipe's end and, with
// Options.Process, its exit. It returns the worker's teardown warnings. If ctx ends first
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
		c.terminate(CauseKilled, fmt.Errorf("%w: shut down before ready", ErrClosed))
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
		c.terminate(CauseShutdownTimeout, fmt.Errorf("%w: no ShutdownAck and exit before the deadline (%v)", ErrShutdownTimeout, ctx.Err()))
		<-c.done
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.warnings...), c.end.Err
}

// Kill faults the client with a *KillError carrying reason (it matches
// ErrKilled); the owner then kills the worker process (Options.Process). It
// does not wait; use Done.
func (c *Client) Kill(reason protocol.KillReason) {
	c.terminate(CauseKilled, &KillError{Reason: reason})
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
	return c.writeFrameLocked(env, deadline, true)
}

// writeFrameLocked is writeLocked; with faultOnBreak false a broken pipe
// does not end the life by itself (an EventCredit: the worker is gone, and
// its pipe's end and exit, which the read loop and run see, say why).
func (c *Client) writeFrameLocked(env *workerv1.WorkerEnvelope, deadline time.Time, faultOnBreak bool) error {
	select {
	case <-c.stop:
		return c.terminalErr()
	default:
	}
	if c.wbroken {
		return c.brokenErr()
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
	c.mu.Lock()
	going := c.going
	c.mu.Unlock()
	if !isTimeout(err) && (!faultOnBreak || going != CauseNone) {
		// The worker is going (its process exited or its pipe ended, or
		// the pipe broke under a grant): run ends the life with the
		// worker's reason; the failed write is only a consequence.
		return fmt.Errorf("%w: write: %v", ErrWorkerGone, err)
	}
	if isTimeout(err) {
		c.terminate(CauseWriteFailed, fmt.Errorf("%w: write stalled: the worker did not read its pipe before the deadline; frame cut short after %d bytes", ErrWorkerGone, written))
	} else {
		c.terminate(CauseWriteFailed, fmt.Errorf("%w: write: %v", ErrWorkerGone, err))
	}
	return c.terminalErr()
}

// terminalErr is the error of a write refused because the client is
// terminal.
// brokenErr is the error of a write after one broke the pipe.
func (c *Client) brokenErr() error {
	select {
	case <-c.stop:
		return c.terminalErr()
	default:
		return fmt.Errorf("%w: the pipe broke on an earlier write", ErrWorkerGone)
	}
}

func (c *Client) terminalErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.end.Err != nil {
		return c.end.Err
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
		c.pipeEnd <- err
		return
	}
	if errors.Is(cause, ErrVersionMismatch) {
		c.terminate(CauseProtocol, fmt.Errorf("%w: %w: %v", ErrProtocol, ErrVersionMismatch, err))
		return
	}
	c.terminate(CauseProtocol, fmt.Errorf("%w: %v", ErrProtocol, err))
}

// dispatch handles one envelope; it returns false when the loop must end.
func (c *Client) dispatch(env *workerv1.WorkerEnvelope, size int, lastEvent *uint64) bool {
	switch b := env.GetBody().(type) {
	case *workerv1.WorkerEnvelope_CommandReply:
		return c.completeCommand(env.GetCorrelationId(), b.CommandReply)
	case *workerv1.WorkerEnvelope_AlarmConsumerReply:
		return c.completeAlarm(env.GetCorrelationId(), b.AlarmConsumerReply)
	case *workerv1.WorkerEnvelope_Event:
		// An event envelope the fast path did not take (RecvEvent); it
		// travels encoded like the others.
		if b.Event.GetEvent() == nil {
			c.terminate(CauseProtocol, fmt.Errorf("%w: event envelope without an event", ErrProtocol))
			return false
		}
		wire, err := proto.Marshal(b.Event.GetEvent())
		if err != nil {
			c.terminate(CauseProtocol, fmt.Errorf("%w: event: %v", ErrProtocol, err))
			return false
		}
		return c.deliverEvent(wire, size, lastEvent)
	case *workerv1.WorkerEnvelope_Heartbeat:
		c.mu.Lock()
		c.lastHeartbeat = time.Now()
		c.mu.Unlock()
		return true
	case *workerv1.WorkerEnvelope_Fault:
		c.terminate(CauseFault, &FaultError{Code: b.Fault.GetCode(), Message: b.Fault.GetMessage()})
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
			c.terminate(CauseProtocol, fmt.Errorf("%w: ShutdownAck without Shutdown", ErrProtocol))
			return false
		case again:
			c.terminate(CauseProtocol, fmt.Errorf("%w: a second ShutdownAck", ErrProtocol))
			return false
		}
		return true // run completes the close once the worker is gone
	default:
		c.terminate(CauseProtocol, fmt.Errorf("%w: unexpected body %s", ErrProtocol, frame.BodyName(env)))
		return false
	}
}

// completeCommand handles a reply: it applies it to the item table (the
// worker ran the command, whether or not its caller still waits), then
// hands it to the caller, if any.
func (c *Client) completeCommand(corr uint64, reply *workerv1.WorkerCommandReply) bool {
	p, ok, valid := c.takePending(corr, true)
	switch {
	case !valid:
		return false
	case !ok:
		return true
	case reply.GetOversizedReplyBytes() > 0 && (p.cmd == nil || p.abandoned):
		if !p.abandoned {
			p.ch <- result{err: fmt.Errorf("%w: the reply of %s is %d bytes, the limit %d", ErrReplyTooLarge,
				p.name, reply.GetOversizedReplyBytes(), c.opts.MaxFrameBytes)}
		}
		return true
	case reply.GetReply() == nil:
		p.ch <- result{err: fmt.Errorf("%w: reply %d has no body", ErrProtocol, corr)}
		c.terminate(CauseProtocol, fmt.Errorf("%w: reply %d has no body", ErrProtocol, corr))
		return false
	}
	if p.cmd != nil && reply.GetDenial() == nil {
		c.items.Apply(p.cmd, reply.GetReply())
	}
	if p.abandoned {
		c.log.Debug("workerclient: late reply applied to the item table", logging.KeyCorrelation, corr,
			logging.KeyCommand, p.name, "status", reply.GetReply().GetStatus().String())
		return true
	}
	if d := reply.GetDenial(); d != nil {
		p.ch <- result{err: &GuardError{Denial: d}}
		return true
	}
	p.ch <- result{reply: reply.GetReply()}
	return true
}

// takePending removes the pending entry a reply answers. ok is false for
// a reply nobody waits for any more (dropped); valid is false when the
// reply is a protocol violation (a correlation id never issued, or the
// wrong kind of reply for the request), and the client is then terminal.
func (c *Client) takePending(corr uint64, command bool) (p *pendingCmd, ok, valid bool) {
	c.mu.Lock()
	p, ok = c.pending[corr]
	mismatch := ok && (p.kind != nil) != command
	if ok && !mismatch {
		delete(c.pending, corr)
		if p.abandoned {
			c.abandoned--
		}
	}
	issued := c.lastCorr
	c.mu.Unlock()
	want := "CommandReply"
	if !command {
		want = "AlarmConsumerReply"
	}
	switch {
	case corr == 0 || corr > issued:
		c.terminate(CauseProtocol, fmt.Errorf("%w: %s to correlation id %d, never issued", ErrProtocol, want, corr))
		return nil, false, false
	case mismatch:
		c.terminate(CauseProtocol, fmt.Errorf("%w: %s to correlation id %d, a %s", ErrProtocol, want, corr, p.name))
		return nil, false, false
	case !ok:
		// Never pending, or already failed by a fault: nothing to apply.
		c.log.Debug("workerclient: reply without a pending request dropped", logging.KeyCorrelation, corr)
		return nil, false, true
	}
	return p, true, true
}

// completeAlarm hands an alarm consumer reply to its caller, if it still
// waits.
func (c *Client) completeAlarm(corr uint64, reply *workerv1.AlarmConsumerReply) bool {
	p, ok, valid := c.takePending(corr, false)
	if ok && !p.abandoned {
		p.ch <- result{alarm: reply}
	}
	return valid
}

// deliverEvent validates the event sequence and the worker's credit,
// stamps the event and queues it. It never waits: the credit kept the
// queue's room.
func (c *Client) deliverEvent(wire []byte, size int, lastEvent *uint64) bool {
	ev, err := protocol.DecodeEventInPlace(wire, size) // the frame reader left the room
	if err != nil {
		c.terminate(CauseProtocol, fmt.Errorf("%w: event: %v", ErrProtocol, err))
		return false
	}
	want := *lastEvent + 1
	if ev.Sequence != want {
		what := "gap"
		if ev.Sequence <= *lastEvent {
			what = "duplicate"
		}
		c.terminate(CauseProtocol, fmt.Errorf("%w: event sequence %s: got %d, want %d", ErrProtocol, what, ev.Sequence, want))
		return false
	}
	*lastEvent = want
	// Arrival time; the session, which numbers what its clients see,
	// stamps the session id once (internal/session publishLocked). The
	// event stays encoded as the worker sent it (protocol.Event).
	ev.GatewayTime = time.Now()

	if err := c.credit.spend(ev.WorkerBytes()); err != nil {
		c.terminate(CauseProtocol, fmt.Errorf("%w: event %d: %w", ErrProtocol, ev.Sequence, err))
		return false
	}
	c.events.put(ev)
	return true
}
