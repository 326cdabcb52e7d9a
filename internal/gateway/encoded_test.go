package gateway

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// TestSingleResponse: a single response reads back as the response with the
// stamped event (and delayed when asked), and every response of the event
// sends the event's one encoding, not a copy.
func TestSingleResponse(t *testing.T) {
	ev := wireEvent(&mxgatewayv1.Event{Sequence: 3, Family: mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE,
		Body: &mxgatewayv1.Event_DataChange{DataChange: &mxgatewayv1.OnDataChange{ServerHandle: 1, ItemHandle: 2}}})
	ev.Stamp("session-1", 7, time.Unix(1800000000, 5))
	want, err := ev.Message()
	if err != nil {
		t.Fatal(err)
	}
	var first []byte
	for _, delayed := range []bool{false, true} {
		r, err := singleResponse(ev, delayed)
		if err != nil {
			t.Fatal(err)
		}
		got := &mxgatewayv1.StreamEventsResponse{}
		if err := proto.Unmarshal(r.data.Materialize(), got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got.GetEvent(), want) || got.GetDelayed() != delayed || len(got.GetEvents()) != 0 {
			t.Errorf("delayed %v: response %v, want event %v", delayed, got, want)
		}
		if first == nil {
			first = r.enc
		} else if &r.enc[0] != &first[0] {
			t.Error("the second response copied the encoding")
		}
	}
}
