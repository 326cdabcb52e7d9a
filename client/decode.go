package client

import (
	"errors"
	"math"
	"unicode/utf8"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// eventCodec is the codec of one StreamEvents call. Requests are marshalled
// by the proto codec; a StreamEventsResponse is decoded by decodeResponse,
// which gives the same message as proto.Unmarshal with far fewer
// allocations: the events of one response share one allocation per message
// type (a batch of 1,024 events costs a few dozen allocations, not ten per
// event), the session id, the same in every event of a stream, is one
// string, and an event's quality, status or time equal to the last one
// decoded is that one (see shared). Anything decodeResponse does not know
// falls back to proto.Unmarshal.
// One eventCodec serves one stream (RecvMsg is never called concurrently).
type eventCodec struct {
	base    encoding.CodecV2
	sid     string // the session id of the last event, shared by the next
	scratch []byte // a response that came in several buffers, joined
	shared  shared // the last sub-messages decoded, shared by equal ones
}

// shared holds the last message of each kind the decoder made, which the
// next event with an equal one points to instead of a copy of its own (a
// storm's events mostly carry the same quality, status and value time).
// The SDK hands its messages out read-only (Event.Proto), and protobuf-go
// reads a message concurrently without writes of its own but atomic ones
// (the size cache), so one message may belong to any number of events, of
// any number of responses. Only a message decoded in full is kept.
type shared struct {
	times    [3]*timestamppb.Timestamp // worker, gateway and value time
	qual     *mxgatewayv1.Quality
	stat     *mxgatewayv1.MxStatus
	statList []*mxgatewayv1.MxStatus // {stat}, capacity one: an append copies
}

// The roles of a timestamp in shared.times.
const (
	tsWorker = iota
	tsGateway
	tsValue
)

// maxScratch bounds the joined response kept for the next one: the
// gateway's batches stop at 1 MiB.
const maxScratch = 2 << 20

func newEventCodec() *eventCodec { return &eventCodec{base: encoding.GetCodecV2("proto")} }

// Name is the content subtype the gateway serves: proto.
func (c *eventCodec) Name() string { return c.base.Name() }

// Marshal marshals a request with the proto codec.
func (c *eventCodec) Marshal(v any) (mem.BufferSlice, error) { return c.base.Marshal(v) }

// Unmarshal decodes a StreamEventsResponse by hand and anything else with
// the proto codec.
func (c *eventCodec) Unmarshal(data mem.BufferSlice, v any) error {
	r, ok := v.(*mxgatewayv1.StreamEventsResponse)
	if !ok {
		return c.base.Unmarshal(data, v)
	}
	// gRPC reuses data's buffers once Unmarshal returns, and the decoded
	// message keeps nothing of b (strings are copied, as protobuf-go does
	// too), so a response in several buffers is joined in scratch, which
	// the next one reuses.
	if len(data) == 1 {
		return c.decodeResponse(data[0].ReadOnlyData(), r)
	}
	b := c.scratch[:0]
	for _, buf := range data {
		b = append(b, buf.ReadOnlyData()...)
	}
	if cap(b) <= maxScratch {
		c.scratch = b
	}
	return c.decodeResponse(b, r)
}

// errFallback means the fast decoder met something it does not handle:
// proto.Unmarshal decodes that message instead (and reports its errors).
var errFallback = errors.New("client: decode by reflection")

// decodeResponse decodes b into r (a fresh message), exactly as
// proto.Unmarshal would.
func (c *eventCodec) decodeResponse(b []byte, r *mxgatewayv1.StreamEventsResponse) error {
	if err := c.fastResponse(b, r); err != nil {
		proto.Reset(r)
		return proto.Unmarshal(b, r)
	}
	return nil
}

// Field numbers of the messages decoded by hand (events.proto,
// gateway.proto, values.proto).
const (
	respEvent   = 1
	respDelayed = 2
	respEvents  = 3

	evSessionID     = 1
	evSequence      = 2
	evFamily        = 3
	evWorkerTime    = 4
	evGatewayTime   = 5
	evGatewayGen    = 6
	evDataChange    = 10
	evWriteComplete = 11
	evReplayGap     = 14
)

// eventBlock holds the messages of one storm-shaped event (an
// OnDataChange with a scalar value, quality, timestamps and one status) in
// one allocation; the blocks of a response are one slice.
type eventBlock struct {
	ev   mxgatewayv1.Event
	body mxgatewayv1.Event_DataChange
	dc   mxgatewayv1.OnDataChange
	val  mxgatewayv1.MxValue
	i32  mxgatewayv1.MxValue_Int32Value
	f64  mxgatewayv1.MxValue_DoubleValue
}

// arena hands out the event blocks of one response, and the timestamps,
// qualities and statuses that differ from the shared ones, from slabs
// sized by the events left (refilled, should they run out, the same way).
type arena struct {
	blocks []eventBlock
	cur    *eventBlock // the block of the event being decoded
	left   int         // events of the response not started yet
	times  []timestamppb.Timestamp
	quals  []mxgatewayv1.Quality
	stats  []mxgatewayv1.MxStatus
	lists  []*mxgatewayv1.MxStatus
	sh     *shared
}

// next starts the block of the next event; n is the number of events in
// the response.
func (a *arena) next(n int) *eventBlock {
	if len(a.blocks) == 0 {
		a.left = max(n, 1)
		a.blocks = make([]eventBlock, a.left)
	}
	a.cur = &a.blocks[0]
	a.blocks = a.blocks[1:]
	a.left = len(a.blocks)
	return a.cur
}

// take returns the next unused element of a slab, making a slab of
// per*(the events left, this one included) when it is empty.
func take[T any](slab *[]T, per, left int) *T {
	if len(*slab) == 0 {
		*slab = make([]T, per*(left+1))
	}
	p := &(*slab)[0]
	*slab = (*slab)[1:]
	return p
}

func (c *eventCodec) fastResponse(b []byte, r *mxgatewayv1.StreamEventsResponse) error {
	count := countEvents(b)
	if count > 1 {
		r.Events = make([]*mxgatewayv1.Event, 0, count)
	}
	a := arena{sh: &c.shared}
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return errFallback
		}
		b = b[n:]
		switch {
		case (num == respEvent || num == respEvents) && typ == protowire.BytesType:
			v, n := consumeBytes(b)
			if n < 0 || (num == respEvent && r.Event != nil) {
				return errFallback // a second event field merges: leave it to proto
			}
			b = b[n:]
			ev, err := c.event(v, &a, count)
			if err != nil {
				return err
			}
			if num == respEvent {
				r.Event = ev
			} else {
				r.Events = append(r.Events, ev)
			}
		case num == respDelayed && typ == protowire.VarintType:
			v, n := consumeVarint(b)
			if n < 0 {
				return errFallback
			}
			b = b[n:]
			r.Delayed = v != 0
		default:
			return errFallback
		}
	}
	return nil
}

