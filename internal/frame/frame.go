package frame

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

// HeaderBytes is the size of the length prefix.
const HeaderBytes = 4

// Options configure a Reader or Writer. The zero value uses the defaults.
type Options struct {
	// MaxFrameBytes is the largest payload accepted or sent; 0 means
	// protocol.DefaultMaxFrameBytes.
	MaxFrameBytes int
	// ProtocolVersion every envelope must carry; 0 means protocol.Version.
	ProtocolVersion uint32
	// SessionID every envelope must carry; empty disables the check (used
	// before the session is known).
	SessionID string
	// ReadBufferBytes is the size of a Reader's read buffer; 0 means
	// DefaultReadBufferBytes. Frames that fit are decoded in place, larger
	// ones are copied once more into a buffer of their own.
	ReadBufferBytes int
}

// DefaultReadBufferBytes is a Reader's default read buffer. There is one per
// worker connection on each side, so it is kept small; an event frame is a
// few hundred bytes.
const DefaultReadBufferBytes = 16 << 10

func (o Options) readBuffer() int {
	if o.ReadBufferBytes <= 0 {
		return DefaultReadBufferBytes
	}
	return o.ReadBufferBytes
}

func (o Options) max() int {
	if o.MaxFrameBytes <= 0 {
		return protocol.DefaultMaxFrameBytes
	}
	return o.MaxFrameBytes
}

func (o Options) version() uint32 {
	if o.ProtocolVersion == 0 {
		return protocol.Version
	}
	return o.ProtocolVersion
}

// Reader reads frames. It is not safe for concurrent use.
type Reader struct {
	br   *bufio.Reader
	opts Options
	hdr  [HeaderBytes]byte
	buf  []byte
	um   proto.UnmarshalOptions
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader, opts Options) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, opts.readBuffer()), opts: opts}
}

// SetSessionID sets the session id every later envelope must carry.
func (r *Reader) SetSessionID(id string) { r.opts.SessionID = id }

// ReadPayload reads one frame and returns its payload. The slice is only
// valid until the next call: a payload that fits the read buffer is returned
// in place, without a copy (the buffer is refilled by the next call).
func (r *Reader) ReadPayload() ([]byte, error) {
	n, err := io.ReadFull(r.br, r.hdr[:])
	if err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return nil, &Error{Code: CodeEndOfStream, Err: io.EOF}
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, &Error{Code: CodeTruncated, Detail: fmt.Sprintf("header: got %d of %d bytes", n, HeaderBytes)}
		}
		return nil, err
	}
	size := binary.LittleEndian.Uint32(r.hdr[:])
	if size == 0 {
		return nil, &Error{Code: CodeZeroLength}
	}
	if uint64(size) > uint64(r.opts.max()) {
		return nil, &Error{Code: CodeOversized, Detail: fmt.Sprintf("length %d exceeds limit %d", size, r.opts.max())}
	}
	if int(size) <= r.br.Size() {
		// Peek fills the buffer up to the whole frame if needed; the bytes
		// stay where they are until the next read, after the Discard.
		buf, err := r.br.Peek(int(size))
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, &Error{Code: CodeTruncated, Detail: fmt.Sprintf("payload: got %d of %d bytes", len(buf), size)}
			}
			return nil, err
		}
		if _, err := r.br.Discard(len(buf)); err != nil {
			return nil, err // cannot happen: the bytes are buffered
		}
		return buf, nil
	}
	var buf []byte
	switch {
	case cap(r.buf) >= int(size):
		buf = r.buf[:size]
	case size <= keepBufferBytes:
		r.buf = make([]byte, size)
		buf = r.buf
	default:
		// A rare large frame gets a one-off buffer so that one burst
		// does not pin up to the frame limit for the connection's life.
		buf = make([]byte, size)
	}
	if n, err := io.ReadFull(r.br, buf); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, &Error{Code: CodeTruncated, Detail: fmt.Sprintf("payload: got %d of %d bytes", n, size)}
		}
		return nil, err
	}
	return buf, nil
}

// keepBufferBytes is the largest buffer a Reader or Writer keeps for reuse.
const keepBufferBytes = 1 << 20

// Read reads and validates one envelope. The envelope shares no memory with
// the Reader: proto.Unmarshal copies strings, bytes and unknown fields.
func (r *Reader) Read() (*workerv1.WorkerEnvelope, error) {
	env := &workerv1.WorkerEnvelope{}
	if err := r.ReadInto(env); err != nil {
		return nil, err
	}
	return env, nil
}

