package frame

import (
	"crypto/subtle"
	"fmt"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

// The handshake, both ends, on a Conn (ARCHITECTURE §5):
//
//	gateway                          worker
//	Offer(GatewayHello)     ──────▶  Accept(nonce)
//	  (returns the WorkerHello) ◀──  Answer(WorkerHello)
//	AwaitReady              ◀──────  Ready(backend) or SendFault
//
// Every rule of the exchange is written here once: the body each step
// expects, the protocol version carried in the hellos, the nonce compared in
// constant time (the gateway proves itself first; the worker echoes the nonce
// only then), a Fault in the place of a hello or of WorkerReady, and the frame
// limit announced in GatewayHello, applied both ways at both ends. The Conn
// numbers the envelopes; nobody writes a sequence by hand.

// HandshakeReason classifies a handshake that failed on the protocol's
// terms (an I/O or frame failure is an *Error, or the connection's own).
type HandshakeReason int

// Handshake failure reasons.
const (
	// HandshakeUnexpected: another body arrived in the place of the step's.
	HandshakeUnexpected HandshakeReason = iota + 1
	// HandshakeVersion: the hello names another protocol version.
	HandshakeVersion
	// HandshakeNonce: the nonce is not the one written to the worker's
	// stdin.
	HandshakeNonce
	// HandshakeFault: the peer sent a Fault instead (HandshakeError.Fault).
	HandshakeFault
	// HandshakeInvalid: the hello lacks a field the protocol requires.
	HandshakeInvalid
)

var handshakeReasonNames = map[HandshakeReason]string{
	HandshakeUnexpected: "unexpected body",
	HandshakeVersion:    "protocol version mismatch",
	HandshakeNonce:      "nonce mismatch",
	HandshakeFault:      "fault",
	HandshakeInvalid:    "invalid hello",
}

// String names the reason.
func (r HandshakeReason) String() string {
	if s, ok := handshakeReasonNames[r]; ok {
		return s
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// HandshakeError is a handshake step that failed on the protocol's terms.
type HandshakeError struct {
	// Step is the body the step expected ("GatewayHello", "WorkerHello",
	// "WorkerReady").
	Step   string
	Reason HandshakeReason
	// Fault is the peer's Fault (HandshakeFault).
	Fault *workerv1.Fault
	// Detail says what arrived instead.
	Detail string
}

// Error implements error.
func (e *HandshakeError) Error() string {
	s := "frame: handshake: " + e.Step + ": " + e.Reason.String()
	if e.Fault != nil {
		s += ": " + e.Fault.GetCode().String() + ": " + e.Fault.GetMessage()
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Offer is the gateway's first step: it sends hello, stamped with this
// protocol version, and returns the worker's WorkerHello once it names the
// same version and echoes hello's nonce.
func (c *Conn) Offer(hello *workerv1.GatewayHello) (*workerv1.WorkerHello, error) {
	hello.ProtocolVersion = protocol.Version
	if err := c.sendNow(&workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_GatewayHello{GatewayHello: hello}}); err != nil {
		return nil, err
	}
	env, err := c.expect("WorkerHello")
	if err != nil {
		return nil, err
	}
	wh := env.GetWorkerHello()
	if wh == nil {
		return nil, unexpected("WorkerHello", env)
	}
	if v := wh.GetProtocolVersion(); v != protocol.Version {
		return nil, &HandshakeError{Step: "WorkerHello", Reason: HandshakeVersion,
			Detail: fmt.Sprintf("worker speaks %d, gateway speaks %d", v, protocol.Version)}
	}
	if subtle.ConstantTimeCompare(wh.GetNonce(), hello.GetNonce()) != 1 {
		return nil, &HandshakeError{Step: "WorkerHello", Reason: HandshakeNonce, Detail: "WorkerHello echoed another nonce"}
	}
	return wh, nil
}

// AwaitReady is the gateway's last step: the worker's WorkerReady, sent once
// its backend is open.
func (c *Conn) AwaitReady() (*workerv1.WorkerReady, error) {
	env, err := c.expect("WorkerReady")
	if err != nil {
		return nil, err
	}
	ready := env.GetWorkerReady()
	if ready == nil {
		return nil, unexpected("WorkerReady", env)
	}
	return ready, nil
}

// Accept is the worker's first step: it reads the GatewayHello and checks
// its version and nonce (the gateway proves it started us before we echo
// anything). The frame limit it announces applies from the next frame on,
// both ways.
func (c *Conn) Accept(nonce []byte) (*workerv1.GatewayHello, error) {
	env, err := c.expect("GatewayHello")
	if err != nil {
		return nil, err
	}
	hello := env.GetGatewayHello()
	if hello == nil {
		return nil, unexpected("GatewayHello", env)
	}
	if v := hello.GetProtocolVersion(); v != protocol.Version {
		return nil, &HandshakeError{Step: "GatewayHello", Reason: HandshakeVersion,
			Detail: fmt.Sprintf("gateway speaks %d, worker speaks %d", v, protocol.Version)}
	}
	if subtle.ConstantTimeCompare(hello.GetNonce(), nonce) != 1 {
		return nil, &HandshakeError{Step: "GatewayHello", Reason: HandshakeNonce, Detail: "GatewayHello carried another nonce"}
	}
	if hello.GetEventCredit() == 0 || hello.GetEventCreditBytes() == 0 {
		return nil, &HandshakeError{Step: "GatewayHello", Reason: HandshakeInvalid,
			Detail: fmt.Sprintf("GatewayHello grants %d events and %d bytes of event credit; both must be positive", hello.GetEventCredit(), hello.GetEventCreditBytes())}
	}
	if n := hello.GetMaxFrameBytes(); n > 0 {
		c.SetMaxFrameBytes(int(n))
	}
	c.nonce = nonce
	return hello, nil
}

// Answer is the worker's reply to an accepted GatewayHello: hello, stamped
// with this protocol version and the nonce Accept checked, sent at once.
func (c *Conn) Answer(hello *workerv1.WorkerHello) error {
	hello.ProtocolVersion = protocol.Version
	hello.Nonce = c.nonce
	return c.sendNow(&workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_WorkerHello{WorkerHello: hello}})
}

// Ready is the worker's last step: WorkerReady with what it drives, sent at
// once.
func (c *Conn) Ready(backend *mxgatewayv1.BackendInfo) error {
	return c.SendReady(&workerv1.WorkerReady{Backend: backend})
}

// SendReady sends a WorkerReady at once.
func (c *Conn) SendReady(ready *workerv1.WorkerReady) error {
	return c.sendNow(&workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_WorkerReady{WorkerReady: ready}})
}

// SendFault sends a Fault at once: the worker's answer to a failed step.
func (c *Conn) SendFault(code workerv1.FaultCode, msg string) error {
	return c.sendNow(&workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_Fault{Fault: &workerv1.Fault{Code: code, Message: msg}}})
}

// sendNow sends env and flushes it.
func (c *Conn) sendNow(env *workerv1.WorkerEnvelope) error {
	if _, err := c.Send(env); err != nil {
		return err
	}
	return c.Flush()
}

// expect receives the envelope of a step; a Fault in its place is a
// HandshakeFault.
func (c *Conn) expect(step string) (*workerv1.WorkerEnvelope, error) {
	env, _, err := c.Recv()
	if err != nil {
		return nil, err
	}
	if f := env.GetFault(); f != nil {
		return nil, &HandshakeError{Step: step, Reason: HandshakeFault, Fault: f}
	}
	return env, nil
}

// unexpected is the error of a step that got another body.
func unexpected(step string, env *workerv1.WorkerEnvelope) error {
	return &HandshakeError{Step: step, Reason: HandshakeUnexpected, Detail: "got " + BodyName(env)}
}

// BodyName names an envelope's body ("worker_hello"); "none" without one.
func BodyName(env *workerv1.WorkerEnvelope) string {
	m := env.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("body"))
	if fd == nil {
		return "none"
	}
	return string(fd.Name())
}