// consumeTag is protowire.ConsumeTag with a one-byte tag (field numbers 1
// to 15, as nearly all of an event's are) read inline.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	if len(b) > 0 && b[0] < 0x80 && b[0] >= 1<<3 {
		return protowire.Number(b[0] >> 3), protowire.Type(b[0] & 7), 1
	}
	return protowire.ConsumeTag(b)
}

// consumeVarint is protowire.ConsumeVarint with a one-byte varint read
// inline.
func consumeVarint(b []byte) (uint64, int) {
	if len(b) > 0 && b[0] < 0x80 {
		return uint64(b[0]), 1
	}
	return protowire.ConsumeVarint(b)
}

// consumeBytes is protowire.ConsumeBytes with a length below 128 read
// inline; like it, n < 0 when b is too short.
func consumeBytes(b []byte) ([]byte, int) {
	if len(b) > 0 && b[0] < 0x80 {
		n := int(b[0])
		if len(b)-1 < n {
			return nil, -1
		}
		return b[1 : 1+n], 1 + n
	}
	return protowire.ConsumeBytes(b)
}

// countEvents counts the event fields of a response (0 on a malformed one:
// the decode then fails and falls back).
func countEvents(b []byte) int {
	count := 0
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return 0
		}
		b = b[n:]
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return 0
		}
		b = b[n:]
		if num == respEvent || num == respEvents {
			count++
		}
	}
	return count
}

// event decodes one Event; an event the fast path does not handle is
// decoded by proto.Unmarshal on its own.
func (c *eventCodec) event(b []byte, a *arena, count int) (*mxgatewayv1.Event, error) {
	ev := &a.next(count).ev
	if c.fastEvent(b, ev, a) == nil {
		return ev, nil
	}
	ev = &mxgatewayv1.Event{}
	if err := proto.Unmarshal(b, ev); err != nil {
		return nil, err
	}
	return ev, nil
}

