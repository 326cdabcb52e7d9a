package worker

import (
	"log/slog"
	"net"
	"runtime"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/backend/sim"
	"github.com/mxgateway/mxgateway/internal/frame"
)

// BenchmarkEventPath pushes b.N OnDataChange events through the sink, the
// bounded outbound queue, the writer and a real Unix socket to a reader that
// decodes every frame. The producer yields while the queue is full (as a
// paced storm would), so the queue never exceeds its bound: memory stays
// flat however large b.N is (try -benchtime=1000000x and watch B/op).
func BenchmarkEventPath(b *testing.B) {
	path := socketPath(b)
	ln, err := net.Listen("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer server.Close()

	cfg := Config{SessionID: testSession, EventQueueSize: DefaultEventQueueSize, Logger: slog.New(slog.DiscardHandler)}
	w := newWorker(cfg, cfg.Logger, client)
	w.out.setCredit(1<<31, 1<<40) // no handshake here: credit for everything
	writerDone := make(chan error, 1)
	go func() { writerDone <- w.writeLoop() }()

	readDone := make(chan int, 1)
	go func() {
		r := frame.NewReader(server, frame.Options{SessionID: testSession})
		var env workerv1.WorkerEnvelope
		n := 0
		for {
			if err := r.ReadInto(&env); err != nil {
				readDone <- n
				return
			}
			n++
		}
	}()

	var peak int64
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for w.out.events.Load() >= int64(cfg.EventQueueSize) {
			runtime.Gosched()
		}
		w.sink(dataChange(1, 1, int64(i)))
		if d := w.out.events.Load(); d > peak {
			peak = d
		}
	}
	w.out.finish(nil)
	if err := <-writerDone; err != nil {
		b.Fatal(err)
	}
	client.Close()
	b.StopTimer()
	if n := <-readDone; n != b.N {
		b.Fatalf("reader got %d events, want %d", n, b.N)
	}
	if w.ending() != nil {
		b.Fatalf("worker faulted: %s", w.ending().reason)
	}
	b.ReportMetric(float64(peak), "peak-queue")
}

// BenchmarkCommandRoundTrip is one Write through a real worker on the
// simulator (test profile) over a real Unix socket, as the gateway sees
// it: the command frame out, the reply frame back. It is the worker's
// share of an Invoke, wake-ups and hand-offs included (the gateway's is
// BenchmarkInvoke in internal/workerclient). In process, goroutine
// hand-offs are cheap; the Process variant runs the worker in a child
// process, as the gateway does, where every wake-up is a thread's.
func BenchmarkCommandRoundTrip(b *testing.B) {
	be, err := sim.New(sim.Options{Profile: "test", Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	h := start(b, be, harnessOpts{cfg: func(c *Config) { c.Logger = slog.New(slog.DiscardHandler) }})
	commandRoundTrips(b, h)
}

func BenchmarkCommandRoundTripProcess(b *testing.B) {
	h, _ := startProcess(b, nonceLine(), "--backend", "simreal", "--sim-profile", "test", "--log-level", "error")
	commandRoundTrips(b, h)
}

func commandRoundTrips(b *testing.B, h *harness) {
	h.ready(time.Hour)
	sh := h.call(1, register(), nil).GetRegister().GetServerHandle()
	ih := h.call(2, addItem(sh, "Pump1.StartCount"), nil).GetItemHandle().GetItemHandle()
	write := &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Write{Write: &mxgatewayv1.WriteCommand{
		ServerHandle: sh, ItemHandle: ih, Value: int32Value(5)}}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		corr := uint64(10 + i)
		h.command(corr, write)
		for {
			env := h.recv()
			if env.GetCommandReply() != nil {
				if env.GetCorrelationId() != corr {
					b.Fatalf("reply %d, want %d", env.GetCorrelationId(), corr)
				}
				break
			}
		}
	}
	b.StopTimer()
	h.shutdown()
	if h.inProcess {
		return
	}
	h.exitCode()
	reportProcessUsage(b, h.proc)
}
