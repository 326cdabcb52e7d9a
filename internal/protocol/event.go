package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// Event is one event on its way through the gateway, from the worker pipe
// to the streams. A worker's event keeps the encoding the worker made of its
// mxgatewayv1.Event (the gateway never decodes it to forward it); an event
// the gateway makes itself (a replay gap, a data health change, a test's)
// holds the message. Either way the few fields the gateway reads are
// exported, decoded once, and Bytes is the size of its frame: the measure
// every byte bound on the event path counts.
//
// The session stamps its session id and sequence (Stamp) before it shares
// the event; after that an Event is immutable and safe for concurrent use.
// Its client-visible encoding is made once, by whichever stream sends it
// first, and shared by all (Encoded); the message is decoded at most once,
// only for a reader that needs the value (Message).
type Event struct {
	// Bytes is the size of the event's frame on the worker pipe.
	Bytes int
	// Sequence is the worker's event sequence until the session stamps its
	// own.
	Sequence uint64
	// Family is the kind of event.
	Family mxgatewayv1.EventFamily
	// Body is the field number of the body (0: none), ServerHandle and
	// ItemHandle its handles (data, write and operation events).
	Body                     protowire.Number
	ServerHandle, ItemHandle int32
	// SessionID is the session's id, stamped by the session.
	SessionID string
	// GatewayTime is when the gateway received the event (zero: not
	// stamped; a gateway-generated event carries its own).
	GatewayTime time.Time

	wire []byte             // the worker's encoding; nil when msg is given
	msg  *mxgatewayv1.Event // given, or decoded from enc by Message

	// The fields below are ordered so that the int32 and the bool fill what
	// would be padding: an Event is 192 bytes, a size class of its own (a
	// 64-bit build).
	encOnce sync.Once
	// encSize is workerEncodedSize, fixed by Stamp (0: not stamped).
	encSize int32
	enc     []byte // the encoding (nil until made)
	encErr  error
	msgOnce sync.Once
	// room: wire's spare capacity is the event's, for Encoded to write the
	// encoding in place (DecodeEventInPlace).
	room   bool
	msgErr error
}

// Field numbers of mxgatewayv1.Event and of its bodies' handles, read from
// the descriptor so that their home stays the .proto file.
var (
	evSessionID       = eventField("session_id")
	evSequence        = eventField("sequence")
	evFamily          = eventField("family")
	evGatewayTime     = eventField("gateway_time")
	bodyDataChange    = eventField("data_change")
	bodyWriteComplete = eventField("write_complete")
	// bodyServer and bodyItem are the same in every body that has them
	// (checked by the test of handleBodies).
	bodyServer = protowire.Number(1)
	bodyItem   = protowire.Number(2)
	// handleBodies are the bodies with a server and an item handle.
	handleBodies = fieldSetOf(bodyDataChange, bodyWriteComplete, eventField("operation_complete"), eventField("buffered_data_change"))
	// bodies are the members of the body oneof.
	bodies = func() fieldSet {
		var nums []protowire.Number
		fields := (&mxgatewayv1.Event{}).ProtoReflect().Descriptor().Oneofs().ByName("body").Fields()
		for i := range fields.Len() {
			nums = append(nums, fields.Get(i).Number())
		}
		return fieldSetOf(nums...)
	}()
	tsSeconds = protowire.Number(1) // google.protobuf.Timestamp
	tsNanos   = protowire.Number(2)
)

// fieldSet is a set of field numbers below 64: a test per field of every
// event, cheaper than a map.
type fieldSet uint64

func fieldSetOf(nums ...protowire.Number) fieldSet {
	var s fieldSet
	for _, n := range nums {
		if n <= 0 || n >= 64 {
			panic(fmt.Sprintf("protocol: field %d outside a fieldSet", n))
		}
		s |= 1 << n
	}
	return s
}

// has reports whether num is in the set.
func (s fieldSet) has(num protowire.Number) bool { return num > 0 && num < 64 && s&(1<<num) != 0 }

// members lists the set's numbers.
func (s fieldSet) members() []protowire.Number {
	var out []protowire.Number
	for n := protowire.Number(1); n < 64; n++ {
		if s.has(n) {
			out = append(out, n)
		}
	}
	return out
}

func eventField(name protoreflect.Name) protowire.Number {
	fd := (&mxgatewayv1.Event{}).ProtoReflect().Descriptor().Fields().ByName(name)
	if fd == nil {
		panic("protocol: mxgateway.v1.Event has no field " + string(name))
	}
	return fd.Number()
}

