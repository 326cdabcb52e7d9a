package gateway

import (
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// decodeCodec is the proto codec, except that a request that fails to
// decode (malformed protobuf, invalid UTF-8 in a string) is answered
// INVALID_ARGUMENT instead of the INTERNAL that gRPC makes of every codec
// error. Unmarshal remembers the failure for the message and reports
// success; the first interceptor (unary) or the stream's RecvMsg wrapper
// (streams) then takes the failure back out and refuses the call.
type decodeCodec struct {
	encoding.CodecV2
	failed sync.Map // message pointer -> error
}

func newDecodeCodec() *decodeCodec {
	return &decodeCodec{CodecV2: encoding.GetCodecV2(protocodec.Name)}
}

// Marshal encodes v; an encodedResponse is already encoded and goes out as
// it is.
func (c *decodeCodec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(*encodedResponse); ok {
		return r.data, nil
	}
	return c.CodecV2.Marshal(v)
}

// Unmarshal decodes data into v, remembering a failure instead of
// returning it.
func (c *decodeCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if err := c.CodecV2.Unmarshal(data, v); err != nil {
		if m, ok := v.(proto.Message); ok {
			proto.Reset(m)
		}
		c.failed.Store(v, err)
	}
	return nil
}

// takeFailure returns the status to answer when v failed to decode, or
// nil, and forgets the failure.
func (c *decodeCodec) takeFailure(v any) error {
	e, ok := c.failed.LoadAndDelete(v)
	if !ok {
		return nil
	}
	return withDetails(codes.InvalidArgument, "request does not decode: "+e.(error).Error(), mxgatewayv1.ReasonInvalidRequest)
}

// decodeStream refuses a received message that failed to decode.
type decodeStream struct {
	grpc.ServerStream
	codec *decodeCodec
}

func (s *decodeStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return s.codec.takeFailure(m)
}
