package alarms

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// Defaults and caps; Options fields left zero take the defaults.
const (
	DefaultRingSize       = 10_000
	DefaultRingBytes      = 16 << 20
	DefaultFeedQueue      = 16_384
	DefaultFeedQueueBytes = 16 << 20
	DefaultMaxFeeds       = 256
	DefaultRefresh        = time.Second
	DefaultPageSize       = 500
	MaxPageSize           = 5_000
	// MaxWatched bounds the watch list.
	MaxWatched = 200_000
	// AckCommentMax is the AckMsg limit in characters (GALAXY.md §2.1).
	AckCommentMax = 256
	// MaxCredentialBytes bounds a user name or a password.
	MaxCredentialBytes = 256
)

// Credentials is a Galaxy user of a secured acknowledgement.
type Credentials struct{ User, Password string }

// Ack is one acknowledgement for a provider.
type Ack struct {
	Source   Source
	Comment  string
	Operator *Credentials // nil: a plain write
	Verifier *Credentials
}

// Provider watches alarms and acknowledges them.
type Provider interface {
	// Kind names the provider in the feed.
	Kind() mxgatewayv1.AlarmProvider
	// Run watches srcs and reports to sink until ctx ends (it then returns
	// nil) or it fails (it returns why).
	Run(ctx context.Context, srcs []Source, sink Sink) error
	// Acknowledge writes one acknowledgement; it is called only while Run
	// runs. The status is the write's outcome.
	Acknowledge(ctx context.Context, a Ack) (*mxgatewayv1.MxStatus, error)
	// Probe checks whether the provider could run (failback); nil is a
	// clean probe.
	Probe(ctx context.Context) error
}

// Sink receives a provider's reports. Safe for one goroutine at a time.
type Sink interface {
	// Observe reports alarms' current views, in the order they changed.
	Observe(obs []Observation)
	// Ready reports that every source was observed once (detail says how).
	Ready(detail string)
}

// WatchList returns the alarms to watch and the deploy sequence they
// come from; ok is false while there is no model yet.
type WatchList func() (srcs []Source, deploySeq uint64, ok bool)

// Options configure a Monitor.
type Options struct {
	WatchList WatchList
	// Providers in order of preference: the first is primary, the next
	// the standby failover switches to.
	Providers []Provider
	Failover  FailoverOptions
	// Refresh is how often the watch list is checked for a deploy.
	Refresh        time.Duration
	RingSize       int
	RingBytes      int64
	FeedQueue      int
	FeedQueueBytes int64
	MaxFeeds       int
	Logger         *slog.Logger
	Now            func() time.Time
}

// FailoverOptions are the upstream thresholds (GALAXY.md §2.5).
type FailoverOptions struct {
	FailureThreshold int           // consecutive failures before switching (3)
	StableProbes     int           // clean probes of the primary before failing back (3)
	ProbeInterval    time.Duration // between probes (30 s)
}

// Monitor is the gateway's alarm monitor.
type Monitor struct {
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	records   map[string]*record // lower-case reference
	order     []*record          // by lower-case reference
	seq       uint64
	ring      []ringEntry
	ringHead  int
	ringBytes int64
	feeds     map[*Feed]struct{}
	status    *mxgatewayv1.AlarmProviderStatus
	current   Provider // the provider running, nil between runs
	ready     bool     // the provider running reported every alarm
	everReady bool     // some provider did, once: the state is worth serving
	closed    bool

	cancel context.CancelFunc
	done   chan struct{}
}

type ringEntry struct {
	msg  *mxgatewayv1.StreamAlarmsResponse
	size int
}

// New starts a monitor; Close stops it.
func New(opts Options) (*Monitor, error) {
	if opts.WatchList == nil || len(opts.Providers) == 0 {
		return nil, fmt.Errorf("alarms: a watch list and a provider are required")
	}
	opts.Refresh = cmp.Or(opts.Refresh, DefaultRefresh)
	opts.RingSize = cmp.Or(opts.RingSize, DefaultRingSize)
	opts.RingBytes = cmp.Or(opts.RingBytes, DefaultRingBytes)
	opts.FeedQueue = cmp.Or(opts.FeedQueue, DefaultFeedQueue)
	opts.FeedQueueBytes = cmp.Or(opts.FeedQueueBytes, DefaultFeedQueueBytes)
	opts.MaxFeeds = cmp.Or(opts.MaxFeeds, DefaultMaxFeeds)
	opts.Failover.FailureThreshold = cmp.Or(opts.Failover.FailureThreshold, 3)
	opts.Failover.StableProbes = cmp.Or(opts.Failover.StableProbes, 3)
	opts.Failover.ProbeInterval = cmp.Or(opts.Failover.ProbeInterval, 30*time.Second)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Monitor{opts: opts, log: opts.Logger, records: map[string]*record{}, feeds: map[*Feed]struct{}{},
		status: &mxgatewayv1.AlarmProviderStatus{Provider: opts.Providers[0].Kind(), Detail: "starting"},
		cancel: cancel, done: make(chan struct{})}
	go m.run(ctx)
	return m, nil
}

