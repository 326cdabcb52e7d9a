package sim

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/itemtable"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

const testModelYAML = `
galaxy: TestGalaxy
users:
  - {name: op, password: op1, permissions: [operate]}
  - {name: op2, password: op2, permissions: [operate]}
  - {name: sup, password: sup1, permissions: [operate, tune, verify]}
  - {name: eng, password: eng1, permissions: [operate, tune, configure, verify]}
objects:
  - tag: Obj
    attributes:
      - {name: PV, type: MxDouble, value: 1.5}
      - {name: Int, type: MxInteger, value: 5}
      - {name: Flt, type: MxFloat, value: 2.5}
      - {name: Bool, type: MxBoolean}
      - {name: Str, type: MxString, value: hello}
      - {name: Stamp, type: MxTime, value: "2025-01-01T00:00:00Z"}
      - {name: Elapsed, type: MxElapsedTime, value: 90}
      - {name: Arr, type: MxInteger, array: 3, value: [1, 2, 3]}
      - {name: StrArr, type: MxString, array: 2, value: [a, b]}
      - {name: Free, type: MxInteger}
      - {name: Op, type: MxInteger, security: Operate, category: 3, locked: true}
      - {name: Sec, type: MxInteger, security: SecuredWrite}
      - {name: Ver, type: MxInteger, security: VerifiedWrite}
      - {name: Tun, type: MxInteger, security: Tune}
      - {name: Cfg, type: MxInteger, security: Configure}
      - {name: RO, type: MxInteger, security: ViewOnly}
      - {name: Alarm, type: MxBoolean}
      - {name: Alarm.Quality, type: MxString, value: attr}
      - {name: Struct, type: MxQualifiedStruct}
      - {name: Struct.Field, type: MxInteger, value: 7}
      - {name: Nothing, type: MxNoData}
      - {name: Ramp, type: MxInteger, value: 0, generator: {kind: ramp, every: 1s, min: 0, max: 1000, step: 1}}
      - name: Script
        type: MxDouble
        value: 1
        generator:
          kind: script
          steps:
            - {after: 1s, quality: 24}
            - {after: 1s, quality: 8}
            - {after: 1s, value: 2, quality: 192}
  - tag: Other
    attributes:
      - {name: PV, type: MxInteger, value: 9}
`

var testStart = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// recorder is a Sink that records events and notices concurrent calls.
type recorder struct {
	mu         sync.Mutex
	events     []*mxgatewayv1.Event
	inside     atomic.Int32
	concurrent atomic.Bool
	hook       func(*mxgatewayv1.Event)
}

func (r *recorder) Event(ev *mxgatewayv1.Event) {
	if r.inside.Add(1) != 1 {
		r.concurrent.Store(true)
	}
	defer r.inside.Add(-1)
	if r.hook != nil {
		r.hook(ev)
	}
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

func (r *recorder) take() []*mxgatewayv1.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events = nil
	return ev
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

type env struct {
	t     *testing.T
	b     *Backend
	hub   *Backend         // the Galaxy runtime's value engine; nil when standalone
	table *itemtable.Table // what a worker would know: reg, add and sub apply to it
	rec   *recorder
	clk   *FakeClock
	exits chan int
	info  *mxgatewayv1.BackendInfo
}

type envOpt struct {
	// standalone runs the simulator without a Galaxy runtime (its own
	// private Galaxy); by default every env is a session of an in-process
	// runtime, as a worker is of mxgateway galaxy.
	standalone bool
	model      string
	knobs      func(*Knobs)
	hook       func(*mxgatewayv1.Event)
	// inbox bounds the runtime's changes waiting for the session's STA
	// (Options.InboxChanges; 0 is the default).
	inbox int
}

// newEnv starts a simulator on a fake clock with the default profile's
// delays (300/50/20 ms), so timing is observable and deterministic.
func newEnv(t *testing.T, o envOpt) *env {
	t.Helper()
	src := o.model
	if src == "" {
		src = testModelYAML
	}
	m, err := ParseModel([]byte(src), "test.yaml")
	if err != nil {
		t.Fatalf("model: %v", err)
	}
	k, err := DefaultKnobs(ProfileDefault)
	if err != nil {
		t.Fatal(err)
	}
	if m.knobs != nil {
		m.knobs(&k)
	}
	if o.knobs != nil {
		o.knobs(&k)
	}
	e := &env{t: t, table: itemtable.New(), rec: &recorder{hook: o.hook}, clk: NewFakeClock(testStart), exits: make(chan int, 4)}
	opts := Options{Model: m, Knobs: &k, Clock: e.clk, Seed: 1, Exit: func(c int) { e.exits <- c }, InboxChanges: o.inbox}
	if !o.standalone {
		e.hub, opts.Snapshot = newTestHub(t, src, e.clk, func(batch []Change) {
			for i := range batch {
				batch[i].Own = batch[i].Origin == 1
			}
			e.b.Apply(batch)
		})
		opts.Galaxy = hubLink{e.hub}
	}
	e.b, err = New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.info, err = e.b.Open(context.Background(), e.rec)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { e.b.Close() })
	return e
}

// newTestHub starts a Galaxy runtime value engine on model src, reporting
// its changes to onChange, and returns it with its first snapshot.
func newTestHub(t *testing.T, src string, clk Clock, onChange func([]Change)) (*Backend, []Change) {
	t.Helper()
	m, err := ParseModel([]byte(src), "hub.yaml")
	if err != nil {
		t.Fatalf("hub model: %v", err)
	}
	hub, err := New(Options{Model: m, Profile: ProfileTest, Clock: clk, Seed: 1, OnChange: onChange,
		Exit: func(c int) { t.Errorf("hub exit %d", c) }})
	if err != nil {
		t.Fatalf("hub: %v", err)
	}
	if _, err := hub.Open(context.Background(), discardSink{}); err != nil {
		t.Fatalf("hub Open: %v", err)
	}
	t.Cleanup(func() { hub.Close() })
	snap, err := hub.Values(context.Background())
	if err != nil {
		t.Fatalf("hub Values: %v", err)
	}
	return hub, snap
}

