package session

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

// The data watchdog. A silently dead MXAccess connection answers every call
// and its worker answers heartbeats, yet no data arrives. Each session's
// watchdog advises one reference that must change at least every
// StaleAfter, through a registration of its own on the session's worker
// (client name WatchdogClientName), and classifies the session's data as
// HEALTHY, DEGRADED or FAILED. The registration's events never reach the
// replay ring or a subscriber, and client commands that name its server
// handle are refused with ErrReservedHandle; its handle is otherwise taken
// from the same handle space as the client's registrations (the client's
// first Register returns the next one).

// WatchdogClientName is the client name of the watchdog's registration.
const WatchdogClientName = "mxgateway data watchdog"

// WatchdogOptions configure the data watchdog. An empty Reference disables
// it (every session's data health is then DISABLED).
type WatchdogOptions struct {
	// Reference is the attribute that must change at least every
	// StaleAfter, for example a platform's or engine's ticking attribute.
	Reference string
	// StaleAfter: no good-quality change for this long makes the data
	// DEGRADED. Required with a Reference (the configuration's
	// data_watchdog_stale_after is its one default).
	StaleAfter time.Duration
	// FailAfter: no good-quality change for this long makes the data
	// FAILED; greater than StaleAfter. Required with a Reference.
	FailAfter time.Duration
	// CheckInterval is how often the watchdog looks at the clock. Default:
	// a quarter of StaleAfter, between 10ms and 1s.
	CheckInterval time.Duration
}

func (o WatchdogOptions) withDefaults() (WatchdogOptions, error) {
	if o.StaleAfter <= 0 || o.FailAfter <= 0 || o.CheckInterval < 0 {
		return o, fmt.Errorf("session: watchdog StaleAfter and FailAfter must be positive, CheckInterval not negative (got %v, %v, %v)", o.StaleAfter, o.FailAfter, o.CheckInterval)
	}
	if o.FailAfter <= o.StaleAfter {
		return o, fmt.Errorf("session: watchdog FailAfter (%v) must be greater than StaleAfter (%v)", o.FailAfter, o.StaleAfter)
	}
	if o.CheckInterval == 0 {
		o.CheckInterval = max(10*time.Millisecond, min(o.StaleAfter/4, time.Second))
	}
	return o, nil
}

// watchdog is one session's watchdog state, guarded by the session's mu.
type watchdog struct {
	server     int32 // the watchdog's registration; 0 when it has none
	health     mxgatewayv1.DataHealth
	reason     string    // why the data is not healthy
	began      time.Time // when watching began
	lastChange time.Time // the last good-quality change; zero before one
	badQuality uint32    // raw quality of the last value when not good; 0 when good
	setupErr   string    // why the reference could not be advised
}

// watchdogEnabled reports whether the manager runs data watchdogs.
func (m *Manager) watchdogEnabled() bool { return m.opts.Watchdog.Reference != "" }

// setupWatchdog registers, adds and advises the watchdog reference on the
// session's worker, before the session is visible to anyone (so the
// registration is the worker's first and no client command races it). A
// refusal does not fail the open: the data is DEGRADED with the reason,
// and FAILED after FailAfter without data.
func (s *Session) setupWatchdog(ctx context.Context) {
	opts := &s.m.opts
	ref := opts.Watchdog.Reference
	s.mu.Lock()
	s.wd.health = mxgatewayv1.DataHealth_DATA_HEALTH_STARTING
	s.wd.began = opts.Now()
	s.mu.Unlock()

	fail := func(step string, reply *mxgatewayv1.Reply, err error) {
		why := fmt.Sprintf("watchdog could not %s %s", step, ref)
		switch {
		case err != nil:
			why += ": " + err.Error()
		default:
			why += fmt.Sprintf(": HRESULT 0x%08X", uint32(reply.GetHresult()))
		}
		s.log.Warn("data watchdog not set up", slog.String("reference", ref), slog.String("why", why))
		s.mu.Lock()
		s.wd.setupErr = why
		after := s.classifyLocked(opts.Now())
		s.mu.Unlock()
		after()
	}
	invoke := func(cmd *mxgatewayv1.Command) (*mxgatewayv1.Reply, error) {
		return s.w.Invoke(ctx, cmd, nil, opts.CommandTimeout)
	}
	ok := func(r *mxgatewayv1.Reply) bool {
		return r.GetStatus() == mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK
	}
	r, err := invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{ClientName: WatchdogClientName}}})
	if err != nil || !ok(r) || r.GetRegister().GetServerHandle() == 0 {
		fail("register for", r, err)
		return
	}
	server := r.GetRegister().GetServerHandle()
	s.mu.Lock()
	s.wd.server = server
	s.mu.Unlock()
	r, err = invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{ServerHandle: server, ItemDefinition: ref}}})
	if err != nil || !ok(r) {
		fail("add", r, err)
		return
	}
	item := r.GetItemHandle().GetItemHandle()
	r, err = invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Advise{Advise: &mxgatewayv1.AdviseCommand{ServerHandle: server, ItemHandle: item}}})
	if err != nil || !ok(r) {
		fail("advise", r, err)
		return
	}
	s.log.Debug("data watchdog advised", slog.String("reference", ref), slog.Int("server_handle", int(server)))
}

// watch re-classifies the data every CheckInterval until the worker is
// terminal.
func (s *Session) watch() {
	defer close(s.wdDone)
	t := time.NewTicker(s.m.opts.Watchdog.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-s.pumpDone:
			return
		case <-t.C:
			after := func() {}
			s.mu.Lock()
			if s.state == mxgatewayv1.SessionState_SESSION_STATE_READY && !s.closing {
				after = s.classifyLocked(s.m.opts.Now())
			}
			s.mu.Unlock()
			after()
		}
	}
}