// Close stops the provider and ends every feed.
func (m *Monitor) Close() {
	m.cancel()
	<-m.done
	m.mu.Lock()
	m.closed = true
	for f := range m.feeds {
		f.endLocked(ErrClosed)
	}
	m.mu.Unlock()
}

// run is the monitor's one provider loop: the watch list, then the
// provider until it fails or a deploy changes the list; failover between
// providers.
func (m *Monitor) run(ctx context.Context) {
	defer close(m.done)
	cur, failures, backoff := 0, 0, 100*time.Millisecond
	var srcs []Source
	var seq uint64
	for ctx.Err() == nil {
		s, sq, ok := m.opts.WatchList()
		if !ok {
			m.setStatus(cur, false, "waiting for the Galaxy model", 0, 0)
			if !sleep(ctx, m.opts.Refresh) {
				return
			}
			continue
		}
		if srcs == nil || sq != seq {
			srcs, seq = s, sq
			if len(srcs) > MaxWatched {
				m.log.Warn("alarm watch list truncated", "alarms", len(srcs), "max", MaxWatched)
				srcs = srcs[:MaxWatched]
			}
			m.setSources(srcs)
		}
		p := m.opts.Providers[cur]
		m.setStatus(cur, false, "connecting", len(srcs), seq)
		pctx, stop := context.WithCancel(ctx)
		errc := make(chan error, 1)
		sink := &sink{m: m, cur: cur, watched: len(srcs), seq: seq}
		m.mu.Lock()
		m.current = p
		m.mu.Unlock()
		runStart := time.Now()
		go func() { errc <- p.Run(pctx, srcs, sink) }()
		var err error
		redeploy, failback := false, false
		tick := time.NewTicker(m.opts.Refresh)
		var probe <-chan time.Time
		var probeT *time.Ticker
		clean := 0
		if cur != 0 {
			probeT = time.NewTicker(m.opts.Failover.ProbeInterval)
			probe = probeT.C
		}
	wait:
		for {
			select {
			case err = <-errc:
				break wait
			case <-tick.C:
				if _, sq, ok := m.opts.WatchList(); ok && sq != seq {
					redeploy = true
					stop()
					err = <-errc
					break wait
				}
			case <-probe:
				if m.opts.Providers[0].Probe(ctx) == nil {
					if clean++; clean >= m.opts.Failover.StableProbes {
						failback = true
						stop()
						err = <-errc
						break wait
					}
				} else {
					clean = 0
				}
			}
		}
		tick.Stop()
		if probeT != nil {
			probeT.Stop()
		}
		stop()
		m.mu.Lock()
		m.current = nil
		m.mu.Unlock()
		switch {
		case ctx.Err() != nil:
			return
		case redeploy:
			m.log.Info("alarm watch list: deploy", "sequence", seq)
			srcs = nil
			continue
		case failback:
			m.log.Info("alarm provider: failing back", "provider", m.opts.Providers[0].Kind())
			cur, failures = 0, 0
			continue
		}
		if sink.ok() && time.Since(runStart) >= m.opts.Failover.ProbeInterval {
			// It delivered for a while: this failure starts a new count.
			failures, backoff = 0, 100*time.Millisecond
		}
		failures++
		m.log.Warn("alarm provider failed", "provider", p.Kind(), "failures", failures, "error", err)
		m.setStatus(cur, false, fmt.Sprintf("failed: %v", err), len(srcs), seq)
		if failures >= m.opts.Failover.FailureThreshold && len(m.opts.Providers) > 1 {
			cur, failures = (cur+1)%len(m.opts.Providers), 0
			m.log.Warn("alarm provider: failing over", "provider", m.opts.Providers[cur].Kind())
		}
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// sink is one provider run's Sink.
type sink struct {
	m       *Monitor
	cur     int
	watched int
	seq     uint64
	mu      sync.Mutex
	isReady bool
}

func (s *sink) Observe(obs []Observation) { s.m.observe(s.m.opts.Providers[s.cur].Kind(), obs) }

func (s *sink) Ready(detail string) {
	s.mu.Lock()
	s.isReady = true
	s.mu.Unlock()
	s.m.setStatus(s.cur, true, detail, s.watched, s.seq)
}

func (s *sink) ok() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.isReady
}

// setStatus records the provider's state; a change goes to every feed.
func (m *Monitor) setStatus(cur int, healthy bool, detail string, watched int, seq uint64) {
	st := &mxgatewayv1.AlarmProviderStatus{Provider: m.opts.Providers[cur].Kind(), Healthy: healthy, Detail: detail,
		Watched: uint32(watched), DeploySequence: seq}
	m.mu.Lock()
	defer m.mu.Unlock()
	if proto.Equal(st, m.status) {
		return
	}
	m.status = st
	m.ready = healthy
	m.everReady = m.everReady || healthy
	m.emitLocked(&mxgatewayv1.StreamAlarmsResponse{Body: &mxgatewayv1.StreamAlarmsResponse_Provider{Provider: st}})
}

// setSources installs a new watch list: alarms that left it and were
// active are removed.
func (m *Monitor) setSources(srcs []Source) {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := make(map[string]*record, len(srcs))
	order := make([]*record, 0, len(srcs))
	for _, s := range srcs {
		k := strings.ToLower(s.Reference)
		if next[k] != nil {
			continue
		}
		r := m.records[k]
		if r == nil {
			r = &record{src: s}
		} else {
			r.src = s
			r.msg = nil
		}
		next[k] = r
		order = append(order, r)
	}
	for k, r := range m.records {
		if next[k] == nil && r.seen && active(r.state) {
			prev := r.state
			r.state = mxgatewayv1.AlarmState_ALARM_STATE_ACK_RTN
			m.transitionLocked(r, prev, mxgatewayv1.AlarmTransitionKind_ALARM_TRANSITION_KIND_REMOVED)
		}
	}
	slices.SortFunc(order, func(a, b *record) int {
		return strings.Compare(strings.ToLower(a.src.Reference), strings.ToLower(b.src.Reference))
	})
	m.records, m.order = next, order
}

func (m *Monitor) degraded() bool {
	return m.status.GetProvider() != mxgatewayv1.AlarmProvider_ALARM_PROVIDER_NATIVE
}

// message returns r's Alarm, built when stale (mu held).
func (m *Monitor) messageLocked(r *record) *mxgatewayv1.Alarm {
	if r.msg == nil {
		r.msg = r.build(m.degraded())
	}
	return r.msg
}

// observe applies a provider's observations: the state machine.
func (m *Monitor) observe(kind mxgatewayv1.AlarmProvider, obs []Observation) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range obs {
		o := obs[i]
		r := m.records[strings.ToLower(o.Reference)]
		if r == nil {
			continue
		}
		prev, old, seen := r.state, r.obs, r.seen
		next := stateOf(o.InAlarm, o.Acked)
		var kinds []mxgatewayv1.AlarmTransitionKind
		add := func(k mxgatewayv1.AlarmTransitionKind) { kinds = append(kinds, k) }
		switch {
		case !seen:
			if active(next) {
				add(mxgatewayv1.AlarmTransitionKind_ALARM_TRANSITION_KIND_RAISE)
			}
		case o.InAlarm && (o.Instance != old.Instance || !old.InAlarm):
			if active(prev) && o.Instance != old.Instance {
				add(mxgatewayv1.AlarmTransitionKind_ALARM_TRANSITION_KIND_RETRIGGER)
			} else {
				add(mxgatewayv1.AlarmTransitionKind_ALARM_TRANSITION_KIND_RAISE)
			}
			if o.Instance != old.Instance {
				r.ackOp = ""
			}
			if o.Acked && old.Acked && o.Instance != old.Instance {
				// The previous instance's Acked is still on its way out:
				// a raise is unacknowledged.
				o.Acked, next = false, stateOf(true, false)
			}
		case old.InAlarm && !o.InAlarm:
			add(mxgatewayv1.AlarmTransitionKind_ALARM_TRANSITION_KIND_RETURN)
		}
		if seen && o.Acked && !old.Acked && !(o.Instance != old.Instance && o.InAlarm) {
			add(mxgatewayv1.AlarmTransitionKind_ALARM_TRANSITION_KIND_ACKNOWLEDGE)
			r.ackOp, r.pending = r.pending, ""
		}
		if seen && o.Mode != old.Mode {
			add(mxgatewayv1.AlarmTransitionKind_ALARM_TRANSITION_KIND_MODE_CHANGE)
		}
		if seen && len(kinds) == 0 && next != prev {
			// A state change without its edge (an update that crossed
			// another): report it by what it reached.
			switch {
			case next == mxgatewayv1.AlarmState_ALARM_STATE_UNACK_ALM:
				add(mxgatewayv1.AlarmTransitionKind_ALARM_TRANSITION_KIND_RETRIGGER)
			case o.Acked:
				add(mxgatewayv1.AlarmTransitionKind_ALARM_TRANSITION_KIND_ACKNOWLEDGE)
			default:
				add(mxgatewayv1.AlarmTransitionKind_ALARM_TRANSITION_KIND_RETURN)
			}
		}
		if seen && next == mxgatewayv1.AlarmState_ALARM_STATE_ACK_RTN && active(prev) {
			add(mxgatewayv1.AlarmTransitionKind_ALARM_TRANSITION_KIND_REMOVED)
		}
		r.obs, r.state, r.seen, r.msg = o, next, true, nil
		for j, k := range kinds {
			p := prev
			if j > 0 {
				p = next
			}
			m.transitionLocked(r, p, k)
		}
	}
}

