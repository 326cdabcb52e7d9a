package protocol

import (
	"bytes"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

func sampleEvents() []*mxgatewayv1.Event {
	wt := timestamppb.New(time.Unix(1700000000, 123456789))
	return []*mxgatewayv1.Event{
		{Sequence: 7, Family: mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE, WorkerTime: wt,
			Body: &mxgatewayv1.Event_DataChange{DataChange: &mxgatewayv1.OnDataChange{ServerHandle: 3, ItemHandle: 9,
				Value:   &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_DoubleValue{DoubleValue: 1.5}},
				Quality: &mxgatewayv1.Quality{Raw: 192}}}},
		{Sequence: 8, Family: mxgatewayv1.EventFamily_EVENT_FAMILY_ON_WRITE_COMPLETE,
			Body: &mxgatewayv1.Event_WriteComplete{WriteComplete: &mxgatewayv1.OnWriteComplete{ServerHandle: 4, ItemHandle: 2}}},
		{Sequence: 9, Body: &mxgatewayv1.Event_OperationComplete{OperationComplete: &mxgatewayv1.OperationComplete{ServerHandle: -1, ItemHandle: -5}}},
		{Sequence: 10, Body: &mxgatewayv1.Event_BufferedDataChange{BufferedDataChange: &mxgatewayv1.OnBufferedDataChange{ServerHandle: 5, ItemHandle: 6}}},
		{Sequence: 11, Family: mxgatewayv1.EventFamily_EVENT_FAMILY_DATA_HEALTH, Body: &mxgatewayv1.Event_DataHealth{DataHealth: &mxgatewayv1.DataHealthChange{Reason: "x"}}},
		{}, // the worker's first event may carry sequence 0 in tests; an empty event is valid protobuf
		// Fields the worker never sets: the session's stamps override them.
		{SessionId: "worker's", Sequence: 12, GatewayTime: timestamppb.New(time.Unix(1, 5)), GatewayGenerated: true},
	}
}

// TestDecodeEventHeader: the header DecodeEvent reads from a worker's
// encoding is what EventOf reads from the message.
func TestDecodeEventHeader(t *testing.T) {
	for _, m := range sampleEvents() {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeEvent(b, 99)
		if err != nil {
			t.Fatalf("DecodeEvent(%v): %v", m, err)
		}
		want := EventOf(proto.Clone(m).(*mxgatewayv1.Event), 99)
		if got.Sequence != want.Sequence || got.Family != want.Family || got.Body != want.Body ||
			got.ServerHandle != want.ServerHandle || got.ItemHandle != want.ItemHandle || got.Bytes != 99 {
			t.Errorf("event %v: decoded header %+v, want %+v", m, got, want)
		}
		if got.IsDataChange() != (m.GetDataChange() != nil) {
			t.Errorf("event %v: IsDataChange %v", m, got.IsDataChange())
		}
	}
}

