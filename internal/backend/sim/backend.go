package sim

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	"github.com/mxgateway/mxgateway/internal/backend"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The real component's identity; the simulator reports it with Simulated
// set so logs never pass for a real host.
const (
	ProgID = "LMXProxy.LMXProxyServer.1"
	CLSID  = "{C30B52F5-2CB5-4760-AF0A-3A344A7EB5DC}"
)

// Errors of the simulator itself (not MXAccess refusals).
var (
	// ErrNotOpen is returned by calls made before Open.
	ErrNotOpen = errors.New("sim: backend not open")
	// ErrCrashed is returned by calls made after the crash fault fired and
	// Options.Exit returned.
	ErrCrashed = errors.New("sim: backend crashed (simulated)")
)

// Options configure a simulator backend.
type Options struct {
	// Model is the Galaxy. Nil loads ModelPath, or the embedded demo Galaxy
	// when ModelPath is "".
	Model *Model
	// ModelPath is a YAML model file, used when Model is nil.
	ModelPath string
	// Profile is "default" (firstBind 300 ms, rebind 50 ms, update 20 ms) or
	// "test" (all 0). "" means "default".
	Profile string
	// Knobs, when set, is the complete knob set (start from DefaultKnobs);
	// nil uses the profile's defaults with the model file's knob overrides.
	Knobs *Knobs
	// Clock is the time source; nil means the wall clock.
	Clock Clock
	// Seed seeds the randomness (random walks, random echo order).
	Seed int64
	// Exit is called by the crash fault on the simulator's STA goroutine,
	// after the Write that requested it returned S_OK. Nil means os.Exit.
	// If Exit returns, the backend is dead: later calls return ErrCrashed.
	Exit func(code int)
	// Logger receives lifecycle and fault logs; nil discards them.
	Logger *slog.Logger

	// Galaxy, when set, makes this a session of a shared Galaxy runtime
	// (see Change): values arrive through Apply, accepted writes leave
	// through Galaxy.Write, and generators run in the runtime only.
	Galaxy Galaxy
	// Snapshot is the runtime's current values, applied by Open before
	// anything is delivered (session role).
	Snapshot []Change
	// InboxChanges and InboxBytes bound the runtime's changes waiting for
	// the STA (session role; see Apply); 0 means DefaultInboxChanges and
	// DefaultInboxBytes.
	InboxChanges int
	InboxBytes   int64
	// OnChange, when set, makes this the runtime's value engine (hub role):
	// it is called on the STA with each batch of changed shared attributes.
	// It must not block.
	OnChange func([]Change)
}

// Backend is the Galaxy simulator. It implements backend.Backend. All
// MXAccess state is owned by one goroutine (the simulated STA) started by
// Open and stopped by Close.
type Backend struct {
	model *Model
	knobs Knobs
	clock Clock
	log   *slog.Logger
	exit  func(int)
	seed  int64

	reqs  chan *request
	abort chan struct{} // closed by Close: interrupts hangs and slow calls
	quit  chan struct{} // closed by Close after teardown: the STA returns
	dead  chan struct{} // closed by the STA goroutine when it returns
	wg    sync.WaitGroup

	galaxy   Galaxy
	interest InterestGalaxy // galaxy, when it filters by interest (interest.go)
	awaiting []awaited      // followed attributes waiting for their current value, by id (STA only)
	lost     bool           // session: the runtime is gone until the next snapshot (STA only)
	// freshWaiters wait off the STA for Interest changes (STA only).
	freshWaiters []freshWaiter
	snapshot     []Change
	onChange     func([]Change)
	changes      []Change // hub: changes since the last flush (STA only)
	origin       uint64   // hub: the session whose write is being applied
	operator     string   // hub: who that write is attributed to

	// sta is held by whoever runs on the simulated STA: the STA goroutine
	// between its waits, or a caller of do that found it idle and runs its
	// request itself (no hand-off to the STA goroutine and back). The
	// goroutine keeps it once it has returned, so nothing runs on a dead
	// STA.
	sta sync.Mutex

	inMu         sync.Mutex // guards inbox and its counts
	inbox        []posted   // posted by Apply and friends, run on the STA
	inChanges    int        // Apply's changes in inbox (and in the pass running them)
	inBytes      int64      // their estimated bytes
	inWaiting    int        // Apply calls waiting for room (tests)
	inboxChanges int        // the bounds (Options.InboxChanges, InboxBytes)
	inboxBytes   int64
	inRoom       chan struct{} // signalled when room is released
	nudge        chan struct{}

	mu        sync.Mutex // guards the fields below; never held across sink calls
	state     int        // stateNew, stateOpen, stateClosed
	deadErr   error
	warnings  []string
	audit     []WriteRecord
	closeOnce sync.Once
	closeWarn []string

	// Owned by the STA goroutine.
	sink       backend.Sink
	rng        *rand.Rand
	q          actionQueue
	seq        uint64
	now        time.Time
	start      time.Time
	attrs      map[*Attribute]*attrState
	regs       map[int32]*registration
	nextReg    int32
	nextItemID uint64
	nextUserID int32
	bound      map[string]bool
	halted     bool
	silenced   bool // teardown: no more events
	fault      faultState
	consumer   *consumerState // the open native alarm consumer, or nil
	qmemo      qualityMemo    // the last quality an event carried
}

