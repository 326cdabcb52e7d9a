package sim

import (
	"strings"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// The alarm structure of a model, the one home of the names the Galaxy
// runtime's alarm evaluation, browse and the alarm monitor share.
//
// An alarmed MxBoolean attribute (Attribute.Alarm) is an alarm. It is a
// limit alarm when it is named <Analog>.<Kind>, Kind one of LimitKinds,
// <Analog> is a numeric scalar attribute of the same object and the object
// has a numeric <Analog>.<Kind>.Limit attribute (and optionally
// <Analog>.<Kind>.Deadband): the runtime sets it from the analog's value.
// Any other alarmed MxBoolean is a discrete alarm: its own value is the
// condition.

// Alarm extension sub-attribute names (GALAXY.md §2.1).
const (
	AlarmInAlarm        = "InAlarm"
	AlarmAcked          = "Acked"
	AlarmAckMsg         = "AckMsg"
	AlarmPriority       = "Priority"
	AlarmCategory       = "Category"
	AlarmDescAttrName   = "DescAttrName"
	AlarmTimeAlarmOn    = "TimeAlarmOn"
	AlarmTimeAlarmOff   = "TimeAlarmOff"
	AlarmTimeAlarmAcked = "TimeAlarmAcked"
	AlarmMode           = "AlarmMode"
	AlarmModeCmd        = "AlarmModeCmd"
	// AlarmAckOperator is the simulator's own sub-attribute (no AVEVA
	// name for it was found, GALAXY.md §2.3): who the acknowledging
	// AckMsg write is attributed to (Change.Operator), stamped with
	// TimeAlarmAcked and cleared by a raise. On a node the alarm record
	// holds the operator (the native consumer's Operator field).
	AlarmAckOperator = "AckOperator"
	// LimitSuffix and DeadbandSuffix name a limit alarm's limit and
	// deadband attributes (<Analog>.<Kind>.Limit).
	LimitSuffix    = "Limit"
	DeadbandSuffix = "Deadband"
)

// AckMsgMaxLen is the longest AckMsg comment (characters), GALAXY.md §2.1.
const AckMsgMaxLen = 256

// Alarm modes: the values of AlarmMode and AlarmModeCmd.
const (
	AlarmModeEnable  = "Enable"
	AlarmModeDisable = "Disable"
	AlarmModeSilence = "Silence"
)

// LimitKind is the kind of a limit alarm.
type LimitKind struct {
	Name string // HiHi, Hi, Lo, LoLo
	High bool   // raised at or above the limit (else at or below)
}

// LimitKinds lists the limit alarm kinds.
var LimitKinds = []LimitKind{{"HiHi", true}, {"Hi", true}, {"Lo", false}, {"LoLo", false}}

// AlarmDef describes one alarm of an object.
type AlarmDef struct {
	Object *Object
	Attr   *Attribute // the alarmed MxBoolean (the condition)
	// Limit alarms only (Kind.Name empty for a discrete alarm).
	Kind     LimitKind
	Analog   *Attribute
	Limit    *Attribute
	Deadband *Attribute // nil: no deadband
}

// Sub returns the alarm's sub-attribute named sub, or nil.
func (d *AlarmDef) Sub(sub string) *Attribute {
	return d.Object.Attribute(d.Attr.Name + "." + sub)
}

// Alarms returns the alarms of o in attribute order.
func (o *Object) Alarms() []AlarmDef {
	var out []AlarmDef
	for _, a := range o.Attributes {
		if !a.Alarm || a.Primitive != "" || a.Type != tBool || a.Dimension > 0 {
			continue
		}
		d := AlarmDef{Object: o, Attr: a}
		if base, kind, ok := cutLimitKind(a.Name); ok {
			an, lim := o.Attribute(base), o.Attribute(a.Name+"."+LimitSuffix)
			if isNumericScalar(an) && isNumericScalar(lim) {
				d.Kind, d.Analog, d.Limit = kind, an, lim
				if db := o.Attribute(a.Name + "." + DeadbandSuffix); isNumericScalar(db) {
					d.Deadband = db
				}
			}
		}
		out = append(out, d)
	}
	return out
}

func cutLimitKind(name string) (base string, kind LimitKind, ok bool) {
	i := strings.LastIndexByte(name, '.')
	if i <= 0 {
		return "", LimitKind{}, false
	}
	for _, k := range LimitKinds {
		if strings.EqualFold(name[i+1:], k.Name) {
			return name[:i], k, true
		}
	}
	return "", LimitKind{}, false
}

func isNumericScalar(a *Attribute) bool {
	if a == nil || a.Dimension > 0 {
		return false
	}
	switch a.Type {
	case tInt, tFloat, tDouble, tElapsed:
		return true
	}
	return false
}

// Numeric returns the value of a numeric scalar as float64 (0 for any
// other value).
func Numeric(v *mxgatewayv1.MxValue) float64 { return numeric(v) }
