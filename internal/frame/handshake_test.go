package frame

import (
	"bytes"
	"errors"
	"net"
	"testing"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

// handshakePair returns the gateway's and the worker's ends of one
// connection, as both ends build them.
func handshakePair(t *testing.T) (gw, wk *Conn) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return NewConn(a, a, ConnOptions{SessionID: "s"}), NewConn(b, b, ConnOptions{SessionID: "s", WriteBufferBytes: 4 << 10})
}

var hsNonce = bytes.Repeat([]byte{7}, protocol.NonceBytes)

// TestHandshakeBothEnds runs the exchange with both ends on Conn: no
// sequence is written by hand, the nonce is echoed only after the gateway
// proved it, and the announced frame limit applies at the worker's end.
func TestHandshakeBothEnds(t *testing.T) {
	gw, wk := handshakePair(t)
	done := make(chan error, 1)
	go func() {
		hello, err := wk.Accept(hsNonce)
		if err != nil {
			done <- err
			return
		}
		if hello.GetHeartbeatInterval() != nil || hello.GetMaxFrameBytes() != 4096 {
			t.Errorf("hello %v", hello)
		}
		if err := wk.Answer(&workerv1.WorkerHello{Pid: 42}); err != nil {
			done <- err
			return
		}
		done <- wk.Ready(&mxgatewayv1.BackendInfo{Kind: "sim"})
	}()
	wh, err := gw.Offer(&workerv1.GatewayHello{Nonce: hsNonce, MaxFrameBytes: 4096, EventCredit: 1, EventCreditBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	if wh.GetPid() != 42 || wh.GetProtocolVersion() != protocol.Version || !bytes.Equal(wh.GetNonce(), hsNonce) {
		t.Fatalf("WorkerHello %v", wh)
	}
	ready, err := gw.AwaitReady()
	if err != nil || ready.GetBackend().GetKind() != "sim" {
		t.Fatalf("ready %v, %v", ready, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if gw.Sent() != 1 || gw.Received() != 2 || wk.Sent() != 2 || wk.Received() != 1 {
		t.Fatalf("sequences: gateway sent %d received %d, worker sent %d received %d", gw.Sent(), gw.Received(), wk.Sent(), wk.Received())
	}
	if wk.w.opts.MaxFrameBytes != 4096 || wk.r.opts.MaxFrameBytes != 4096 {
		t.Fatalf("worker frame limit %d/%d, want the announced 4096", wk.w.opts.MaxFrameBytes, wk.r.opts.MaxFrameBytes)
	}
}

// TestHandshakeRefusals: every refusal is a typed HandshakeError naming its
// step, at the end that detects it.
func TestHandshakeRefusals(t *testing.T) {
	reason := func(t *testing.T, err error, step string, want HandshakeReason) {
		t.Helper()
		var he *HandshakeError
		if !errors.As(err, &he) || he.Step != step || he.Reason != want {
			t.Fatalf("err %v, want %s %v", err, step, want)
		}
	}
	t.Run("gateway with another nonce", func(t *testing.T) {
		gw, wk := handshakePair(t)
		go func() { _, _ = gw.Offer(&workerv1.GatewayHello{Nonce: []byte("stranger")}) }()
		_, err := wk.Accept(hsNonce)
		reason(t, err, "GatewayHello", HandshakeNonce)
	})
	t.Run("worker echoes another nonce", func(t *testing.T) {
		gw, wk := handshakePair(t)
		go func() {
			if _, err := wk.Accept(hsNonce); err != nil {
				return
			}
			wk.nonce = []byte("another")
			_ = wk.Answer(&workerv1.WorkerHello{})
		}()
		_, err := gw.Offer(&workerv1.GatewayHello{Nonce: hsNonce, EventCredit: 1, EventCreditBytes: 1})
		reason(t, err, "WorkerHello", HandshakeNonce)
	})
	t.Run("hello of another version", func(t *testing.T) {
		gw, wk := handshakePair(t)
		go func() {
			_, _ = gw.Send(&workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_GatewayHello{GatewayHello: &workerv1.GatewayHello{
				ProtocolVersion: protocol.Version + 1, Nonce: hsNonce}}})
		}()
		_, err := wk.Accept(hsNonce)
		reason(t, err, "GatewayHello", HandshakeVersion)
	})
	t.Run("hello without event credit", func(t *testing.T) {
		for _, hello := range []*workerv1.GatewayHello{
			{Nonce: hsNonce, EventCreditBytes: 1},
			{Nonce: hsNonce, EventCredit: 1},
		} {
			gw, wk := handshakePair(t)
			go func() { _, _ = gw.Offer(hello) }()
			_, err := wk.Accept(hsNonce)
			reason(t, err, "GatewayHello", HandshakeInvalid)
		}
	})
	t.Run("another body", func(t *testing.T) {
		gw, wk := handshakePair(t)
		go func() {
			_, _ = gw.Send(&workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_Heartbeat{Heartbeat: &workerv1.Heartbeat{}}})
		}()
		_, err := wk.Accept(hsNonce)
		reason(t, err, "GatewayHello", HandshakeUnexpected)
	})
	t.Run("fault instead of ready", func(t *testing.T) {
		gw, wk := handshakePair(t)
		go func() {
			if _, err := wk.Accept(hsNonce); err != nil {
				return
			}
			_ = wk.Answer(&workerv1.WorkerHello{})
			_ = wk.SendFault(workerv1.FaultCode_FAULT_CODE_BACKEND_INIT, "no COM")
		}()
		if _, err := gw.Offer(&workerv1.GatewayHello{Nonce: hsNonce, EventCredit: 1, EventCreditBytes: 1}); err != nil {
			t.Fatal(err)
		}
		_, err := gw.AwaitReady()
		reason(t, err, "WorkerReady", HandshakeFault)
		var he *HandshakeError
		if errors.As(err, &he); he.Fault.GetCode() != workerv1.FaultCode_FAULT_CODE_BACKEND_INIT || he.Fault.GetMessage() != "no COM" {
			t.Fatalf("fault %v", he.Fault)
		}
	})
}
