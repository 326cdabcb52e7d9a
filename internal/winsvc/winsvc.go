package winsvc

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/mxgateway/mxgateway/internal/logging"
)

// DefaultName is the service name `mxgateway service install` uses.
const DefaultName = "mxgateway"

// DisplayName and Description are shown in the Services console.
const (
	DisplayName = "mxgateway (MXAccess gRPC gateway)"
	Description = "Gives gRPC clients full MXAccess access to the Galaxy, one isolated worker process per session."
)

// ErrNotSupported is returned by every operation on systems other than
// Windows.
var ErrNotSupported = errors.New("winsvc: Windows services are supported only on Windows")

// StopProgressInterval is how often Run re-reports StopPending while the
// gateway shuts down, so the SCM sees progress and does not give up.
const StopProgressInterval = 2 * time.Second

// state is the SCM-independent service state Run reports.
type state int

const (
	stateStartPending state = iota
	stateRunning
	stateStopPending
)

// request is the SCM-independent control request Run reacts to.
type request int

const (
	reqInterrogate request = iota
	reqStop
	reqShutdown
	reqOther
)

// control runs run until it returns or a Stop or Shutdown request arrives,
// then cancels its context and waits for it, reporting states through
// report. It returns run's error. Interrogate re-reports the current state.
// While stopping, StopPending is re-reported every progress interval.
func control(base context.Context, run func(ctx context.Context) error, requests <-chan request, report func(state), progress time.Duration) error {
	report(stateStartPending)
	ctx, cancel := context.WithCancel(base)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	current := stateRunning
	report(current)

	var tick <-chan time.Time
	for {
		select {
		case err := <-done:
			if current != stateStopPending {
				report(stateStopPending)
			}
			return err
		case r := <-requests:
			switch r {
			case reqInterrogate:
				report(current)
			case reqStop, reqShutdown:
				if current != stateStopPending {
					current = stateStopPending
					report(current)
					cancel()
					t := time.NewTicker(progress)
					defer t.Stop()
					tick = t.C
				}
			}
		case <-tick:
			report(stateStopPending)
		}
	}
}

type nameKey struct{}

// withName returns ctx carrying the service name.
func withName(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, nameKey{}, name)
}

// NameFromContext returns the name the SCM started the service under, from
// the context Run passes to its function. Use it as the event log source:
// it differs from DefaultName when the service was installed with --name.
func NameFromContext(ctx context.Context) (string, bool) {
	name, ok := ctx.Value(nameKey{}).(string)
	return name, ok && name != ""
}

// eventWriter is the part of *eventlog.Log the event log handler uses.
type eventWriter interface {
	Info(eid uint32, msg string) error
	Warning(eid uint32, msg string) error
	Error(eid uint32, msg string) error
}

// Event IDs written to the event log, by level.
const (
	EventIDInfo    = 1
	EventIDWarning = 2
	EventIDError   = 3
)

// eventHandler is a slog.Handler that formats each record as one
// "msg key=value ..." line (no time or level: the event log records both)
// and writes it as an Information, Warning or Error event.
type eventHandler struct {
	out   eventWriter
	level slog.Leveler
	inner slog.Handler // a text handler writing into buf
	mu    *sync.Mutex  // guards buf, shared with derived handlers
	buf   *bytes.Buffer
}

func newEventHandler(out eventWriter, level slog.Leveler) *eventHandler {
	if level == nil {
		level = slog.LevelInfo
	}
	buf := new(bytes.Buffer)
	inner := slog.NewTextHandler(buf, &slog.HandlerOptions{
		Level: slog.LevelDebug, // filtering happens in Enabled
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
				return slog.Attr{}
			}
			return a
		},
	})
	return &eventHandler{out: out, level: level, inner: inner, mu: new(sync.Mutex), buf: buf}
}

func (h *eventHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *eventHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	h.buf.Reset()
	err := h.inner.Handle(ctx, r)
	msg := string(bytes.TrimRight(h.buf.Bytes(), "\n"))
	h.mu.Unlock()
	if err != nil {
		return err
	}
	switch {
	case r.Level >= slog.LevelError:
		return h.out.Error(EventIDError, msg)
	case r.Level >= slog.LevelWarn:
		return h.out.Warning(EventIDWarning, msg)
	default:
		return h.out.Info(EventIDInfo, msg)
	}
}

func (h *eventHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.inner = h.inner.WithAttrs(attrs)
	return &c
}

func (h *eventHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.inner = h.inner.WithGroup(name)
	return &c
}

// EventLog writes slog records to the Windows event log under a source
// name (registered by Install).
type EventLog struct {
	handler slog.Handler
	closer  func() error
	once    sync.Once
	err     error
}

// Handler returns a handler that writes records at or above the level
// given to OpenEventLog, with secrets redacted. Combine it with the file or
// stderr handler using slog.NewMultiHandler.
func (l *EventLog) Handler() slog.Handler { return l.handler }

// Close closes the event log. It is safe to call twice.
func (l *EventLog) Close() error {
	l.once.Do(func() { l.err = l.closer() })
	return l.err
}

func newEventLog(out eventWriter, level slog.Leveler, closer func() error) *EventLog {
	return &EventLog{handler: logging.NewRedactHandler(newEventHandler(out, level)), closer: closer}
}