const (
	stateNew = iota
	stateOpen
	stateClosed
)

var _ backend.Backend = (*Backend)(nil)

// New validates opts and builds a backend. It starts nothing; Open does.
func New(opts Options) (*Backend, error) {
	m := opts.Model
	var err error
	switch {
	case m != nil:
		if !m.finished {
			if err := m.finish(); err != nil {
				return nil, err
			}
		}
	case opts.ModelPath != "":
		if m, err = LoadModel(opts.ModelPath); err != nil {
			return nil, err
		}
	default:
		m = DemoModel()
	}
	var k Knobs
	if opts.Knobs != nil {
		k = *opts.Knobs
	} else {
		if k, err = DefaultKnobs(opts.Profile); err != nil {
			return nil, err
		}
		if m.knobs != nil {
			m.knobs(&k)
		}
	}
	if err := k.Validate(); err != nil {
		return nil, err
	}
	b := &Backend{
		model: m,
		knobs: k,
		clock: opts.Clock,
		log:   opts.Logger,
		exit:  opts.Exit,
		seed:  opts.Seed,
		reqs:  make(chan *request),
		abort: make(chan struct{}),
		quit:  make(chan struct{}),
		dead:  make(chan struct{}),
		nudge: make(chan struct{}, 1),

		inRoom:       make(chan struct{}, 1),
		inboxChanges: opts.InboxChanges,
		inboxBytes:   opts.InboxBytes,

		galaxy:   opts.Galaxy,
		snapshot: opts.Snapshot,
		onChange: opts.OnChange,
	}
	b.interest, _ = opts.Galaxy.(InterestGalaxy)
	if b.galaxy != nil && b.onChange != nil {
		return nil, errors.New("sim: Galaxy and OnChange are exclusive (session or hub)")
	}
	if b.inboxChanges <= 0 {
		b.inboxChanges = DefaultInboxChanges
	}
	if b.inboxBytes <= 0 {
		b.inboxBytes = DefaultInboxBytes
	}
	if b.clock == nil {
		b.clock = RealClock{}
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.exit == nil {
		b.exit = os.Exit
	}
	return b, nil
}

// Model returns the Galaxy model the backend serves.
func (b *Backend) Model() *Model {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.model
}

// Knobs returns the knobs in effect.
func (b *Backend) Knobs() Knobs { return b.knobs }

// Open starts the simulated STA and event delivery to sink.
func (b *Backend) Open(ctx context.Context, sink backend.Sink) (*mxgatewayv1.BackendInfo, error) {
	if sink == nil {
		return nil, errors.New("sim: nil sink")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	if b.state != stateNew {
		b.mu.Unlock()
		return nil, errors.New("sim: Open called twice or after Close")
	}
	b.state = stateOpen
	b.mu.Unlock()

	b.sink = sink
	b.rng = rand.New(rand.NewPCG(uint64(b.seed), uint64(b.seed)^0x9e3779b97f4a7c15))
	b.start = b.clock.Now()
	b.now = b.start
	b.regs = make(map[int32]*registration)
	b.bound = make(map[string]bool)
	b.nextReg, b.nextUserID = 1, 1
	b.attrs = make(map[*Attribute]*attrState)
	for _, o := range b.model.Objects {
		for _, a := range o.Attributes {
			st := &attrState{obj: o, attr: a, quality: a.Quality, ts: mxtypes.TruncateTime(b.start),
				value: initialValue(a, b.start)}
			b.attrs[a] = st
			if b.galaxy == nil || o.builtin {
				b.startGenerator(st)
			}
		}
	}
	for _, c := range b.snapshot {
		if st := b.sharedAttr(c.Attr); st != nil && c.Value != nil {
			st.value, st.quality, st.ts, st.category = c.Value, c.Quality, mxtypes.TruncateTime(c.Time), c.Category
		}
	}
	b.snapshot = nil
	for i := range b.model.Faults {
		if f := b.model.Faults[i]; b.runsFault(f.Kind) {
			b.scheduleFault(f, b.start.Add(f.At))
		}
	}
	b.wg.Add(1)
	go b.run()
	b.log.Info("simulator open", "galaxy", b.model.Galaxy, "objects", len(b.model.Objects),
		"profile_first_bind", b.knobs.FirstBindDelay, "security", b.knobs.SecurityMode)
	return &mxgatewayv1.BackendInfo{
		Kind:           "sim",
		Description:    fmt.Sprintf("mxgateway Galaxy simulator, not a real MXAccess host (Galaxy %s)", b.model.Galaxy),
		ProgId:         ProgID,
		Clsid:          CLSID,
		InterfaceLevel: int32(b.knobs.MaxInterfaceLevel),
		TypelibVersion: "simulated",
		ModelName:      b.model.Galaxy,
		Simulated:      true,
	}, nil
}

// Close releases the simulated component and stops the STA. The MXAccess
// teardown (unadvise all, remove all, unregister all) is the worker's, over
// its item table, before Close; whatever is still held is released
// implicitly with one warning. No event is delivered after Close returns.
// Safe to call twice.
func (b *Backend) Close() []string {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		st := b.state
		b.state = stateClosed
		b.mu.Unlock()
		if st == stateNew {
			return
		}
		close(b.abort)
		req := &request{fn: func() { b.closeWarn = b.releaseAll() }, done: make(chan struct{})}
		// The STA may halt instead of running the call (a crash that was
		// due when it took it): dead is closed then, and done never is.
		ran := false
		select {
		case b.reqs <- req:
			select {
			case <-req.done:
				ran = true
			case <-b.dead:
				select {
				case <-req.done:
					ran = true
				default:
				}
			}
		case <-b.dead:
		}
		if !ran {
			b.closeWarn = append(b.closeWarn, "sim: backend had crashed; nothing to tear down")
		}
		close(b.quit)
		b.wg.Wait()
		b.log.Info("simulator closed", "warnings", len(b.closeWarn))
	})
	return append([]string(nil), b.closeWarn...)
}

