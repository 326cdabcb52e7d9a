package frame

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

func stringEvent(s string) *mxgatewayv1.Event {
	return &mxgatewayv1.Event{SessionId: "s-1", Sequence: 3, WorkerTime: timestamppb.Now(),
		Body: &mxgatewayv1.Event_DataChange{DataChange: &mxgatewayv1.OnDataChange{ItemHandle: 2,
			Value: &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_StringValue{StringValue: s}}}}}
}

// TestMarshalMatchesProto: Marshal writes proto.Marshal's bytes, through the
// generated code for our messages and through proto for any other.
func TestMarshalMatchesProto(t *testing.T) {
	msgs := []proto.Message{stringEvent("héllo"), stringEvent(""), &mxgatewayv1.Event{}, structpb.NewStringValue("x")}
	for _, env := range sampleEnvelopes() {
		msgs = append(msgs, env)
	}
	for i, m := range msgs {
		got, err := Marshal(m)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if want := mustMarshal(t, m); !bytes.Equal(got, want) {
			t.Errorf("message %d: Marshal\n%x\nproto.Marshal\n%x", i, got, want)
		}
	}
}

// TestMarshalRefusesInvalidUTF8: a string that is not UTF-8, however deep
// in the message, is refused as proto.Marshal refuses it, and an invalid
// byte sequence in a non-string field is not mistaken for one.
func TestMarshalRefusesInvalidUTF8(t *testing.T) {
	bad := stringEvent("ok\xff")
	if _, err := proto.Marshal(bad); err == nil {
		t.Fatal("proto.Marshal accepted invalid UTF-8; the test is moot")
	}
	if b, err := Marshal(bad); err == nil {
		t.Fatalf("Marshal encoded invalid UTF-8: %x", b)
	}
	if b, err := Marshal(&mxgatewayv1.Event{SessionId: "\xc3("}); err == nil {
		t.Fatalf("Marshal encoded an invalid session id: %x", b)
	}
	// Varints and timestamps hold bytes that are not UTF-8.
	ev := stringEvent("fine")
	ev.GetDataChange().Value = &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_Int64Value{Int64Value: -1}}
	if _, err := Marshal(ev); err != nil {
		t.Fatalf("a valid event was refused: %v", err)
	}
}

func BenchmarkMarshalEvent(b *testing.B) {
	ev := stringEvent("a typical string value")
	b.Run("frame.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := Marshal(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proto.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := proto.Marshal(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}