// transitionLocked emits one transition of r (mu held).
func (m *Monitor) transitionLocked(r *record, prev mxgatewayv1.AlarmState, k mxgatewayv1.AlarmTransitionKind) {
	r.msg = nil
	a := m.messageLocked(r)
	m.emitLocked(&mxgatewayv1.StreamAlarmsResponse{Body: &mxgatewayv1.StreamAlarmsResponse_Transition{
		Transition: &mxgatewayv1.AlarmTransition{Kind: k, Alarm: a, Previous: prev}}})
}

// emitLocked numbers msg, keeps it in the ring and offers it to every feed.
func (m *Monitor) emitLocked(msg *mxgatewayv1.StreamAlarmsResponse) {
	m.seq++
	msg.Sequence = m.seq
	size := proto.Size(msg)
	m.ring = append(m.ring, ringEntry{msg: msg, size: size})
	m.ringBytes += int64(size)
	for len(m.ring)-m.ringHead > m.opts.RingSize || m.ringBytes > m.opts.RingBytes && len(m.ring)-m.ringHead > 1 {
		m.ringBytes -= int64(m.ring[m.ringHead].size)
		m.ring[m.ringHead] = ringEntry{}
		m.ringHead++
	}
	if m.ringHead > len(m.ring)/2 && m.ringHead > 1024 {
		m.ring = slices.Clone(m.ring[m.ringHead:])
		m.ringHead = 0
	}
	for f := range m.feeds {
		f.offerLocked(msg, size)
	}
}

