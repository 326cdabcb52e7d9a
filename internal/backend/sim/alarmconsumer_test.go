package sim

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

const consumerModelYAML = `
galaxy: TestGalaxy
areas: [{name: North}, {name: South}]
objects:
  - tag: Tank1
    area: North
    attributes:
      - {name: HighLevel, type: MxBoolean, value: false, alarm: true}
  - tag: Tank2
    area: South
    attributes:
      - {name: HighLevel, type: MxBoolean, value: false, alarm: true}
`

type consumerDoc struct {
	Alarms []xmlAlarm `xml:"ALARM"`
}

func pollDoc(t *testing.T, b *Backend) []consumerAlarm {
	t.Helper()
	doc, err := b.PollAlarmConsumer(0)
	if err != nil {
		t.Fatalf("PollAlarmConsumer: %v", err)
	}
	var d consumerDoc
	if err := xml.Unmarshal([]byte(doc), &d); err != nil {
		t.Fatalf("document %q: %v", doc, err)
	}
	out := make([]consumerAlarm, len(d.Alarms))
	for i, a := range d.Alarms {
		out[i] = consumerAlarm{GUID: a.GUID, Reference: a.Reference, State: a.State, Priority: a.Priority, Type: a.Type,
			Comment: a.Comment, OperatorComment: a.OperatorComment, Operator: a.Operator, OriginationTime: a.OriginationTime,
			TransitionTime: a.TransitionTime, Value: a.Value, Limit: a.Limit}
	}
	return out
}

// setAlarm applies the runtime's view of one alarm to the session.
func setAlarm(e *env, tag string, in, acked bool, on time.Time) {
	o := e.b.model.Object(tag)
	ord := func(sub string) int32 { return o.Attribute("HighLevel." + sub).ord }
	e.b.Apply([]Change{
		{Attr: ord(AlarmInAlarm), Value: mxtypes.BoolValue(in), Quality: 192, Time: on},
		{Attr: ord(AlarmAcked), Value: mxtypes.BoolValue(acked), Quality: 192, Time: on},
		{Attr: ord(AlarmPriority), Value: mxtypes.IntegerValue(700), Quality: 192, Time: on},
		{Attr: ord(AlarmTimeAlarmOn), Value: mxtypes.TimeValue(on), Quality: 192, Time: on},
	})
}

// TestAlarmConsumerDocument: the consumer reports exactly the current
// alarms (in alarm, or returned and unacknowledged) of its query's area,
// each raise under its own GUID, and its acknowledgement is the alarm's
// AckMsg write attributed to the user.
func TestAlarmConsumerDocument(t *testing.T) {
	e := newEnv(t, envOpt{model: consumerModelYAML})
	if !e.b.HasAlarmConsumer() {
		t.Fatal("the simulator has no alarm consumer")
	}
	var ce *backend.CallError
	if _, err := e.b.PollAlarmConsumer(0); !errors.As(err, &ce) {
		t.Fatalf("poll before open: %v, want a CallError", err)
	}
	if err := e.b.OpenAlarmConsumer("no-bang"); !errors.As(err, &ce) {
		t.Fatalf("open with a bad query: %v, want a CallError", err)
	}
	if err := e.b.OpenAlarmConsumer(`\TestGalaxy!`); err != nil {
		t.Fatal(err)
	}
	on := testStart.Add(time.Minute)
	setAlarm(e, "Tank1", true, false, on)
	setAlarm(e, "Tank2", true, false, on)
	var first consumerAlarm
	testutil.Eventually(t, 30*time.Second, func() error {
		list := pollDoc(t, e.b)
		if len(list) != 2 {
			return fmt.Errorf("%d alarms, want 2: %+v", len(list), list)
		}
		first = list[0]
		return nil
	})
	if first.Reference != "TestGalaxy!North.Tank1.HighLevel" || first.State != "UNACK_ALM" || first.Priority != "700" ||
		first.OriginationTime != on.Format(time.RFC3339Nano) || first.GUID == "" {
		t.Fatalf("first alarm %+v", first)
	}

	// The area limits the query.
	if err := e.b.OpenAlarmConsumer(`\TestGalaxy!south`); err != nil {
		t.Fatal(err)
	}
	if list := pollDoc(t, e.b); len(list) != 1 || !strings.Contains(list[0].Reference, "Tank2") {
		t.Fatalf("area South: %+v", list)
	}
	if err := e.b.OpenAlarmConsumer(`\TestGalaxy!`); err != nil {
		t.Fatal(err)
	}

	// Acknowledgement by GUID.
	if err := e.b.AckAlarm("{00000000-0000-0000-0000-000000000000}", "x", ""); !errors.As(err, &ce) {
		t.Fatalf("ack of an unknown GUID: %v, want a CallError", err)
	}
	if err := e.b.AckAlarm(first.GUID, "seen", "op"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, func() error {
		if c := pollDoc(t, e.b)[0].OperatorComment; c != "seen" {
			return fmt.Errorf("comment %q", c)
		}
		return nil
	})

	// Returned and acknowledged: gone; returned unacknowledged: there.
	setAlarm(e, "Tank1", false, true, on)
	setAlarm(e, "Tank2", false, false, on)
	testutil.Eventually(t, 30*time.Second, func() error {
		list := pollDoc(t, e.b)
		if len(list) != 1 || list[0].State != "UNACK_RTN" || !strings.Contains(list[0].Reference, "Tank2") {
			return fmt.Errorf("after return: %+v", list)
		}
		return nil
	})

	// A new raise is a new GUID.
	setAlarm(e, "Tank1", true, false, on.Add(time.Minute))
	testutil.Eventually(t, 30*time.Second, func() error {
		for _, a := range pollDoc(t, e.b) {
			if strings.Contains(a.Reference, "Tank1") {
				if a.GUID == first.GUID {
					return fmt.Errorf("a new raise kept GUID %s", a.GUID)
				}
				return nil
			}
		}
		return errors.New("Tank1 not raised yet")
	})

	// The bound.
	if _, err := e.b.PollAlarmConsumer(10); !errors.As(err, &ce) {
		t.Fatalf("poll bounded at 10 bytes: %v, want a CallError", err)
	}
	if err := e.b.CloseAlarmConsumer(); err != nil {
		t.Fatal(err)
	}
	if err := e.b.AckAlarm(first.GUID, "", ""); !errors.As(err, &ce) {
		t.Fatalf("ack after close: %v, want a CallError", err)
	}
}