// TakeParityWarnings returns and clears the parity warnings raised since
// the last call.
func (b *Backend) TakeParityWarnings() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.warnings
	b.warnings = nil
	return w
}

func (b *Backend) parityWarning(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	b.mu.Lock()
	b.warnings = append(b.warnings, msg)
	b.mu.Unlock()
}

// Ping round-trips through the STA: it blocks while the STA hangs or runs
// a slow call.
func (b *Backend) Ping(ctx context.Context) error {
	return b.do(ctx, false, func() {})
}

// WriteRecord is one applied or refused write, for tests and audits
// (contract item 19).
type WriteRecord struct {
	Time        time.Time
	Method      string
	Server      int32
	Item        int32
	Reference   string
	Supervisory bool   // connection kind of the item
	User        string // authenticated user name, "" for none
	Verifier    string // verifier user name of WriteSecured, "" for none
	Attribution string // who the audit trail names: the user, or the client name
	Value       *mxgatewayv1.MxValue
	Accepted    bool // false when security refused the write
}

// WriteAudit returns the writes completed so far, oldest first.
func (b *Backend) WriteAudit() []WriteRecord {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]WriteRecord(nil), b.audit...)
}

// ---- the STA ----

type request struct {
	fn   func()
	slow bool
	done chan struct{}
}

