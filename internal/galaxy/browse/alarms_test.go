package browse

import (
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/backend/sim"
)

// TestAlarmSources: the demo Galaxy's alarms, as the model defines them,
// limit alarms with their analog and limit.
func TestAlarmSources(t *testing.T) {
	m := sim.DemoModel()
	srcs := FromModel(m, 1, time.Now(), mxgatewayv1.Freshness_FRESHNESS_LIVE).AlarmSources()
	want := map[string]sim.AlarmDef{}
	for _, o := range m.Objects {
		for _, d := range o.Alarms() {
			want[o.Tag+"."+d.Attr.Name] = d
		}
	}
	if len(srcs) != len(want) || len(want) == 0 {
		t.Fatalf("%d alarm sources, the model has %d alarms", len(srcs), len(want))
	}
	for _, s := range srcs {
		d, ok := want[s.Reference]
		if !ok || s.LimitKind != d.Kind.Name {
			t.Errorf("%s: kind %q, the model's %q (known %v)", s.Reference, s.LimitKind, d.Kind.Name, ok)
		}
	}
	var hi *AlarmSource
	for i := range srcs {
		if srcs[i].Reference == "Valve1.Position.HiHi" {
			hi = &srcs[i]
		}
	}
	if hi == nil || hi.LimitKind != "HiHi" || hi.Analog != "Valve1.Position" || hi.Limit != "Valve1.Position.HiHi.Limit" || hi.Area != "TankFarm" {
		t.Fatalf("Valve1.Position.HiHi: %+v", hi)
	}
}
