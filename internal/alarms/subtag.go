package alarms

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	"github.com/mxgateway/mxgateway/internal/backend/sim"
)

// Session is the gateway-internal session the subtag provider drives: an
// ordinary session (its own worker) owned by the gateway.
type Session interface {
	// Invoke runs one command.
	Invoke(ctx context.Context, cmd *mxgatewayv1.Command) (*mxgatewayv1.Reply, error)
	// Events returns the next events, in order, waiting for at least one;
	// an error ends the session's events.
	Events(ctx context.Context) ([]*mxgatewayv1.Event, error)
	// Close closes the session.
	Close()
}

// Opener opens a session for the provider.
type Opener func(ctx context.Context) (Session, error)

// field is one advised sub-attribute of an alarm.
type field int

const (
	fInAlarm field = iota
	fAcked
	fAckMsg
	fPriority
	fCategory
	fDesc
	fTimeOn
	fTimeOff
	fTimeAcked
	fMode
	fAckOp  // the simulator's AckOperator; on a node it reads nothing
	fAnalog // limit alarms only
	fLimit
	nFields
)

// subNames are the sub-attributes of the fields before fAnalog.
var subNames = [...]string{sim.AlarmInAlarm, sim.AlarmAcked, sim.AlarmAckMsg, sim.AlarmPriority, sim.AlarmCategory,
	sim.AlarmDescAttrName, sim.AlarmTimeAlarmOn, sim.AlarmTimeAlarmOff, sim.AlarmTimeAlarmAcked, sim.AlarmMode,
	sim.AlarmAckOperator}

// SubtagChunk is how many references one SubscribeBulk carries.
const SubtagChunk = 2_000

// ReadyTimeout bounds the wait for every alarm's first values.
const ReadyTimeout = 30 * time.Second

// Subtag is provider (a): the alarm extension sub-attributes advised in a
// gateway-internal session, the state machine in the monitor, an
// acknowledgement a write of AckMsg (a secured write with credentials).
type Subtag struct {
	open Opener

	mu  sync.Mutex
	run *subtagRun
}

// NewSubtag returns the subtag provider over sessions from open.
func NewSubtag(open Opener) *Subtag { return &Subtag{open: open} }

// Kind implements Provider.
func (*Subtag) Kind() mxgatewayv1.AlarmProvider {
	return mxgatewayv1.AlarmProvider_ALARM_PROVIDER_SUBTAG
}

// Probe implements Provider: a session can be opened.
func (p *Subtag) Probe(ctx context.Context) error {
	s, err := p.open(ctx)
	if err != nil {
		return err
	}
	s.Close()
	return nil
}

type itemRef struct {
	alarm int
	f     field
}

// subtagRun is one Run: its session, handles and field cache.
type subtagRun struct {
	s      Session
	srcs   []Source
	server int32

	mu      sync.Mutex
	items   map[int32]itemRef
	ackItem []int32 // by alarm: the AckMsg handle
	vals    [][nFields]*mxgatewayv1.MxValue
	have    [][nFields]bool
	mapped  [][nFields]bool      // the field's item was added
	stash   []*mxgatewayv1.Event // events of handles not mapped yet
	pending map[int]time.Time    // alarms held back (settled), since when
	waiters map[int32][]chan []*mxgatewayv1.MxStatus
}

// Run implements Provider.
func (p *Subtag) Run(ctx context.Context, srcs []Source, sink Sink) error {
	s, err := p.open(ctx)
	if err != nil {
		return fmt.Errorf("open the alarm session: %w", err)
	}
	defer s.Close()
	r := &subtagRun{s: s, srcs: srcs, items: map[int32]itemRef{}, ackItem: make([]int32, len(srcs)),
		vals: make([][nFields]*mxgatewayv1.MxValue, len(srcs)), have: make([][nFields]bool, len(srcs)),
		mapped:  make([][nFields]bool, len(srcs)),
		waiters: map[int32][]chan []*mxgatewayv1.MxStatus{}, pending: map[int]time.Time{}}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- r.events(ctx, sink) }()
	if err := r.subscribe(ctx); err != nil {
		cancel()
		<-errc
		return err
	}
	p.mu.Lock()
	p.run = r
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.run = nil
		p.mu.Unlock()
	}()
	r.apply(nil, sink) // what arrived before the handles were known
	readyT := time.NewTimer(ReadyTimeout)
	defer readyT.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	ready := len(srcs) == 0
	if ready {
		sink.Ready("no alarms to watch")
	}
	for {
		select {
		case <-ctx.Done():
			<-errc
			return nil
		case err := <-errc:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("alarm session events: %w", err)
		case <-readyT.C:
			if !ready {
				ready = true
				sink.Ready(fmt.Sprintf("%d alarms watched; some had not reported after %v", len(srcs), ReadyTimeout))
			}
		case <-tick.C:
			r.flushPending(sink)
			if !ready && r.allReported() {
				ready = true
				sink.Ready(fmt.Sprintf("%d alarms watched over their sub-attributes", len(srcs)))
			}
		}
	}
}

