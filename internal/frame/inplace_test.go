package frame

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

// frameReader returns one chunk per Read call, so that reading the next
// frame refills the read buffer from its start, over the previous frame.
type frameReader struct{ chunks [][]byte }

func (f *frameReader) Read(p []byte) (int, error) {
	if len(f.chunks) == 0 {
		return 0, nil
	}
	n := copy(p, f.chunks[0])
	f.chunks[0] = f.chunks[0][n:]
	if len(f.chunks[0]) == 0 {
		f.chunks = f.chunks[1:]
	}
	return n, nil
}

// TestDecodedEnvelopeOwnsItsMemory decodes frames in place from the read
// buffer and checks that nothing in a decoded envelope (bytes, strings,
// unknown fields) changes when the next frame overwrites that buffer.
func TestDecodedEnvelopeOwnsItsMemory(t *testing.T) {
	hello := func(fill byte, version string) []byte {
		env := sampleEnvelopes()[0]
		gh := env.GetGatewayHello()
		gh.Nonce = bytes.Repeat([]byte{fill}, protocol.NonceBytes)
		gh.GatewayVersion = version
		payload := mustMarshal(t, env)
		// An unknown field (number 999, bytes) from a newer peer.
		payload = protowire.AppendTag(payload, 999, protowire.BytesType)
		payload = protowire.AppendBytes(payload, bytes.Repeat([]byte{fill}, 16))
		return rawFrame(uint32(len(payload)), payload)
	}
	first, second := hello(0x11, "aaaaaaaa"), hello(0x22, "bbbbbbbb")
	if len(first) != len(second) {
		t.Fatal("the two frames must have the same layout")
	}
	// The premise: the first payload is returned in place and the second
	// frame lands on top of it.
	pr := NewReader(&frameReader{chunks: [][]byte{bytes.Clone(first), bytes.Clone(second)}}, Options{})
	p1, err := pr.ReadPayload()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pr.ReadPayload(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p1, second[HeaderBytes:]) {
		t.Fatal("the second frame did not overwrite the first in the read buffer; the test proves nothing")
	}

	r := NewReader(&frameReader{chunks: [][]byte{first, second}}, Options{SessionID: testSession})
	got, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	want := proto.Clone(got)
	if g := got.GetGatewayHello(); g.GetNonce()[0] != 0x11 || g.GetGatewayVersion() != "aaaaaaaa" || len(got.ProtoReflect().GetUnknown()) == 0 {
		t.Fatalf("first frame decoded as %v", got)
	}
	next, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	if next.GetGatewayHello().GetNonce()[0] != 0x22 {
		t.Fatalf("second frame decoded as %v", next)
	}
	if !proto.Equal(got, want) || !bytes.Equal(got.ProtoReflect().GetUnknown(), want.ProtoReflect().GetUnknown()) {
		t.Fatalf("reading the next frame changed the first envelope:\n got %v\nwant %v", got, want)
	}
}

// TestFramesAroundTheReadBufferSize reads frames just below, at and above
// the read buffer's size (in place, and copied) through sources that split
// them differently, and truncated versions of each.
func TestFramesAroundTheReadBufferSize(t *testing.T) {
	const bufSize = 256
	var envs []*workerv1.WorkerEnvelope
	sizes := map[int]bool{}
	for n := bufSize - 40; n < bufSize+20; n++ {
		env := envelope(uint64(n), func(e *workerv1.WorkerEnvelope) {
			e.Body = &workerv1.WorkerEnvelope_Fault{Fault: &workerv1.Fault{Message: strings.Repeat("m", n)}}
		})
		envs = append(envs, env)
		sizes[proto.Size(env)] = true
	}
	for _, s := range []int{bufSize - 1, bufSize, bufSize + 1} {
		if !sizes[s] {
			t.Fatalf("no frame of %d bytes in the set", s)
		}
	}
	data := encode(t, envs...)
	sources := map[string]func() io.Reader{
		"whole":          func() io.Reader { return bytes.NewReader(data) },
		"chunks of 7":    func() io.Reader { return &chunkReader{data: data, size: 7} },
		"chunks of 255":  func() io.Reader { return &chunkReader{data: data, size: 255} },
		"chunks of 1000": func() io.Reader { return &chunkReader{data: data, size: 1000} },
	}
	for name, src := range sources {
		t.Run(name, func(t *testing.T) {
			r := NewReader(src(), Options{SessionID: testSession, ReadBufferBytes: bufSize})
			if r.br.Size() != bufSize {
				t.Fatalf("read buffer is %d bytes, want %d", r.br.Size(), bufSize)
			}
			env := &workerv1.WorkerEnvelope{}
			for i, want := range envs {
				if err := r.ReadInto(env); err != nil {
					t.Fatalf("frame %d (%d bytes): %v", i, proto.Size(want), err)
				}
				if !proto.Equal(env, want) {
					t.Fatalf("frame %d (%d bytes) differs", i, proto.Size(want))
				}
			}
			if err := r.ReadInto(env); CodeOf(err) != CodeEndOfStream {
				t.Fatalf("end: %v", err)
			}
		})
	}
	for _, env := range envs {
		one := encode(t, env)
		r := NewReader(&chunkReader{data: one[:len(one)-1], size: 100}, Options{ReadBufferBytes: bufSize})
		if _, err := r.Read(); CodeOf(err) != CodeTruncated {
			t.Fatalf("frame of %d bytes cut short by one: %v", proto.Size(env), err)
		}
	}
}

func TestDefaultReadBuffer(t *testing.T) {
	if got := NewReader(bytes.NewReader(nil), Options{}).br.Size(); got != DefaultReadBufferBytes {
		t.Fatalf("default read buffer %d bytes, want %d", got, DefaultReadBufferBytes)
	}
}
