package worker

import (
	"encoding/xml"
	"fmt"
	"strings"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/backend/sim"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

func alarmOpen(query string) *workerv1.AlarmConsumerRequest {
	return &workerv1.AlarmConsumerRequest{Op: &workerv1.AlarmConsumerRequest_Open{Open: &workerv1.AlarmConsumerOpen{Query: query}}}
}

func alarmPoll() *workerv1.AlarmConsumerRequest {
	return &workerv1.AlarmConsumerRequest{Op: &workerv1.AlarmConsumerRequest_Poll{Poll: &workerv1.AlarmConsumerPoll{}}}
}

func alarmAck(guid, comment string) *workerv1.AlarmConsumerRequest {
	return &workerv1.AlarmConsumerRequest{Op: &workerv1.AlarmConsumerRequest_Ack{Ack: &workerv1.AlarmConsumerAck{Guid: guid, Comment: comment}}}
}

// alarmCall sends one alarm consumer request and returns its reply,
// skipping events.
func (h *harness) alarmCall(correlation uint64, req *workerv1.AlarmConsumerRequest) *workerv1.AlarmConsumerReply {
	h.t.Helper()
	h.send(correlation, &workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_AlarmConsumerRequest{AlarmConsumerRequest: req}})
	for {
		env := h.next()
		switch b := env.GetBody().(type) {
		case *workerv1.WorkerEnvelope_Event:
		case *workerv1.WorkerEnvelope_AlarmConsumerReply:
			if env.GetCorrelationId() != correlation {
				h.t.Fatalf("alarm reply correlation %d, want %d", env.GetCorrelationId(), correlation)
			}
			return b.AlarmConsumerReply
		default:
			h.t.Fatalf("unexpected %s while waiting for alarm reply %d", bodyName(env), correlation)
		}
	}
}

func wantAlarmStatus(t *testing.T, what string, rep *workerv1.AlarmConsumerReply, want mxgatewayv1.GatewayStatusCode, hresult int32) {
	t.Helper()
	if rep.GetStatus() != want || rep.GetHresult() != hresult {
		t.Fatalf("%s: status %v HRESULT 0x%08X (%s), want %v 0x%08X", what, rep.GetStatus(), uint32(rep.GetHresult()), rep.GetMessage(), want, uint32(hresult))
	}
}

// consumerDoc reads the GUIDs and references of a current-alarm document.
func consumerDoc(t *testing.T, doc string) map[string]string {
	t.Helper()
	var d struct {
		Alarms []struct {
			GUID      string `xml:"GUID,attr"`
			Reference string `xml:"Reference,attr"`
		} `xml:"ALARM"`
	}
	if err := xml.Unmarshal([]byte(doc), &d); err != nil {
		t.Fatalf("document %q: %v", doc, err)
	}
	out := map[string]string{}
	for _, a := range d.Alarms {
		out[a.Reference] = a.GUID
	}
	return out
}

// raise puts the demo Galaxy's alarm obj.attr in alarm, unacknowledged, as
// the Galaxy runtime would.
func raise(t *testing.T, b *sim.Backend, obj, attr string, on time.Time) {
	t.Helper()
	o := b.Model().Object(obj)
	if o == nil {
		t.Fatalf("no object %s", obj)
	}
	sub := func(s string) int32 { return o.Attribute(attr + "." + s).Ordinal() }
	b.Apply([]sim.Change{
		{Attr: sub(sim.AlarmInAlarm), Value: mxtypes.BoolValue(true), Quality: 192, Time: on},
		{Attr: sub(sim.AlarmAcked), Value: mxtypes.BoolValue(false), Quality: 192, Time: on},
		{Attr: sub(sim.AlarmTimeAlarmOn), Value: mxtypes.TimeValue(on), Quality: 192, Time: on},
	})
}

