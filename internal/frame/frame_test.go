package frame

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

const testSession = "sess-frame"

func envelope(seq uint64, body func(*workerv1.WorkerEnvelope)) *workerv1.WorkerEnvelope {
	env := &workerv1.WorkerEnvelope{ProtocolVersion: protocol.Version, SessionId: testSession, Sequence: seq}
	body(env)
	return env
}

// sampleEnvelopes has one envelope of every body kind.
func sampleEnvelopes() []*workerv1.WorkerEnvelope {
	ts := timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC))
	return []*workerv1.WorkerEnvelope{
		envelope(1, func(e *workerv1.WorkerEnvelope) {
			e.Body = &workerv1.WorkerEnvelope_GatewayHello{GatewayHello: &workerv1.GatewayHello{
				ProtocolVersion: protocol.Version, Nonce: bytes.Repeat([]byte{7}, protocol.NonceBytes),
				HeartbeatInterval: durationpb.New(5 * time.Second), MaxFrameBytes: 1 << 20, GatewayVersion: "v1",
			}}
		}),
		envelope(1, func(e *workerv1.WorkerEnvelope) {
			e.Body = &workerv1.WorkerEnvelope_WorkerHello{WorkerHello: &workerv1.WorkerHello{
				ProtocolVersion: protocol.Version, Nonce: []byte{1, 2, 3}, Pid: 4321, WorkerVersion: "w",
			}}
		}),
		envelope(2, func(e *workerv1.WorkerEnvelope) {
			e.Body = &workerv1.WorkerEnvelope_WorkerReady{WorkerReady: &workerv1.WorkerReady{
				Backend: &mxgatewayv1.BackendInfo{Kind: "sim", ModelName: "demo", Simulated: true},
			}}
		}),
		envelope(2, func(e *workerv1.WorkerEnvelope) {
			e.CorrelationId = 9
			e.Body = &workerv1.WorkerEnvelope_Command{Command: &workerv1.WorkerCommand{
				Command: &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{ClientName: "c"}}},
				Timeout: durationpb.New(time.Second),
			}}
		}),
		envelope(3, func(e *workerv1.WorkerEnvelope) {
			e.CorrelationId = 9
			e.Body = &workerv1.WorkerEnvelope_CommandReply{CommandReply: &workerv1.WorkerCommandReply{
				Reply: &mxgatewayv1.Reply{Hresult: -2147467259, Message: "E_FAIL", Result: &mxgatewayv1.Reply_Register{Register: &mxgatewayv1.RegisterResult{ServerHandle: 1}}},
			}}
		}),
		envelope(4, func(e *workerv1.WorkerEnvelope) {
			e.Body = &workerv1.WorkerEnvelope_Cancel{Cancel: &workerv1.Cancel{TargetCorrelationId: 9}}
		}),
		envelope(5, func(e *workerv1.WorkerEnvelope) {
			e.Body = &workerv1.WorkerEnvelope_Shutdown{Shutdown: &workerv1.Shutdown{Timeout: durationpb.New(10 * time.Second), Reason: "close"}}
		}),
		envelope(6, func(e *workerv1.WorkerEnvelope) {
			e.Body = &workerv1.WorkerEnvelope_ShutdownAck{ShutdownAck: &workerv1.ShutdownAck{TeardownWarnings: []string{"unadvise 3 failed"}}}
		}),
		envelope(7, func(e *workerv1.WorkerEnvelope) {
			e.Body = &workerv1.WorkerEnvelope_Event{Event: &workerv1.WorkerEvent{Event: &mxgatewayv1.Event{
				Sequence: 1, Family: mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE, WorkerTime: ts,
				Body: &mxgatewayv1.Event_DataChange{DataChange: &mxgatewayv1.OnDataChange{
					ServerHandle: 1, ItemHandle: 2, Timestamp: ts,
					Value: &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_StringValue{StringValue: strings.Repeat("x", 300)}},
				}},
			}}}
		}),
		envelope(8, func(e *workerv1.WorkerEnvelope) {
			e.Body = &workerv1.WorkerEnvelope_Heartbeat{Heartbeat: &workerv1.Heartbeat{SentAt: ts, CommandInFlight: 9, CommandInFlightKind: "register", BackendResponsive: true}}
		}),
		envelope(9, func(e *workerv1.WorkerEnvelope) {
			e.Body = &workerv1.WorkerEnvelope_Fault{Fault: &workerv1.Fault{Code: workerv1.FaultCode_FAULT_CODE_BACKEND_INIT, Message: "no COM"}}
		}),
	}
}

