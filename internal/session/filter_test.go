package session

import (
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

var seqN uint64

func change(item int32, v *mxgatewayv1.MxValue, quality uint32) *protocol.Event {
	seqN++
	return wireEvent(&mxgatewayv1.Event{Sequence: seqN, Family: mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE,
		Body: &mxgatewayv1.Event_DataChange{DataChange: &mxgatewayv1.OnDataChange{
			ServerHandle: 1, ItemHandle: item, Value: v, Quality: &mxgatewayv1.Quality{Raw: quality}}}})
}

func dbl(x float64) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{DataType: mxgatewayv1.MxDataType_MX_DATA_TYPE_DOUBLE, Kind: &mxgatewayv1.MxValue_DoubleValue{DoubleValue: x}}
}

func i32(x int32) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{DataType: mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER, Kind: &mxgatewayv1.MxValue_Int32Value{Int32Value: x}}
}

func str(s string) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{DataType: mxgatewayv1.MxDataType_MX_DATA_TYPE_STRING, Kind: &mxgatewayv1.MxValue_StringValue{StringValue: s}}
}

func TestFilterNilWhenOff(t *testing.T) {
	if NewFilter(FilterOptions{}) != nil {
		t.Fatal("a filter that filters nothing should be nil")
	}
}

func TestFilterDeadbands(t *testing.T) {
	now := time.Unix(1000, 0)
	cases := []struct {
		name string
		opts FilterOptions
		in   []*protocol.Event
		want []bool
	}{
		{"absolute", FilterOptions{AbsoluteDeadband: 1},
			// first passes; 10.5 within 1 of 10; 11 is 1 away; 11.9 within 1 of 11; 9.9 away.
			[]*protocol.Event{change(1, dbl(10), 192), change(1, dbl(10.5), 192), change(1, dbl(11), 192), change(1, dbl(11.9), 192), change(1, dbl(9.9), 192)},
			[]bool{true, false, true, false, true}},
		{"percent", FilterOptions{PercentDeadband: 10},
			[]*protocol.Event{change(1, dbl(100), 192), change(1, dbl(109), 192), change(1, dbl(110), 192), change(1, dbl(120), 192)},
			[]bool{true, false, true, false}}, // 120 is within 10 % of 110 (11)
		{"both must pass", FilterOptions{AbsoluteDeadband: 5, PercentDeadband: 10},
			[]*protocol.Event{change(1, dbl(10), 192), change(1, dbl(12), 192), change(1, dbl(16), 192), change(1, dbl(1000), 192), change(1, dbl(1050), 192)},
			[]bool{true, false, true, true, false}}, // 1050: 50 >= 5 but < 100
		{"integers", FilterOptions{AbsoluteDeadband: 2},
			[]*protocol.Event{change(1, i32(1), 192), change(1, i32(2), 192), change(1, i32(3), 192)},
			[]bool{true, false, true}},
		{"quality change always passes", FilterOptions{AbsoluteDeadband: 100},
			[]*protocol.Event{change(1, dbl(1), 192), change(1, dbl(1.5), 0), change(1, dbl(1.6), 0), change(1, dbl(1.6), 192)},
			[]bool{true, true, false, true}},
		{"strings are never dropped", FilterOptions{AbsoluteDeadband: 100},
			[]*protocol.Event{change(1, str("a"), 192), change(1, str("b"), 192), change(1, str("b"), 192)},
			[]bool{true, true, true}},
		{"a change of type passes", FilterOptions{AbsoluteDeadband: 100},
			[]*protocol.Event{change(1, dbl(1), 192), change(1, i32(1), 192), change(1, nil, 192)},
			[]bool{true, true, true}},
		{"items are independent", FilterOptions{AbsoluteDeadband: 1},
			[]*protocol.Event{change(1, dbl(0), 192), change(2, dbl(0.5), 192), change(1, dbl(0.5), 192), change(2, dbl(2), 192)},
			[]bool{true, true, false, true}},
		{"other families pass", FilterOptions{AbsoluteDeadband: 1},
			[]*protocol.Event{wireEvent(&mxgatewayv1.Event{Sequence: 1, Body: &mxgatewayv1.Event_WriteComplete{WriteComplete: &mxgatewayv1.OnWriteComplete{ItemHandle: 1}}})},
			[]bool{true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFilter(tc.opts)
			for i, ev := range tc.in {
				if got := f.Offer(ev, now); got != tc.want[i] {
					t.Fatalf("event %d (%v): Offer = %v, want %v", i, ev.Msg().GetDataChange().GetValue(), got, tc.want[i])
				}
			}
			if !f.NextDue().IsZero() || f.Due(now.Add(time.Hour)) != nil {
				t.Fatal("deadbands alone hold nothing")
			}
		})
	}
}

