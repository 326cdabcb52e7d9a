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

// FuzzValidStrings: the check of an encoding's strings agrees with
// proto.Unmarshal, which refuses a proto3 string that is not UTF-8: what
// it decodes passes, and so does the re-encoding of what it decoded when
// the strings are valid (short and long lengths, one- and two-byte tags).
func FuzzValidStrings(f *testing.F) {
	long := stringEvent(string(bytes.Repeat([]byte("é"), 200)))
	long.SessionId = "a session id"
	for _, m := range []proto.Message{stringEvent("héllo"), stringEvent(""), long, &mxgatewayv1.Event{}} {
		f.Add(mustMarshal(f, m))
	}
	f.Add(append(mustMarshal(f, stringEvent("ok")), 0xf8, 0x01, 0x05)) // an unknown field 31
	f.Add([]byte{0x0a, 0x02, 0xc3, 0x28})                              // session id "\xc3("
	md := (&mxgatewayv1.Event{}).ProtoReflect().Descriptor()
	f.Fuzz(func(t *testing.T, b []byte) {
		ev := &mxgatewayv1.Event{}
		if err := proto.Unmarshal(b, ev); err != nil {
			return
		}
		if !validStrings(b, md) {
			t.Fatalf("proto.Unmarshal decoded %x, validStrings refused it", b)
		}
		enc := mustMarshal(t, ev)
		if !validStrings(enc, md) {
			t.Fatalf("validStrings refused the encoding %x of a decoded event", enc)
		}
	})
}
