package frame

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"google.golang.org/protobuf/proto"

	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
)

// fuzzLimit keeps fuzzing fast; the logic is the same at 16 MiB.
const fuzzLimit = 64 << 10

// FuzzReader feeds arbitrary bytes, split into chunks whose size comes from
// the input, to a Reader. It asserts: no panic; every failure is a *Error
// (the source never fails, so there is no other error); no payload or kept
// buffer exceeds the limit; and every envelope that reads back cleanly
// survives a Writer → Reader round trip unchanged.
func FuzzReader(f *testing.F) {
	for _, env := range sampleEnvelopes() {
		valid := encode(f, env)
		f.Add(uint8(0), valid)
		f.Add(uint8(1), valid)
		f.Add(uint8(3), valid)
		f.Add(uint8(7), valid[:len(valid)-1])
	}
	f.Add(uint8(0), encode(f, sampleEnvelopes()...))
	f.Add(uint8(5), encode(f, sampleEnvelopes()...))
	f.Add(uint8(0), []byte{})
	f.Add(uint8(0), []byte{1, 0})
	f.Add(uint8(0), rawFrame(0, nil))
	f.Add(uint8(0), rawFrame(0xFFFFFFFF, []byte{1, 2, 3}))
	f.Add(uint8(0), rawFrame(fuzzLimit+1, nil))
	f.Add(uint8(2), rawFrame(3, []byte{0xFF, 0xFF, 0xFF}))
	f.Add(uint8(0), rawFrame(2, []byte{0x08, 0x07}))

	f.Fuzz(func(t *testing.T, chunk uint8, data []byte) {
		var src io.Reader = bytes.NewReader(data)
		if chunk > 0 {
			src = &chunkReader{data: data, size: int(chunk)}
		}
		r := NewReader(src, Options{MaxFrameBytes: fuzzLimit, SessionID: testSession})
		for {
			payload, err := r.ReadPayload()
			if err != nil {
				var fe *Error
				if !errors.As(err, &fe) {
					t.Fatalf("non-frame error %T: %v", err, err)
				}
				return
			}
			if len(payload) == 0 || len(payload) > fuzzLimit {
				t.Fatalf("payload of %d bytes escaped the limit", len(payload))
			}
			if cap(r.buf) > fuzzLimit {
				t.Fatalf("reader kept %d bytes", cap(r.buf))
			}
			env := &workerv1.WorkerEnvelope{}
			if err := proto.Unmarshal(payload, env); err != nil {
				continue
			}
			if Validate(env, r.opts) != nil {
				continue
			}
			var buf bytes.Buffer
			if err := NewWriter(&buf, Options{MaxFrameBytes: fuzzLimit}).Write(env); err != nil {
				// A valid envelope can still fail to re-encode (for
				// example invalid UTF-8 kept from the input).
				continue
			}
			back, err := NewReader(&buf, Options{MaxFrameBytes: fuzzLimit, SessionID: testSession}).Read()
			if err != nil {
				t.Fatalf("re-encoded envelope does not read back: %v", err)
			}
			if !proto.Equal(back, env) {
				t.Fatalf("round trip changed the envelope")
			}
		}
	})
}