func (c *eventCodec) fastEvent(b []byte, ev *mxgatewayv1.Event, a *arena) error {
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return errFallback
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, n := consumeVarint(b)
			if n < 0 {
				return errFallback
			}
			b = b[n:]
			switch num {
			case evSequence:
				ev.Sequence = v
			case evFamily:
				ev.Family = mxgatewayv1.EventFamily(int32(v))
			case evGatewayGen:
				ev.GatewayGenerated = v != 0
			default:
				return errFallback
			}
		case protowire.BytesType:
			v, n := consumeBytes(b)
			if n < 0 {
				return errFallback
			}
			b = b[n:]
			if err := c.eventBytes(num, v, ev, a); err != nil {
				return err
			}
		default:
			return errFallback
		}
	}
	return nil
}

// eventBytes decodes one length-delimited field of an Event. A message
// field seen twice (which proto merges) falls back.
func (c *eventCodec) eventBytes(num protowire.Number, v []byte, ev *mxgatewayv1.Event, a *arena) error {
	switch num {
	case evSessionID:
		if string(v) != c.sid { // compares without allocating
			if !utf8.Valid(v) {
				return errFallback
			}
			c.sid = string(v)
		}
		ev.SessionId = c.sid
		return nil
	case evWorkerTime, evGatewayTime:
		p, role := &ev.WorkerTime, tsWorker
		if num == evGatewayTime {
			p, role = &ev.GatewayTime, tsGateway
		}
		if *p != nil {
			return errFallback
		}
		t, err := a.timestamp(v, role)
		*p = t
		return err
	}
	if ev.Body != nil {
		return errFallback
	}
	switch num {
	case evDataChange:
		dc, body := &a.cur.dc, &a.cur.body
		body.DataChange = dc
		ev.Body = body
		return decodeDataChange(v, dc, a)
	case evWriteComplete:
		wc := &mxgatewayv1.OnWriteComplete{}
		ev.Body = &mxgatewayv1.Event_WriteComplete{WriteComplete: wc}
		return decodeWriteComplete(v, wc, a)
	case evReplayGap:
		g := &mxgatewayv1.ReplayGap{}
		ev.Body = &mxgatewayv1.Event_ReplayGap{ReplayGap: g}
		return decodeReplayGap(v, g)
	}
	return errFallback
}

// fields walks the fields of one message: varint fields go to onVarint,
// length-delimited ones to onBytes; any other wire type falls back.
func fields(b []byte, onVarint func(protowire.Number, uint64) error, onBytes func(protowire.Number, []byte) error) error {
	for len(b) > 0 {
		// consumeTag and consumeVarint written out: the loop of every
		// small message, and they are too big to inline.
		var num protowire.Number
		var typ protowire.Type
		if c := b[0]; c < 0x80 && c >= 1<<3 {
			num, typ, b = protowire.Number(c>>3), protowire.Type(c&7), b[1:]
		} else {
			var n int
			if num, typ, n = protowire.ConsumeTag(b); n < 0 {
				return errFallback
			}
			b = b[n:]
		}
		switch {
		case typ == protowire.VarintType && onVarint != nil:
			var v uint64
			if len(b) > 0 && b[0] < 0x80 {
				v, b = uint64(b[0]), b[1:]
			} else {
				var n int
				if v, n = protowire.ConsumeVarint(b); n < 0 {
					return errFallback
				}
				b = b[n:]
			}
			if err := onVarint(num, v); err != nil {
				return err
			}
		case typ == protowire.BytesType && onBytes != nil:
			v, n := consumeBytes(b)
			if n < 0 {
				return errFallback
			}
			b = b[n:]
			if err := onBytes(num, v); err != nil {
				return err
			}
		default:
			return errFallback
		}
	}
	return nil
}

// timestamp decodes a google.protobuf.Timestamp in one of the roles of
// shared.times: the shared one when equal, else a new one, shared from
// then on.
func (a *arena) timestamp(b []byte, role int) (*timestamppb.Timestamp, error) {
	sec, nanos, err := timestampFields(b)
	if err != nil {
		return nil, err
	}
	if t := a.sh.times[role]; t != nil && t.Seconds == sec && t.Nanos == nanos {
		return t, nil
	}
	t := take(&a.times, 2, a.left)
	t.Seconds, t.Nanos = sec, nanos
	a.sh.times[role] = t
	return t, nil
}