func (r *subtagRun) allReported() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.have {
		if !r.complete(i) {
			return false
		}
	}
	return true
}

// subscribe registers and advises every field of every alarm.
func (r *subtagRun) subscribe(ctx context.Context) error {
	rep, err := r.s.Invoke(ctx, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{
		ClientName: "mxgateway-alarm-monitor"}}})
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	if rep.GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK {
		return fmt.Errorf("register: %s %s", rep.GetStatus(), rep.GetMessage())
	}
	r.mu.Lock()
	r.server = rep.GetRegister().GetServerHandle()
	r.mu.Unlock()
	var refs []string
	var which []itemRef
	flush := func() error {
		if len(refs) == 0 {
			return nil
		}
		rep, err := r.s.Invoke(ctx, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_SubscribeBulk{SubscribeBulk: &mxgatewayv1.SubscribeBulkCommand{
			ServerHandle: r.server, ItemDefinitions: refs}}})
		if err != nil {
			return fmt.Errorf("subscribe the alarm sub-attributes: %w", err)
		}
		entries := rep.GetBulk().GetEntries()
		if len(entries) != len(refs) {
			return fmt.Errorf("subscribe the alarm sub-attributes: %d entries for %d references", len(entries), len(refs))
		}
		r.mu.Lock()
		for i, e := range entries {
			if e.GetItemHandle() == 0 {
				continue // the reference failed alone; its field stays unknown
			}
			r.items[e.GetItemHandle()] = which[i]
			r.mapped[which[i].alarm][which[i].f] = true
			if which[i].f == fAckMsg {
				r.ackItem[which[i].alarm] = e.GetItemHandle()
			}
		}
		r.mu.Unlock()
		refs, which = refs[:0], which[:0]
		return nil
	}
	for i, s := range r.srcs {
		for f := fInAlarm; f < nFields; f++ {
			var ref string
			switch {
			case f < fAnalog:
				ref = s.Reference + "." + subNames[f]
			case f == fAnalog && s.Analog != "":
				ref = s.Analog
			case f == fLimit && s.Limit != "":
				ref = s.Limit
			default:
				continue
			}
			refs = append(refs, ref)
			which = append(which, itemRef{alarm: i, f: f})
			if len(refs) == SubtagChunk {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// events reads the session's events until ctx ends or they fail.
func (r *subtagRun) events(ctx context.Context, sink Sink) error {
	for {
		evs, err := r.s.Events(ctx)
		if err != nil {
			return err
		}
		r.apply(evs, sink)
	}
}

// maxStash bounds the events kept for handles not known yet.
const maxStash = 1 << 20

// apply updates the field cache from the stashed events and evs, in that
// order, and reports the alarms touched.
func (r *subtagRun) apply(evs []*mxgatewayv1.Event, sink Sink) {
	r.mu.Lock()
	if len(r.stash) > 0 {
		evs = append(r.stash, evs...)
		r.stash = nil
	}
	var touched []int
	mark := map[int]bool{}
	var keep []*mxgatewayv1.Event
	for _, ev := range evs {
		if wc := ev.GetWriteComplete(); wc != nil && wc.GetServerHandle() == r.server {
			if q := r.waiters[wc.GetItemHandle()]; len(q) > 0 {
				q[0] <- wc.GetStatuses()
				r.waiters[wc.GetItemHandle()] = q[1:]
			}
			continue
		}
		dc := ev.GetDataChange()
		if dc == nil || dc.GetServerHandle() != r.server {
			continue // not ours (the data watchdog's registration, say)
		}
		it, ok := r.items[dc.GetItemHandle()]
		if !ok {
			if len(keep) < maxStash {
				keep = append(keep, ev)
			}
			continue
		}
		r.vals[it.alarm][it.f] = dc.GetValue()
		r.have[it.alarm][it.f] = true
		if !mark[it.alarm] {
			mark[it.alarm] = true
			touched = append(touched, it.alarm)
		}
	}
	r.stash = keep
	now := time.Now()
	obs := make([]Observation, 0, len(touched))
	for _, i := range touched {
		if !r.have[i][fInAlarm] {
			continue
		}
		if !r.settled(i) {
			if _, ok := r.pending[i]; !ok {
				r.pending[i] = now
			}
			continue
		}
		delete(r.pending, i)
		obs = append(obs, r.observation(i))
	}
	// Under mu, so that observations of one alarm reach the sink in order.
	if len(obs) > 0 {
		sink.Observe(obs)
	}
	r.mu.Unlock()
}

// complete reports whether every advised sub-attribute of alarm i has its
// first value (mu held). An incomplete view is never reported. AckOperator
// is not waited for: a node has no such attribute, and whether MXAccess
// reports one it lacks is not known (GALAXY.md §2.3).
func (r *subtagRun) complete(i int) bool {
	for f := range nFields {
		if f != fAckOp && r.mapped[i][f] && !r.have[i][f] {
			return false
		}
	}
	return true
}

// SettleMax bounds how long an alarm whose sub-attributes disagree is held
// back before its view is reported anyway.
const SettleMax = time.Second

// flushPending reports the alarms held back longer than SettleMax.
func (r *subtagRun) flushPending(sink Sink) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var obs []Observation
	for i, since := range r.pending {
		if time.Since(since) >= SettleMax && r.complete(i) {
			delete(r.pending, i)
			obs = append(obs, r.observation(i))
		}
	}
	if len(obs) > 0 {
		sink.Observe(obs)
	}
}

// settled reports whether alarm i's sub-attributes all arrived and agree
// (mu held). The
// platform writes a transition's sub-attributes one by one, and they can
// reach the session in different batches; the times say what the flags
// must be: in alarm exactly when TimeAlarmOn is after TimeAlarmOff, acked
// exactly when TimeAlarmAcked is not before TimeAlarmOn. A view that
// disagrees is held back until the rest arrives (at most SettleMax).
func (r *subtagRun) settled(i int) bool {
	if !r.complete(i) {
		return false // its first values are still arriving
	}
	v, h := &r.vals[i], &r.have[i]
	if !h[fTimeOn] || !h[fTimeOff] || !h[fTimeAcked] || !h[fAcked] {
		return true // no times to check against
	}
	on, off, acked := timeOf(v[fTimeOn]), timeOf(v[fTimeOff]), timeOf(v[fTimeAcked])
	return v[fInAlarm].GetBoolValue() == on.After(off) && v[fAcked].GetBoolValue() == !acked.Before(on)
}

// observation builds alarm i's view from its fields (mu held).
func (r *subtagRun) observation(i int) Observation {
	v := &r.vals[i]
	o := Observation{Reference: r.srcs[i].Reference, InAlarm: v[fInAlarm].GetBoolValue(), Acked: v[fAcked].GetBoolValue(),
		Category: categoryString(v[fCategory]), Description: v[fDesc].GetStringValue(), AckComment: v[fAckMsg].GetStringValue(),
		Mode: modeOf(v[fMode].GetStringValue()), Value: v[fAnalog], Limit: v[fLimit], AckOperator: goodString(v[fAckOp])}
	if !r.have[i][fAcked] {
		o.Acked = !o.InAlarm
	}
	if o.Value == nil {
		o.Value = v[fInAlarm]
	}
	if p := sim.Numeric(v[fPriority]); v[fPriority] != nil {
		o.Priority = uint32(min(max(p, 0), 999))
	}
	o.TimeOn, o.TimeOff, o.TimeAcked = timeOf(v[fTimeOn]), timeOf(v[fTimeOff]), timeOf(v[fTimeAcked])
	if !o.TimeOn.IsZero() {
		o.Instance = uint64(o.TimeOn.UnixMilli())
	}
	return o
}

// goodString is a string value, "" for any other (an attribute a node
// does not have reads as a configuration error without a string).
func goodString(v *mxgatewayv1.MxValue) string {
	if s, ok := v.GetKind().(*mxgatewayv1.MxValue_StringValue); ok {
		return s.StringValue
	}
	return ""
}

func timeOf(v *mxgatewayv1.MxValue) time.Time {
	if t := v.GetTimestampValue(); t != nil {
		return t.AsTime()
	}
	return time.Time{}
}

func categoryString(v *mxgatewayv1.MxValue) string {
	if v == nil {
		return ""
	}
	if s, ok := v.GetKind().(*mxgatewayv1.MxValue_StringValue); ok {
		return s.StringValue
	}
	return strconv.FormatFloat(sim.Numeric(v), 'f', -1, 64)
}

func modeOf(s string) mxgatewayv1.AlarmMode {
	switch {
	case strings.EqualFold(s, sim.AlarmModeDisable):
		return mxgatewayv1.AlarmMode_ALARM_MODE_DISABLED
	case strings.EqualFold(s, sim.AlarmModeSilence):
		return mxgatewayv1.AlarmMode_ALARM_MODE_SILENCED
	}
	return mxgatewayv1.AlarmMode_ALARM_MODE_ENABLED
}

// ackTimeout bounds the wait for an acknowledgement's write completion.
const ackTimeout = 30 * time.Second

// Acknowledge implements Provider: a write of AckMsg, secured when
// credentials are given (AuthenticateUser for each user, then
// WriteSecured). The credentials are never logged.
func (p *Subtag) Acknowledge(ctx context.Context, a Ack) (*mxgatewayv1.MxStatus, error) {
	p.mu.Lock()
	r := p.run
	p.mu.Unlock()
	if r == nil {
		return nil, ErrUnavailable
	}
	idx := -1
	for i := range r.srcs {
		if strings.EqualFold(r.srcs[i].Reference, a.Source.Reference) {
			idx = i
			break
		}
	}
	if idx < 0 || r.ackItem[idx] == 0 {
		return nil, fmt.Errorf("%w: %s has no AckMsg item", ErrNotFound, a.Source.Reference)
	}
	h := r.ackItem[idx]
	user := func(c *Credentials) (int32, error) {
		if c == nil {
			return 0, nil
		}
		rep, err := r.s.Invoke(ctx, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AuthenticateUser{AuthenticateUser: &mxgatewayv1.AuthenticateUserCommand{
			ServerHandle: r.server, UserName: c.User, Password: c.Password}}})
		if err != nil {
			return 0, err
		}
		if id := rep.GetUserId().GetUserId(); id != 0 {
			return id, nil
		}
		return 0, fmt.Errorf("%w: Galaxy user %q was not authenticated", ErrAckRefused, c.User)
	}
	op, err := user(a.Operator)
	if err != nil {
		return nil, err
	}
	ver, err := user(a.Verifier)
	if err != nil {
		return nil, err
	}
	val := mxtypes.StringValue(a.Comment)
	cmd := &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Write{Write: &mxgatewayv1.WriteCommand{
		ServerHandle: r.server, ItemHandle: h, Value: val}}}
	if a.Operator != nil {
		cmd = &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_WriteSecured{WriteSecured: &mxgatewayv1.WriteSecuredCommand{
			ServerHandle: r.server, ItemHandle: h, CurrentUserId: op, VerifierUserId: ver, Value: val}}}
	}
	ch := make(chan []*mxgatewayv1.MxStatus, 1)
	r.mu.Lock()
	r.waiters[h] = append(r.waiters[h], ch)
	r.mu.Unlock()
	drop := func() {
		r.mu.Lock()
		q := r.waiters[h]
		for i, c := range q {
			if c == ch {
				r.waiters[h] = append(q[:i:i], q[i+1:]...)
				break
			}
		}
		r.mu.Unlock()
	}
	rep, err := r.s.Invoke(ctx, cmd)
	if err != nil {
		drop()
		return nil, err
	}
	if rep.GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK {
		drop()
		return nil, fmt.Errorf("%w: the AckMsg write failed: %s (hresult 0x%08x)", ErrAckRefused, rep.GetStatus(), uint32(rep.GetHresult()))
	}
	t := time.NewTimer(ackTimeout)
	defer t.Stop()
	select {
	case sts := <-ch:
		for _, st := range sts {
			if !st.GetSuccess() {
				return st, nil
			}
		}
		if len(sts) > 0 {
			return sts[0], nil
		}
		return &mxgatewayv1.MxStatus{Success: true}, nil
	case <-ctx.Done():
		drop()
		return nil, ctx.Err()
	case <-t.C:
		drop()
		return nil, errors.New("alarms: no write completion for the AckMsg write")
	}
}