// ErrMalformedEvent is the error of DecodeEvent for an encoding that is not
// an mxgatewayv1.Event.
var ErrMalformedEvent = errors.New("malformed event")

// DecodeEvent returns the Event of wire, a worker's encoding of an
// mxgatewayv1.Event that arrived in a frame of size bytes. It reads only the
// fields the gateway uses; wire is kept, not copied, and must not change.
func DecodeEvent(wire []byte, size int) (*Event, error) {
	return decodeEvent(wire[:len(wire):len(wire)], size, false)
}

// DecodeEventInPlace is DecodeEvent for a wire whose spare capacity
// (wire[len(wire):cap(wire)]) is given to the event with it: Encoded writes
// the session's fields there, after the worker's bytes, instead of copying
// them into an encoding of its own, when the room suffices (EncodedRoom).
// Nothing else may use that capacity.
func DecodeEventInPlace(wire []byte, size int) (*Event, error) {
	return decodeEvent(wire, size, true)
}

// EncodedRoom is the most bytes Encoded adds to a worker's event for a
// session id of sessionIDBytes bytes: the room DecodeEventInPlace needs.
func EncodedRoom(sessionIDBytes int) int {
	return protowire.SizeTag(evSessionID) + protowire.SizeBytes(sessionIDBytes) +
		protowire.SizeTag(evSequence) + binary.MaxVarintLen64 +
		protowire.SizeTag(evGatewayTime) + 1 + maxTimestampSize
}

// maxTimestampSize bounds timestampSize (seconds and nanos of any time).
var maxTimestampSize = protowire.SizeTag(tsSeconds) + binary.MaxVarintLen64 +
	protowire.SizeTag(tsNanos) + protowire.SizeVarint(999_999_999)

func decodeEvent(wire []byte, size int, room bool) (*Event, error) {
	e := &Event{Bytes: size, wire: wire, room: room}
	for b := wire; len(b) > 0; {
		var num protowire.Number
		var typ protowire.Type
		n := 1
		if c := b[0]; c >= 1<<3 && c < 0x80 {
			num, typ = protowire.Number(c>>3), protowire.Type(c&7)
		} else {
			num, typ, n = protowire.ConsumeTag(b)
		}
		if n < 0 {
			return nil, fmt.Errorf("%w: %v", ErrMalformedEvent, protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == evSequence && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, fmt.Errorf("%w: sequence: %v", ErrMalformedEvent, protowire.ParseError(n))
			}
			e.Sequence, b = v, b[n:]
			continue
		case num == evFamily && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, fmt.Errorf("%w: family: %v", ErrMalformedEvent, protowire.ParseError(n))
			}
			e.Family, b = mxgatewayv1.EventFamily(int32(v)), b[n:]
			continue
		case bodies.has(num) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, fmt.Errorf("%w: body: %v", ErrMalformedEvent, protowire.ParseError(n))
			}
			if num != e.Body {
				// Another member of the oneof replaces the body; the same
				// one again merges into it, as protobuf decodes.
				e.Body, e.ServerHandle, e.ItemHandle = num, 0, 0
			}
			if handleBodies.has(num) {
				if err := e.handles(v); err != nil {
					return nil, err
				}
			}
			b = b[n:]
			continue
		}
		if n = skipLen(typ, b); n == 0 {
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return nil, fmt.Errorf("%w: field %d: %v", ErrMalformedEvent, num, protowire.ParseError(n))
		}
		b = b[n:]
	}
	return e, nil
}

// skipLen is the length of the field value at the start of b when it is
// a one-byte varint or a length-delimited value with a one-byte length,
// nearly every field an event has (0: anything else). The loops over an
// event read those, and one-byte tags, inline; protowire reads the rest.
func skipLen(typ protowire.Type, b []byte) int {
	if len(b) == 0 || b[0] >= 0x80 {
		return 0
	}
	if typ == protowire.VarintType {
		return 1
	}
	if typ == protowire.BytesType && int(b[0]) < len(b) {
		return 1 + int(b[0])
	}
	return 0
}

// handles reads the server and item handle of a body.
func (e *Event) handles(b []byte) error {
	for len(b) > 0 {
		var num protowire.Number
		var typ protowire.Type
		n := 1
		if c := b[0]; c >= 1<<3 && c < 0x80 {
			num, typ = protowire.Number(c>>3), protowire.Type(c&7)
		} else {
			num, typ, n = protowire.ConsumeTag(b)
		}
		if n < 0 {
			return fmt.Errorf("%w: body: %v", ErrMalformedEvent, protowire.ParseError(n))
		}
		b = b[n:]
		if (num == bodyServer || num == bodyItem) && typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return fmt.Errorf("%w: handle: %v", ErrMalformedEvent, protowire.ParseError(n))
			}
			if num == bodyServer {
				e.ServerHandle = int32(v)
			} else {
				e.ItemHandle = int32(v)
			}
			b = b[n:]
			continue
		}
		if n = skipLen(typ, b); n == 0 {
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("%w: body field %d: %v", ErrMalformedEvent, num, protowire.ParseError(n))
		}
		b = b[n:]
	}
	return nil
}

