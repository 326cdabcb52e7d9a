package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/itemtable"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

// Worker is the part of a worker connection the session manager uses. The
// gateway's *workerclient.Client satisfies it.
type Worker interface {
	// PID is the worker's process id.
	PID() int
	// Backend describes what the worker drives.
	Backend() *mxgatewayv1.BackendInfo
	// Invoke runs one command and waits for its reply (at most timeout).
	// guard, when not nil, is the command's item guard (see
	// workerclient.Client.Invoke).
	Invoke(ctx context.Context, cmd *mxgatewayv1.Command, guard *workerv1.ItemGuard, timeout time.Duration) (*mxgatewayv1.Reply, error)
	// Items is the gateway's mirror of the worker's item table, updated
	// from every reply the worker sent, in worker order, whether or not
	// its caller still waited.
	Items() *itemtable.Table
	// Unanswered is how many commands the worker got and has not answered
	// whose callers stopped waiting; they still run.
	Unanswered() int
	// NextEvents appends the worker's next events, in order and sized by
	// their frames, to dst, waiting while there are none; ok is false once
	// the worker reached a terminal state and every event was handed out.
	// While the session does not call it the worker's events wait upstream
	// (flow control).
	NextEvents(dst []*protocol.Event) (_ []*protocol.Event, ok bool)
	// Done is closed when the worker reached a terminal state.
	Done() <-chan struct{}
	// Err is the terminal error (nil after a clean shutdown).
	Err() error
	// Shutdown asks the worker to tear down gracefully within ctx and
	// returns its teardown warnings.
	Shutdown(ctx context.Context) ([]string, error)
	// Kill ends the worker at once, saying why (typed, for the metric).
	Kill(reason protocol.KillReason)
}

// LaunchFunc starts a worker for sessionID and returns it once it is ready.
type LaunchFunc func(ctx context.Context, sessionID string) (Worker, error)

// AcquireFunc returns a ready worker and the session id it was started for
// (a fresh id from NewID, never one used before), for example a spare from
// a pool of pre-started workers.
type AcquireFunc func(ctx context.Context) (sessionID string, w Worker, err error)

// SlowConsumerPolicy says what happens when a subscriber's queue is full.
type SlowConsumerPolicy string

const (
	// PolicyDisconnectSubscriber ends the slow subscriber's stream with
	// ErrSlowConsumer; the client may resume with after_sequence.
	PolicyDisconnectSubscriber SlowConsumerPolicy = "disconnect-subscriber"
	// PolicyFaultSession faults the whole session and kills its worker.
	PolicyFaultSession SlowConsumerPolicy = "fault-session"
)

// ParseSlowConsumerPolicy parses a policy name.
func ParseSlowConsumerPolicy(s string) (SlowConsumerPolicy, error) {
	switch p := SlowConsumerPolicy(s); p {
	case PolicyDisconnectSubscriber, PolicyFaultSession:
		return p, nil
	}
	return "", fmt.Errorf("session: unknown slow consumer policy %q (want %q or %q)", s, PolicyDisconnectSubscriber, PolicyFaultSession)
}

// Defaults of Options.
const (
	DefaultMaxSessions        = 64
	DefaultMaxPendingCommands = 256
	DefaultCommandTimeout     = 30 * time.Second
	DefaultLease              = 5 * time.Minute
	DefaultDetachGrace        = 2 * time.Minute
	DefaultCloseTimeout       = protocol.DefaultShutdownTimeout
	DefaultMaxSubscribers     = 8
	DefaultSlowConsumerPolicy = PolicyFaultSession
	DefaultReplayAge          = 10 * time.Minute
)

// Defaults of the event path's bounds (see docs/performance.md, flow
// control).
const (
	DefaultSubscriberQueue        = 10000
	DefaultSubscriberQueueBytes   = 32 << 20
	DefaultSubscriberStallTimeout = 5 * time.Second
	DefaultReplaySize             = 100000
	DefaultReplayBytes            = 64 << 20
)

