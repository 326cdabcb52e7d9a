package alarms

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// Source is one alarm the monitor watches, as the watch list (browse)
// describes it.
type Source struct {
	// Reference is the alarm attribute's reference, Object.Attribute.
	Reference string
	Object    string
	Name      string // the attribute name ("HighLevel", "PV.Hi")
	Area      string
	// LimitKind is HiHi, Hi, Lo or LoLo for a limit alarm; Analog and
	// Limit then name the analog and limit references.
	LimitKind     string
	Analog, Limit string
}

// Observation is a provider's whole current view of one alarm.
type Observation struct {
	Reference string
	InAlarm   bool
	Acked     bool
	// Instance identifies the current raise (changes on every raise).
	Instance    uint64
	Priority    uint32
	Category    string
	Description string
	Value       *mxgatewayv1.MxValue
	Limit       *mxgatewayv1.MxValue
	TimeOn      time.Time
	TimeOff     time.Time
	TimeAcked   time.Time
	AckComment  string
	// AckOperator is who the Galaxy says acknowledged the instance (the
	// native consumer's Operator, the simulator's AckOperator); "" when
	// it does not say.
	AckOperator string
	Mode        mxgatewayv1.AlarmMode
	// NativeID is the native consumer's alarm GUID, "" for the subtag
	// provider.
	NativeID string
}

// record is the monitor's state of one watched alarm.
type record struct {
	src     Source
	seen    bool // an observation arrived
	obs     Observation
	state   mxgatewayv1.AlarmState
	ackOp   string // who acknowledged the current instance through us (wins over obs.AckOperator)
	pending string // operator of an acknowledgement on its way
	// msg is the Alarm message of the current state, built once per change
	// and never mutated (feeds share it).
	msg *mxgatewayv1.Alarm
}

// stateOf gives the four states from InAlarm and Acked.
func stateOf(inAlarm, acked bool) mxgatewayv1.AlarmState {
	switch {
	case inAlarm && !acked:
		return mxgatewayv1.AlarmState_ALARM_STATE_UNACK_ALM
	case inAlarm:
		return mxgatewayv1.AlarmState_ALARM_STATE_ACK_ALM
	case !acked:
		return mxgatewayv1.AlarmState_ALARM_STATE_UNACK_RTN
	}
	return mxgatewayv1.AlarmState_ALARM_STATE_ACK_RTN
}

// active reports whether a state is in the active set: in alarm or not
// acknowledged (OPC UA Retain).
func active(s mxgatewayv1.AlarmState) bool {
	return s != mxgatewayv1.AlarmState_ALARM_STATE_ACK_RTN && s != mxgatewayv1.AlarmState_ALARM_STATE_UNSPECIFIED
}

// alarmID is the instance's id: the native GUID, else a hash of the
// reference and the instance.
func alarmID(ref string, o *Observation) string {
	if o.NativeID != "" {
		return o.NativeID
	}
	h := sha256.Sum256([]byte(ref + "\x00" + strconv.FormatUint(o.Instance, 10)))
	return hex.EncodeToString(h[:12])
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// build makes the record's Alarm message.
func (r *record) build(degraded bool) *mxgatewayv1.Alarm {
	o := &r.obs
	desc := o.Description
	if desc == "" {
		desc = r.src.Reference
	}
	op := r.ackOp
	if op == "" && o.Acked {
		op = o.AckOperator
	}
	return &mxgatewayv1.Alarm{
		AlarmId: alarmID(r.src.Reference, o), Reference: r.src.Reference, SourceObject: r.src.Object,
		AlarmName: r.src.Name, Area: r.src.Area, State: r.state, InAlarm: o.InAlarm, Acked: o.Acked,
		Priority: o.Priority, Severity: Severity(o.Priority), Category: o.Category, Description: desc,
		Value: proto.CloneOf(o.Value), Limit: proto.CloneOf(o.Limit),
		TimeAlarmOn: ts(o.TimeOn), TimeAlarmOff: ts(o.TimeOff), TimeAcked: ts(o.TimeAcked),
		AckOperator: op, AckComment: o.AckComment, Mode: o.Mode, Degraded: degraded,
		Instance: o.Instance, LimitKind: r.src.LimitKind,
	}
}
