package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/mxgateway/mxgateway/internal/auth"
	"github.com/mxgateway/mxgateway/internal/metrics"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

// DefaultTapSize is how many recent events the live tail keeps.
const DefaultTapSize = 1024

// EventTap keeps the newest events of every session for the live tail
// while a tail is open (a tail starts with the events after it opened).
// Publish never blocks (it is a session hook) and costs an atomic load
// while nobody tails; a reader that falls more than the tap's size behind
// skips ahead and is told how many it missed.
type EventTap struct {
	readers atomic.Int32 // open tails

	mu     sync.Mutex
	ring   []*protocol.Event
	total  uint64        // events published so far
	notify chan struct{} // closed and replaced on a publish while waited on
	waited bool          // notify was handed to a reader
}

// NewEventTap returns a tap keeping the newest n events (DefaultTapSize
// when n <= 0).
func NewEventTap(n int) *EventTap {
	if n <= 0 {
		n = DefaultTapSize
	}
	return &EventTap{ring: make([]*protocol.Event, n), notify: make(chan struct{})}
}

// Publish records ev (the session hook EventPublished). It never decodes
// the event: only a row a viewer is sent is decoded.
func (t *EventTap) Publish(ev *protocol.Event) {
	if t.readers.Load() == 0 {
		return
	}
	t.mu.Lock()
	t.ring[t.total%uint64(len(t.ring))] = ev
	t.total++
	if !t.waited {
		t.mu.Unlock()
		return // nobody waits: no channel to replace (the common case)
	}
	ch := t.notify
	t.notify, t.waited = make(chan struct{}), false
	t.mu.Unlock()
	close(ch)
}

// since returns the events after cursor, the new cursor, how many were
// missed, and a channel closed on the next publish.
func (t *EventTap) since(cursor uint64) (evs []*protocol.Event, next, missed uint64, wait <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := uint64(len(t.ring))
	if t.total > n && cursor < t.total-n {
		missed = t.total - n - cursor
		cursor = t.total - n
	}
	for c := cursor; c < t.total; c++ {
		evs = append(evs, t.ring[c%n])
	}
	t.waited = true
	return evs, t.total, missed, t.notify
}

// attach counts an open tail and returns the current end of the tap;
// detach undoes it.
func (t *EventTap) attach() uint64 {
	t.readers.Add(1)
	return t.cursor()
}

func (t *EventTap) detach() { t.readers.Add(-1) }

// cursor is the current end of the tap.
func (t *EventTap) cursor() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total
}

// sse prepares a server-sent-events response. Live streams outlive the
// listener's read and write timeouts: the read deadline is lifted, and
// the write deadline moves with every event (sseWriteTimeout).
type sse struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func startSSE(w http.ResponseWriter) *sse {
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	return &sse{w: w, rc: rc}
}

// sseWriteTimeout bounds one event's write: a client that stops reading
// ends its stream instead of holding it (and the dashboard's Close).
const sseWriteTimeout = 10 * time.Second

// send writes one event with a JSON payload.
func (e *sse) send(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_ = e.rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	if _, err := fmt.Fprintf(e.w, "event: %s\ndata: %s\n\n", name, b); err != nil {
		return err
	}
	return e.rc.Flush()
}

// MaxStreamsPerLogin bounds the live streams one login holds at once (a
// few tabs); past it a stream is refused with 429.
const MaxStreamsPerLogin = 8

// openStream counts a live stream against its login; ok is false (and
// the request answered) when the login holds MaxStreamsPerLogin already.
func (s *Server) openStream(w http.ResponseWriter, r *request) (release func(), ok bool) {
	lg := r.login
	lg.mu.Lock()
	if lg.streams >= MaxStreamsPerLogin {
		lg.mu.Unlock()
		http.Error(w, fmt.Sprintf("this login has %d live streams open already", MaxStreamsPerLogin), http.StatusTooManyRequests)
		return nil, false
	}
	lg.streams++
	lg.mu.Unlock()
	s.streams.Add(1)
	return func() {
		lg.mu.Lock()
		lg.streams--
		lg.mu.Unlock()
		s.streams.Done()
	}, true
}