// Hooks are optional callbacks for metrics. They run synchronously, some
// while a session lock is held: they must be quick and must not call back
// into the package.
type Hooks struct {
	// SessionOpened runs after a session became ready and was registered.
	SessionOpened func(id string)
	// SessionFaulted runs once when a session faults, with a one-line
	// reason and the error that caused it (for a bounded metrics label).
	SessionFaulted func(id string, reason string, cause error)
	// SessionClosed runs once when a session's worker is gone and the
	// session was removed; final is CLOSED or FAULTED.
	SessionClosed func(id string, final mxgatewayv1.SessionState, reason string)
	// CommandStarted runs for every command that passed the session's
	// checks and goes to the worker.
	CommandStarted func(kind *catalog.Kind)
	// CommandDone runs after every command that reached a worker, with the
	// worker's reply (nil on error).
	CommandDone func(kind *catalog.Kind, elapsed time.Duration, reply *mxgatewayv1.Reply, err error)
	// EventReceived runs for every event accepted from a worker.
	EventReceived func(family mxgatewayv1.EventFamily)
	// EventPublished runs for every worker event after the session
	// numbered it and offered it to its subscribers (the dashboard's live
	// tail). ev is shared: it must not be modified.
	EventPublished func(ev *protocol.Event)
	// SlowConsumer runs for every subscriber queue overflow.
	SlowConsumer func(policy SlowConsumerPolicy)
	// DataHealthChanged runs for every change of a session's data health
	// (the start from STARTING included), under the session lock.
	DataHealthChanged func(id string, from, to mxgatewayv1.DataHealth)
}

// Options configure a Manager. Zero fields take the documented defaults.
type Options struct {
	// Launch starts a worker. Required unless Acquire is set.
	Launch LaunchFunc
	// Acquire, when set, replaces Launch: it provides the worker and the
	// session id together (the manager then generates no id).
	Acquire AcquireFunc
	// Logger receives lifecycle logs; nil discards them.
	Logger *slog.Logger
	// MaxSessions caps open and opening sessions. Default 64.
	MaxSessions int
	// MaxPendingCommands caps in-flight commands per session. Default 256;
	// at most protocol.CommandQueueSize.
	MaxPendingCommands int
	// CommandTimeout applies when a call gives none. Default 30s.
	CommandTimeout time.Duration
	// Lease is how long a session lives after its last call when no
	// stream is attached. Default 5m.
	Lease time.Duration
	// DetachGrace is how long a session lives after its last subscriber
	// left, even when the lease ran out meanwhile. Default 2m.
	DetachGrace time.Duration
	// CloseTimeout bounds a graceful worker shutdown before the worker is
	// killed. Default protocol.DefaultShutdownTimeout (10s).
	CloseTimeout time.Duration
	// MaxSubscribers caps event subscribers per session. Default 8.
	MaxSubscribers int
	// SubscriberQueue is each subscriber's live queue length. Default 10000.
	SubscriberQueue int
	// SubscriberQueueBytes bounds the frame bytes in each subscriber's live
	// queue. Default 32 MiB.
	SubscriberQueueBytes int64
	// SubscriberStallTimeout is how long the session waits for a
	// subscriber with a full queue to make room before it applies
	// SlowConsumerPolicy; meanwhile the session's events wait upstream.
	// Default 5s.
	SubscriberStallTimeout time.Duration
	// SlowConsumerPolicy applies when a subscriber queue is full.
	// Default PolicyFaultSession.
	SlowConsumerPolicy SlowConsumerPolicy
	// ReplaySize is how many events the replay ring keeps (it grows on
	// demand up to this). Default 100000.
	ReplaySize int
	// ReplayBytes bounds the frame bytes the replay ring keeps (the newest
	// event is always kept). Default 64 MiB.
	ReplayBytes int64
	// ReplayAge is how long the replay ring keeps an event. Default 10m.
	ReplayAge time.Duration
	// SweepInterval is how often leases are checked. Default: a quarter of
	// the shorter of Lease and DetachGrace, between 10ms and 1s.
	SweepInterval time.Duration
	// Watchdog configures the data watchdog; off without a Reference.
	Watchdog WatchdogOptions
	// MaxSessionsPerKey caps the sessions one owner key has open or
	// opening, so that one key cannot take every slot; sessions without an
	// owner ("") are not counted. 0 means no per-key cap.
	MaxSessionsPerKey int
	// MaxSecuredWrites bounds the secured and verified writes of one
	// session that await their OnWriteComplete; further ones are refused
	// with ErrPendingLimit. Default DefaultMaxSecuredWrites.
	MaxSecuredWrites int
	// OnSecuredWriteRefused is called for every secured or verified write
	// whose OnWriteComplete said MxCategorySecurityError (its credentials
	// were refused), with the context of the Invoke that made it (its
	// values, without its cancellation). It runs before the completion is
	// delivered to any subscriber: on the session's event goroutine, or on
	// the Invoke's goroutine before its reply returns when the completion
	// arrived first. It may block briefly (an audit write) and must not
	// call back into the session. Nil reports nothing.
	OnSecuredWriteRefused func(ctx context.Context, r SecuredWriteRefusal)
	// Hooks are optional metric callbacks.
	Hooks Hooks
	// Now returns the current time; nil uses time.Now. Tests inject a clock.
	Now func() time.Time
}

