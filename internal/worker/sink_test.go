package worker

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
)

// TestEncodeCarvesChunks checks the sink's chunked encodings: each is what
// proto.Marshal gives, stays so after later events are encoded (no two
// share bytes), cannot be appended into its neighbour, and an event larger
// than a chunk is encoded on its own.
func TestEncodeCarvesChunks(t *testing.T) {
	w := &worker{}
	event := func(i int, name string) *mxgatewayv1.Event {
		return &mxgatewayv1.Event{
			Family:   mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE,
			Sequence: uint64(i + 1),
			Body: &mxgatewayv1.Event_DataChange{DataChange: &mxgatewayv1.OnDataChange{
				ServerHandle: 1, ItemHandle: int32(i), Value: mxtypes.StringValue(name),
			}},
		}
	}
	type done struct {
		enc  []byte
		want []byte
	}
	var all []done
	for i := range 3000 {
		name := "v"
		switch i % 500 {
		case 7:
			name = strings.Repeat("x", encChunkSize+100) // larger than a chunk
		case 9:
			name = strings.Repeat("y", encChunkSize/3) // leaves a chunk's tail unused
		}
		ev := event(i, name)
		enc, err := w.encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		want, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if string(enc) != string(want) {
			t.Fatalf("event %d: encode gives %x, proto.Marshal %x", i, enc, want)
		}
		if cap(enc) != len(enc) {
			t.Fatalf("event %d: encoding has %d bytes of spare capacity", i, cap(enc)-len(enc))
		}
		all = append(all, done{enc, want})
	}
	for i, d := range all {
		if string(d.enc) != string(d.want) {
			t.Fatalf("event %d: its encoding changed after later events were encoded", i)
		}
	}
	// An append to one encoding leaves the next one alone.
	_ = append(all[0].enc, 0xFF)
	if string(all[1].enc) != string(all[1].want) {
		t.Fatal("an append to an encoding wrote into the next one")
	}
}