// TestEncodedIsTheStampedEvent: a worker's event, stamped and encoded by
// the gateway without a decode, reads back as the message with the session's
// id, sequence and gateway time; the same as a message event's encoding.
func TestEncodedIsTheStampedEvent(t *testing.T) {
	at := time.Unix(1800000000, 987654321).UTC()
	for _, m := range sampleEvents() {
		b, _ := proto.Marshal(m)
		wire, err := DecodeEvent(b, len(b))
		if err != nil {
			t.Fatal(err)
		}
		wire.GatewayTime = at
		wire.Stamp("sess-1", 42, time.Time{})
		typed := EventOf(proto.Clone(m).(*mxgatewayv1.Event), len(b))
		typed.GatewayTime = time.Time{}
		typed.msg.GatewayTime = nil
		typed.Stamp("sess-1", 42, at)

		want := proto.Clone(m).(*mxgatewayv1.Event)
		want.SessionId, want.Sequence, want.GatewayTime = "sess-1", 42, timestamppb.New(at)
		for name, e := range map[string]*Event{"wire": wire, "message": typed} {
			enc, err := e.Encoded()
			if err != nil {
				t.Fatal(err)
			}
			got := &mxgatewayv1.Event{}
			if err := proto.Unmarshal(enc, got); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !proto.Equal(got, want) {
				t.Errorf("%s encoding reads back as %v, want %v", name, got, want)
			}
			if msg := e.Msg(); !proto.Equal(msg, want) {
				t.Errorf("%s message %v, want %v", name, msg, want)
			}
			if again, _ := e.Encoded(); &again[0] != &enc[0] {
				t.Errorf("%s: a second Encoded encoded again", name)
			}
			// AppendEncoded writes the same bytes after what is there;
			// EncodedSize is their length.
			app, err := e.AppendEncoded([]byte("prefix"))
			if err != nil || !bytes.Equal(app, append([]byte("prefix"), enc...)) {
				t.Errorf("%s: AppendEncoded = %x, %v; want prefix then %x", name, app, err, enc)
			}
			if n, err := e.EncodedSize(); err != nil || n != len(enc) {
				t.Errorf("%s: EncodedSize = %d, %v; want %d", name, n, err, len(enc))
			}
		}
	}
}

// TestHandleBodiesShareHandleNumbers: the bodies with handles number them
// alike (DecodeEvent reads them by number).
func TestHandleBodiesShareHandleNumbers(t *testing.T) {
	od := (&mxgatewayv1.Event{}).ProtoReflect().Descriptor()
	for _, num := range handleBodies.members() {
		body := od.Fields().ByNumber(num).Message()
		if f := body.Fields().ByNumber(bodyServer); f == nil || f.Name() != "server_handle" {
			t.Errorf("%s: field %d is not server_handle", body.FullName(), bodyServer)
		}
		if f := body.Fields().ByNumber(bodyItem); f == nil || f.Name() != "item_handle" {
			t.Errorf("%s: field %d is not item_handle", body.FullName(), bodyItem)
		}
	}
}

