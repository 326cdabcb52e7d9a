package gateway

import (
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// encodedResponse is a StreamEventsResponse already in its wire form: the
// framing of its fields around event encodings that are shared by every
// stream of the session (protocol.Event.Encoded). The server's codec sends
// it as it is (decodeCodec.Marshal). Its buffers are never changed once it
// is built: gRPC writes them after SendMsg returns.
type encodedResponse struct {
	data mem.BufferSlice
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

// singleResponse is the response carrying one encoded event (event), marked
// delayed when the filter held it back. The event's bytes are not copied.
func singleResponse(enc []byte, delayed bool) *encodedResponse {
	hdr := make([]byte, 0, protowire.SizeTag(respEvent)+protowire.SizeVarint(uint64(len(enc)))+2)
	hdr = protowire.AppendTag(hdr, respEvent, protowire.BytesType)
	hdr = protowire.AppendVarint(hdr, uint64(len(enc)))
	data := mem.BufferSlice{mem.SliceBuffer(hdr), mem.SliceBuffer(enc)}
	if delayed {
		var tail []byte
		tail = protowire.AppendTag(tail, respDelayed, protowire.VarintType)
		tail = protowire.AppendVarint(tail, 1)
		data = append(data, mem.SliceBuffer(tail))
	}
	return &encodedResponse{data: data}
}

// batchResponse is the response carrying encoded events in events, oldest
// first, in one buffer of its own.
func batchResponse(encs [][]byte) *encodedResponse {
	n := 0
	for _, enc := range encs {
		n += protowire.SizeTag(respEvents) + protowire.SizeBytes(len(enc))
	}
	b := make([]byte, 0, n)
	for _, enc := range encs {
		b = protowire.AppendTag(b, respEvents, protowire.BytesType)
		b = protowire.AppendBytes(b, enc)
	}
	return &encodedResponse{data: mem.BufferSlice{mem.SliceBuffer(b)}}
}
