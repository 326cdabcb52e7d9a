package runtime

import (
	"strings"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	"github.com/mxgateway/mxgateway/internal/backend/sim"
)

// The runtime's alarm evaluation (GALAXY.md §2.1–2.3). Every alarm of the
// deployed model (sim.Object.Alarms) keeps its condition, mode and
// acknowledgement here, and the runtime writes the alarm extension
// sub-attributes from it, as a platform's AlarmExtension primitive does:
//
//   - a limit alarm's condition follows its analog: raised at or beyond the
//     limit, returned once the value is back by more than the deadband; a
//     discrete alarm's condition is its own value;
//   - InAlarm is the condition, except that a disabled alarm is off;
//   - a raise (InAlarm false→true) resets Acked and stamps TimeAlarmOn,
//     strictly later than the previous raise (the raise time identifies the
//     instance); a return stamps TimeAlarmOff;
//   - a session's write of AckMsg acknowledges an unacknowledged alarm:
//     Acked true, TimeAlarmAcked stamped and AckOperator set to who the
//     write is attributed to (sim.Change.Operator: the Galaxy user of a
//     secured write or of a write with a user id, else the writing
//     registration's client name); a raise clears AckOperator;
//   - a session's write of AlarmModeCmd (Enable, Disable, Silence) sets
//     AlarmMode; Disable forces InAlarm off.
//
// Evaluation runs under Runtime.mu, inside the hub's change callback; its
// writes are posted to the hub, which reports them back as changes in one
// batch, in the order written (InAlarm and Acked last, so that a reader
// sees the times before the state they stamp).

// alarmState is one alarm's evaluation state.
type alarmState struct {
	def                        sim.AlarmDef
	cond                       int32 // ordinal of the alarmed attribute
	analog, limit, deadband    int32 // -1 for none
	inAlarm, acked, ackMsg     int32 // sub-attribute ordinals, -1 for none
	timeOn, timeOff, timeAcked int32
	mode, modeCmd, ackOp       int32

	condition bool // the raw condition
	active    bool // InAlarm as last written
	isAcked   bool
	modeVal   string
	lastOn    time.Time // the latest of the alarm's three times
}

// alarmEngine holds the alarms of one deployment.
type alarmEngine struct {
	alarms []*alarmState
	by     map[int32][]*alarmState // every ordinal an alarm reads
	hub    *sim.Backend
}

func ordOf(a *sim.Attribute) int32 {
	if a == nil {
		return -1
	}
	return a.Ordinal()
}

// newAlarmEngine collects the alarms of m from their initial values.
func newAlarmEngine(m *sim.Model) *alarmEngine {
	e := &alarmEngine{by: map[int32][]*alarmState{}}
	for _, o := range m.Objects {
		if o.Builtin() {
			continue
		}
		for _, d := range o.Alarms() {
			s := &alarmState{def: d, cond: ordOf(d.Attr), analog: ordOf(d.Analog), limit: ordOf(d.Limit),
				deadband: ordOf(d.Deadband), inAlarm: ordOf(d.Sub(sim.AlarmInAlarm)), acked: ordOf(d.Sub(sim.AlarmAcked)),
				ackMsg: ordOf(d.Sub(sim.AlarmAckMsg)), timeOn: ordOf(d.Sub(sim.AlarmTimeAlarmOn)),
				timeOff: ordOf(d.Sub(sim.AlarmTimeAlarmOff)), timeAcked: ordOf(d.Sub(sim.AlarmTimeAlarmAcked)),
				mode: ordOf(d.Sub(sim.AlarmMode)), modeCmd: ordOf(d.Sub(sim.AlarmModeCmd)),
				ackOp:   ordOf(d.Sub(sim.AlarmAckOperator)),
				isAcked: true, modeVal: sim.AlarmModeEnable}
			for _, ord := range []int32{s.cond, s.analog, s.limit, s.deadband, s.ackMsg, s.modeCmd} {
				if ord >= 0 {
					e.by[ord] = append(e.by[ord], s)
				}
			}
			e.alarms = append(e.alarms, s)
		}
	}
	return e
}

// writer collects the writes of one evaluation.
type writer struct {
	e  *alarmEngine
	ws []sim.Change
}

func (w *writer) set(ord int32, v *mxgatewayv1.MxValue, ts time.Time) {
	if ord >= 0 {
		w.ws = append(w.ws, sim.Change{Attr: ord, Value: v, Time: ts})
	}
}

func (w *writer) flush() {
	for _, c := range w.ws {
		w.e.hub.ApplyWrite(c.Attr, c.Value, c.Time, false, 0, "")
	}
	w.ws = nil
}

