package sim

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/mxgateway/mxgateway/internal/itemref"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
)

// The simulator runs in one of three roles:
//
//   - standalone (Options.Galaxy and Options.OnChange nil): one private
//     Galaxy, values and generators included, as a worker without a runtime;
//   - session (Options.Galaxy set): the per-client MXAccess state of one
//     worker; values come from the shared Galaxy runtime through Apply, and
//     accepted writes go to it through Galaxy.Write. Generators do not run
//     here (they run once, in the runtime). A link that is an
//     InterestGalaxy delivers only the attributes the session advises
//     (interest.go);
//   - hub (Options.OnChange set): the value engine of the Galaxy runtime.
//     It runs the generators and applies writes; every change of a shared
//     attribute is reported to OnChange in batches.
//
// The built-in Sim object stays local in every role: its faults are the
// faults of one worker.

// Change is one change of a shared attribute, as it travels between the
// Galaxy runtime and the sessions.
type Change struct {
	// Attr is the attribute's ordinal in its model (Model.AttributeAt).
	Attr int32
	// Value is the new value; never mutated once handed over.
	Value *mxgatewayv1.MxValue
	// Quality is the OPC DA quality the attribute now reads.
	Quality uint16
	// Category is the status category of a Galaxy-level failure (a platform
	// that is down); 0 means the attribute's status is success.
	Category int32
	// Time is the attribute's timestamp.
	Time time.Time
	// ForceTime records a timestamp-only change (Write2 of the current
	// value).
	ForceTime bool
	// Origin is the runtime's id of the session whose write made the
	// change, 0 for the runtime's own changes (hub role).
	Origin uint64
	// Own marks the echo of this session's own write (session role): the
	// session applied it already, and skips it while later writes of its
	// own are still on their way.
	Own bool
	// Operator is who a session's write is attributed to (WriteRecord's
	// Attribution: the Galaxy user of a secured write or of a write with
	// a user id, else the registration's client name); hub role, for the
	// runtime's alarm evaluation (the acknowledging operator).
	Operator string
}

// Galaxy is a session's link to the shared Galaxy runtime.
type Galaxy interface {
	// Write hands an accepted write to the runtime: the attribute's value
	// and timestamp after the write, and who the write is attributed to
	// (Change.Operator). It is called on the STA and must not block.
	Write(attr int32, value *mxgatewayv1.MxValue, ts time.Time, forceTime bool, operator string)
}

// Default bounds of the changes Apply queues for the STA (Options
// InboxChanges, InboxBytes).
const (
	DefaultInboxChanges = 100_000
	DefaultInboxBytes   = 32 << 20
)

// changeOverhead is what a Change costs in the inbox besides its value.
const changeOverhead = 64

// Apply queues changes from the Galaxy runtime onto the STA, where they
// reach the advised items like any other change. Safe from any goroutine.
//
// The changes waiting for the STA are bounded by count and by bytes
// (Options.InboxChanges, InboxBytes): while they are full Apply waits for
// the STA to make room, so a runtime that sends faster than the session
// applies is held back by its connection (flow control), and nothing is
// coalesced or dropped here. A batch is always admitted to an empty inbox.
// Apply returns without queueing once the simulator is closed or dead.
func (b *Backend) Apply(changes []Change) {
	if len(changes) == 0 {
		return
	}
	size := int64(0)
	for i := range changes {
		size += int64(proto.Size(changes[i].Value)) + changeOverhead
	}
	b.inMu.Lock()
	for b.inChanges > 0 && (b.inChanges+len(changes) > b.inboxChanges || b.inBytes+size > b.inboxBytes) {
		b.inWaiting++
		b.inMu.Unlock()
		select {
		case <-b.inRoom:
		case <-b.abort:
		case <-b.dead:
		}
		b.inMu.Lock()
		b.inWaiting--
		if b.closing() {
			b.inMu.Unlock()
			return
		}
	}
	b.inChanges += len(changes)
	b.inBytes += size
	b.inbox = append(b.inbox, posted{changes: len(changes), bytes: size, fn: func() {
		for i := range changes {
			b.applyChange(changes[i])
			b.serveWaiting()
		}
	}})
	b.inMu.Unlock()
	b.poke()
}

