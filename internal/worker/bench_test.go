package worker

import (
	"log/slog"
	"net"
	"runtime"
	"testing"

	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
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
	w.out.finish()
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