func (o Options) withDefaults() (Options, error) {
	var errs []error
	if o.Launch == nil && o.Acquire == nil {
		errs = append(errs, errors.New("session: Options.Launch or Options.Acquire is required"))
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	ints := []struct {
		name string
		v    *int
		def  int
	}{
		{"MaxSessions", &o.MaxSessions, DefaultMaxSessions},
		{"MaxPendingCommands", &o.MaxPendingCommands, DefaultMaxPendingCommands},
		{"MaxSubscribers", &o.MaxSubscribers, DefaultMaxSubscribers},
		{"SubscriberQueue", &o.SubscriberQueue, DefaultSubscriberQueue},
		{"ReplaySize", &o.ReplaySize, DefaultReplaySize},
		{"MaxSecuredWrites", &o.MaxSecuredWrites, DefaultMaxSecuredWrites},
	}
	for _, f := range ints {
		switch {
		case *f.v < 0:
			errs = append(errs, fmt.Errorf("session: %s must not be negative (got %d)", f.name, *f.v))
		case *f.v == 0:
			*f.v = f.def
		}
	}
	durs := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"CommandTimeout", &o.CommandTimeout, DefaultCommandTimeout},
		{"Lease", &o.Lease, DefaultLease},
		{"DetachGrace", &o.DetachGrace, DefaultDetachGrace},
		{"CloseTimeout", &o.CloseTimeout, DefaultCloseTimeout},
		{"ReplayAge", &o.ReplayAge, DefaultReplayAge},
		{"SubscriberStallTimeout", &o.SubscriberStallTimeout, DefaultSubscriberStallTimeout},
	}
	for _, f := range durs {
		switch {
		case *f.v < 0:
			errs = append(errs, fmt.Errorf("session: %s must not be negative (got %v)", f.name, *f.v))
		case *f.v == 0:
			*f.v = f.def
		}
	}
	i64s := []struct {
		name string
		v    *int64
		def  int64
	}{
		{"SubscriberQueueBytes", &o.SubscriberQueueBytes, DefaultSubscriberQueueBytes},
		{"ReplayBytes", &o.ReplayBytes, DefaultReplayBytes},
	}
	for _, f := range i64s {
		switch {
		case *f.v < 0:
			errs = append(errs, fmt.Errorf("session: %s must not be negative (got %d)", f.name, *f.v))
		case *f.v == 0:
			*f.v = f.def
		}
	}
	if o.MaxPendingCommands > protocol.CommandQueueSize {
		errs = append(errs, fmt.Errorf("session: MaxPendingCommands %d exceeds the worker's command queue (%d): a burst would fault the session instead of being refused",
			o.MaxPendingCommands, protocol.CommandQueueSize))
	}
	if o.MaxSessionsPerKey < 0 {
		errs = append(errs, fmt.Errorf("session: MaxSessionsPerKey must not be negative (got %d)", o.MaxSessionsPerKey))
	}
	if o.SlowConsumerPolicy == "" {
		o.SlowConsumerPolicy = DefaultSlowConsumerPolicy
	} else if _, err := ParseSlowConsumerPolicy(string(o.SlowConsumerPolicy)); err != nil {
		errs = append(errs, err)
	}
	if o.Watchdog.Reference != "" {
		w, err := o.Watchdog.withDefaults()
		if err != nil {
			errs = append(errs, err)
		}
		o.Watchdog = w
	}
	if o.SweepInterval < 0 {
		errs = append(errs, fmt.Errorf("session: SweepInterval must not be negative (got %v)", o.SweepInterval))
	} else if o.SweepInterval == 0 {
		o.SweepInterval = min(o.Lease, o.DetachGrace) / 4
		o.SweepInterval = max(10*time.Millisecond, min(o.SweepInterval, time.Second))
	}
	return o, errors.Join(errs...)
}