func encode(t testing.TB, envs ...*workerv1.WorkerEnvelope) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf, Options{})
	for _, e := range envs {
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// rawFrame builds a frame by hand: a length header and the given payload.
func rawFrame(length uint32, payload []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, length)
	return append(b, payload...)
}

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	for _, env := range sampleEnvelopes() {
		t.Run(string(env.ProtoReflect().WhichOneof(env.ProtoReflect().Descriptor().Oneofs().ByName("body")).Name()), func(t *testing.T) {
			data := encode(t, env)
			if got := binary.LittleEndian.Uint32(data); int(got) != len(data)-HeaderBytes {
				t.Fatalf("header says %d, payload is %d", got, len(data)-HeaderBytes)
			}
			// The Writer encodes through the generated MarshalVT: the
			// payload is what proto.Marshal writes.
			if want := mustMarshal(t, env); !bytes.Equal(data[HeaderBytes:], want) {
				t.Fatalf("payload\n%x\nproto.Marshal\n%x", data[HeaderBytes:], want)
			}
			r := NewReader(bytes.NewReader(data), Options{SessionID: testSession})
			got, err := r.Read()
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, env) {
				t.Fatalf("round trip changed the envelope:\n got %v\nwant %v", got, env)
			}
			if _, err := r.Read(); !errors.Is(err, ErrEndOfStream) {
				t.Fatalf("after the last frame: %v, want ErrEndOfStream", err)
			}
		})
	}
}

// TestStreamOfFrames reads many frames back to back through a reader that
// returns one byte at a time, then through one that returns odd chunks.
func TestStreamOfFrames(t *testing.T) {
	envs := sampleEnvelopes()
	data := encode(t, envs...)
	readers := map[string]io.Reader{
		"one byte":       iotest.OneByteReader(bytes.NewReader(data)),
		"half":           iotest.HalfReader(bytes.NewReader(data)),
		"chunks of 3":    &chunkReader{data: data, size: 3},
		"chunks of 4099": &chunkReader{data: data, size: 4099},
	}
	for name, src := range readers {
		t.Run(name, func(t *testing.T) {
			r := NewReader(src, Options{SessionID: testSession})
			env := &workerv1.WorkerEnvelope{}
			for i, want := range envs {
				if err := r.ReadInto(env); err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if !proto.Equal(env, want) {
					t.Fatalf("frame %d differs", i)
				}
			}
			if err := r.ReadInto(env); CodeOf(err) != CodeEndOfStream {
				t.Fatalf("end: %v", err)
			}
		})
	}
}

// chunkReader returns at most size bytes per Read.
type chunkReader struct {
	data []byte
	size int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), c.size, len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

