package alarms

import (
	"context"
	"fmt"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/backend/sim"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

// TestParseSimulatorDocument: the simulator's native alarm consumer
// writes the document ParseCurrentAlarms reads, and its references map to
// the watch list's form.
func TestParseSimulatorDocument(t *testing.T) {
	m, err := sim.ParseModel([]byte(`
galaxy: G
areas: [{name: North}]
objects:
  - tag: Tank1
    area: North
    attributes:
      - {name: HighLevel, type: MxBoolean, value: false, alarm: true}
`), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := sim.New(sim.Options{Model: m, Profile: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open(context.Background(), backend.SinkFunc(func(*mxgatewayv1.Event) {})); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	attr := func(sub string) int32 { return m.Object("Tank1").Attribute("HighLevel." + sub).Ordinal() }
	on := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b.Apply([]sim.Change{
		{Attr: attr(sim.AlarmInAlarm), Value: mxtypes.BoolValue(true), Quality: 192, Time: on},
		{Attr: attr(sim.AlarmAcked), Value: mxtypes.BoolValue(false), Quality: 192, Time: on},
		{Attr: attr(sim.AlarmPriority), Value: mxtypes.IntegerValue(250), Quality: 192, Time: on},
		{Attr: attr(sim.AlarmTimeAlarmOn), Value: mxtypes.TimeValue(on), Quality: 192, Time: on},
		{Attr: attr(sim.AlarmAckMsg), Value: mxtypes.StringValue("noted"), Quality: 192, Time: on},
	})
	if err := b.OpenAlarmConsumer(`\G!`); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, func() error {
		doc, err := b.PollAlarmConsumer(maxNativeXML)
		if err != nil {
			return err
		}
		list, err := ParseCurrentAlarms(doc)
		if err != nil {
			return err
		}
		if len(list) != 1 {
			return fmt.Errorf("%d alarms in %q", len(list), doc)
		}
		a := list[0]
		if in, acked := nativeState(a.State); !in || acked || a.Priority != 250 || !a.TimeOn.Equal(on) || a.Comment != "noted" || a.GUID == "" {
			return fmt.Errorf("alarm %+v", a)
		}
		ref, ok := LocalReference(a.Reference, func(s string) bool { return s == "tank1.highlevel" })
		if !ok || ref != "Tank1.HighLevel" {
			return fmt.Errorf("reference %q maps to %q, %v", a.Reference, ref, ok)
		}
		return nil
	})
}