// streamCtx is the context of a live stream: it ends with the request,
// with the dashboard, and when the login's key is revoked.
func (s *Server) streamCtx(r *request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	if s.opts.Keys != nil && s.opts.Mode == auth.ModeAPIKey {
		var stop context.CancelFunc
		ctx, stop = s.opts.Keys.WatchRevocation(ctx, r.p.KeyID)
		inner := cancel
		cancel = func() { stop(); inner() }
	}
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// beginStream starts a live stream: counted against its login
// (openStream), with its context (streamCtx) and the SSE response begun.
// ok is false when the login holds its limit already (the request is
// answered); otherwise end releases the stream.
func (s *Server) beginStream(w http.ResponseWriter, r *request) (ctx context.Context, e *sse, end func(), ok bool) {
	release, ok := s.openStream(w, r)
	if !ok {
		return nil, nil, nil, false
	}
	ctx, cancel := s.streamCtx(r)
	return ctx, startSSE(w), func() { cancel(); release() }, true
}

// stillLoggedIn reports whether the stream's login is still held and its
// key still verifies; a live stream checks it on every tick.
func (s *Server) stillLoggedIn(ctx context.Context, r *request) bool {
	lg, ended := s.logins.peek(r.login)
	s.ended(ended)
	if lg == nil {
		return false
	}
	if _, err := s.principal(ctx, r.login); err != nil {
		s.ended(s.logins.remove(r.login))
		return false
	}
	return true
}

// ---- Overview ----

// overviewData is the overview's content, rendered at first and then sent
// live every LiveInterval.
// NATSSummary is the overview's view of the gateway's NATS: the mode, the
// embedded server's address and counters (zero in external mode), and the
// references the gateway advises for shared subscriptions.
type NATSSummary struct {
	Mode          string
	Addr          string
	Clients       int
	SlowConsumers int64
	InMsgs        int64
	OutMsgs       int64
	Shared        int
}

type overviewData struct {
	Ready        bool    `json:"ready"`
	Checks       []Check `json:"checks"`
	Version      string  `json:"version"`
	Uptime       string  `json:"uptime"`
	Sessions     int     `json:"sessions"`
	Workers      int     `json:"workers"`
	Spares       int     `json:"spares"`
	Logins       int     `json:"logins"`
	Commands     float64 `json:"commands"`
	Failures     float64 `json:"failures"`
	Events       float64 `json:"events"`
	Faults       float64 `json:"faults"`
	Overflows    float64 `json:"overflows"`
	AuthDenials  float64 `json:"auth_denials"`
	CommandsRate string  `json:"commands_rate"`
	EventsRate   string  `json:"events_rate"`
	// HasNATS shows the NATS card; the nats_* values fill it.
	HasNATS     bool   `json:"has_nats"`
	NATSMode    string `json:"nats_mode"`
	NATSAddr    string `json:"nats_addr"`
	NATSClients int    `json:"nats_clients"`
	NATSSlow    int64  `json:"nats_slow_consumers"`
	NATSInMsgs  int64  `json:"nats_in_msgs"`
	NATSOutMsgs int64  `json:"nats_out_msgs"`
	NATSShared  int    `json:"nats_shared"`
	at          time.Time
}

// Metric names the overview reads, from the metrics package's namespace.
var (
	metricCommands    = metrics.Namespace + "_commands_total"
	metricEvents      = metrics.Namespace + "_events_received_total"
	metricFaults      = metrics.Namespace + "_faults_total"
	metricOverflows   = metrics.Namespace + "_event_queue_overflows_total"
	metricAuthDenials = metrics.Namespace + "_auth_denials_total"
)

// snapshot reads the overview now; prev, when set, gives the rates.
func (s *Server) snapshot(prev *overviewData) overviewData {
	now := s.opts.Now()
	d := overviewData{Version: s.opts.Version, Uptime: fmtAge(now.Sub(s.opts.Started)), Sessions: s.opts.Sessions.Len(),
		Logins: s.logins.len(), CommandsRate: "—", EventsRate: "—", at: now, Checks: []Check{}}
	if s.opts.Health != nil {
		h := s.opts.Health()
		d.Ready = h.Ready
		if h.Checks != nil {
			d.Checks = h.Checks
		}
	}
	if s.opts.Workers != nil {
		d.Workers, d.Spares = len(s.opts.Workers.Workers()), s.opts.Workers.Spares()
	}
	if s.opts.NATS != nil {
		n := s.opts.NATS()
		d.HasNATS, d.NATSMode, d.NATSAddr, d.NATSClients = true, n.Mode, n.Addr, n.Clients
		d.NATSSlow, d.NATSInMsgs, d.NATSOutMsgs, d.NATSShared = n.SlowConsumers, n.InMsgs, n.OutMsgs, n.Shared
	}
	if s.opts.Gatherer != nil {
		if mfs, err := s.opts.Gatherer.Gather(); err == nil {
			for _, mf := range mfs {
				switch mf.GetName() {
				case metricCommands:
					for _, m := range mf.GetMetric() {
						v := m.GetCounter().GetValue()
						d.Commands += v
						if label(m, "outcome") != metrics.OutcomeOK {
							d.Failures += v
						}
					}
				case metricEvents:
					d.Events = sum(mf)
				case metricFaults:
					d.Faults = sum(mf)
				case metricOverflows:
					d.Overflows = sum(mf)
				case metricAuthDenials:
					d.AuthDenials = sum(mf)
				}
			}
		}
	}
	if prev != nil {
		if dt := now.Sub(prev.at).Seconds(); dt > 0 {
			d.CommandsRate = fmt.Sprintf("%.1f", max(0, d.Commands-prev.Commands)/dt)
			d.EventsRate = fmt.Sprintf("%.1f", max(0, d.Events-prev.Events)/dt)
		}
	}
	return d
}

func sum(mf *dto.MetricFamily) float64 {
	var t float64
	for _, m := range mf.GetMetric() {
		t += m.GetCounter().GetValue()
	}
	return t
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// live runs a periodic stream: tick is called at once and then every
// LiveInterval until the client leaves, the login ends or the dashboard
// closes.
func (s *Server) live(w http.ResponseWriter, r *request, tick func(e *sse) error) {
	ctx, e, end, ok := s.beginStream(w, r)
	if !ok {
		return
	}
	defer end()
	t := time.NewTicker(s.opts.LiveInterval)
	defer t.Stop()
	for {
		if !s.stillLoggedIn(ctx, r) {
			_ = e.send("logout", struct{}{})
			return
		}
		if err := tick(e); err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) liveOverview(w http.ResponseWriter, r *request) {
	var prev *overviewData
	s.live(w, r, func(e *sse) error {
		d := s.snapshot(prev)
		prev = &d
		return e.send("overview", d)
	})
}

func (s *Server) liveSessions(w http.ResponseWriter, r *request) {
	s.live(w, r, func(e *sse) error { return e.send("sessions", s.sessionRows()) })
}

// ---- Events ----

// eventRow is one line of the live tail.
type eventRow struct {
	Session  string `json:"session"`
	Sequence uint64 `json:"seq"`
	Family   string `json:"family"`
	Time     string `json:"time"`
	Item     string `json:"item"`
	Value    string `json:"value"`
	Quality  string `json:"quality"`
}

// maxEventsPerSend bounds one batch of the tail.
const maxEventsPerSend = 200

func (s *Server) liveEvents(w http.ResponseWriter, r *request) {
	q := r.URL.Query()
	sid, fam := q.Get("session"), strings.ToUpper(q.Get("family"))
	if s.opts.Events == nil {
		http.Error(w, "no live tail on this gateway", http.StatusNotFound)
		return
	}
	ctx, e, end, ok := s.beginStream(w, r)
	if !ok {
		return
	}
	defer end()
	cursor := s.opts.Events.attach()
	defer s.opts.Events.detach()
	check := time.NewTicker(s.opts.LiveInterval)
	defer check.Stop()
	_ = e.send("hello", struct{}{})
	for {
		evs, next, missed, wait := s.opts.Events.since(cursor)
		cursor = next
		var rows []eventRow
		for _, ev := range evs {
			if sid != "" && ev.SessionID != sid {
				continue
			}
			if fam != "" && enumName(ev.Family.String()) != fam {
				continue
			}
			rows = append(rows, s.eventRow(r.p, ev))
		}
		if missed > 0 {
			if e.send("missed", missed) != nil {
				return
			}
		}
		for len(rows) > 0 {
			n := min(len(rows), maxEventsPerSend)
			if e.send("events", rows[:n]) != nil {
				return
			}
			rows = rows[n:]
		}
		select {
		case <-ctx.Done():
			return
		case <-wait:
		case <-check.C:
			if !s.stillLoggedIn(ctx, r) {
				_ = e.send("logout", struct{}{})
				return
			}
		}
	}
}

// eventRow describes ev for p: a data change's value only when p may read
// its reference (hidden otherwise).
func (s *Server) eventRow(p *auth.Principal, ev *protocol.Event) eventRow {
	row := eventRow{Session: ev.SessionID, Sequence: ev.Sequence, Family: enumName(ev.Family.String())}
	if !ev.GatewayTime.IsZero() {
		row.Time = ev.GatewayTime.UTC().Format("15:04:05.000Z")
	}
	if !ev.IsDataChange() {
		return row
	}
	ref, ok := "", false
	if ss, err := s.opts.Sessions.Get(ev.SessionID); err == nil {
		ref, ok = ss.ItemRef(ev.ServerHandle, ev.ItemHandle)
	}
	row.Item = fmt.Sprintf("(%d, %d)", ev.ServerHandle, ev.ItemHandle)
	if ok {
		row.Item = ref
	}
	if ok && mayReadValues(p) && p.AllowRead(ref) {
		// Decoded only here, for a viewer that may see the value.
		dc := ev.Msg().GetDataChange()
		row.Value, row.Quality = formatValue(dc.GetValue()), formatQuality(dc.GetQuality())
	} else {
		row.Value = "(hidden)"
	}
	return row
}

// mayReadValues reports whether p may see tag values at all: they need
// scope invoke:read (admin holds it); its read constraints then apply per
// reference.
func mayReadValues(p *auth.Principal) bool { return p.Has(auth.ScopeInvokeRead) }

func urlEscape(s string) string { return url.QueryEscape(s) }
