package gateway

import (
	"encoding/binary"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

// encodedResponse is a StreamEventsResponse already in its wire form: the
// framing of its fields around event encodings that are shared by every
// stream of the session (protocol.Event.Encoded). The server's codec sends
// it as it is (decodeCodec.Marshal). Its buffers are never changed once it
// is built: gRPC writes them after SendMsg returns.
type encodedResponse struct {
	data mem.BufferSlice
	bufs [3]mem.Buffer // data's backing array
	// own and enc are the response's buffers; bufs points to them, so their
	// interface values need no allocation of their own: one allocation per
	// response.
	own, enc mem.SliceBuffer
	// head holds a single response's tag and length of its event.
	head [2 * binary.MaxVarintLen64]byte
}

// Field numbers of StreamEventsResponse, read from the descriptor so that
// their home stays the .proto file.
var (
	respEvent   = responseField("event")
	respDelayed = responseField("delayed")
	respEvents  = responseField("events")
)

func responseField(name protoreflect.Name) protowire.Number {
	fd := (&mxgatewayv1.StreamEventsResponse{}).ProtoReflect().Descriptor().Fields().ByName(name)
	if fd == nil {
		panic("gateway: StreamEventsResponse has no field " + string(name))
	}
	return fd.Number()
}

// singleResponse is the response carrying one event (event), marked delayed
// when the filter held it back: the field's tag and length, then the event's
// encoding, made once for all the session's streams (protocol.Event.Encoded)
// and not copied.
func singleResponse(ev *protocol.Event, delayed bool) (*encodedResponse, error) {
	enc, err := ev.Encoded()
	if err != nil {
		return nil, err
	}
	r := &encodedResponse{enc: enc}
	h := protowire.AppendTag(r.head[:0], respEvent, protowire.BytesType)
	r.own = protowire.AppendVarint(h, uint64(len(enc)))
	r.bufs[0], r.bufs[1] = &r.own, &r.enc
	r.data = r.bufs[:2]
	if delayed {
		r.bufs[2] = delayedBuffer
		r.data = r.bufs[:3]
	}
	return r, nil
}

// delayedField is the encoded delayed = true of a StreamEventsResponse.
var delayedField = protowire.AppendVarint(protowire.AppendTag(nil, respDelayed, protowire.VarintType), 1)

// delayedBuffer is delayedField as a buffer, made once (its bytes never
// change, and freeing a SliceBuffer does nothing).
var delayedBuffer mem.Buffer = mem.SliceBuffer(delayedField)

// batchResponse is the response carrying evs in events, oldest first, in
// one buffer of its own: each event's client-visible encoding is written
// into it (protocol.Event.AppendEncoded), with no copy of its own.
func batchResponse(evs []*protocol.Event) (*encodedResponse, error) {
	n := 0
	for _, ev := range evs {
		size, err := ev.EncodedSize()
		if err != nil {
			return nil, err
		}
		n += protowire.SizeTag(respEvents) + protowire.SizeBytes(size)
	}
	b := make([]byte, 0, n)
	for _, ev := range evs {
		size, _ := ev.EncodedSize() // known to succeed: sized above
		b = protowire.AppendTag(b, respEvents, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(size))
		var err error
		if b, err = ev.AppendEncoded(b); err != nil {
			return nil, err
		}
	}
	r := &encodedResponse{own: b}
	r.bufs[0] = &r.own
	r.data = r.bufs[:1]
	return r, nil
}