// start evaluates every alarm against the deployment's first values
// (Runtime.mu held).
func (e *alarmEngine) start(hub *sim.Backend, raw []sim.Change) {
	e.hub = hub
	w := &writer{e: e}
	for _, s := range e.alarms {
		if v := value(raw, s.acked); v != nil {
			s.isAcked = v.GetBoolValue()
		}
		if v := value(raw, s.inAlarm); v != nil {
			s.active = v.GetBoolValue()
		}
		if v := value(raw, s.mode); v != nil {
			s.modeVal = cmpOr(normMode(v.GetStringValue()), sim.AlarmModeEnable)
		}
		for _, ord := range []int32{s.timeOn, s.timeOff, s.timeAcked} {
			if v := value(raw, ord); v != nil && v.GetTimestampValue().AsTime().After(s.lastOn) {
				s.lastOn = v.GetTimestampValue().AsTime()
			}
		}
		now := time.Now()
		if s.analog >= 0 {
			s.condition = s.limitCondition(raw, false)
		} else if v := value(raw, s.cond); v != nil {
			s.condition = v.GetBoolValue()
		}
		s.update(w, now, raw)
	}
	w.flush()
}

// changed evaluates a batch of the hub's changes (Runtime.mu held; raw
// already holds them).
func (e *alarmEngine) changed(batch []sim.Change, raw []sim.Change) {
	if e == nil || e.hub == nil {
		return
	}
	w := &writer{e: e}
	for _, c := range batch {
		for _, s := range e.by[c.Attr] {
			ts := c.Time
			if ts.IsZero() {
				ts = time.Now()
			}
			switch c.Attr {
			case s.ackMsg:
				if c.Origin != 0 && !s.isAcked {
					s.isAcked = true
					ts = s.stamp(ts, false)
					w.set(s.ackOp, mxtypes.StringValue(c.Operator), ts)
					w.set(s.timeAcked, mxtypes.TimeValue(ts), ts)
					w.set(s.acked, mxtypes.BoolValue(true), ts)
				}
				continue
			case s.modeCmd:
				m := normMode(c.Value.GetStringValue())
				if c.Origin == 0 || m == "" || m == s.modeVal {
					continue
				}
				s.modeVal = m
				w.set(s.mode, mxtypes.StringValue(m), ts)
			case s.cond:
				if s.analog >= 0 {
					continue // the runtime's own write of a limit alarm
				}
				s.condition = c.Value.GetBoolValue()
			default: // analog, limit or deadband
				s.condition = s.limitCondition(raw, s.condition)
			}
			s.update(w, ts, raw)
		}
	}
	w.flush()
}

// limitCondition evaluates a limit alarm with its deadband.
func (s *alarmState) limitCondition(raw []sim.Change, was bool) bool {
	av, lv := value(raw, s.analog), value(raw, s.limit)
	if av == nil || lv == nil {
		return was
	}
	v, lim := sim.Numeric(av), sim.Numeric(lv)
	db := 0.0
	if dv := value(raw, s.deadband); dv != nil {
		db = max(sim.Numeric(dv), 0)
	}
	if s.def.Kind.High {
		if was {
			return v > lim-db
		}
		return v >= lim
	}
	if was {
		return v < lim+db
	}
	return v <= lim
}

// update writes what the condition and mode now give.
func (s *alarmState) update(w *writer, ts time.Time, raw []sim.Change) {
	if s.analog >= 0 {
		if v := value(raw, s.cond); v == nil || v.GetBoolValue() != s.condition {
			w.set(s.cond, mxtypes.BoolValue(s.condition), ts)
		}
	}
	want := s.condition && s.modeVal != sim.AlarmModeDisable
	if want == s.active {
		return
	}
	s.active = want
	if want {
		on := s.stamp(ts, true)
		s.isAcked = false
		if v := value(raw, s.ackOp); v.GetStringValue() != "" {
			w.set(s.ackOp, mxtypes.StringValue(""), on)
		}
		w.set(s.acked, mxtypes.BoolValue(false), on)
		w.set(s.timeOn, mxtypes.TimeValue(on), on)
		w.set(s.inAlarm, mxtypes.BoolValue(true), on)
		return
	}
	ts = s.stamp(ts, false)
	w.set(s.timeOff, mxtypes.TimeValue(ts), ts)
	w.set(s.inAlarm, mxtypes.BoolValue(false), ts)
}

// stamp returns the time of one of the alarm's transitions: ts at
// millisecond precision, never before the alarm's latest time, and for a
// raise strictly after it. So the three times order the transitions (a
// reader can tell a raise from the flags it resets: in alarm exactly when
// TimeAlarmOn is after TimeAlarmOff, acked exactly when TimeAlarmAcked is
// not before TimeAlarmOn), and a raise time identifies its instance.
func (s *alarmState) stamp(ts time.Time, raise bool) time.Time {
	t := mxtypes.TruncateTime(ts)
	switch {
	case raise && !t.After(s.lastOn):
		t = s.lastOn.Add(time.Millisecond)
	case t.Before(s.lastOn):
		t = s.lastOn
	}
	s.lastOn = t
	return t
}

// normMode returns the canonical spelling of an alarm mode, "" for none.
func normMode(m string) string {
	for _, x := range []string{sim.AlarmModeEnable, sim.AlarmModeDisable, sim.AlarmModeSilence} {
		if strings.EqualFold(strings.TrimSpace(m), x) {
			return x
		}
	}
	return ""
}

// value returns the latest value of ordinal ord, nil for none.
func value(raw []sim.Change, ord int32) *mxgatewayv1.MxValue {
	if ord < 0 || int(ord) >= len(raw) {
		return nil
	}
	return raw[ord].Value
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