func TestFilterMinInterval(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	f := NewFilter(FilterOptions{MinInterval: time.Second})
	a1, a2, a3 := change(1, dbl(1), 192), change(1, dbl(2), 192), change(1, dbl(3), 192)
	b1 := change(2, dbl(1), 192)
	if !f.Offer(a1, at(0)) {
		t.Fatal("the first value is sent at once")
	}
	if f.Offer(a2, at(100)) || f.Offer(a3, at(200)) {
		t.Fatal("changes within the interval are held")
	}
	if !f.Offer(b1, at(300)) {
		t.Fatal("another item has its own interval")
	}
	if due := f.NextDue(); !due.Equal(at(1000)) {
		t.Fatalf("NextDue = %v, want %v", due, at(1000))
	}
	if got := f.Due(at(999)); got != nil {
		t.Fatalf("due too early: %v", got)
	}
	got := f.Due(at(1000))
	if len(got) != 1 || got[0] != a3 {
		t.Fatalf("Due = %v, want only the latest held change", got)
	}
	if !f.NextDue().IsZero() {
		t.Fatal("nothing held after Due")
	}
	// The interval now runs from the delayed delivery.
	if f.Offer(change(1, dbl(4), 192), at(1500)) {
		t.Fatal("within the interval of the delayed delivery")
	}
	if !f.Offer(change(1, dbl(5), 192), at(2000)) {
		t.Fatal("a change after the interval is sent at once (and replaces the held one)")
	}
	if f.Due(at(5000)) != nil {
		t.Fatal("the replaced held change must not be delivered too")
	}
}

func TestFilterDeadbandDropsHeld(t *testing.T) {
	t0 := time.Unix(1000, 0)
	f := NewFilter(FilterOptions{AbsoluteDeadband: 1, MinInterval: time.Second})
	f.Offer(change(1, dbl(10), 192), t0)
	if f.Offer(change(1, dbl(12), 192), t0.Add(100*time.Millisecond)) {
		t.Fatal("held by the interval")
	}
	// Back within the deadband of the shown 10: 12 is stale and never shown.
	if f.Offer(change(1, dbl(10.2), 192), t0.Add(200*time.Millisecond)) {
		t.Fatal("within the deadband")
	}
	if got := f.Due(t0.Add(time.Hour)); got != nil {
		t.Fatalf("a held change superseded by one within the deadband was delivered: %v", got)
	}
}

func TestFilterDueInSequenceOrder(t *testing.T) {
	t0 := time.Unix(1000, 0)
	f := NewFilter(FilterOptions{MinInterval: time.Second})
	for item := int32(1); item <= 5; item++ {
		f.Offer(change(item, dbl(0), 192), t0)
	}
	var held []*protocol.Event
	for item := int32(5); item >= 1; item-- {
		ev := change(item, dbl(1), 192)
		held = append(held, ev)
		f.Offer(ev, t0.Add(10*time.Millisecond))
	}
	got := f.Due(t0.Add(time.Second))
	if len(got) != 5 {
		t.Fatalf("Due returned %d events", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i-1].Sequence >= got[i].Sequence {
			t.Fatalf("Due not in sequence order: %d then %d", got[i-1].Sequence, got[i].Sequence)
		}
	}
}
