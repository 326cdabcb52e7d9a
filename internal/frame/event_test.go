package frame

import (
	"bytes"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

// TestWriteEventMatchesWrite: an event written from its encoding decodes to
// the same envelope Write produces, and its frame is no larger than the
// encoding plus EventOverhead.
func TestWriteEventMatchesWrite(t *testing.T) {
	ev := &mxgatewayv1.Event{
		Sequence: 7,
		Family:   mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE,
		Body: &mxgatewayv1.Event_DataChange{DataChange: &mxgatewayv1.OnDataChange{
			ServerHandle: 1, ItemHandle: 2,
			Value: &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_StringValue{StringValue: "x"}},
		}},
	}
	enc, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	for _, sid := range []string{"", "session-1"} {
		var raw bytes.Buffer
		if err := NewWriter(&raw, Options{}).WriteEvent(protocol.Version, sid, 42, enc); err != nil {
			t.Fatal(err)
		}
		got, err := NewReader(&raw, Options{SessionID: sid}).Read()
		if err != nil {
			t.Fatal(err)
		}
		want := &workerv1.WorkerEnvelope{
			ProtocolVersion: protocol.Version, SessionId: sid, Sequence: 42,
			Body: &workerv1.WorkerEnvelope_Event{Event: &workerv1.WorkerEvent{Event: ev}},
		}
		if !proto.Equal(got, want) {
			t.Fatalf("session %q: decoded %v, want %v", sid, got, want)
		}
		if n := raw.Len(); n != 0 {
			t.Fatalf("%d bytes left over", n)
		}
		var again bytes.Buffer
		_ = NewWriter(&again, Options{}).WriteEvent(protocol.Version, sid, 42, enc)
		if size := again.Len() - HeaderBytes; size > len(enc)+EventOverhead(len(sid)) {
			t.Fatalf("frame of %d bytes for a %d-byte event exceeds the overhead bound %d", size, len(enc), EventOverhead(len(sid)))
		}
	}
}

// TestWriteEventOversized: an event that does not fit the frame limit is
// refused with CodeOversized and nothing reaches the stream.
func TestWriteEventOversized(t *testing.T) {
	var raw bytes.Buffer
	err := NewWriter(&raw, Options{MaxFrameBytes: 64}).WriteEvent(protocol.Version, "s", 1, make([]byte, 64))
	if !errors.Is(err, ErrOversized) {
		t.Fatalf("err %v, want oversized", err)
	}
	if raw.Len() != 0 {
		t.Fatalf("%d bytes written", raw.Len())
	}
}