// serveWaiting runs a call that waits for the STA, if any (STA only, in
// the middle of a posted function: the call sees the batch half applied,
// as it would between two batches). A batch from the runtime looks after
// every change: a bulk command is one call per entry, so under a steady
// stream of changes a call served only every 64 changes held a
// 50,000-item SubscribeBulk for minutes (every 64 changes: about 1,100
// calls/s; the look is one non-blocking receive).
func (b *Backend) serveWaiting() {
	select {
	case req := <-b.reqs:
		b.serve(req)
	default:
	}
}

// closing reports whether Close began or the STA died.
func (b *Backend) closing() bool {
	select {
	case <-b.abort:
		return true
	case <-b.dead:
		return true
	default:
		return false
	}
}

// ApplyWrite applies a write that session origin accepted (hub role): the
// value and timestamp change, the quality is the runtime's own. Every write
// is echoed with its origin, changed or not, so the session can count its
// writes in flight. A value of another shape than the attribute's is
// echoed with the runtime's value. It returns at once.
func (b *Backend) ApplyWrite(attr int32, value *mxgatewayv1.MxValue, ts time.Time, forceTime bool, origin uint64, operator string) {
	b.post(func() {
		b.applyWrite1(Change{Attr: attr, Value: value, Time: ts, ForceTime: forceTime, Operator: operator}, origin)
	})
}

// ApplyWrites applies a batch of writes of session origin and waits until
// they are applied: a session that writes faster than the runtime applies
// is held back instead of queueing without bound.
func (b *Backend) ApplyWrites(ctx context.Context, writes []Change, origin uint64) error {
	return b.do(ctx, false, func() {
		for _, w := range writes {
			b.applyWrite1(w, origin)
		}
	})
}

func (b *Backend) applyWrite1(w Change, origin uint64) {
	st := b.sharedAttr(w.Attr)
	if st == nil {
		return
	}
	b.origin, b.operator = origin, w.Operator
	defer func() { b.origin, b.operator = 0, "" }()
	v, ok := coerce(w.Value, st.attr.Type, st.attr.Dimension, true)
	if !ok {
		b.log.Warn("galaxy: write of the wrong shape ignored", "attribute", st.obj.Tag+"."+st.attr.Name)
	} else if b.setAttr(st, v, st.quality, w.Time, w.ForceTime) || st.ts.Equal(mxtypes.TruncateTime(w.Time)) && w.ForceTime {
		return
	}
	b.noteChange(st, false)
}

// GalaxyLost marks every shared attribute as the runtime's platform being
// unreachable (session role): quality bad, communication failure, value
// kept, until the next snapshot re-reports them.
func (b *Backend) GalaxyLost() {
	b.post(func() {
		b.lost = true
		for _, a := range b.model.attrList {
			st := b.attrs[a]
			if st == nil || st.obj.builtin {
				continue
			}
			st.category = catCommunication
			b.setAttr(st, st.value, mxtypes.QualityBadCommFailure, b.now, false)
		}
		b.runtimeLost()
	})
}

// Values returns the current value of every shared attribute (hub role:
// the runtime's first snapshot).
func (b *Backend) Values(ctx context.Context) ([]Change, error) {
	var out []Change
	err := b.do(ctx, false, func() {
		out = make([]Change, 0, len(b.model.attrList))
		for _, a := range b.model.attrList {
			st := b.attrs[a]
			if st == nil || st.obj.builtin {
				continue
			}
			out = append(out, st.change(false))
		}
	})
	return out, err
}

// SetFirstBindDelay changes the delay of first binds (the runtime's slow
// first bind fault, and its end).
func (b *Backend) SetFirstBindDelay(d time.Duration) {
	b.post(func() { b.knobs.FirstBindDelay = max(d, 0) })
}

func (st *attrState) change(forceTime bool) Change {
	return Change{Attr: st.attr.ord, Value: st.value, Quality: st.quality, Category: st.category,
		Time: st.ts, ForceTime: forceTime}
}

