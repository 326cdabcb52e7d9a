package client

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"
)

// TestMarshalVTMatchesProto: the generated MarshalVT, which the worker
// encodes every event with, writes the bytes proto.Marshal writes for every
// family and value kind, and they decode to the same event.
func TestMarshalVTMatchesProto(t *testing.T) {
	for i, ev := range decodeCorpus() {
		vt, err := ev.MarshalVT()
		if err != nil {
			t.Fatalf("event %d: MarshalVT: %v", i, err)
		}
		if n := ev.SizeVT(); n != len(vt) {
			t.Errorf("event %d: SizeVT %d, MarshalVT wrote %d bytes", i, n, len(vt))
		}
		want, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(vt, want) {
			t.Errorf("event %d: MarshalVT\n%x\nproto.Marshal\n%x", i, vt, want)
		}
		got := ev.ProtoReflect().New().Interface()
		if err := proto.Unmarshal(vt, got); err != nil || !proto.Equal(got, ev) {
			t.Errorf("event %d: decodes to %v (%v), want %v", i, got, err, ev)
		}
	}
}
