package frame

import (
	"errors"
	"net"
	"testing"

	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

// TestConnNumbersBothWays: each end numbers what it sends from 1 and checks
// what it receives; a frame that could not be encoded uses no number; an
// envelope out of sequence is a CodeSequence error.
func TestConnNumbersBothWays(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	gw := NewConn(a, a, ConnOptions{SessionID: "s", MaxFrameBytes: 1 << 10})
	wk := NewConn(b, b, ConnOptions{SessionID: "s", WriteBufferBytes: 4 << 10})

	sent := make(chan struct{})
	go func() {
		defer close(sent)
		hello := &workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_GatewayHello{GatewayHello: &workerv1.GatewayHello{ProtocolVersion: protocol.Version}}}
		if _, err := gw.Send(hello); err != nil {
			t.Error(err)
		}
		huge := &workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_GatewayHello{GatewayHello: &workerv1.GatewayHello{GatewayVersion: string(make([]byte, 2<<10))}}}
		if n, err := gw.Send(huge); !errors.Is(err, ErrOversized) || n != 0 {
			t.Errorf("oversized send = %d, %v", n, err)
		}
		if _, err := gw.Send(&workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_Cancel{Cancel: &workerv1.Cancel{}}}); err != nil {
			t.Error(err)
		}
	}()
	for want := uint64(1); want <= 2; want++ {
		env, _, err := wk.Recv()
		if err != nil || env.GetSequence() != want || wk.Received() != want {
			t.Fatalf("receive %d: %v %v", want, env, err)
		}
	}
	<-sent
	if gw.Sent() != 2 {
		t.Fatalf("gateway sent %d, want 2 (the oversized frame uses no number)", gw.Sent())
	}

	go func() {
		_, _ = wk.SendEvent([]byte{})
		_ = wk.Flush()
		// A peer that numbers by itself and skips one.
		w := NewWriter(b, Options{})
		_ = w.Write(&workerv1.WorkerEnvelope{ProtocolVersion: protocol.Version, SessionId: "s", Sequence: 3,
			Body: &workerv1.WorkerEnvelope_Heartbeat{Heartbeat: &workerv1.Heartbeat{}}})
	}()
	if env, _, err := gw.Recv(); err != nil || env.GetSequence() != 1 || env.GetEvent() == nil {
		t.Fatalf("event: %v %v", env, err)
	}
	if _, _, err := gw.Recv(); !errors.Is(err, ErrSequence) {
		t.Fatalf("skipped sequence: %v, want ErrSequence", err)
	}
}