// sharedAttr returns the state of a shared (non-Sim) attribute by ordinal.
func (b *Backend) sharedAttr(ord int32) *attrState {
	if ord < 0 || int(ord) >= len(b.model.attrList) {
		return nil
	}
	st := b.attrs[b.model.attrList[ord]]
	if st == nil || st.obj.builtin {
		return nil
	}
	return st
}

func (b *Backend) applyChange(c Change) {
	st := b.sharedAttr(c.Attr)
	if st == nil || c.Value == nil {
		return
	}
	if c.Own && st.inFlight > 0 {
		st.inFlight--
		if st.inFlight > 0 {
			return
		}
	}
	if st.category != c.Category {
		st.category = c.Category
		if c.Quality == st.quality && valueEqual(c.Value, st.value) {
			// Only the status changed: items still see it.
			for _, it := range st.subs {
				it.hasLast = false
				b.deliver(it)
			}
			return
		}
	}
	b.setAttr(st, c.Value, c.Quality, c.Time, c.ForceTime)
}

// noteChange records a change of a shared attribute for OnChange (hub).
func (b *Backend) noteChange(st *attrState, forceTime bool) {
	if b.onChange == nil || st.obj.builtin {
		return
	}
	c := st.change(forceTime)
	c.Origin, c.Operator = b.origin, b.operator
	b.changes = append(b.changes, c)
}

// flushChanges hands the recorded changes to OnChange, one batch per STA
// pass.
func (b *Backend) flushChanges() {
	if len(b.changes) == 0 {
		return
	}
	batch := b.changes
	b.changes = nil
	b.onChange(batch)
}

// posted is one function queued for the STA; changes and bytes are what
// it holds of Apply's bound.
type posted struct {
	fn      func()
	changes int
	bytes   int64
}

// post queues fn for the STA without waiting. Only Apply's changes count
// toward the inbox bound; the other posts are one per control action.
func (b *Backend) post(fn func()) {
	b.inMu.Lock()
	b.inbox = append(b.inbox, posted{fn: fn})
	b.inMu.Unlock()
	b.poke()
}

// drainInbox runs the functions posted before the call, in order (STA
// only). What is posted meanwhile waits for the next pass (its post left a
// nudge): a steady stream of the runtime's changes must not keep the STA
// from the commands, the due actions and the flush of changes that come
// between passes. Draining until the inbox was empty starved them: at
// 100,000 changes/s a 10,000-item SubscribeBulk waited more than 30 s.
// A command that arrives during a pass runs after the post in progress,
// not after the pass: a bulk command is one call per entry, and a pass
// under load is up to the inbox bound (Options.InboxChanges) long.
func (b *Backend) drainInbox() {
	b.inMu.Lock()
	fns := b.inbox
	b.inbox = nil
	b.inMu.Unlock()
	if len(fns) == 0 {
		return
	}
	// TestBatchServesWaitingCallAfterEachChange holds the STA on this
	// clock read, the one point where it holds a batch not yet started.
	b.now = b.clock.Now()
	for i, p := range fns {
		if b.halted {
			b.release(fns[i:])
			return
		}
		p.fn()
		if p.changes > 0 {
			b.release(fns[i : i+1])
		}
		select {
		case req := <-b.reqs:
			if !b.serve(req) {
				b.release(fns[i+1:])
				return
			}
		default:
		}
	}
}

// release gives back the room of posts that ran (or never will).
func (b *Backend) release(ps []posted) {
	n, size := 0, int64(0)
	for _, p := range ps {
		n += p.changes
		size += p.bytes
	}
	if n == 0 {
		return
	}
	b.inMu.Lock()
	b.inChanges -= n
	b.inBytes -= size
	b.inMu.Unlock()
	select {
	case b.inRoom <- struct{}{}:
	default:
	}
}

// inboxEmpty reports whether nothing is posted (tests).
func (b *Backend) inboxEmpty() bool {
	b.inMu.Lock()
	defer b.inMu.Unlock()
	return len(b.inbox) == 0
}

// catCommunication is MxCategoryCommunicationError.
const catCommunication = int32(mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_COMMUNICATION_ERROR)

