package browse

import (
	"cmp"
	"slices"
	"strings"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/backend/sim"
)

// AlarmSource is one alarm-bearing attribute of the model: what the alarm
// monitor watches.
type AlarmSource struct {
	Reference string // Object.Attribute
	Object    string // tag name
	Attribute string
	Area      string // the object's area, "" for none
	// LimitKind is HiHi, Hi, Lo or LoLo for a limit alarm (sim.LimitKinds);
	// Analog and Limit are then the references of its analog value and
	// limit.
	LimitKind     string
	Analog, Limit string
}

// AlarmSources lists every alarmed MxBoolean attribute of the snapshot, by
// reference. A limit alarm is recognised by its name and its limit
// attribute (see sim.AlarmDef), from the snapshot's attributes.
func (s *Snapshot) AlarmSources() []AlarmSource {
	var out []AlarmSource
	for _, n := range s.byID {
		if !n.alarm {
			continue
		}
		byName := make(map[string]*mxgatewayv1.GalaxyAttribute, len(n.attrs))
		for _, a := range n.attrs {
			byName[strings.ToLower(a.GetName())] = a
		}
		area := ""
		if a := s.byID[n.obj.GetAreaObjectId()]; a != nil && n.obj.GetAreaObjectId() != 0 {
			area = a.obj.GetTagName()
		}
		for _, a := range n.attrs {
			if !a.GetAlarm() || a.GetBuiltin() || a.GetIsArray() || a.GetDataType() != mxgatewayv1.MxDataType_MX_DATA_TYPE_BOOLEAN {
				continue
			}
			src := AlarmSource{Reference: a.GetReference(), Object: n.obj.GetTagName(), Attribute: a.GetName(), Area: area}
			if i := strings.LastIndexByte(a.GetName(), '.'); i > 0 {
				base, kind := a.GetName()[:i], a.GetName()[i+1:]
				for _, k := range sim.LimitKinds {
					if !strings.EqualFold(kind, k.Name) {
						continue
					}
					an, lim := byName[strings.ToLower(base)], byName[strings.ToLower(a.GetName()+"."+sim.LimitSuffix)]
					if numeric(an) && numeric(lim) {
						src.LimitKind, src.Analog, src.Limit = k.Name, an.GetReference(), lim.GetReference()
					}
				}
			}
			out = append(out, src)
		}
	}
	slices.SortFunc(out, func(a, b AlarmSource) int {
		return cmp.Compare(strings.ToLower(a.Reference), strings.ToLower(b.Reference))
	})
	return out
}

func numeric(a *mxgatewayv1.GalaxyAttribute) bool {
	if a == nil || a.GetIsArray() {
		return false
	}
	switch a.GetDataType() {
	case mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER, mxgatewayv1.MxDataType_MX_DATA_TYPE_FLOAT,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_DOUBLE, mxgatewayv1.MxDataType_MX_DATA_TYPE_ELAPSED_TIME:
		return true
	}
	return false
}