// ReadInto reads and validates one envelope into env, which is reset first.
func (r *Reader) ReadInto(env *workerv1.WorkerEnvelope) error {
	_, err := r.ReadSized(env)
	return err
}

// ReadSized is ReadInto that also returns the frame's payload size.
func (r *Reader) ReadSized(env *workerv1.WorkerEnvelope) (size int, err error) {
	payload, err := r.ReadPayload()
	if err != nil {
		return 0, err
	}
	if err := r.um.Unmarshal(payload, env); err != nil {
		return 0, &Error{Code: CodeMalformed, Err: err}
	}
	return len(payload), Validate(env, r.opts)
}

// Validate checks an envelope's version, session id and body.
func Validate(env *workerv1.WorkerEnvelope, opts Options) error {
	if v := opts.version(); env.GetProtocolVersion() != v {
		return &Error{Code: CodeVersionMismatch, Detail: fmt.Sprintf("got %d, want %d", env.GetProtocolVersion(), v)}
	}
	if opts.SessionID != "" && env.GetSessionId() != opts.SessionID {
		return &Error{Code: CodeSessionMismatch, Detail: fmt.Sprintf("got %q", env.GetSessionId())}
	}
	if env.GetBody() == nil {
		return &Error{Code: CodeNoBody}
	}
	return nil
}

// Writer writes frames. It is meant for one writer goroutine; it is not safe
// for concurrent use.
type Writer struct {
	w    io.Writer
	opts Options
	buf  []byte
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer, opts Options) *Writer {
	return &Writer{w: w, opts: opts, buf: make([]byte, HeaderBytes, 4<<10)}
}

// Write serialises env and writes it as one frame with one Write call. The
// envelope is not validated beyond its size; senders build it correctly.
func (w *Writer) Write(env *workerv1.WorkerEnvelope) error {
	return w.WriteMessage(env)
}

// WriteMessage writes any message as one frame, for the other local
// protocols that share the framing (the Galaxy runtime's).
func (w *Writer) WriteMessage(env proto.Message) error {
	b, err := AppendMarshal(w.buf[:HeaderBytes], env)
	if err != nil {
		return &Error{Code: CodeMalformed, Err: err}
	}
	size := len(b) - HeaderBytes
	if size == 0 {
		return &Error{Code: CodeZeroLength}
	}
	if size > w.opts.max() {
		return &Error{Code: CodeOversized, Detail: fmt.Sprintf("length %d exceeds limit %d", size, w.opts.max())}
	}
	binary.LittleEndian.PutUint32(b[:HeaderBytes], uint32(size))
	// Keep a grown buffer for reuse, but do not pin a huge one forever.
	if cap(b) <= keepBufferBytes {
		w.buf = b[:HeaderBytes]
	}
	_, err = w.w.Write(b)
	return err
}

// Field numbers of the envelope around an encoded event, read from the
// descriptor so that they have one home: the .proto file.
var (
	fieldVersion  = fieldNumber(&workerv1.WorkerEnvelope{}, "protocol_version")
	fieldSession  = fieldNumber(&workerv1.WorkerEnvelope{}, "session_id")
	fieldSequence = fieldNumber(&workerv1.WorkerEnvelope{}, "sequence")
	fieldEvent    = fieldNumber(&workerv1.WorkerEnvelope{}, "event")
	fieldInner    = fieldNumber(&workerv1.WorkerEvent{}, "event")
)

func fieldNumber(m proto.Message, name protoreflect.Name) protowire.Number {
	fd := m.ProtoReflect().Descriptor().Fields().ByName(name)
	if fd == nil {
		panic("frame: no field " + string(name))
	}
	return fd.Number()
}

