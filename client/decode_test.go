package client

import (
	"fmt"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// decodeCorpus is one event of every family and value kind, those the fast
// decoder handles and those it leaves to proto.Unmarshal.
func decodeCorpus() []*mxgatewayv1.Event {
	ts := timestamppb.New(time.Date(2026, 12, 3, 12, 0, 0, 123_000_000, time.UTC))
	ok := &mxgatewayv1.MxStatus{Success: true, SuccessRaw: -1}
	bad := &mxgatewayv1.MxStatus{SuccessRaw: 0, Category: mxgatewayv1.MxStatusCategory(3), DetectedBy: mxgatewayv1.MxStatusSource(2),
		Detail: 1003, CategoryRaw: 3, DetectedByRaw: -7}
	dc := func(v *mxgatewayv1.MxValue, st ...*mxgatewayv1.MxStatus) *mxgatewayv1.Event {
		return &mxgatewayv1.Event{SessionId: "s-1", Sequence: 42, Family: mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE,
			WorkerTime: ts, GatewayTime: timestamppb.New(time.Unix(1, 999)),
			Body: &mxgatewayv1.Event_DataChange{DataChange: &mxgatewayv1.OnDataChange{ServerHandle: 1, ItemHandle: -5, Value: v,
				Quality: &mxgatewayv1.Quality{Raw: 192, QualityClass: mxgatewayv1.QualityClass_QUALITY_CLASS_GOOD}, Timestamp: ts, Statuses: st}}}
	}
	val := func(k any) *mxgatewayv1.MxValue {
		return MustValue(k).Proto()
	}
	return []*mxgatewayv1.Event{
		{},
		dc(val(int32(7)), ok),
		dc(val(int32(-7))),
		dc(val(true), ok, bad),
		dc(&mxgatewayv1.MxValue{VariantType: 20, Kind: &mxgatewayv1.MxValue_Int64Value{Int64Value: 1 << 40}}, bad),
		dc(val(float32(1.5))),
		dc(val(2.25)),
		dc(val("héllo")),
		dc(val(time.Date(2001, 2, 3, 4, 5, 6, 7_000_000, time.UTC))),
		dc(val(3 * time.Second)),
		dc(val([]float64{1, 2, 3})),
		dc(val([]string{"a", "b"})),
		dc(Null().Proto()),
		dc(&mxgatewayv1.MxValue{Diagnostic: "lossy", Kind: &mxgatewayv1.MxValue_DurationValue{DurationValue: durationpb.New(time.Minute)}}),
		dc(nil),
		{SessionId: "s-2", Sequence: 1, Family: mxgatewayv1.EventFamily_EVENT_FAMILY_ON_WRITE_COMPLETE,
			Body: &mxgatewayv1.Event_WriteComplete{WriteComplete: &mxgatewayv1.OnWriteComplete{ServerHandle: 2, ItemHandle: 3, Statuses: []*mxgatewayv1.MxStatus{ok, bad}}}},
		{Sequence: 9, Family: mxgatewayv1.EventFamily_EVENT_FAMILY_REPLAY_GAP, GatewayGenerated: true,
			Body: &mxgatewayv1.Event_ReplayGap{ReplayGap: &mxgatewayv1.ReplayGap{RequestedAfterSequence: 2, FirstAvailableSequence: 9, Reason: "ring trimmed by count"}}},
		{Sequence: 10, Body: &mxgatewayv1.Event_OperationComplete{OperationComplete: &mxgatewayv1.OperationComplete{ItemHandle: 4}}},
		{Sequence: 11, Body: &mxgatewayv1.Event_BufferedDataChange{BufferedDataChange: &mxgatewayv1.OnBufferedDataChange{ItemHandle: 4,
			Samples: []*mxgatewayv1.BufferedSample{{Value: val(int32(1)), Timestamp: ts}}}}},
		{Sequence: 12, GatewayGenerated: true, Body: &mxgatewayv1.Event_DataHealth{DataHealth: &mxgatewayv1.DataHealthChange{Reason: "stale", LastChange: ts}}},
	}
}

// decodeInputs are encoded responses: each event alone, delayed, all of
// them in one batch, and hand-made wire forms proto reads specially
// (merged repeats, unknown fields).
func decodeInputs(t testing.TB) [][]byte {
	var out [][]byte
	m := func(r *mxgatewayv1.StreamEventsResponse) []byte {
		b, err := proto.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	corpus := decodeCorpus()
	for i, ev := range corpus {
		out = append(out, m(&mxgatewayv1.StreamEventsResponse{Event: ev, Delayed: i%2 == 1}))
		// The event field twice: proto merges the two events.
		one := m(&mxgatewayv1.StreamEventsResponse{Event: ev})
		out = append(out, append(append([]byte{}, one...), m(&mxgatewayv1.StreamEventsResponse{Event: corpus[(i+1)%len(corpus)]})...))
		// An unknown field at the end of the event.
		enc, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		enc = append(enc, 0xf8, 0x01, 0x05) // field 31, varint 5
		out = append(out, append([]byte{0x0a, byte(len(enc))}, enc...))
	}
	out = append(out, m(&mxgatewayv1.StreamEventsResponse{Events: corpus}), m(&mxgatewayv1.StreamEventsResponse{}))
	return out
}

// checkDecode asserts that the fast decoder and proto.Unmarshal agree on
// b: the same error-ness and, without an error, equal messages.
func checkDecode(t *testing.T, c *eventCodec, b []byte) {
	t.Helper()
	want := &mxgatewayv1.StreamEventsResponse{}
	werr := proto.Unmarshal(b, want)
	got := &mxgatewayv1.StreamEventsResponse{}
	gerr := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("decode of %x: error %v, proto.Unmarshal %v", b, gerr, werr)
	}
	if werr == nil && !proto.Equal(got, want) {
		t.Fatalf("decode of %x:\n got %v\nwant %v", b, got, want)
	}
}

// TestDecodeMatchesProto: the SDK's StreamEvents decoder gives what
// proto.Unmarshal gives, for every event kind, batched or not, for wire
// forms proto merges, and for every truncation of them.
func TestDecodeMatchesProto(t *testing.T) {
	c := newEventCodec()
	for _, b := range decodeInputs(t) {
		checkDecode(t, c, b)
		for n := range len(b) {
			checkDecode(t, c, b[:n])
		}
	}
}

// TestDecodeSplitBuffers: a response that arrives in several buffers
// decodes as one, and decoding the next one (which reuses the joining
// buffer) leaves the first as it was.
func TestDecodeSplitBuffers(t *testing.T) {
	want := &mxgatewayv1.StreamEventsResponse{Events: decodeCorpus()}
	b, err := proto.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	c := newEventCodec()
	split := func(b []byte) mem.BufferSlice {
		return mem.BufferSlice{mem.SliceBuffer(b[:7]), mem.SliceBuffer(b[7:])}
	}
	got := &mxgatewayv1.StreamEventsResponse{}
	if err := c.Unmarshal(split(b), got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, want) {
		t.Fatalf("split decode differs: %v", got)
	}
	other := proto.Clone(want).(*mxgatewayv1.StreamEventsResponse)
	for _, ev := range other.Events {
		ev.SessionId, ev.Sequence = "another-session", ev.Sequence+1000
	}
	ob, err := proto.Marshal(other)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Unmarshal(split(ob), &mxgatewayv1.StreamEventsResponse{}); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, want) {
		t.Fatalf("the next decode changed the first: %v", got)
	}
}