// passes reports whether a feed message passes f: transitions by their
// alarm, everything else always.
func passes(f *filter, msg *mxgatewayv1.StreamAlarmsResponse) bool {
	t := msg.GetTransition()
	if t == nil {
		return true
	}
	return f.match(t.GetAlarm(), t.GetPrevious())
}

// Subscribe opens a feed. after 0 starts with the provider's status, a
// snapshot of the active alarms f selects and a snapshot-complete marker;
// after > 0 resumes from the ring (a gap message first when it no longer
// reaches back).
// allow, when set, hides the alarms whose reference it refuses.
func (m *Monitor) Subscribe(af *mxgatewayv1.AlarmFilter, after uint64, allow func(string) bool) (*Feed, error) {
	f, err := ParseFilter(af)
	if err != nil {
		return nil, err
	}
	f.allow = allow
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if len(m.feeds) >= m.opts.MaxFeeds {
		return nil, fmt.Errorf("%w: %d open", ErrFeedLimit, m.opts.MaxFeeds)
	}
	if after > m.seq {
		return nil, fmt.Errorf("%w: after_sequence %d is beyond the last sequence %d", ErrInvalid, after, m.seq)
	}
	feed := &Feed{m: m, f: f, notify: make(chan struct{}, 1), cap: m.opts.FeedQueue, capBytes: m.opts.FeedQueueBytes}
	if after == 0 {
		feed.q = append(feed.q, &mxgatewayv1.StreamAlarmsResponse{Sequence: m.seq,
			Body: &mxgatewayv1.StreamAlarmsResponse_Provider{Provider: m.status}})
		n := uint32(0)
		for _, r := range m.order {
			if !r.seen || !active(r.state) {
				continue
			}
			a := m.messageLocked(r)
			if !f.match(a, mxgatewayv1.AlarmState_ALARM_STATE_UNSPECIFIED) {
				continue
			}
			n++
			feed.q = append(feed.q, &mxgatewayv1.StreamAlarmsResponse{Sequence: m.seq,
				Body: &mxgatewayv1.StreamAlarmsResponse_Snapshot{Snapshot: a}})
		}
		feed.q = append(feed.q, &mxgatewayv1.StreamAlarmsResponse{Sequence: m.seq,
			Body: &mxgatewayv1.StreamAlarmsResponse_SnapshotComplete{SnapshotComplete: &mxgatewayv1.AlarmSnapshotComplete{Count: n}}})
		feed.snap = len(feed.q)
	} else {
		first := m.seq + 1
		if len(m.ring) > m.ringHead {
			first = m.ring[m.ringHead].msg.GetSequence()
		}
		if after+1 < first {
			feed.q = append(feed.q, &mxgatewayv1.StreamAlarmsResponse{Sequence: first - 1,
				Body: &mxgatewayv1.StreamAlarmsResponse_Gap{Gap: &mxgatewayv1.ReplayGap{RequestedAfterSequence: after,
					FirstAvailableSequence: first, Reason: fmt.Sprintf("the alarm ring no longer holds transitions %d to %d (it keeps %d entries or %d bytes)",
						after+1, first-1, m.opts.RingSize, m.opts.RingBytes)}}})
		}
		for _, e := range m.ring[m.ringHead:] {
			if e.msg.GetSequence() > after && passes(f, e.msg) {
				feed.q = append(feed.q, e.msg)
			}
		}
		feed.snap = len(feed.q)
	}
	m.feeds[feed] = struct{}{}
	return feed, nil
}