// TestAlarmConsumerRequests: the worker announces the simulator's alarm
// consumer in WorkerReady and runs the gateway-internal requests on its
// command loop: a refusal is a reply (the session goes on), a poll returns
// the current alarms, an acknowledgement goes by GUID.
func TestAlarmConsumerRequests(t *testing.T) {
	b, err := sim.New(sim.Options{Profile: "test", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	h := start(t, b, harnessOpts{})
	if ready := h.ready(noHeartbeats); !ready.GetAlarmConsumer() {
		t.Fatalf("WorkerReady %v: no alarm consumer for the simulator", ready)
	}
	wantAlarmStatus(t, "poll before open", h.alarmCall(1, alarmPoll()), mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_MXACCESS_FAILURE, mxtypes.E_FAIL)
	wantAlarmStatus(t, "open without '!'", h.alarmCall(2, alarmOpen("nothing")), mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_MXACCESS_FAILURE, mxtypes.E_INVALIDARG)
	wantAlarmStatus(t, "open", h.alarmCall(3, alarmOpen(`\MxDemo!`)), mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK, 0)

	on := time.Now().UTC().Truncate(time.Millisecond)
	raise(t, b, "Tank1", "HighLevel", on)
	var guid string
	corr := uint64(10)
	testutil.Eventually(t, 30*time.Second, func() error {
		corr++
		rep := h.alarmCall(corr, alarmPoll())
		if rep.GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK {
			return fmt.Errorf("poll: %v %s", rep.GetStatus(), rep.GetMessage())
		}
		for ref, g := range consumerDoc(t, rep.GetDocument()) {
			if strings.HasSuffix(ref, "Tank1.HighLevel") {
				guid = g
				return nil
			}
		}
		return fmt.Errorf("Tank1.HighLevel not in %q", rep.GetDocument())
	})
	wantAlarmStatus(t, "ack of an unknown GUID", h.alarmCall(100, alarmAck("{00000000-0000-0000-0000-000000000000}", "x")),
		mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_MXACCESS_FAILURE, mxtypes.E_INVALIDARG)
	wantAlarmStatus(t, "ack", h.alarmCall(101, alarmAck(guid, "seen")), mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK, 0)

	// Commands still run between requests, in order.
	if sh := h.call(102, register(), nil).GetRegister().GetServerHandle(); sh == 0 {
		t.Fatal("Register after the alarm requests returned no handle")
	}
	wantAlarmStatus(t, "close", h.alarmCall(103, &workerv1.AlarmConsumerRequest{Op: &workerv1.AlarmConsumerRequest_Close{Close: &workerv1.AlarmConsumerClose{}}}),
		mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK, 0)
	wantAlarmStatus(t, "poll after close", h.alarmCall(104, alarmPoll()), mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_MXACCESS_FAILURE, mxtypes.E_FAIL)
	wantAlarmStatus(t, "no operation", h.alarmCall(105, &workerv1.AlarmConsumerRequest{}), mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_NOT_SUPPORTED, mxtypes.E_NOTIMPL)
	if ack := h.shutdown(); len(ack.GetTeardownWarnings()) != 0 {
		t.Fatalf("teardown warnings %v", ack.GetTeardownWarnings())
	}
}

// TestAlarmConsumerBounded: a current-alarm document too long for one
// frame is refused in the reply, not sent, and the worker goes on.
func TestAlarmConsumerBounded(t *testing.T) {
	b, err := sim.New(sim.Options{Profile: "test", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	h := start(t, b, harnessOpts{})
	h.ready(noHeartbeats, func(hello *workerv1.GatewayHello) { hello.MaxFrameBytes = 3072 })
	wantAlarmStatus(t, "open", h.alarmCall(1, alarmOpen(`\MxDemo!`)), mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK, 0)
	on := time.Now().UTC().Truncate(time.Millisecond)
	for _, o := range b.Model().Objects {
		for _, a := range o.Alarms() {
			raise(t, b, o.Tag, a.Attr.Name, on)
		}
	}
	corr := uint64(10)
	testutil.Eventually(t, 30*time.Second, func() error {
		corr++
		rep := h.alarmCall(corr, alarmPoll())
		if rep.GetStatus() == mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK {
			return fmt.Errorf("poll answered %d bytes within a 3 KiB frame", len(rep.GetDocument()))
		}
		if rep.GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_MXACCESS_FAILURE || rep.GetDocument() != "" {
			t.Fatalf("oversized poll: %v %q", rep.GetStatus(), rep.GetMessage())
		}
		return nil
	})
	if sh := h.call(1000, register(), nil).GetRegister().GetServerHandle(); sh == 0 {
		t.Fatal("Register after the refused poll returned no handle")
	}
}

// TestAlarmConsumerNotSupported: a backend without a consumer says so in
// WorkerReady and answers every request NOT_SUPPORTED.
func TestAlarmConsumerNotSupported(t *testing.T) {
	h := start(t, newFake(), harnessOpts{})
	if ready := h.ready(noHeartbeats); ready.GetAlarmConsumer() {
		t.Fatal("WorkerReady reports an alarm consumer for a backend without one")
	}
	wantAlarmStatus(t, "open", h.alarmCall(1, alarmOpen(`\G!`)), mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_NOT_SUPPORTED, mxtypes.E_NOTIMPL)
	if sh := h.call(2, register(), nil).GetRegister().GetServerHandle(); sh == 0 {
		t.Fatal("Register after the refused request returned no handle")
	}
}