// WriteEvent writes one event envelope (version, session id, sequence and a
// WorkerEvent body) around event, an already encoded mxgateway.v1.Event, as
// one frame. It produces the bytes Write would for the same envelope, without
// decoding or re-encoding the event.
func (w *Writer) WriteEvent(version uint32, sessionID string, seq uint64, event []byte) error {
	b := w.buf[:HeaderBytes]
	b = protowire.AppendTag(b, fieldVersion, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(version))
	if sessionID != "" {
		b = protowire.AppendTag(b, fieldSession, protowire.BytesType)
		b = protowire.AppendString(b, sessionID)
	}
	b = protowire.AppendTag(b, fieldSequence, protowire.VarintType)
	b = protowire.AppendVarint(b, seq)
	inner := protowire.SizeTag(fieldInner) + protowire.SizeBytes(len(event))
	b = protowire.AppendTag(b, fieldEvent, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(inner))
	b = protowire.AppendTag(b, fieldInner, protowire.BytesType)
	b = protowire.AppendBytes(b, event)
	size := len(b) - HeaderBytes
	if size > w.opts.max() {
		return &Error{Code: CodeOversized, Detail: fmt.Sprintf("length %d exceeds limit %d", size, w.opts.max())}
	}
	binary.LittleEndian.PutUint32(b[:HeaderBytes], uint32(size))
	if cap(b) <= keepBufferBytes {
		w.buf = b[:HeaderBytes]
	}
	_, err := w.w.Write(b)
	return err
}

// EventOverhead bounds the bytes WriteEvent adds around an encoded event for
// a session id of sessionIDBytes bytes; an event of at most
// MaxFrameBytes-EventOverhead bytes fits one frame.
func EventOverhead(sessionIDBytes int) int {
	const varint = binary.MaxVarintLen64
	return protowire.SizeTag(fieldVersion) + varint +
		protowire.SizeTag(fieldSession) + varint + sessionIDBytes +
		protowire.SizeTag(fieldSequence) + varint +
		protowire.SizeTag(fieldEvent) + varint + protowire.SizeTag(fieldInner) + varint
}

// Field numbers of the envelope's header fields that an event envelope may
// carry besides its body.
var fieldCorrelation = fieldNumber(&workerv1.WorkerEnvelope{}, "correlation_id")

// ReadEventSized is ReadSized, except that an event envelope is not decoded:
// its encoded mxgatewayv1.Event is returned in event (a copy the caller
// owns, with protocol.EncodedRoom of spare capacity for the envelope's
// session id), with the envelope's header in env (its body left nil). Any other
// envelope is decoded and validated as ReadSized does, and event is nil.
func (r *Reader) ReadEventSized(env *workerv1.WorkerEnvelope) (event []byte, size int, err error) {
	payload, err := r.ReadPayload()
	if err != nil {
		return nil, 0, err
	}
	if ev, ok := r.eventOf(payload, env); ok {
		return ev, len(payload), nil
	}
	proto.Reset(env)
	if err := r.um.Unmarshal(payload, env); err != nil {
		return nil, 0, &Error{Code: CodeMalformed, Err: err}
	}
	return nil, len(payload), Validate(env, r.opts)
}

// eventOf reads payload as an event envelope: only the header fields and an
// event body holding one event. ok is false for anything else (another body,
// a field it does not know, a malformed encoding), which the caller decodes
// in full. The header must pass Validate.
func (r *Reader) eventOf(payload []byte, env *workerv1.WorkerEnvelope) (event []byte, ok bool) {
	var inner []byte
	found := false
	var version uint64
	var session []byte
	for b := payload; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
		switch {
		case (num == fieldVersion || num == fieldSequence || num == fieldCorrelation) && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, false
			}
			switch num {
			case fieldVersion:
				version = v
			case fieldSequence:
				env.Sequence = v
			default:
				env.CorrelationId = v
			}
			b = b[n:]
		case num == fieldSession && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, false
			}
			session, b = v, b[n:]
		case num == fieldEvent && typ == protowire.BytesType && !found:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, false
			}
			b = b[n:]
			num, typ, m := protowire.ConsumeTag(v)
			if m < 0 || num != fieldInner || typ != protowire.BytesType {
				return nil, false
			}
			ev, k := protowire.ConsumeBytes(v[m:])
			if k < 0 || m+k != len(v) {
				return nil, false
			}
			inner, found = ev, true
		default:
			return nil, false
		}
	}
	if !found || version != uint64(r.opts.version()) || r.opts.SessionID != "" && string(session) != r.opts.SessionID {
		return nil, false // the full decode reports what is wrong
	}
	env.ProtocolVersion = uint32(version)
	env.SessionId = r.opts.SessionID
	if env.SessionId == "" {
		env.SessionId = string(session)
	}
	// The copy keeps room after the event for the session's fields, which
	// the gateway writes there (protocol.DecodeEventInPlace).
	return append(make([]byte, 0, len(inner)+protocol.EncodedRoom(len(env.SessionId))), inner...), true
}
