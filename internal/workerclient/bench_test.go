package workerclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/frame"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

// echoWorker is a minimal worker for benchmarks: it completes the handshake,
// then answers every command at once, checks that the gateway's sequence
// numbers are contiguous, and heartbeats every 100 ms. It returns nil when
// the gateway closes the connection.
func echoWorker(conn net.Conn) error {
	r := frame.NewReader(conn, frame.Options{SessionID: testSession})
	w := frame.NewWriter(conn, frame.Options{})
	var seq uint64
	send := func(env *workerv1.WorkerEnvelope) error {
		seq++
		env.ProtocolVersion = protocol.Version
		env.SessionId = testSession
		env.Sequence = seq
		return w.Write(env)
	}
	env, err := r.Read()
	if err != nil {
		return err
	}
	nonce := env.GetGatewayHello().GetNonce()
	if err := send(&workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_WorkerHello{WorkerHello: &workerv1.WorkerHello{
		ProtocolVersion: protocol.Version, Nonce: nonce, Pid: testPID}}}); err != nil {
		return err
	}
	if err := send(&workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_WorkerReady{WorkerReady: &workerv1.WorkerReady{
		Backend: &mxgatewayv1.BackendInfo{Kind: "sim"}}}}); err != nil {
		return err
	}
	want := uint64(1)
	lastBeat := time.Now()
	reply := &mxgatewayv1.Reply{Result: &mxgatewayv1.Reply_Register{Register: &mxgatewayv1.RegisterResult{ServerHandle: 1}}}
	for {
		env, err := r.Read()
		if err != nil {
			if frame.CodeOf(err) == frame.CodeEndOfStream || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		want++
		if env.GetSequence() != want {
			return fmt.Errorf("gateway sequence %d, want %d", env.GetSequence(), want)
		}
		if env.GetCommand() == nil {
			continue
		}
		if err := send(&workerv1.WorkerEnvelope{CorrelationId: env.GetCorrelationId(), Body: &workerv1.WorkerEnvelope_CommandReply{
			CommandReply: &workerv1.WorkerCommandReply{Reply: reply}}}); err != nil {
			return err
		}
		if time.Since(lastBeat) > 100*time.Millisecond {
			lastBeat = time.Now()
			if err := send(&workerv1.WorkerEnvelope{Body: &workerv1.WorkerEnvelope_Heartbeat{Heartbeat: &workerv1.Heartbeat{BackendResponsive: true}}}); err != nil {
				return err
			}
		}
	}
}

// benchClient returns a Ready client wired to an echoWorker over a real
// socket pair; stop ends both and reports the worker's verdict.
func benchClient(b *testing.B) (c *Client, stop func()) {
	b.Helper()
	g, w := connPair(b)
	werr := make(chan error, 1)
	go func() { werr <- echoWorker(w) }()
	c, err := New(g, testSession, testNonce, Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		b.Fatal(err)
	}
	return c, func() {
		c.Kill("benchmark done")
		<-c.Done()
		_ = w.Close()
		if err := <-werr; err != nil {
			b.Errorf("echo worker: %v", err)
		}
	}
}

// BenchmarkInvoke measures one Invoke round trip at a time (gateway →
// socket → in-process fake worker → socket → gateway).
func BenchmarkInvoke(b *testing.B) {
	c, stop := benchClient(b)
	defer stop()
	ctx := context.Background()
	cmd := registerCmd()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Invoke(ctx, cmd, nil, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInvokeParallel measures Invoke from concurrent callers on one
// client (GOMAXPROCS goroutines by default).
func BenchmarkInvokeParallel(b *testing.B) {
	c, stop := benchClient(b)
	defer stop()
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		cmd := registerCmd()
		for pb.Next() {
			if _, err := c.Invoke(ctx, cmd, nil, 0); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