// hubLink is the in-process Galaxy link of a test session.
type hubLink struct{ hub *Backend }

func (l hubLink) Write(attr int32, v *mxgatewayv1.MxValue, ts time.Time, force bool, operator string) {
	l.hub.ApplyWrite(attr, v, ts, force, 1, operator)
}

type discardSink struct{}

func (discardSink) Event(*mxgatewayv1.Event) {}

// settle runs the STAs (the session's and the runtime's) until nothing is
// due at the current fake time and nothing is in flight between them.
func (e *env) settle() {
	e.t.Helper()
	for i := 0; i < 1_000_000; i++ {
		busy := false
		for _, b := range []*Backend{e.hub, e.b} {
			if b == nil {
				continue
			}
			err := b.do(context.Background(), false, func() {
				busy = busy || len(b.q) > 0 && !b.q[0].due.After(b.clock.Now()) || !b.inboxEmpty() || b.applying()
			})
			if err != nil {
				e.t.Fatalf("settle: %v", err)
			}
		}
		if !busy {
			return
		}
	}
	e.t.Fatal("simulator never settled")
}

// applying reports whether changes from Apply are queued or in the pass
// running them: a call can be served in the middle of a batch
// (serveWaiting), where the inbox is empty but the rest of the batch, and
// its events, are still to come.
func (b *Backend) applying() bool {
	b.inMu.Lock()
	defer b.inMu.Unlock()
	return b.inChanges > 0
}

// advance moves the fake clock forward by d, stopping at every due action
// of either STA on the way, as the wall clock would.
func (e *env) advance(d time.Duration) {
	e.t.Helper()
	e.settle()
	target := e.clk.Now().Add(d)
	for {
		next := target
		for _, b := range []*Backend{e.hub, e.b} {
			if b == nil {
				continue
			}
			if err := b.do(context.Background(), false, func() {
				if len(b.q) > 0 && b.q[0].due.Before(next) {
					next = b.q[0].due
				}
			}); err != nil {
				e.t.Fatalf("advance: %v", err)
			}
		}
		if next.After(e.clk.Now()) {
			e.clk.Set(next)
		}
		e.settle()
		if !next.Before(target) {
			return
		}
	}
}

func (e *env) reg() int32 {
	e.t.Helper()
	h, err := e.b.Register("test-client")
	if err != nil || h <= 0 {
		e.t.Fatalf("Register = %d, %v", h, err)
	}
	e.table.Apply(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{}}},
		&mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK,
			Result: &mxgatewayv1.Reply_Register{Register: &mxgatewayv1.RegisterResult{ServerHandle: h}}})
	return h
}

func (e *env) add(h int32, ref string) int32 {
	e.t.Helper()
	hi, err := e.b.AddItem(h, ref)
	if err != nil || hi <= 0 {
		e.t.Fatalf("AddItem(%q) = %d, %v", ref, hi, err)
	}
	e.table.Apply(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{ServerHandle: h, ItemDefinition: ref}}},
		&mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK,
			Result: &mxgatewayv1.Reply_ItemHandle{ItemHandle: &mxgatewayv1.ItemHandleResult{ItemHandle: hi}}})
	return hi
}

// sub adds and advises ref and returns its handle and first OnDataChange.
func (e *env) sub(h int32, ref string) (int32, *mxgatewayv1.OnDataChange) {
	e.t.Helper()
	hi := e.add(h, ref)
	if err := e.b.Advise(h, hi); err != nil {
		e.t.Fatalf("Advise(%q): %v", ref, err)
	}
	e.table.Apply(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Advise{Advise: &mxgatewayv1.AdviseCommand{ServerHandle: h, ItemHandle: hi}}},
		&mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK})
	e.advance(e.b.knobs.FirstBindDelay)
	dcs := dataChanges(e.rec.take())
	if len(dcs) != 1 {
		e.t.Fatalf("%q: %d initial OnDataChange, want 1", ref, len(dcs))
	}
	return hi, dcs[0]
}

func (e *env) write(h, hi int32, v *mxgatewayv1.MxValue) {
	e.t.Helper()
	if err := e.b.Write(h, hi, v, 0); err != nil {
		e.t.Fatalf("Write: %v", err)
	}
}

func dataChanges(evs []*mxgatewayv1.Event) []*mxgatewayv1.OnDataChange {
	var out []*mxgatewayv1.OnDataChange
	for _, ev := range evs {
		if dc := ev.GetDataChange(); dc != nil {
			out = append(out, dc)
		}
	}
	return out
}

func writeCompletes(evs []*mxgatewayv1.Event) []*mxgatewayv1.OnWriteComplete {
	var out []*mxgatewayv1.OnWriteComplete
	for _, ev := range evs {
		if wc := ev.GetWriteComplete(); wc != nil {
			out = append(out, wc)
		}
	}
	return out
}

func families(evs []*mxgatewayv1.Event) []mxgatewayv1.EventFamily {
	out := make([]mxgatewayv1.EventFamily, len(evs))
	for i, ev := range evs {
		out[i] = ev.GetFamily()
	}
	return out
}

func hresult(err error) int32 { return backend.HResultOf(err) }

func isNotSupported(err error) bool {
	var ns *backend.NotSupportedError
	return errors.As(err, &ns)
}

func category(st *mxgatewayv1.MxStatus) int32 { return st.GetCategoryRaw() }