// EventOf returns the Event holding msg, sized size bytes: an event the
// gateway makes itself, or one a test feeds. msg belongs to the Event from
// now on.
func EventOf(msg *mxgatewayv1.Event, size int) *Event {
	e := &Event{
		Bytes:     size,
		Sequence:  msg.GetSequence(),
		Family:    msg.GetFamily(),
		SessionID: msg.GetSessionId(),
		msg:       msg,
	}
	if gt := msg.GetGatewayTime(); gt != nil {
		e.GatewayTime = gt.AsTime()
	}
	if fd := msg.ProtoReflect().WhichOneof(msg.ProtoReflect().Descriptor().Oneofs().ByName("body")); fd != nil {
		e.Body = fd.Number()
		if handleBodies.has(e.Body) {
			body := msg.ProtoReflect().Get(fd).Message()
			bd := body.Descriptor().Fields()
			e.ServerHandle = int32(body.Get(bd.ByNumber(bodyServer)).Int())
			e.ItemHandle = int32(body.Get(bd.ByNumber(bodyItem)).Int())
		}
	}
	return e
}

// IsDataChange reports whether the body is an OnDataChange.
func (e *Event) IsDataChange() bool { return e.Body == bodyDataChange }

// IsWriteComplete reports whether the body is an OnWriteComplete.
func (e *Event) IsWriteComplete() bool { return e.Body == bodyWriteComplete }

// Decode returns a message of its own holding the event as it is now, for
// a reader before the session stamps it (the watchdog, the write ledger):
// it decodes the worker's encoding anew, or clones the message. An event
// whose body does not decode comes back empty.
func (e *Event) Decode() *mxgatewayv1.Event {
	if e.wire == nil {
		return proto.Clone(e.msg).(*mxgatewayv1.Event)
	}
	m := &mxgatewayv1.Event{}
	if err := proto.Unmarshal(e.wire, m); err != nil {
		return &mxgatewayv1.Event{}
	}
	return m
}

// WorkerBytes is the size of the worker's encoding of the event, the unit
// of the worker's event credit (0 for a gateway-generated event).
func (e *Event) WorkerBytes() int { return len(e.wire) }

// Stamp gives the event the session's id and sequence, and the gateway
// receive time at when it has none. Only the session calls it, before the
// event is shared.
func (e *Event) Stamp(sessionID string, seq uint64, at time.Time) {
	e.SessionID, e.Sequence = sessionID, seq
	if e.GatewayTime.IsZero() {
		e.GatewayTime = at
	}
	if e.msg != nil {
		e.msg.SessionId, e.msg.Sequence = sessionID, seq
		if e.msg.GatewayTime == nil {
			e.msg.GatewayTime = timestamppb.New(e.GatewayTime)
		}
		return
	}
	// Every input of the size is fixed now; a batch asks for it twice.
	e.encSize = 0
	e.encSize = int32(e.workerEncodedSize())
}

// Encoded returns the client-visible encoding of the event: an
// mxgatewayv1.Event with the session's id, sequence and gateway time. A
// worker's event is its encoding with those fields added (the worker's own
// sequence, when it leads, is left out; a later field wins in protobuf
// anyway), written in place after the worker's bytes when the event has the
// room (DecodeEventInPlace). It is made once; the slice is shared and must
// not change.
func (e *Event) Encoded() ([]byte, error) {
	e.encOnce.Do(func() {
		if e.wire == nil {
			e.enc, e.encErr = proto.Marshal(e.msg)
			return
		}
		w := e.workerWire()
		if n := e.workerEncodedSize(); e.room && cap(w) >= n {
			// The worker's bytes stay where they are (readers of wire see
			// only wire[:len(wire)]); the fields go into the room after them.
			e.enc = e.appendSessionFields(w)
			return
		}
		e.enc = e.appendWorkerEncoded(make([]byte, 0, e.workerEncodedSize()))
	})
	return e.enc, e.encErr
}