func TestReadErrors(t *testing.T) {
	valid := encode(t, sampleEnvelopes()[0])
	otherVersion := envelope(1, func(e *workerv1.WorkerEnvelope) {
		e.Body = &workerv1.WorkerEnvelope_Cancel{Cancel: &workerv1.Cancel{}}
	})
	otherVersion.ProtocolVersion = protocol.Version + 1
	otherSession := envelope(1, func(e *workerv1.WorkerEnvelope) {
		e.Body = &workerv1.WorkerEnvelope_Cancel{Cancel: &workerv1.Cancel{}}
	})
	otherSession.SessionId = "someone-else"
	noBody := envelope(1, func(*workerv1.WorkerEnvelope) {})
	noBodyPayload := mustMarshal(t, noBody)

	tests := []struct {
		name string
		data []byte
		opts Options
		want Code
	}{
		{"empty stream", nil, Options{}, CodeEndOfStream},
		{"zero length", rawFrame(0, nil), Options{}, CodeZeroLength},
		{"oversized default limit", rawFrame(protocol.DefaultMaxFrameBytes+1, nil), Options{}, CodeOversized},
		{"oversized max uint32", rawFrame(0xFFFFFFFF, nil), Options{}, CodeOversized},
		{"oversized custom limit", valid, Options{MaxFrameBytes: len(valid) - HeaderBytes - 1}, CodeOversized},
		{"truncated header 1", valid[:1], Options{}, CodeTruncated},
		{"truncated header 3", valid[:3], Options{}, CodeTruncated},
		{"truncated payload empty", valid[:HeaderBytes], Options{}, CodeTruncated},
		{"truncated payload partial", valid[:len(valid)-1], Options{}, CodeTruncated},
		{"malformed", rawFrame(3, []byte{0xFF, 0xFF, 0xFF}), Options{}, CodeMalformed},
		{"malformed wrong wire type", rawFrame(2, []byte{0x0A, 0x05}), Options{}, CodeMalformed},
		{"version mismatch", encode(t, otherVersion), Options{}, CodeVersionMismatch},
		{"version mismatch custom", valid, Options{ProtocolVersion: 99}, CodeVersionMismatch},
		{"session mismatch", encode(t, otherSession), Options{SessionID: testSession}, CodeSessionMismatch},
		{"no body", rawFrame(uint32(len(noBodyPayload)), noBodyPayload), Options{}, CodeNoBody},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(tc.data), tc.opts)
			_, err := r.Read()
			if err == nil {
				t.Fatal("Read succeeded")
			}
			if got := CodeOf(err); got != tc.want {
				t.Fatalf("code %v (%v), want %v", got, err, tc.want)
			}
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("%T is not *Error", err)
			}
			if !strings.HasPrefix(err.Error(), "frame: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestSentinelsMatchByCode(t *testing.T) {
	sentinels := map[Code]error{
		CodeMalformed: ErrMalformed, CodeOversized: ErrOversized, CodeZeroLength: ErrZeroLength,
		CodeVersionMismatch: ErrVersionMismatch, CodeSessionMismatch: ErrSessionMismatch,
		CodeNoBody: ErrNoBody, CodeEndOfStream: ErrEndOfStream, CodeTruncated: ErrTruncated,
	}
	for code, sentinel := range sentinels {
		err := &Error{Code: code, Detail: "detail", Err: io.EOF}
		wrapped := errors.Join(errors.New("context"), err)
		for other, s := range sentinels {
			if got := errors.Is(wrapped, s); got != (other == code) {
				t.Errorf("errors.Is(%v, %v) = %v", err, s, got)
			}
		}
		if !errors.Is(err, io.EOF) {
			t.Errorf("%v does not unwrap to its cause", err)
		}
		if code.String() == "" || strings.HasPrefix(code.String(), "code(") {
			t.Errorf("code %d has no name", code)
		}
		if errors.Is(sentinel, err) {
			t.Errorf("a detailed error must not match as a target")
		}
	}
	if Code(99).String() != "code(99)" {
		t.Errorf("unknown code string %q", Code(99).String())
	}
	if CodeOf(io.EOF) != 0 {
		t.Error("CodeOf(non-frame error) != 0")
	}
}

// TestOversizedRejectedBeforeAllocating proves that a huge length header
// does not allocate its claimed size.
func TestOversizedRejectedBeforeAllocating(t *testing.T) {
	data := rawFrame(protocol.DefaultMaxFrameBytes+1, make([]byte, 64))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 10 {
		r := NewReader(bytes.NewReader(data), Options{})
		if _, err := r.ReadPayload(); CodeOf(err) != CodeOversized {
			t.Fatalf("got %v", err)
		}
	}
	runtime.ReadMemStats(&after)
	// Ten readers with their read buffers; nowhere near 10×16 MiB.
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
		t.Fatalf("rejecting oversized frames allocated %d bytes", grew)
	}
}

func TestIOErrorsPassThrough(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(iotest.ErrReader(boom), Options{})
	if _, err := r.Read(); !errors.Is(err, boom) {
		t.Fatalf("header read error = %v, want boom", err)
	}
	valid := encode(t, sampleEnvelopes()[0])
	r = NewReader(io.MultiReader(bytes.NewReader(valid[:HeaderBytes+2]), iotest.ErrReader(boom)), Options{})
	if _, err := r.Read(); !errors.Is(err, boom) {
		t.Fatalf("payload read error = %v, want boom", err)
	}
}

