package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/itemtable"
	"github.com/mxgateway/mxgateway/internal/protocol"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

var errKilled = errors.New("fake: killed")

// fakeWorker is an in-memory Worker driven by the test.
type fakeWorker struct {
	pid    int
	events chan *protocol.Event
	done   chan struct{}

	// invoke answers commands; nil replies OK.
	invoke func(ctx context.Context, cmd *mxgatewayv1.Command, timeout time.Duration) (*mxgatewayv1.Reply, error)
	// hangShutdown makes Shutdown wait for ctx.
	hangShutdown bool

	items      *itemtable.Table
	unanswered atomic.Int32
	guards     []*workerv1.ItemGuard // guards received, in order

	mu       sync.Mutex
	finished bool
	err      error
	kills    []string
	shutdown int
}

var pidCounter struct {
	sync.Mutex
	n int
}

func newFakeWorker() *fakeWorker {
	pidCounter.Lock()
	pidCounter.n++
	pid := 1000 + pidCounter.n
	pidCounter.Unlock()
	return &fakeWorker{pid: pid, events: make(chan *protocol.Event, 1024), done: make(chan struct{}), items: itemtable.New()}
}

func (w *fakeWorker) PID() int { return w.pid }
func (w *fakeWorker) Backend() *mxgatewayv1.BackendInfo {
	return &mxgatewayv1.BackendInfo{Kind: "sim", Simulated: true}
}
func (w *fakeWorker) Invoke(ctx context.Context, cmd *mxgatewayv1.Command, guard *workerv1.ItemGuard, timeout time.Duration) (*mxgatewayv1.Reply, error) {
	w.mu.Lock()
	w.guards = append(w.guards, guard)
	w.mu.Unlock()
	if w.invoke != nil {
		r, err := w.invoke(ctx, cmd, timeout)
		if err == nil {
			w.items.Apply(cmd, r)
		}
		return r, err
	}
	select {
	case <-w.done:
		return nil, w.Err()
	default:
	}
	return &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK}, nil
}
func (w *fakeWorker) Items() *itemtable.Table { return w.items }
func (w *fakeWorker) Unanswered() int         { return int(w.unanswered.Load()) }
func (w *fakeWorker) NextEvents(dst []*protocol.Event) ([]*protocol.Event, bool) {
	ev, ok := <-w.events
	if !ok {
		return dst, false
	}
	dst = append(dst, ev)
	for {
		select {
		case ev, ok := <-w.events:
			if !ok {
				return dst, true // the next call reports the end
			}
			dst = append(dst, ev)
		default:
			return dst, true
		}
	}
}
func (w *fakeWorker) Done() <-chan struct{} { return w.done }
func (w *fakeWorker) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
func (w *fakeWorker) Shutdown(ctx context.Context) ([]string, error) {
	w.mu.Lock()
	w.shutdown++
	w.mu.Unlock()
	if w.hangShutdown {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	w.finish(nil)
	return []string{"teardown ok"}, nil
}
func (w *fakeWorker) Kill(reason protocol.KillReason) {
	w.mu.Lock()
	w.kills = append(w.kills, string(reason))
	w.mu.Unlock()
	w.finish(errKilled)
}

// finish makes the worker terminal with err (once).
func (w *fakeWorker) finish(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.finished {
		return
	}
	w.finished, w.err = true, err
	close(w.events)
	close(w.done)
}

// emit sends events with the given sequences (0 lets the session assign).
func (w *fakeWorker) emit(t testing.TB, seqs ...uint64) {
	t.Helper()
	for _, seq := range seqs {
		w.send(t, dataChange(seq, 1, 1, int32(seq)))
	}
}

func (w *fakeWorker) send(t testing.TB, ev *mxgatewayv1.Event) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.finished {
		t.Fatalf("fake worker: send after finish")
	}
	w.events <- fakeEvent(ev)
}

// largeEvent is the size from which the fake worker hands an event over as
// a message rather than encoded (both are real paths: protocol.EventOf is
// the gateway's own events'), so that a -race run of the 8 MiB tests does
// not spend its time encoding and decoding the values.
const largeEvent = 1 << 20

