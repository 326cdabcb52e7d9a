package sim

import (
	"strings"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
)

// inherit merges a template chain's attributes (nearest template first in
// chain) with an object's own: root template first, each level replacing
// the attributes of the same name, the object's own last. Attributes are
// copied, so instances never share one.
func inherit(chain []*Template, own []*Attribute) []*Attribute {
	var out []*Attribute
	index := map[string]int{}
	add := func(a *Attribute) {
		c := *a
		key := strings.ToLower(a.Name)
		if i, ok := index[key]; ok {
			out[i] = &c
			return
		}
		index[key] = len(out)
		out = append(out, &c)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		for _, a := range chain[i].Attributes {
			add(a)
		}
	}
	for _, a := range own {
		add(a)
	}
	return out
}

// categoryOf derives an object's GR category from its template chain.
func categoryOf(o *Object) int32 {
	for _, t := range o.Templates {
		switch strings.ToLower(t) {
		case "$winplatform":
			return CategoryPlatform
		case "$appengine":
			return CategoryEngine
		case "$area":
			return CategoryArea
		}
	}
	return CategoryUserDefined
}

// PrimitiveAlarmExtension names the alarm sub-attributes' primitive.
const PrimitiveAlarmExtension = "AlarmExtension"

// alarmExtension lists the sub-attributes an alarmed attribute gets
// (GALAXY.md §2.1), with their types, classifications and first values.
var alarmExtension = []struct {
	name string
	typ  mxgatewayv1.MxDataType
	sec  SecurityClassification
	val  func() *mxgatewayv1.MxValue // nil: the type's initial value
}{
	{"InAlarm", tBool, ViewOnly, nil},
	{"Acked", tBool, ViewOnly, func() *mxgatewayv1.MxValue { return mxtypes.BoolValue(true) }},
	{"AckMsg", tString, Operate, nil},
	{"Priority", tInt, Tune, func() *mxgatewayv1.MxValue { return mxtypes.IntegerValue(500) }},
	{"Category", tInt, Configure, func() *mxgatewayv1.MxValue { return mxtypes.IntegerValue(1) }},
	{"DescAttrName", tString, Configure, nil},
	{"TimeAlarmOn", tTime, ViewOnly, nil},
	{"TimeAlarmOff", tTime, ViewOnly, nil},
	{"TimeAlarmAcked", tTime, ViewOnly, nil},
	{AlarmAckOperator, tString, ViewOnly, nil},
	{"AlarmMode", tString, ViewOnly, func() *mxgatewayv1.MxValue { return mxtypes.StringValue("Enable") }},
	{"AlarmModeCmd", tString, Operate, func() *mxgatewayv1.MxValue { return mxtypes.StringValue("Enable") }},
}

// withAlarmExtensions adds, after each alarmed attribute, the alarm
// sub-attributes the model does not define itself.
func withAlarmExtensions(attrs []*Attribute) []*Attribute {
	has := map[string]bool{}
	for _, a := range attrs {
		has[strings.ToLower(a.Name)] = true
	}
	var out []*Attribute
	for _, a := range attrs {
		out = append(out, a)
		if !a.Alarm || a.Primitive != "" {
			continue
		}
		for _, x := range alarmExtension {
			name := a.Name + "." + x.name
			if has[strings.ToLower(name)] {
				continue
			}
			has[strings.ToLower(name)] = true
			sub := &Attribute{Name: name, Type: x.typ, Security: x.sec, Quality: mxtypes.QualityGood,
				Primitive: PrimitiveAlarmExtension}
			if x.val != nil {
				sub.Initial = x.val()
			}
			out = append(out, sub)
		}
	}
	return out
}

// Hidden reports whether an attribute is hidden from browse (a name
// starting with "_").
func (a *Attribute) Hidden() bool { return strings.HasPrefix(a.Name, "_") }