// List returns a page of the active alarms f selects, by reference, and
// the sequence it reflects.
func (m *Monitor) List(af *mxgatewayv1.AlarmFilter, pageSize uint32, token string, allow func(string) bool) ([]*mxgatewayv1.Alarm, string, uint64, error) {
	f, err := ParseFilter(af)
	if err != nil {
		return nil, "", 0, err
	}
	f.allow = allow
	size := int(pageSize)
	if size == 0 {
		size = DefaultPageSize
	}
	size = min(size, MaxPageSize)
	start := ""
	if token != "" {
		b, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil || len(b) == 0 {
			return nil, "", 0, fmt.Errorf("%w: malformed page token", ErrInvalid)
		}
		start = string(b)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.everReady {
		return nil, "", 0, ErrUnavailable
	}
	var out []*mxgatewayv1.Alarm
	i, _ := slices.BinarySearchFunc(m.order, start, func(r *record, s string) int {
		return strings.Compare(strings.ToLower(r.src.Reference), s)
	})
	if start != "" && i < len(m.order) && strings.ToLower(m.order[i].src.Reference) == start {
		i++
	}
	next := ""
	for ; i < len(m.order); i++ {
		r := m.order[i]
		if !r.seen || !active(r.state) {
			continue
		}
		a := m.messageLocked(r)
		if !f.match(a, mxgatewayv1.AlarmState_ALARM_STATE_UNSPECIFIED) {
			continue
		}
		if len(out) == size {
			next = base64.RawURLEncoding.EncodeToString([]byte(strings.ToLower(out[len(out)-1].GetReference())))
			break
		}
		out = append(out, a)
	}
	return out, next, m.seq, nil
}

// AckRequest is one AcknowledgeAlarm.
type AckRequest struct {
	Reference string
	Instance  uint64
	Comment   string
	Operator  *Credentials
	Verifier  *Credentials
	// By names the caller (its API key's name) for ack_operator when no
	// operator credentials are given.
	By string
}

// Acknowledge acknowledges one alarm instance through the provider.
func (m *Monitor) Acknowledge(ctx context.Context, req AckRequest) (*mxgatewayv1.AcknowledgeAlarmResponse, error) {
	if req.Reference == "" {
		return nil, fmt.Errorf("%w: reference is required", ErrInvalid)
	}
	if n := utf8.RuneCountInString(req.Comment); n > AckCommentMax || !utf8.ValidString(req.Comment) {
		return nil, fmt.Errorf("%w: the comment has %d characters, AckMsg holds at most %d (valid UTF-8)", ErrInvalid, n, AckCommentMax)
	}
	for _, c := range []*Credentials{req.Operator, req.Verifier} {
		if c != nil && (c.User == "" || len(c.User) > MaxCredentialBytes || len(c.Password) > MaxCredentialBytes) {
			return nil, fmt.Errorf("%w: credentials need a user name (at most %d bytes each)", ErrInvalid, MaxCredentialBytes)
		}
	}
	if req.Verifier != nil && req.Operator == nil {
		return nil, fmt.Errorf("%w: a verifier needs an operator", ErrInvalid)
	}
	m.mu.Lock()
	r := m.records[strings.ToLower(req.Reference)]
	p := m.current
	switch {
	case r == nil:
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: %q is not a watched alarm", ErrNotFound, req.Reference)
	case p == nil || !m.ready:
		m.mu.Unlock()
		return nil, ErrUnavailable
	case req.Instance != 0 && req.Instance != r.obs.Instance:
		cur := r.obs.Instance
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: %s instance %d, current %d", ErrStaleInstance, req.Reference, req.Instance, cur)
	}
	op := req.By
	if req.Operator != nil {
		op = req.Operator.User
	}
	r.pending = op
	src := r.src
	m.mu.Unlock()
	st, err := p.Acknowledge(ctx, Ack{Source: src, Comment: req.Comment, Operator: req.Operator, Verifier: req.Verifier})
	now := m.opts.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil || !st.GetSuccess() {
		if r.pending == op {
			r.pending = ""
		}
		if err == nil {
			err = fmt.Errorf("%w: the AckMsg write failed (category %d, detail %d)", ErrAckRefused, st.GetCategoryRaw(), st.GetDetail())
		}
		return nil, err
	}
	return &mxgatewayv1.AcknowledgeAlarmResponse{Status: st, AckedAt: timestamppb.New(now), Alarm: m.messageLocked(r)}, nil
}

// Status returns the provider's state.
func (m *Monitor) Status() *mxgatewayv1.AlarmProviderStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status
}