// decodeTimestamp decodes a google.protobuf.Timestamp.
func decodeTimestamp(b []byte, t *timestamppb.Timestamp) error {
	sec, nanos, err := timestampFields(b)
	t.Seconds, t.Nanos = sec, nanos
	return err
}

// timestampFields reads the seconds and nanos of an encoded
// google.protobuf.Timestamp.
func timestampFields(b []byte) (sec int64, nanos int32, err error) {
	err = fields(b, func(num protowire.Number, v uint64) error {
		switch num {
		case 1:
			sec = int64(v)
		case 2:
			nanos = int32(v)
		default:
			return errFallback
		}
		return nil
	}, nil)
	return sec, nanos, err
}

// decodeDataChange decodes an OnDataChange.
func decodeDataChange(b []byte, dc *mxgatewayv1.OnDataChange, a *arena) error {
	return fields(b, func(num protowire.Number, v uint64) error {
		switch num {
		case 1:
			dc.ServerHandle = int32(v)
		case 2:
			dc.ItemHandle = int32(v)
		default:
			return errFallback
		}
		return nil
	}, func(num protowire.Number, v []byte) error {
		switch num {
		case 3:
			if dc.Value != nil {
				return errFallback
			}
			dc.Value = &a.cur.val
			return decodeValue(v, dc.Value, a)
		case 4:
			if dc.Quality != nil {
				return errFallback
			}
			q, err := a.quality(v)
			dc.Quality = q
			return err
		case 5:
			if dc.Timestamp != nil {
				return errFallback
			}
			t, err := a.timestamp(v, tsValue)
			dc.Timestamp = t
			return err
		case 6:
			s, err := a.status(v)
			if err != nil {
				return err
			}
			dc.Statuses = a.appendStatus(dc.Statuses, s)
			return nil
		}
		return errFallback
	})
}

// decodeWriteComplete decodes an OnWriteComplete.
func decodeWriteComplete(b []byte, wc *mxgatewayv1.OnWriteComplete, a *arena) error {
	return fields(b, func(num protowire.Number, v uint64) error {
		switch num {
		case 1:
			wc.ServerHandle = int32(v)
		case 2:
			wc.ItemHandle = int32(v)
		default:
			return errFallback
		}
		return nil
	}, func(num protowire.Number, v []byte) error {
		if num != 3 {
			return errFallback
		}
		s, err := a.status(v)
		if err != nil {
			return err
		}
		wc.Statuses = a.appendStatus(wc.Statuses, s)
		return nil
	})
}

// decodeReplayGap decodes a ReplayGap.
func decodeReplayGap(b []byte, g *mxgatewayv1.ReplayGap) error {
	return fields(b, func(num protowire.Number, v uint64) error {
		switch num {
		case 1:
			g.RequestedAfterSequence = v
		case 2:
			g.FirstAvailableSequence = v
		default:
			return errFallback
		}
		return nil
	}, func(num protowire.Number, v []byte) error {
		if num != 3 || !utf8.Valid(v) {
			return errFallback
		}
		g.Reason = string(v)
		return nil
	})
}

// appendStatus appends s to a statuses list. A list of the shared status
// alone is the shared list; any other first list has capacity one too, so
// that appending to one event's list never writes into another's.
func (a *arena) appendStatus(list []*mxgatewayv1.MxStatus, s *mxgatewayv1.MxStatus) []*mxgatewayv1.MxStatus {
	if list != nil {
		return append(list, s)
	}
	if s == a.sh.stat {
		if a.sh.statList == nil {
			a.sh.statList = []*mxgatewayv1.MxStatus{s}
		}
		return a.sh.statList
	}
	if len(a.lists) == 0 {
		a.lists = make([]*mxgatewayv1.MxStatus, a.left+1)
	}
	one := a.lists[:1:1]
	a.lists = a.lists[1:]
	one[0] = s
	return one
}

