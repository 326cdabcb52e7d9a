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

// TestReadEventSized: an event envelope comes back encoded, byte for byte
// what the worker encoded, with the envelope's header; any other envelope,
// and an event envelope the fast path does not take (a wrong session, a
// wrong version), is decoded and checked as ReadSized does.
func TestReadEventSized(t *testing.T) {
	ev := &mxgatewayv1.Event{Sequence: 3, Body: &mxgatewayv1.Event_DataChange{DataChange: &mxgatewayv1.OnDataChange{ServerHandle: 1, ItemHandle: 2}}}
	enc, _ := proto.Marshal(ev)
	var raw bytes.Buffer
	w := NewWriter(&raw, Options{})
	_ = w.WriteEvent(protocol.Version, "s1", 5, enc)
	_ = w.Write(&workerv1.WorkerEnvelope{ProtocolVersion: protocol.Version, SessionId: "s1", Sequence: 6,
		Body: &workerv1.WorkerEnvelope_Heartbeat{Heartbeat: &workerv1.Heartbeat{}}})
	_ = w.Write(&workerv1.WorkerEnvelope{ProtocolVersion: protocol.Version, SessionId: "s1", Sequence: 7,
		Body: &workerv1.WorkerEnvelope_Event{Event: &workerv1.WorkerEvent{Event: ev}}})
	_ = w.WriteEvent(protocol.Version, "other", 8, enc)
	_ = w.WriteEvent(protocol.Version+1, "s1", 9, enc)
	r := NewReader(&raw, Options{SessionID: "s1"})

	env := &workerv1.WorkerEnvelope{}
	got, size, err := r.ReadEventSized(env)
	if err != nil || !bytes.Equal(got, enc) || size == 0 || env.GetSequence() != 5 || env.GetSessionId() != "s1" || env.GetBody() != nil {
		t.Fatalf("event: %x %d %v %v; want %x", got, size, env, err, enc)
	}
	for _, seq := range []uint64{6, 7} {
		env = &workerv1.WorkerEnvelope{}
		got, _, err = r.ReadEventSized(env)
		if err != nil || env.GetSequence() != seq {
			t.Fatalf("envelope %d: %v %v", seq, env, err)
		}
		if seq == 7 && !bytes.Equal(got, enc) && (got != nil || env.GetEvent() == nil) {
			t.Fatalf("envelope 7: neither encoded nor decoded: %x %v", got, env)
		}
		if seq == 6 && (got != nil || env.GetHeartbeat() == nil) {
			t.Fatalf("heartbeat: %x %v", got, env)
		}
	}
	if _, _, err := r.ReadEventSized(&workerv1.WorkerEnvelope{}); CodeOf(err) != CodeSessionMismatch {
		t.Fatalf("other session: %v", err)
	}
	if _, _, err := r.ReadEventSized(&workerv1.WorkerEnvelope{}); CodeOf(err) != CodeVersionMismatch {
		t.Fatalf("other version: %v", err)
	}
}