// Sequence returns the last sequence (tests, metrics).
func (m *Monitor) Sequence() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seq
}

// Feed is one StreamAlarms subscriber: its snapshot, then the live
// messages its filter passes, in a queue bounded by count and bytes. A
// feed that fills its queue ends with ErrFeedBehind (the client resumes
// from the last sequence it got). One goroutine calls Next.
type Feed struct {
	m        *Monitor
	f        *filter
	notify   chan struct{}
	cap      int
	capBytes int64

	// guarded by m.mu
	q      []*mxgatewayv1.StreamAlarmsResponse
	snap   int // the first len entries were queued at subscribe (not counted)
	bytes  int64
	err    error
	closed bool
}

func (f *Feed) offerLocked(msg *mxgatewayv1.StreamAlarmsResponse, size int) {
	if f.err != nil || !passes(f.f, msg) {
		return
	}
	if len(f.q)-f.snap >= f.cap || f.bytes+int64(size) > f.capBytes {
		f.q, f.snap, f.bytes = nil, 0, 0
		f.endLocked(fmt.Errorf("%w: %d messages or %d bytes queued", ErrFeedBehind, f.cap, f.capBytes))
		return
	}
	f.q = append(f.q, msg)
	f.bytes += int64(size)
	f.signal()
}

func (f *Feed) endLocked(err error) {
	if f.err == nil {
		f.err = err
	}
	f.signal()
}

func (f *Feed) signal() {
	select {
	case f.notify <- struct{}{}:
	default:
	}
}

// Next returns the next message, waiting for one; after the feed ended it
// returns why.
func (f *Feed) Next(ctx context.Context) (*mxgatewayv1.StreamAlarmsResponse, error) {
	for {
		f.m.mu.Lock()
		if len(f.q) > 0 {
			msg := f.q[0]
			f.q[0] = nil
			f.q = f.q[1:]
			if f.snap > 0 {
				f.snap--
			} else {
				f.bytes -= int64(proto.Size(msg))
			}
			f.m.mu.Unlock()
			return msg, nil
		}
		if f.err != nil {
			err := f.err
			f.m.mu.Unlock()
			return nil, err
		}
		f.m.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-f.notify:
		}
	}
}

// Close detaches the feed.
func (f *Feed) Close() {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if !f.closed {
		f.closed = true
		delete(f.m.feeds, f)
		f.q = nil
		f.endLocked(ErrClosed)
	}
}
