package client

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/mxgateway/mxgateway/internal/frame"
)

// TestMarshalVTMatchesProto: frame.Marshal, which the worker encodes every
// event with (through the generated MarshalVT), writes the bytes
// proto.Marshal writes for every family and value kind, and they decode to
// the same event.
func TestMarshalVTMatchesProto(t *testing.T) {
	for i, ev := range decodeCorpus() {
		got, err := frame.Marshal(ev)
		if err != nil {
			t.Fatalf("event %d: frame.Marshal: %v", i, err)
		}
		want, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("event %d: frame.Marshal\n%x\nproto.Marshal\n%x", i, got, want)
		}
		back := ev.ProtoReflect().New().Interface()
		if err := proto.Unmarshal(got, back); err != nil || !proto.Equal(back, ev) {
			t.Errorf("event %d: decodes to %v (%v), want %v", i, back, err, ev)
		}
	}
}