func TestSetSessionID(t *testing.T) {
	data := encode(t, sampleEnvelopes()[0], sampleEnvelopes()[1])
	r := NewReader(bytes.NewReader(data), Options{})
	if _, err := r.Read(); err != nil {
		t.Fatal(err)
	}
	r.SetSessionID("another")
	if _, err := r.Read(); CodeOf(err) != CodeSessionMismatch {
		t.Fatalf("after SetSessionID: %v", err)
	}
}

func TestLargeFrameNotPinned(t *testing.T) {
	big := envelope(1, func(e *workerv1.WorkerEnvelope) {
		e.Body = &workerv1.WorkerEnvelope_Fault{Fault: &workerv1.Fault{Message: strings.Repeat("m", 2*keepBufferBytes)}}
	})
	small := sampleEnvelopes()[5]
	var buf bytes.Buffer
	w := NewWriter(&buf, Options{})
	for _, e := range []*workerv1.WorkerEnvelope{small, big, small} {
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if cap(w.buf) > keepBufferBytes {
		t.Errorf("writer kept a %d-byte buffer", cap(w.buf))
	}
	r := NewReader(&buf, Options{})
	for i, want := range []*workerv1.WorkerEnvelope{small, big, small} {
		got, err := r.Read()
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, want) {
			t.Fatalf("frame %d differs", i)
		}
	}
	if cap(r.buf) > keepBufferBytes {
		t.Errorf("reader kept a %d-byte buffer", cap(r.buf))
	}
}

func TestWriterErrors(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, Options{})
	if err := w.Write(&workerv1.WorkerEnvelope{}); CodeOf(err) != CodeZeroLength {
		t.Fatalf("empty envelope: %v", err)
	}
	env := sampleEnvelopes()[8]
	w = NewWriter(&buf, Options{MaxFrameBytes: 16})
	if err := w.Write(env); CodeOf(err) != CodeOversized {
		t.Fatalf("over the limit: %v", err)
	}
	if buf.Len() != 0 {
		t.Fatalf("rejected frames wrote %d bytes", buf.Len())
	}
	// Invalid UTF-8 in a string field cannot be marshalled.
	bad := envelope(1, func(e *workerv1.WorkerEnvelope) {
		e.Body = &workerv1.WorkerEnvelope_Fault{Fault: &workerv1.Fault{Message: "\xff"}}
	})
	if err := NewWriter(&buf, Options{}).Write(bad); CodeOf(err) != CodeMalformed {
		t.Fatalf("invalid utf-8: %v", err)
	}
	boom := errors.New("boom")
	if err := NewWriter(errWriter{boom}, Options{}).Write(env); !errors.Is(err, boom) {
		t.Fatalf("write error = %v", err)
	}
}

type errWriter struct{ err error }

func (e errWriter) Write([]byte) (int, error) { return 0, e.err }

// countingWriter counts Write calls.
type countingWriter struct {
	calls int
	bytes.Buffer
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.calls++
	return c.Buffer.Write(p)
}

func TestWriterOneWritePerFrame(t *testing.T) {
	var cw countingWriter
	w := NewWriter(&cw, Options{})
	envs := sampleEnvelopes()
	for _, e := range envs {
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if cw.calls != len(envs) {
		t.Fatalf("%d Write calls for %d frames", cw.calls, len(envs))
	}
}

func TestValidate(t *testing.T) {
	ok := sampleEnvelopes()[0]
	if err := Validate(ok, Options{SessionID: testSession}); err != nil {
		t.Fatal(err)
	}
	if err := Validate(ok, Options{}); err != nil {
		t.Fatalf("empty session id must disable the check: %v", err)
	}
}

func BenchmarkWriter(b *testing.B) {
	env := sampleEnvelopes()[8]
	w := NewWriter(io.Discard, Options{})
	b.ReportAllocs()
	b.SetBytes(int64(proto.Size(env) + HeaderBytes))
	for b.Loop() {
		if err := w.Write(env); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReader(b *testing.B) {
	env := sampleEnvelopes()[8]
	one := encode(b, env)
	const n = 1024
	data := bytes.Repeat(one, n)
	src := bytes.NewReader(data)
	r := NewReader(src, Options{SessionID: testSession})
	into := &workerv1.WorkerEnvelope{}
	b.ReportAllocs()
	b.SetBytes(int64(len(one)))
	i := 0
	for b.Loop() {
		if i == n {
			src.Reset(data)
			i = 0
		}
		if err := r.ReadInto(into); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