// TestDecodedEventsIndependent: events decoded from one batch share
// storage, but appending to one's statuses never touches another's.
func TestDecodedEventsIndependent(t *testing.T) {
	ok := &mxgatewayv1.MxStatus{Success: true}
	ev := func(h int32) *mxgatewayv1.Event {
		return &mxgatewayv1.Event{Body: &mxgatewayv1.Event_DataChange{DataChange: &mxgatewayv1.OnDataChange{ItemHandle: h, Statuses: []*mxgatewayv1.MxStatus{ok}}}}
	}
	b, err := proto.Marshal(&mxgatewayv1.StreamEventsResponse{Events: []*mxgatewayv1.Event{ev(1), ev(2)}})
	if err != nil {
		t.Fatal(err)
	}
	got := &mxgatewayv1.StreamEventsResponse{}
	if err := newEventCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got); err != nil {
		t.Fatal(err)
	}
	first := got.Events[0].GetDataChange()
	first.Statuses = append(first.Statuses, &mxgatewayv1.MxStatus{Detail: 9})
	if s := got.Events[1].GetDataChange().GetStatuses(); len(s) != 1 || s[0].GetDetail() != 0 {
		t.Fatalf("second event's statuses changed: %v", s)
	}
}

// FuzzDecode compares the decoder with proto.Unmarshal on any input.
func FuzzDecode(f *testing.F) {
	for _, b := range decodeInputs(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecode(t, newEventCodec(), b) })
}