// status decodes an MxStatus: the shared one when equal, else a new one,
// shared from then on.
func (a *arena) status(b []byte) (*mxgatewayv1.MxStatus, error) {
	var f [7]int32 // fields 1 to 7, all varints
	err := fields(b, func(num protowire.Number, v uint64) error {
		if num < 1 || num > 7 {
			return errFallback
		}
		if num == 1 {
			f[0] = 0
			if v != 0 {
				f[0] = 1
			}
		} else {
			f[num-1] = int32(v)
		}
		return nil
	}, nil)
	if err != nil {
		return nil, err
	}
	if s := a.sh.stat; s != nil && s.Success == (f[0] != 0) && s.SuccessRaw == f[1] && int32(s.Category) == f[2] &&
		int32(s.DetectedBy) == f[3] && s.Detail == f[4] && s.CategoryRaw == f[5] && s.DetectedByRaw == f[6] {
		return s, nil
	}
	s := take(&a.stats, 1, a.left)
	s.Success, s.SuccessRaw, s.Category, s.DetectedBy = f[0] != 0, f[1], mxgatewayv1.MxStatusCategory(f[2]), mxgatewayv1.MxStatusSource(f[3])
	s.Detail, s.CategoryRaw, s.DetectedByRaw = f[4], f[5], f[6]
	a.sh.stat, a.sh.statList = s, nil
	return s, nil
}

// quality decodes a Quality: the shared one when equal, else a new one,
// shared from then on.
func (a *arena) quality(b []byte) (*mxgatewayv1.Quality, error) {
	var raw, opc uint32
	var class int32
	err := fields(b, func(num protowire.Number, v uint64) error {
		switch num {
		case 1:
			raw = uint32(v)
		case 3:
			opc = uint32(v)
		case 4:
			class = int32(v)
		default:
			return errFallback
		}
		return nil
	}, nil)
	if err != nil {
		return nil, err
	}
	if q := a.sh.qual; q != nil && q.Raw == raw && q.OpcuaStatusCode == opc && int32(q.QualityClass) == class {
		return q, nil
	}
	q := take(&a.quals, 1, a.left)
	q.Raw, q.OpcuaStatusCode, q.QualityClass = raw, opc, mxgatewayv1.QualityClass(class)
	a.sh.qual = q
	return q, nil
}

// decodeValue decodes an MxValue with a scalar kind; arrays and durations fall
// back.
func decodeValue(b []byte, m *mxgatewayv1.MxValue, a *arena) error {
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return errFallback
		}
		b = b[n:]
		if num >= 10 && m.Kind != nil {
			return errFallback // a second kind: replaced or merged by proto
		}
		switch typ {
		case protowire.VarintType:
			v, n := consumeVarint(b)
			if n < 0 {
				return errFallback
			}
			b = b[n:]
			switch num {
			case 1:
				m.DataType = mxgatewayv1.MxDataType(int32(v))
			case 2:
				m.VariantType = uint32(v)
			case 3:
				m.IsNull = v != 0
			case 10:
				m.Kind = &mxgatewayv1.MxValue_BoolValue{BoolValue: v != 0}
			case 11:
				k := &a.cur.i32
				k.Int32Value = int32(v)
				m.Kind = k
			case 12:
				m.Kind = &mxgatewayv1.MxValue_Int64Value{Int64Value: int64(v)}
			default:
				return errFallback
			}
		case protowire.Fixed32Type:
			v, n := protowire.ConsumeFixed32(b)
			if n < 0 || num != 13 {
				return errFallback
			}
			b = b[n:]
			m.Kind = &mxgatewayv1.MxValue_FloatValue{FloatValue: math.Float32frombits(v)}
		case protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(b)
			if n < 0 || num != 14 {
				return errFallback
			}
			b = b[n:]
			k := &a.cur.f64
			k.DoubleValue = math.Float64frombits(v)
			m.Kind = k
		case protowire.BytesType:
			v, n := consumeBytes(b)
			if n < 0 {
				return errFallback
			}
			b = b[n:]
			switch num {
			case 4, 15:
				if !utf8.Valid(v) {
					return errFallback
				}
				if num == 4 {
					m.Diagnostic = string(v)
				} else {
					m.Kind = &mxgatewayv1.MxValue_StringValue{StringValue: string(v)}
				}
			case 16:
				t := &timestamppb.Timestamp{}
				m.Kind = &mxgatewayv1.MxValue_TimestampValue{TimestampValue: t}
				if err := decodeTimestamp(v, t); err != nil {
					return err
				}
			default:
				return errFallback
			}
		default:
			return errFallback
		}
	}
	return nil
}
