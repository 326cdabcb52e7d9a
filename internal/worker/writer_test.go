package worker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/frame"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

// TestWriterReusesEnvelopeWithoutLeakingState interleaves events with
// control messages through the writer, which carries every event in one
// reused envelope. Every frame must read back as sent (no field of a reply
// leaks into an event envelope or back), and once written no event may stay
// reachable from the writer: the test waits for the garbage collector to
// free every event while the writer is still running.
func TestWriterReusesEnvelopeWithoutLeakingState(t *testing.T) {
	path := socketPath(t)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	cfg := Config{SessionID: testSession, EventQueueSize: 100, Logger: slog.New(slog.DiscardHandler)}
	w := newWorker(cfg, cfg.Logger, client)
	w.out.setCredit(1<<31, 1<<40) // no handshake here: credit for everything
	writerDone := make(chan error, 1)
	go func() { writerDone <- w.writeLoop() }()

	frames := make(chan *workerv1.WorkerEnvelope, 64)
	readDone := make(chan error, 1)
	go func() {
		defer close(frames)
		r := frame.NewReader(server, frame.Options{SessionID: testSession})
		for {
			env, err := r.Read()
			if err != nil {
				readDone <- err
				return
			}
			frames <- env
		}
	}()

	const events = 20
	var freed atomic.Int64
	for i := range events {
		ev := dataChange(1, int32(i+1), int64(i))
		runtime.AddCleanup(ev, func(*atomic.Int64) { freed.Add(1) }, &freed)
		w.sink(ev)
		if i%3 == 0 {
			w.out.push(&workerv1.WorkerEnvelope{
				CorrelationId: uint64(1000 + i),
				Body:          &workerv1.WorkerEnvelope_ShutdownAck{ShutdownAck: &workerv1.ShutdownAck{}},
			})
		}
	}

	var seq, lastCtl uint64
	got := 0
	for got < events {
		var env *workerv1.WorkerEnvelope
		select {
		case env = <-frames:
		case <-time.After(time.Minute):
			t.Fatalf("got %d of %d events", got, events)
		}
		if env == nil {
			t.Fatalf("reader ended after %d events: %v", got, <-readDone)
		}
		seq++
		if env.GetSequence() != seq {
			t.Fatalf("envelope sequence %d, want %d", env.GetSequence(), seq)
		}
		switch b := env.GetBody().(type) {
		case *workerv1.WorkerEnvelope_Event:
			ev := b.Event.GetEvent()
			dc := ev.GetDataChange()
			if env.GetCorrelationId() != 0 {
				t.Fatalf("event envelope %d carries correlation %d", seq, env.GetCorrelationId())
			}
			if ev.GetSequence() != uint64(got+1) || dc.GetItemHandle() != int32(got+1) || dc.GetValue().GetInt64Value() != int64(got) {
				t.Fatalf("event %d read back as %v", got+1, ev)
			}
			got++
		case *workerv1.WorkerEnvelope_ShutdownAck:
			// Control messages keep their order and may overtake events
			// queued before them, but no event overtakes one queued
			// before it: control 1000+i was queued after event i+1 and
			// before event i+2.
			c := env.GetCorrelationId()
			if c <= lastCtl || c < 1000 || int(c-1000)%3 != 0 || got > int(c-1000)+1 {
				t.Fatalf("control envelope %d after %d events (previous control %d)", c, got, lastCtl)
			}
			lastCtl = c
		default:
			t.Fatalf("unexpected body %T", b)
		}
	}

	// The writer is still running (blocked for more work); every event it
	// wrote must be collectable.
	testutil.Eventually(t, 30*time.Second, func() error {
		runtime.GC()
		if n := freed.Load(); n != events {
			return fmt.Errorf("%d of %d written events freed", n, events)
		}
		return nil
	})

	w.out.finish(nil)
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	client.Close()
	for range frames {
	}
	if err := <-readDone; frame.CodeOf(err) != frame.CodeEndOfStream && !errors.Is(err, net.ErrClosed) {
		t.Fatalf("reader ended with %v", err)
	}
}