// benchResponse is a batch of storm events as the gateway sends them: a
// worker and a gateway time of its own for each event, the value time of
// the generator's tick shared by all.
func benchResponse(b *testing.B, n int) []byte {
	now := time.Now()
	ts := timestamppb.New(now.Truncate(time.Millisecond))
	evs := make([]*mxgatewayv1.Event, n)
	for i := range evs {
		at := now.Add(time.Duration(i) * 3 * time.Microsecond)
		evs[i] = &mxgatewayv1.Event{SessionId: "0123456789abcdef0123456789abcdef", Sequence: uint64(i + 1),
			Family: mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE, WorkerTime: timestamppb.New(at),
			GatewayTime: timestamppb.New(at.Add(20 * time.Microsecond)),
			Body: &mxgatewayv1.Event_DataChange{DataChange: &mxgatewayv1.OnDataChange{ServerHandle: 1, ItemHandle: 2,
				Value: MustValue(int32(i)).Proto(), Quality: &mxgatewayv1.Quality{Raw: 192, QualityClass: mxgatewayv1.QualityClass_QUALITY_CLASS_GOOD},
				Timestamp: ts, Statuses: []*mxgatewayv1.MxStatus{{Success: true, SuccessRaw: -1}}}}}
	}
	r := &mxgatewayv1.StreamEventsResponse{Events: evs}
	if n == 1 {
		r = &mxgatewayv1.StreamEventsResponse{Event: evs[0]}
	}
	buf, err := proto.Marshal(r)
	if err != nil {
		b.Fatal(err)
	}
	return buf
}

// BenchmarkDecode: decoding a storm response and reading each event's
// DataChange, by proto.Unmarshal and by the SDK's decoder; ns/op and
// allocs/op are per event.
func BenchmarkDecode(b *testing.B) {
	for _, n := range []int{1, 1024} {
		buf := benchResponse(b, n)
		read := func(r *mxgatewayv1.StreamEventsResponse) {
			if ev := r.GetEvent(); ev != nil {
				_ = EventFromProto(ev).DataChange()
			}
			for _, ev := range r.GetEvents() {
				_ = EventFromProto(ev).DataChange()
			}
		}
		b.Run(map[int]string{1: "single", 1024: "batch1024"}[n]+"/proto", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for range 1024 / n {
					r := &mxgatewayv1.StreamEventsResponse{}
					if err := proto.Unmarshal(buf, r); err != nil {
						b.Fatal(err)
					}
					read(r)
				}
			}
		})
		b.Run(map[int]string{1: "single", 1024: "batch1024"}[n]+"/sdk", func(b *testing.B) {
			b.ReportAllocs()
			c := newEventCodec()
			for b.Loop() {
				for range 1024 / n {
					r := &mxgatewayv1.StreamEventsResponse{}
					if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(buf)}, r); err != nil {
						b.Fatal(err)
					}
					read(r)
				}
			}
		})
	}
}

// TestSharedMessagesConcurrentReads: events of two responses, whose equal
// qualities, statuses and times the decoder shares, are marshalled from
// several goroutines at once (protobuf-go caches sizes in the messages),
// each to the encoding of the event that was sent; -race checks that
// readers of one shared message do not race.
func TestSharedMessagesConcurrentReads(t *testing.T) {
	ts := timestamppb.New(time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC))
	var sent []*mxgatewayv1.Event
	for i := range 64 {
		sent = append(sent, &mxgatewayv1.Event{SessionId: "s", Sequence: uint64(i + 1), WorkerTime: ts, GatewayTime: ts,
			Body: &mxgatewayv1.Event_DataChange{DataChange: &mxgatewayv1.OnDataChange{ItemHandle: int32(i), Value: MustValue(int32(i)).Proto(),
				Quality: &mxgatewayv1.Quality{Raw: 192}, Timestamp: ts, Statuses: []*mxgatewayv1.MxStatus{{Success: true, SuccessRaw: -1}}}}})
	}
	c := newEventCodec()
	var got []*mxgatewayv1.Event
	for _, half := range [][]*mxgatewayv1.Event{sent[:32], sent[32:]} {
		b, err := proto.Marshal(&mxgatewayv1.StreamEventsResponse{Events: half})
		if err != nil {
			t.Fatal(err)
		}
		r := &mxgatewayv1.StreamEventsResponse{}
		if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, r); err != nil {
			t.Fatal(err)
		}
		got = append(got, r.Events...)
	}
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			for i, ev := range got {
				want, _ := proto.Marshal(sent[i])
				b, err := proto.Marshal(ev)
				if err == nil && string(b) != string(want) {
					err = fmt.Errorf("event %d marshals to %x, want %x", i, b, want)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