// Resync applies the snapshot of a runtime the session reconnected to
// (session role): the writes it had in flight are gone with the old
// connection, and every value is re-reported as the runtime holds it.
func (b *Backend) Resync(snapshot []Change) {
	b.post(func() {
		b.lost = false
		for _, a := range b.model.attrList {
			if st := b.attrs[a]; st != nil {
				st.inFlight = 0
			}
		}
		for i := range snapshot {
			c := snapshot[i]
			c.Own = false
			b.applyChange(c)
		}
	})
}

// Redeploy replaces the model (session role: the runtime deployed a new
// one). Every item is resolved again against the new model: an item whose
// object or attribute is gone reads as an unknown reference (quality bad,
// configuration error), a changed attribute reports its new value, an
// unchanged one sends nothing. Writes in flight complete against the
// attribute they were accepted for.
func (b *Backend) Redeploy(m *Model, snapshot []Change) {
	b.post(func() {
		if !m.finished {
			if err := m.finish(); err != nil {
				b.log.Error("deploy refused", "error", err)
				return
			}
		}
		b.lost = false
		old := b.attrs
		prev := b.followedByRef()
		b.attrs = make(map[*Attribute]*attrState, len(m.attrList))
		for _, o := range m.Objects {
			for _, a := range o.Attributes {
				if o.builtin {
					// The Sim object and its faults stay the worker's.
					if prev := b.model.Object(SimObjectTag).Attribute(a.Name); prev != nil && old[prev] != nil {
						st := old[prev]
						st.obj, st.attr = o, a
						b.attrs[a] = st
						continue
					}
				}
				st := &attrState{obj: o, attr: a, quality: a.Quality, ts: mxtypes.TruncateTime(b.now),
					value: initialValue(a, b.now)}
				b.carryInterest(st, prev)
				b.attrs[a] = st
			}
		}
		b.mu.Lock()
		b.model = m
		b.mu.Unlock()
		for _, c := range snapshot {
			if st := b.sharedAttr(c.Attr); st != nil && c.Value != nil {
				st.value, st.quality, st.ts, st.category = c.Value, c.Quality, mxtypes.TruncateTime(c.Time), c.Category
			}
		}
		for _, reg := range b.sortedRegs() {
			for _, it := range reg.sortedItems() {
				if it.advised && it.readsAttribute() {
					it.st.unsubscribe(it)
				}
				r, perr := itemref.Parse(it.ref)
				b.resolve(it, r, perr)
				if it.advised && it.readsAttribute() {
					it.st.subscribe(it)
				}
				b.deliver(it)
			}
		}
		if b.consumer != nil {
			b.pinConsumer() // the new model's alarms; the old states are gone
		}
		b.refollow(prev)
		b.log.Info("simulator redeployed", "galaxy", m.Galaxy, "objects", len(m.Objects))
	})
}

// Storm changes a shared MxInteger attribute n times, counting up (hub
// role: the runtime's storm, which every advising session receives), in
// chunks so calls and other changes still run in between. It reports
// false for an attribute that is not a shared integer scalar.
func (b *Backend) Storm(ctx context.Context, ref string, n int) (bool, error) {
	ok := false
	err := b.do(ctx, false, func() {
		r, err := itemref.Parse(ref)
		if err != nil {
			return
		}
		o := b.model.Object(r.Object)
		if o == nil || o.builtin {
			return
		}
		a := o.Attribute(r.AttributeOrDefault())
		if a == nil || a.Type != tInt || a.Dimension != 0 {
			return
		}
		ok = true
		st := b.attrs[a]
		var step func(left int)
		step = func(left int) {
			k := min(left, stormChunk)
			for i := 0; i < k; i++ {
				b.setAttr(st, intValue(st.value.GetInt32Value()+1), st.quality, b.now, false)
			}
			if left > k {
				b.after(0, func() { step(left - k) })
			}
		}
		b.after(0, func() { step(n) })
	})
	return ok, err
}

// FirstBindDelay returns the first-bind delay in force (tests of the
// runtime's slow first bind).
func (b *Backend) FirstBindDelay(ctx context.Context) (time.Duration, error) {
	var d time.Duration
	err := b.do(ctx, false, func() { d = b.knobs.FirstBindDelay })
	return d, err
}