func fakeEvent(ev *mxgatewayv1.Event) *protocol.Event {
	if n := proto.Size(ev); n >= largeEvent {
		return protocol.EventOf(ev, n)
	}
	return wireEvent(ev)
}

func (w *fakeWorker) killCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.kills)
}

func dataChange(seq uint64, server, item, v int32) *mxgatewayv1.Event {
	return &mxgatewayv1.Event{
		Sequence: seq,
		Family:   mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE,
		Body: &mxgatewayv1.Event_DataChange{DataChange: &mxgatewayv1.OnDataChange{
			ServerHandle: server,
			ItemHandle:   item,
			Value:        &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_Int32Value{Int32Value: v}},
		}},
	}
}

func writeComplete(seq uint64, server, item int32) *mxgatewayv1.Event {
	return &mxgatewayv1.Event{
		Sequence: seq,
		Family:   mxgatewayv1.EventFamily_EVENT_FAMILY_ON_WRITE_COMPLETE,
		Body: &mxgatewayv1.Event_WriteComplete{WriteComplete: &mxgatewayv1.OnWriteComplete{
			ServerHandle: server, ItemHandle: item,
		}},
	}
}

// fakeClock is a settable clock that counts how often it was read.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	reads int
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	return c.t
}

// Reads is how often Now was called.
func (c *fakeClock) Reads() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// harness builds a Manager whose launcher hands out fake workers.
type harness struct {
	t       *testing.T
	m       *Manager
	mu      sync.Mutex
	workers map[string]*fakeWorker
	prepare func(w *fakeWorker) // optional, before the worker is returned
}

func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	h := &harness{t: t, workers: make(map[string]*fakeWorker)}
	if opts.Launch == nil {
		opts.Launch = func(ctx context.Context, id string) (Worker, error) {
			w := newFakeWorker()
			if h.prepare != nil {
				h.prepare(w)
			}
			h.mu.Lock()
			h.workers[id] = w
			h.mu.Unlock()
			return w, nil
		}
	}
	m, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.m = m
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

func (h *harness) open() (*Session, *fakeWorker) {
	h.t.Helper()
	s, err := h.m.Open(context.Background(), OpenRequest{ClientName: "test", OwnerKeyID: "key1"})
	if err != nil {
		h.t.Fatalf("Open: %v", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return s, h.workers[s.ID()]
}

// wireEvent is ev as the worker client hands it over: encoded, as it
// crossed the pipe.
func wireEvent(ev *mxgatewayv1.Event) *protocol.Event {
	b, err := proto.Marshal(ev)
	if err != nil {
		panic(err)
	}
	e, err := protocol.DecodeEvent(b, len(b))
	if err != nil {
		panic(err)
	}
	return e
}

// next reads one event with a deadline, decoded as a client sees it.
func next(t testing.TB, sub *Subscription) (*mxgatewayv1.Event, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ev, err := sub.Next(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next: no event within 5s")
	}
	if err != nil {
		return nil, err
	}
	if ev.Bytes >= largeEvent {
		return ev.Msg(), nil
	}
	return clientView(t, ev), nil
}

// clientView decodes ev's client-visible encoding, as a stream sends it.
func clientView(t testing.TB, ev *protocol.Event) *mxgatewayv1.Event {
	t.Helper()
	enc, err := ev.Encoded()
	if err != nil {
		t.Fatalf("Encoded: %v", err)
	}
	m := &mxgatewayv1.Event{}
	if err := proto.Unmarshal(enc, m); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return m
}

// expectSeqs reads events and checks their sequences.
func expectSeqs(t testing.TB, sub *Subscription, seqs ...uint64) {
	t.Helper()
	for _, want := range seqs {
		ev, err := next(t, sub)
		if err != nil {
			t.Fatalf("Next: want sequence %d, got error %v", want, err)
		}
		if ev.GetSequence() != want || ev.GetGatewayGenerated() {
			t.Fatalf("Next: want sequence %d, got %d (generated=%v)", want, ev.GetSequence(), ev.GetGatewayGenerated())
		}
	}
}

func waitLastSeq(t testing.TB, s *Session, seq uint64) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, func() error {
		if got := s.Info().LastSequence; got != seq {
			return fmt.Errorf("last sequence %d, want %d", got, seq)
		}
		return nil
	})
}
