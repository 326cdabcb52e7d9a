package frame

import (
	"bufio"
	"fmt"
	"io"

	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

// Conn is one end of a worker protocol connection, used alike by the
// gateway and the worker, from the handshake on. It stamps every envelope
// it sends with the protocol version, the session id and the next outbound
// sequence (starting at 1), and checks that every envelope it receives
// carries the version, the session id and the next inbound sequence. No
// caller numbers envelopes itself.
//
// Sending and receiving are independent: one goroutine may send while
// another receives. Neither side is safe for concurrent use on its own.
type Conn struct {
	r       *Reader
	w       *Writer
	cw      byteCounter
	bw      *bufio.Writer // nil: every frame goes to the connection at once
	session string

	sent, recv uint64
	nonce      []byte // the worker's end: the nonce Accept checked, Answer echoes

	scratch *workerv1.WorkerEnvelope // RecvEvent's header of an event envelope
}

// ConnOptions configure a Conn.
type ConnOptions struct {
	// SessionID is stamped on and required of every envelope.
	SessionID string
	// MaxFrameBytes limits frames both ways; 0 means
	// protocol.DefaultMaxFrameBytes. SetMaxFrameBytes changes it after the
	// GatewayHello.
	MaxFrameBytes int
	// WriteBufferBytes, when positive, buffers outgoing frames (Flush
	// sends them); 0 writes each frame with one Write call.
	WriteBufferBytes int
}

// NewConn returns a Conn reading r and writing w (usually the same net.Conn).
func NewConn(r io.Reader, w io.Writer, opts ConnOptions) *Conn {
	c := &Conn{session: opts.SessionID}
	c.cw.w = w
	out := io.Writer(&c.cw)
	if opts.WriteBufferBytes > 0 {
		c.bw = bufio.NewWriterSize(out, opts.WriteBufferBytes)
		out = c.bw
	}
	fo := Options{MaxFrameBytes: opts.MaxFrameBytes, SessionID: opts.SessionID}
	c.r = NewReader(r, fo)
	c.w = NewWriter(out, fo)
	return c
}

// SetMaxFrameBytes changes the frame limit both ways (after the
// GatewayHello announced it).
func (c *Conn) SetMaxFrameBytes(n int) {
	c.r.opts.MaxFrameBytes = n
	c.w.opts.MaxFrameBytes = n
}

// Sent is the sequence of the last envelope sent.
func (c *Conn) Sent() uint64 { return c.sent }

// Received is the sequence of the last envelope received.
func (c *Conn) Received() uint64 { return c.recv }

// Send stamps env and writes it as one frame. written is how many bytes of
// the frame reached the connection (or the write buffer); when it is 0 the
// stream is intact and the sequence number is not used up, so a frame that
// could not be encoded or that a deadline stopped before it started costs
// only itself.
func (c *Conn) Send(env *workerv1.WorkerEnvelope) (written int, err error) {
	env.ProtocolVersion = protocol.Version
	env.SessionId = c.session
	env.Sequence = c.sent + 1
	return c.sent1(c.w.Write(env))
}

// SendEvent writes one event envelope around an encoded mxgateway.v1.Event
// (see Writer.WriteEvent), stamped like Send.
func (c *Conn) SendEvent(event []byte) (written int, err error) {
	return c.sent1(c.w.WriteEvent(protocol.Version, c.session, c.sent+1, event))
}

func (c *Conn) sent1(err error) (int, error) {
	n := c.cw.take()
	if c.bw != nil && (err == nil || CodeOf(err) == 0) {
		// Buffered: the frame (or part of it, on an I/O error) is in the
		// stream; only an encoding error leaves it untouched.
		n = max(n, 1)
	}
	if err == nil || n > 0 {
		c.sent++
	}
	return n, err
}

// Flush sends buffered frames.
func (c *Conn) Flush() error {
	if c.bw == nil {
		return nil
	}
	return c.bw.Flush()
}

// Recv reads and validates the next envelope, returning it with its frame's
// payload size. An envelope out of sequence is a CodeSequence error.
func (c *Conn) Recv() (*workerv1.WorkerEnvelope, int, error) {
	env := &workerv1.WorkerEnvelope{}
	size, err := c.r.ReadSized(env)
	if err != nil {
		return nil, 0, err
	}
	if want := c.recv + 1; env.GetSequence() != want {
		return nil, 0, &Error{Code: CodeSequence, Detail: fmt.Sprintf("envelope sequence %d, want %d", env.GetSequence(), want)}
	}
	c.recv++
	return env, size, nil
}

// RecvEvent is Recv, except that an event envelope is not decoded: its
// encoded mxgatewayv1.Event comes back in event (the caller's to keep) and
// env holds only the envelope's header. Every other envelope comes back
// decoded, with a nil event.
//
// The header of an event envelope is only valid until the next call: it
// lives in a scratch envelope the Conn reuses, so that an event costs no
// envelope of its own.
func (c *Conn) RecvEvent() (env *workerv1.WorkerEnvelope, event []byte, size int, err error) {
	if c.scratch == nil {
		c.scratch = &workerv1.WorkerEnvelope{}
	}
	env = c.scratch
	env.ProtocolVersion, env.SessionId, env.Sequence, env.CorrelationId = 0, "", 0, 0
	event, size, err = c.r.ReadEventSized(env)
	if event == nil {
		c.scratch = nil // decoded in full: the caller keeps it
	}
	if err != nil {
		return nil, nil, 0, err
	}
	if want := c.recv + 1; env.GetSequence() != want {
		return nil, nil, 0, &Error{Code: CodeSequence, Detail: fmt.Sprintf("envelope sequence %d, want %d", env.GetSequence(), want)}
	}
	c.recv++
	return env, event, size, nil
}

// byteCounter counts the bytes that reached the connection since the
// last take.
type byteCounter struct {
	w io.Writer
	n int
}

func (cw *byteCounter) Write(b []byte) (int, error) {
	n, err := cw.w.Write(b)
	cw.n += n
	return n, err
}

func (cw *byteCounter) take() int {
	n := cw.n
	cw.n = 0
	return n
}