// do runs fn on the STA and waits for it. slow requests are delayed by the
// slowCall fault.
func (b *Backend) do(ctx context.Context, slow bool, fn func()) error {
	b.mu.Lock()
	st := b.state
	b.mu.Unlock()
	switch st {
	case stateNew:
		return ErrNotOpen
	case stateClosed:
		return backend.ErrClosed
	}
	req := &request{fn: fn, slow: slow, done: make(chan struct{})}
	if ran, err := b.doInline(req); ran {
		return err
	}
	select {
	case b.reqs <- req:
	case <-b.dead:
		return b.deadError()
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-req.done:
		return nil
	case <-b.dead:
		select {
		case <-req.done:
			return nil
		default:
			return b.deadError()
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *Backend) deadError() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.deadErr != nil {
		return b.deadErr
	}
	return backend.ErrClosed
}

// call runs an MXAccess method on the STA.
func (b *Backend) call(fn func()) error {
	return b.do(context.Background(), true, fn)
}

// doInline runs req on the caller's goroutine when the STA goroutine is
// idle (waiting, not running anything): the simulated STA is whoever holds
// b.sta, so the request runs exactly as the STA goroutine would run it,
// without two goroutine hand-offs. ran is false when the STA is busy (or
// dead): the caller then queues the request. The hub keeps its STA
// goroutine (OnChange is the runtime's, called on it).
func (b *Backend) doInline(req *request) (ran bool, err error) {
	if b.onChange != nil || !b.sta.TryLock() {
		return false, nil
	}
	if b.halted {
		b.sta.Unlock()
		b.poke()
		return false, nil
	}
	var top time.Time
	if len(b.q) > 0 {
		top = b.q[0].due
	}
	ok := b.serve(req)
	// The STA goroutine's wait was set for what was due before: wake it
	// when the call scheduled something sooner, posted something, or
	// halted the simulator (then it returns and closes dead).
	wake := !ok || len(b.q) > 0 && (top.IsZero() || b.q[0].due.Before(top))
	b.sta.Unlock()
	if wake || !b.inboxEmpty() {
		b.poke()
	}
	if !ok {
		return true, b.deadError()
	}
	return true, nil
}

// poke wakes the STA goroutine for a pass.
func (b *Backend) poke() {
	select {
	case b.nudge <- struct{}{}:
	default:
	}
}

func (b *Backend) run() {
	defer b.wg.Done()
	defer close(b.dead)
	b.sta.Lock() // kept on return: see sta
	for {
		b.drainInbox()
		b.runDue()
		b.flushChanges()
		if b.halted {
			return
		}
		// A waiting command goes before the next inbox pass: under a steady
		// stream of the runtime's changes both are always ready, and a
		// bulk command is one call per entry, each waiting for this turn.
		select {
		case req := <-b.reqs:
			if !b.serve(req) {
				return
			}
			continue
		default:
		}
		var timer <-chan time.Time
		stop := func() {}
		if len(b.q) > 0 {
			timer, stop = b.clock.At(b.q[0].due)
		}
		b.sta.Unlock() // a caller may run its request meanwhile (doInline)
		var req *request
		quit := false
		select {
		case <-b.quit:
			quit = true
		case req = <-b.reqs:
		case <-b.nudge:
		case <-timer:
		}
		stop()
		b.sta.Lock()
		if quit || b.halted {
			return
		}
		if req != nil && !b.serve(req) {
			return
		}
	}
}

// serve runs a command on the STA after what is due; false when the
// simulator halted instead.
func (b *Backend) serve(req *request) bool {
	b.runDue()
	if b.halted {
		return false
	}
	if req.slow && b.fault.slowCall > 0 {
		b.slowCallStarted()
		b.wait(b.fault.slowCall)
	}
	b.now = b.clock.Now()
	req.fn()
	close(req.done)
	return true
}

// runsFault reports whether a scripted fault runs in this role: the
// Galaxy-wide quality flip runs in the runtime (or standalone), every other
// fault in the worker it concerns.
func (b *Backend) runsFault(kind string) bool {
	switch {
	case RuntimeFault(kind):
		return false // the runtime's own (internal/galaxy/runtime)
	case b.onChange != nil:
		return kind == FaultQualityFlip
	case b.galaxy != nil:
		return kind != FaultQualityFlip
	}
	return true
}

// runDue runs the actions that are due, oldest first. Actions scheduled
// during this pass wait for the next one, so a long chain (an event storm)
// cannot starve method calls.
func (b *Backend) runDue() {
	limit := b.seq
	now := b.clock.Now()
	for len(b.q) > 0 && !b.halted {
		a := b.q[0]
		if a.due.After(now) || a.seq > limit {
			return
		}
		heap.Pop(&b.q)
		b.now = a.due
		a.fn()
	}
}

// wait blocks the STA for d of clock time, or until Close.
func (b *Backend) wait(d time.Duration) {
	ch, stop := b.clock.At(b.clock.Now().Add(d))
	select {
	case <-ch:
	case <-b.abort:
		stop()
	}
}

// schedule runs fn on the STA at due (never inside the current call).
func (b *Backend) schedule(due time.Time, fn func()) {
	b.seq++
	heap.Push(&b.q, &action{due: due, seq: b.seq, fn: fn})
}

func (b *Backend) after(d time.Duration, fn func()) { b.schedule(b.now.Add(d), fn) }

type action struct {
	due time.Time
	seq uint64
	fn  func()
}

type actionQueue []*action

func (q actionQueue) Len() int { return len(q) }
func (q actionQueue) Less(i, j int) bool {
	if q[i].due.Equal(q[j].due) {
		return q[i].seq < q[j].seq
	}
	return q[i].due.Before(q[j].due)
}
func (q actionQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *actionQueue) Push(x any)   { *q = append(*q, x.(*action)) }
func (q *actionQueue) Pop() any {
	old := *q
	a := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return a
}

// ---- events ----

func (b *Backend) emit(ev *mxgatewayv1.Event) {
	if !b.emitting() {
		return
	}
	ev.WorkerTime = &timestamppb.Timestamp{}
	setWorkerTime(ev.WorkerTime, b.clock.Now())
	b.sink.Event(ev)
}

// emitting reports whether events reach the sink now.
func (b *Backend) emitting() bool {
	return !b.silenced && !b.fault.silentDeath && !b.halted
}

func (b *Backend) okStatuses() []*mxgatewayv1.MxStatus {
	return b.okSpec().build()
}

func (b *Backend) failStatuses(category, source int32, detail int16) []*mxgatewayv1.MxStatus {
	return b.failSpec(category, source, detail).build()
}

func (b *Backend) statuses(success int16, category, source int32, detail int16) []*mxgatewayv1.MxStatus {
	return statusSpec{n: b.knobs.StatusArrayLength, success: success, category: category, source: source, detail: detail}.build()
}

// statusSpec describes a status array before it is built: n copies of one
// entry (mxtypes.NewStatus's arguments). An event built in one block
// (dataChangeEvent) fills a one-entry array in place.
type statusSpec struct {
	n                int
	success, detail  int16
	category, source int32
}

func (b *Backend) okSpec() statusSpec {
	return statusSpec{n: b.knobs.StatusArrayLength, success: b.knobs.StatusSuccessValue}
}

func (b *Backend) failSpec(category, source int32, detail int16) statusSpec {
	return statusSpec{n: b.knobs.StatusArrayLength, category: category, source: source, detail: detail}
}

// build makes the array.
func (s statusSpec) build() []*mxgatewayv1.MxStatus {
	out := make([]*mxgatewayv1.MxStatus, s.n)
	for i := range out {
		out[i] = mxtypes.NewStatus(s.success, s.category, s.source, s.detail)
	}
	return out
}

// fill stores the entry in dst as mxtypes.NewStatus would make it.
func (s statusSpec) fill(dst *mxgatewayv1.MxStatus) {
	dst.Success, dst.SuccessRaw = s.success != 0, int32(s.success)
	dst.Category, dst.CategoryRaw = mxgatewayv1.MxStatusCategory(s.category), s.category
	dst.DetectedBy, dst.DetectedByRaw = mxgatewayv1.MxStatusSource(s.source), s.source
	dst.Detail = int32(s.detail)
}

// Status sources and categories used by the simulator.
const (
	srcRequestingLmx = int32(mxgatewayv1.MxStatusSource_MX_STATUS_SOURCE_REQUESTING_LMX)
	srcRespondingLmx = int32(mxgatewayv1.MxStatusSource_MX_STATUS_SOURCE_RESPONDING_LMX)
	srcRespondingAO  = int32(mxgatewayv1.MxStatusSource_MX_STATUS_SOURCE_RESPONDING_AUTOMATION_OBJECT)
	catOk            = int32(mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_OK)
	catPending       = int32(mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_PENDING)
	catConfig        = int32(mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_CONFIGURATION_ERROR)
	catOperational   = int32(mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_OPERATIONAL_ERROR)
	catSecurity      = int32(mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_SECURITY_ERROR)
)

// detailArrayWithoutBrackets is the one known MXAccess detail code.
const detailArrayWithoutBrackets = 1003