// EncodedSize is the length of Encoded, without making it.
func (e *Event) EncodedSize() (int, error) {
	if e.wire == nil {
		enc, err := e.Encoded()
		return len(enc), err
	}
	return e.workerEncodedSize(), nil
}

// AppendEncoded appends Encoded to b. A worker's event is written straight
// into b, without making (or keeping) the shared encoding: a batch costs
// one copy of each event, not two.
func (e *Event) AppendEncoded(b []byte) ([]byte, error) {
	if e.wire == nil {
		enc, err := e.Encoded()
		return append(b, enc...), err
	}
	return e.appendWorkerEncoded(b), nil
}

// workerWire is the worker's encoding without its own sequence when that
// leads (the session's follows).
func (e *Event) workerWire() []byte {
	w := e.wire
	if num, typ, n := protowire.ConsumeTag(w); n > 0 && num == evSequence && typ == protowire.VarintType {
		if _, m := protowire.ConsumeVarint(w[n:]); m > 0 {
			w = w[n+m:]
		}
	}
	return w
}

// gatewayTimeSize is the size of the gateway_time the session adds (0:
// none).
func (e *Event) gatewayTimeSize() int {
	if e.GatewayTime.IsZero() {
		return 0
	}
	return timestampSize(e.GatewayTime)
}

// workerEncodedSize is the length of appendWorkerEncoded's output.
func (e *Event) workerEncodedSize() int {
	if e.encSize > 0 {
		return int(e.encSize)
	}
	return len(e.workerWire()) +
		protowire.SizeTag(evSessionID) + protowire.SizeBytes(len(e.SessionID)) +
		protowire.SizeTag(evSequence) + protowire.SizeVarint(e.Sequence) +
		protowire.SizeTag(evGatewayTime) + protowire.SizeBytes(e.gatewayTimeSize())
}

// appendWorkerEncoded appends the client-visible encoding of a worker's
// event. The session's fields follow the worker's: protobuf keeps the last
// of a scalar, and merges a message field (gateway_time) field by field, so
// both of its fields are always written.
func (e *Event) appendWorkerEncoded(b []byte) []byte {
	return e.appendSessionFields(append(b, e.workerWire()...))
}

// appendSessionFields appends the session's fields of the client-visible
// encoding: id, sequence and gateway time.
func (e *Event) appendSessionFields(b []byte) []byte {
	b = protowire.AppendTag(b, evSessionID, protowire.BytesType)
	b = protowire.AppendString(b, e.SessionID)
	b = protowire.AppendTag(b, evSequence, protowire.VarintType)
	b = protowire.AppendVarint(b, e.Sequence)
	if ts := e.gatewayTimeSize(); ts > 0 {
		b = protowire.AppendTag(b, evGatewayTime, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(ts))
		b = appendTimestamp(b, e.GatewayTime)
	}
	return b
}

// Message returns the event as a message, decoding a worker's encoding
// (once) for the readers that need its value (filters, the watchdog,
// tests). The message is shared and must not change. Like Encoded it is
// made once: call it only after Stamp (before, use Decode).
func (e *Event) Message() (*mxgatewayv1.Event, error) {
	e.msgOnce.Do(func() {
		if e.msg != nil {
			return
		}
		m := &mxgatewayv1.Event{}
		if err := proto.Unmarshal(e.wire, m); err != nil {
			e.msgErr = fmt.Errorf("%w: %v", ErrMalformedEvent, err)
			return
		}
		m.SessionId, m.Sequence = e.SessionID, e.Sequence
		if !e.GatewayTime.IsZero() {
			m.GatewayTime = timestamppb.New(e.GatewayTime)
		}
		e.msg = m
	})
	return e.msg, e.msgErr
}

// Msg is Message for callers that treat an undecodable event as empty: it
// returns an empty message instead of an error. The gateway decodes every
// worker event's header when it arrives; only its body can still fail.
func (e *Event) Msg() *mxgatewayv1.Event {
	m, err := e.Message()
	if err != nil || m == nil {
		return &mxgatewayv1.Event{}
	}
	return m
}

// timestampSize and appendTimestamp encode a google.protobuf.Timestamp with
// both fields present, also when zero.
func timestampSize(t time.Time) int {
	return protowire.SizeTag(tsSeconds) + protowire.SizeVarint(uint64(t.Unix())) +
		protowire.SizeTag(tsNanos) + protowire.SizeVarint(uint64(t.Nanosecond()))
}

func appendTimestamp(b []byte, t time.Time) []byte {
	b = protowire.AppendTag(b, tsSeconds, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(t.Unix()))
	b = protowire.AppendTag(b, tsNanos, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(t.Nanosecond()))
}