func TestDecodeEventMalformed(t *testing.T) {
	good, _ := proto.Marshal(sampleEvents()[0])
	for name, b := range map[string][]byte{
		"truncated":      good[:len(good)-1],
		"bad tag":        {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"truncated body": {0x52, 0x05, 0x08},
	} {
		if _, err := DecodeEvent(b, len(b)); !errors.Is(err, ErrMalformedEvent) {
			t.Errorf("%s: err %v, want ErrMalformedEvent", name, err)
		}
	}
}

// TestEncodedInPlace: an event decoded in place writes its encoding in the
// wire's spare capacity, right after the worker's bytes, which stay as they
// were; without the room, or decoded by DecodeEvent, it makes an encoding of
// its own and never writes past the wire.
func TestEncodedInPlace(t *testing.T) {
	const sid = "sess-1"
	at := time.Unix(1800000000, 987654321)
	for _, m := range sampleEvents() {
		b, _ := proto.Marshal(m)
		for _, c := range []struct {
			name    string
			room    int
			inPlace bool
			shares  bool
		}{
			{"in place", EncodedRoom(len(sid)), true, true},
			{"in place, no room", 0, true, false},
			{"in place, exact room", -1, true, true},
			{"in place, room short by one", -2, true, false},
			{"DecodeEvent", EncodedRoom(len(sid)), false, false},
		} {
			room := c.room
			if room < 0 {
				// What this event needs (-1), or one byte less (-2).
				e, _ := DecodeEvent(b, len(b))
				e.Stamp(sid, 42, at)
				n, _ := e.EncodedSize()
				room = n - len(e.workerWire()) + room + 1
			}
			buf := append(make([]byte, 0, len(b)+room), b...)
			spare := buf[len(buf):cap(buf)]
			for i := range spare {
				spare[i] = 0xaa
			}
			decode := DecodeEvent
			if c.inPlace {
				decode = DecodeEventInPlace
			}
			e, err := decode(buf, len(buf))
			if err != nil {
				t.Fatal(err)
			}
			e.Stamp(sid, 42, at)
			enc, err := e.Encoded()
			if err != nil {
				t.Fatal(err)
			}
			got := &mxgatewayv1.Event{}
			if err := proto.Unmarshal(enc, got); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			want := proto.Clone(m).(*mxgatewayv1.Event)
			want.SessionId, want.Sequence, want.GatewayTime = sid, 42, timestamppb.New(at)
			if !proto.Equal(got, want) {
				t.Errorf("%s: encoding reads back as %v, want %v", c.name, got, want)
			}
			if !bytes.Equal(buf, b) {
				t.Errorf("%s: the worker's bytes changed", c.name)
			}
			k := len(b) - len(e.workerWire())
			full := buf[:cap(buf)]
			if shares := k < len(full) && &enc[0] == &full[k]; shares != c.shares {
				t.Errorf("%s: encoding in the wire's buffer %v, want %v", c.name, shares, c.shares)
			}
			if !c.shares && !bytes.Equal(full[len(buf):], bytes.Repeat([]byte{0xaa}, cap(buf)-len(buf))) {
				t.Errorf("%s: wrote past the wire", c.name)
			}
			if m, err := e.Message(); err != nil || !proto.Equal(m, want) {
				t.Errorf("%s: Message %v, %v; want %v", c.name, m, err, want)
			}
		}
	}
}

// TestEncodedRoomBounds: EncodedRoom covers the largest sequence and gateway
// time the session can stamp.
func TestEncodedRoomBounds(t *testing.T) {
	b, _ := proto.Marshal(sampleEvents()[0])
	e, _ := DecodeEvent(b, len(b))
	e.Stamp("id", math.MaxUint64, time.Unix(math.MaxInt64/2, 999_999_999))
	n, _ := e.EncodedSize()
	if added := n - len(e.workerWire()); added > EncodedRoom(2) {
		t.Fatalf("the session's fields take %d bytes, EncodedRoom says %d", added, EncodedRoom(2))
	}
}

// FuzzDecodeEvent: DecodeEvent never panics, and for every encoding that
// protobuf decodes it reads the header protobuf reads (duplicates, merged
// bodies, unknown fields and wrong wire types included).
func FuzzDecodeEvent(f *testing.F) {
	for _, m := range sampleEvents() {
		b, _ := proto.Marshal(m)
		f.Add(b)
		f.Add(append(b, b...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeEvent(b, len(b))
		m := &mxgatewayv1.Event{}
		if perr := proto.Unmarshal(b, m); perr != nil {
			return // DecodeEvent may accept what it does not read
		}
		if err != nil {
			t.Fatalf("protobuf decodes %x, DecodeEvent: %v", b, err)
		}
		want := EventOf(m, len(b))
		if got.Sequence != want.Sequence || got.Family != want.Family || got.Body != want.Body ||
			got.ServerHandle != want.ServerHandle || got.ItemHandle != want.ItemHandle {
			t.Fatalf("%x: header %+v, protobuf reads %+v", b, got, want)
		}
	})
}

// TestEncodedOverridesWorkerTime: a gateway time on a whole second replaces
// a worker-set gateway time entirely (a message field merges field by
// field, so a zero nanos is written too).
func TestEncodedOverridesWorkerTime(t *testing.T) {
	b, _ := proto.Marshal(&mxgatewayv1.Event{Sequence: 1, GatewayTime: timestamppb.New(time.Unix(1, 5))})
	e, err := DecodeEvent(b, len(b))
	if err != nil {
		t.Fatal(err)
	}
	e.GatewayTime = time.Unix(7, 0)
	e.Stamp("s", 1, time.Time{})
	enc, _ := e.Encoded()
	m := &mxgatewayv1.Event{}
	if err := proto.Unmarshal(enc, m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetGatewayTime().AsTime(); !got.Equal(time.Unix(7, 0)) {
		t.Fatalf("gateway time %v, want 7s", got)
	}
}

// TestDecodeIsOwnAndUnstamped: Decode gives a message of its own with the
// worker's numbering, before and after Stamp, and never the shared one.
func TestDecodeIsOwnAndUnstamped(t *testing.T) {
	m := sampleEvents()[1] // a write complete
	b, _ := proto.Marshal(m)
	e, _ := DecodeEvent(b, len(b))
	if !e.IsWriteComplete() || e.IsDataChange() {
		t.Fatalf("body %d: IsWriteComplete %v", e.Body, e.IsWriteComplete())
	}
	before := e.Decode()
	e.Stamp("s", 99, time.Unix(3, 0))
	after := e.Decode()
	if !proto.Equal(before, m) || !proto.Equal(after, m) || after == e.Msg() {
		t.Fatalf("Decode before %v, after %v; want %v, not the shared message", before, after, m)
	}
	if e.Msg().GetSequence() != 99 {
		t.Fatalf("Msg sequence %d, want the session's 99", e.Msg().GetSequence())
	}
}

// TestEncodedConcurrent: streams that encode, batch and decode one event
// decoded in place at once share it without a race (run with -race).
func TestEncodedConcurrent(t *testing.T) {
	for range 50 {
		b, _ := proto.Marshal(sampleEvents()[0])
		b = append(make([]byte, 0, len(b)+EncodedRoom(1)), b...)
		e, _ := DecodeEventInPlace(b, len(b))
		e.Stamp("s", 1, time.Unix(9, 9))
		var wg sync.WaitGroup
		sum := make([]int, 4)
		for i := range 4 {
			wg.Go(func() {
				var x []byte
				switch i {
				case 0, 1:
					x, _ = e.Encoded()
				case 2:
					x, _ = e.AppendEncoded(nil) // a batch copies it
				default:
					m, _ := e.Message()
					x = []byte(m.GetSessionId())
				}
				for _, c := range x {
					sum[i] += int(c)
				}
			})
		}
		wg.Wait()
	}
}

// BenchmarkEventPath: what the gateway does with each storm event of a
// batch: decode the worker's header, stamp it, size it and write it into a
// batch (ns/op per event).
func BenchmarkEventPath(b *testing.B) {
	wt := timestamppb.New(time.Unix(1700000000, 123456789))
	wire, err := proto.Marshal(&mxgatewayv1.Event{Sequence: 7, Family: mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE, WorkerTime: wt,
		Body: &mxgatewayv1.Event_DataChange{DataChange: &mxgatewayv1.OnDataChange{ServerHandle: 3, ItemHandle: 9,
			Value:   &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_Int32Value{Int32Value: 12345}},
			Quality: &mxgatewayv1.Quality{Raw: 192}, Timestamp: wt,
			Statuses: []*mxgatewayv1.MxStatus{{Success: true, SuccessRaw: -1}}}}})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	batch := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		ev, err := DecodeEvent(wire, len(wire)+20)
		if err != nil {
			b.Fatal(err)
		}
		ev.Stamp("0123456789abcdef0123456789abcdef", 42, now)
		size, _ := ev.EncodedSize()
		batch = protowire.AppendVarint(batch[:0], uint64(size))
		if batch, err = ev.AppendEncoded(batch); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEncodedLengths: for events whose encodings have lengths of one to
// four bytes, Encoded carries the session's fields for a message event and
// for a worker's event, copied or written in place in the room
// DecodeEventInPlace was given (the same bytes either way), EncodedSize is
// its length, and the in-place encoding leaves the worker's bytes as they
// were.
func TestEncodedLengths(t *testing.T) {
	for _, n := range []int{0, 100, 200, 20_000, 3_000_000} {
		m := &mxgatewayv1.Event{Sequence: 3, Family: mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE,
			Body: &mxgatewayv1.Event_DataChange{DataChange: &mxgatewayv1.OnDataChange{ServerHandle: 1, ItemHandle: 2,
				Value: &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_StringValue{StringValue: string(bytes.Repeat([]byte{'v'}, n))}}}}}
		b, _ := proto.Marshal(m)
		copied, err := DecodeEvent(b, len(b))
		if err != nil {
			t.Fatal(err)
		}
		roomy := append(make([]byte, 0, len(b)+EncodedRoom(len("sess"))), b...)
		inPlace, err := DecodeEventInPlace(roomy, len(b))
		if err != nil {
			t.Fatal(err)
		}
		var want []byte
		for _, c := range []struct {
			name string
			e    *Event
		}{{"message", EventOf(proto.Clone(m).(*mxgatewayv1.Event), len(b))}, {"copied", copied}, {"in place", inPlace}} {
			c.e.Stamp("sess", 77, time.Unix(11, 12))
			enc, err := c.e.Encoded()
			if err != nil {
				t.Fatal(err)
			}
			if size, _ := c.e.EncodedSize(); size != len(enc) {
				t.Fatalf("%s, %d bytes: EncodedSize %d, Encoded has %d", c.name, n, size, len(enc))
			}
			got := &mxgatewayv1.Event{}
			if err := proto.Unmarshal(enc, got); err != nil {
				t.Fatalf("%s, %d bytes: %v", c.name, n, err)
			}
			if got.GetSessionId() != "sess" || got.GetSequence() != 77 || !got.GetGatewayTime().AsTime().Equal(time.Unix(11, 12)) ||
				got.GetDataChange().GetValue().GetStringValue() != m.GetDataChange().GetValue().GetStringValue() {
				t.Fatalf("%s, %d bytes: Encoded decodes to session %q, sequence %d, gateway time %v", c.name, n, got.GetSessionId(), got.GetSequence(), got.GetGatewayTime())
			}
			switch {
			case c.name == "copied":
				want = append([]byte(nil), enc...)
			case c.name == "in place" && !bytes.Equal(enc, want):
				t.Fatalf("%d bytes: the in-place encoding differs from the copied one", n)
			}
		}
		// In place: the encoding ends where the room ends (it may start
		// after a leading worker sequence, which it leaves out).
		if enc, _ := inPlace.Encoded(); &enc[:cap(enc)][cap(enc)-1] != &roomy[:cap(roomy)][cap(roomy)-1] {
			t.Fatalf("%d bytes: the in-place event's encoding was copied", n)
		}
		if !bytes.Equal(roomy, b) {
			t.Fatalf("%d bytes: the worker's bytes changed under the in-place encoding", n)
		}
	}
}

// TestStampAgainResizes: the size Stamp fixes follows the last Stamp (a
// longer session id, a larger sequence, another gateway time): EncodedSize
// is the length of what AppendEncoded writes after each.
func TestStampAgainResizes(t *testing.T) {
	b, _ := proto.Marshal(sampleEvents()[0])
	e, err := DecodeEvent(b, len(b))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		id  string
		seq uint64
	}{{"s", 1}, {"a-much-longer-session-id", 1 << 40}, {"", 0}, {"x", 300}} {
		e.GatewayTime = time.Time{}
		e.Stamp(s.id, s.seq, time.Unix(1<<33, 999_999_999))
		app, _ := e.AppendEncoded(nil)
		if size, _ := e.EncodedSize(); size != len(app) {
			t.Fatalf("after Stamp(%q, %d): EncodedSize %d, AppendEncoded writes %d", s.id, s.seq, size, len(app))
		}
		got := &mxgatewayv1.Event{}
		if err := proto.Unmarshal(app, got); err != nil || got.GetSessionId() != s.id || got.GetSequence() != s.seq {
			t.Fatalf("after Stamp(%q, %d): reads back %v, %v", s.id, s.seq, got, err)
		}
	}
}