// watchdogEventLocked takes an event of the watchdog's registration (true),
// or reports that ev belongs to the client (false). after must run once the
// session lock is released.
func (s *Session) watchdogEventLocked(e *protocol.Event, now time.Time) (taken bool, after func()) {
	if s.wd.server == 0 || e.ServerHandle != s.wd.server {
		return false, nil
	}
	var q *mxgatewayv1.Quality
	switch b := e.Decode().GetBody().(type) {
	case *mxgatewayv1.Event_DataChange:
		q = b.DataChange.GetQuality()
	case *mxgatewayv1.Event_BufferedDataChange:
		if n := len(b.BufferedDataChange.GetSamples()); n > 0 {
			q = b.BufferedDataChange.GetSamples()[n-1].GetQuality()
		}
	default:
		return true, func() {} // not data; nothing to learn
	}
	if q.GetQualityClass() == mxgatewayv1.QualityClass_QUALITY_CLASS_GOOD {
		s.wd.lastChange = now
		s.wd.badQuality = 0
	} else {
		s.wd.badQuality = q.GetRaw() | 1<<16 // never 0, even for raw 0
	}
	return true, s.classifyLocked(now)
}

// classifyLocked computes the data health at now and reports a change with
// a gateway event and the DataHealthChanged hook. The returned func (never
// nil) must run once the session lock is released.
func (s *Session) classifyLocked(now time.Time) (after func()) {
	nothing := func() {}
	if s.wd.health == mxgatewayv1.DataHealth_DATA_HEALTH_DISABLED {
		return nothing
	}
	o := &s.m.opts.Watchdog
	h, reason := classify(&s.wd, o, now)
	if h == s.wd.health {
		s.wd.reason = reason
		return nothing
	}
	prev := s.wd.health
	s.wd.health, s.wd.reason = h, reason
	if hk := s.m.opts.Hooks.DataHealthChanged; hk != nil {
		hk(s.id, prev, h)
	}
	if prev == mxgatewayv1.DataHealth_DATA_HEALTH_STARTING && h == mxgatewayv1.DataHealth_DATA_HEALTH_HEALTHY {
		return nothing // the normal start is not news to a client
	}
	lvl := slog.LevelInfo
	if h != mxgatewayv1.DataHealth_DATA_HEALTH_HEALTHY {
		lvl = slog.LevelWarn
	}
	s.log.Log(context.Background(), lvl, "data health changed", slog.String("from", prev.String()),
		slog.String("to", h.String()), slog.String("reference", o.Reference), slog.String("why", reason))
	body := &mxgatewayv1.DataHealthChange{Health: h, Previous: prev, Reference: o.Reference, Reason: reason}
	if !s.wd.lastChange.IsZero() {
		body.LastChange = timestamppb.New(s.wd.lastChange)
	}
	ev := &mxgatewayv1.Event{
		Family:           mxgatewayv1.EventFamily_EVENT_FAMILY_DATA_HEALTH,
		GatewayTime:      timestamppb.New(now),
		GatewayGenerated: true,
		Body:             &mxgatewayv1.Event_DataHealth{DataHealth: body},
	}
	slow, kill := s.publishLocked(protocol.EventOf(ev, proto.Size(ev)), proto.Size(ev), now)
	return func() { s.hooks(slow, 0, kill) }
}

// classify is the watchdog's rule: the age of the last good-quality change
// (or of the start, before one) decides DEGRADED and FAILED; a fresh change
// is HEALTHY unless the last value was not good or the reference could not
// be advised.
func classify(w *watchdog, o *WatchdogOptions, now time.Time) (mxgatewayv1.DataHealth, string) {
	since := w.lastChange
	never := since.IsZero()
	if never {
		since = w.began
	}
	age := now.Sub(since)
	stale := func() string {
		if never {
			return fmt.Sprintf("%s sent no good value in %v", o.Reference, age.Round(time.Millisecond))
		}
		return fmt.Sprintf("%s unchanged for %v", o.Reference, age.Round(time.Millisecond))
	}
	switch {
	case age >= o.FailAfter:
		return mxgatewayv1.DataHealth_DATA_HEALTH_FAILED, stale()
	case w.setupErr != "":
		return mxgatewayv1.DataHealth_DATA_HEALTH_DEGRADED, w.setupErr
	case age >= o.StaleAfter:
		return mxgatewayv1.DataHealth_DATA_HEALTH_DEGRADED, stale()
	case w.badQuality != 0:
		return mxgatewayv1.DataHealth_DATA_HEALTH_DEGRADED, fmt.Sprintf("%s has quality %d (not good)", o.Reference, w.badQuality&0xffff)
	case never:
		return mxgatewayv1.DataHealth_DATA_HEALTH_STARTING, ""
	}
	return mxgatewayv1.DataHealth_DATA_HEALTH_HEALTHY, ""
}

// DataHealthCounts is how many READY sessions are in each data health (a
// faulted or closing session's data no longer counts).
func (m *Manager) DataHealthCounts() map[mxgatewayv1.DataHealth]int {
	m.mu.Lock()
	all := make([]*Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		all = append(all, s)
	}
	m.mu.Unlock()
	out := make(map[mxgatewayv1.DataHealth]int)
	for _, s := range all {
		s.mu.Lock()
		if s.state == mxgatewayv1.SessionState_SESSION_STATE_READY && !s.closing {
			out[s.wd.health]++
		}
		s.mu.Unlock()
	}
	return out
}
