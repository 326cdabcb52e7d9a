package sim

import "strings"

// InterestGalaxy is a Galaxy link that delivers only the changes of the
// attributes the session follows: those with an advised item. The
// simulator tells it (Interest) when an attribute's first item advises and
// when its last one stops; until the link reports the attribute's current
// value applied (InterestApplied), the attribute is stale: its first
// OnDataChange and the writes to it wait, so an advise (a transient read
// included) starts from the Galaxy's value, not from a copy the session
// stopped following.
type InterestGalaxy interface {
	Galaxy
	// Interest adds (on) or removes the shared attribute ref
	// ("Tag.Attribute") to or from the session's interest set and returns
	// the change's number, increasing. It is called on the STA and must
	// not block.
	Interest(ref string, on bool) uint64
}

// awaited is an attribute that waits for Interest change id.
type awaited struct {
	st *attrState
	id uint64
}

// attrRef is an attribute's interest reference.
func attrRef(st *attrState) string { return AttributeRef(st.obj, st.attr) }

// AttributeRef is the interest reference of attribute a of object o
// ("Tag.Attribute"); Model.SharedAttribute resolves it.
func AttributeRef(o *Object, a *Attribute) string { return o.Tag + "." + a.Name }

// SharedAttribute returns the ordinal of the shared (non-Sim) attribute
// that the interest reference ref names (case-insensitive).
func (m *Model) SharedAttribute(ref string) (int32, bool) {
	tag, name, ok := strings.Cut(ref, ".") // a tag has no dot; a name may
	if !ok {
		return 0, false
	}
	o := m.Object(tag)
	if o == nil || o.builtin {
		return 0, false
	}
	a := o.Attribute(name)
	if a == nil {
		return 0, false
	}
	return a.ord, true
}

// stale reports whether st's value may lag the Galaxy's (session role with
// an interest link): it is not followed, or its current value has not
// arrived yet. While the runtime is lost every value is the session's own
// (bad, communication failure), and none waits.
func (b *Backend) stale(st *attrState) bool {
	return b.interest != nil && !st.fresh && !b.lost && !st.obj.builtin
}

// whenFresh runs fn now, or once st's current value has arrived.
func (b *Backend) whenFresh(st *attrState, fn func()) {
	if st == nil || !b.stale(st) {
		fn()
		return
	}
	st.waiting = append(st.waiting, fn)
}

// follow adds st to the interest set when its first item advised.
func (b *Backend) follow(st *attrState) {
	if b.interest == nil || st.obj.builtin || st.followed {
		return
	}
	st.followed, st.fresh = true, false
	st.addID = b.interest.Interest(attrRef(st), true)
	b.awaiting = append(b.awaiting, awaited{st: st, id: st.addID})
}

// unfollow removes st from the interest set when its last item stopped.
// Its own writes in flight are forgotten: their echoes may not come.
func (b *Backend) unfollow(st *attrState) {
	if b.interest == nil || !st.followed || len(st.subs) > 0 || st.pins > 0 {
		return
	}
	st.followed, st.fresh, st.inFlight = false, false, 0
	b.interest.Interest(attrRef(st), false)
	b.runWaiting(st) // writes accepted before the last UnAdvise
}

// InterestApplied reports that the link's Interest changes up to id are in
// force (session role): every attribute they added has its current value,
// applied by the Apply calls before this one. Safe from any goroutine.
func (b *Backend) InterestApplied(id uint64) {
	b.post(func() { b.interestApplied(id) })
}

func (b *Backend) interestApplied(id uint64) {
	n := 0
	for n < len(b.awaiting) && b.awaiting[n].id <= id {
		n++
	}
	done := b.awaiting[:n:n]
	b.awaiting = b.awaiting[n:]
	defer b.wakeFresh(id, false)
	for _, a := range done {
		if st := a.st; st.followed && st.addID == a.id && !st.fresh {
			st.fresh = true
			b.freshened(st)
		}
	}
}

// freshened delivers what waited for st's current value: the advised
// items' changes, then the first values and writes, in order.
func (b *Backend) freshened(st *attrState) {
	for _, it := range st.subs {
		b.deliver(it)
	}
	b.runWaiting(st)
}

func (b *Backend) runWaiting(st *attrState) {
	for len(st.waiting) > 0 {
		fns := st.waiting
		st.waiting = nil
		for _, fn := range fns {
			fn()
		}
	}
}

// runtimeLost runs what waited for a current value: the runtime is gone,
// and the session's values (bad, communication failure) are what an
// advise reads until it is back.
func (b *Backend) runtimeLost() {
	b.wakeFresh(0, true)
	for _, a := range b.awaiting {
		b.runWaiting(a.st)
	}
}

// followedByRef returns the followed attributes by interest reference
// (lower-case), before a deploy replaces them.
func (b *Backend) followedByRef() map[string]*attrState {
	if b.interest == nil {
		return nil
	}
	out := map[string]*attrState{}
	for _, st := range b.attrs {
		if st.followed {
			out[strings.ToLower(attrRef(st))] = st
		}
	}
	return out
}

// carryInterest gives a deployed attribute the interest state of the
// attribute of the same reference before the deploy: the runtime resolved
// its interest set against the new model, so the deploy's snapshot holds
// its value, or its Interest change is still to be applied.
func (b *Backend) carryInterest(st *attrState, prev map[string]*attrState) {
	p := prev[strings.ToLower(attrRef(st))]
	if p == nil {
		return
	}
	st.followed, st.fresh, st.addID, st.waiting = true, p.fresh, p.addID, p.waiting
	p.waiting = nil
	for i := range b.awaiting {
		if b.awaiting[i].st == p {
			b.awaiting[i].st = st
		}
	}
}

// refollow settles the interest set after a deploy re-resolved the items:
// attributes advised now are followed, attributes no item advises any
// more (or gone from the model) are not.
func (b *Backend) refollow(prev map[string]*attrState) {
	if b.interest == nil {
		return
	}
	kept := map[string]bool{}
	for _, a := range b.model.attrList {
		st := b.attrs[a]
		if st == nil || st.obj.builtin {
			continue
		}
		switch {
		case (len(st.subs) > 0 || st.pins > 0) && !st.followed:
			b.follow(st)
		case st.followed:
			b.unfollow(st) // unless an item or a pin still reads it
		}
		if st.followed {
			kept[strings.ToLower(attrRef(st))] = true
		}
	}
	for k, p := range prev {
		if kept[k] {
			continue
		}
		if o := b.model.Object(p.obj.Tag); o == nil || o.Attribute(p.attr.Name) == nil {
			p.followed = false
			b.interest.Interest(attrRef(p), false)
			b.runWaiting(p)
		}
	}
}

// pin follows the attributes a reader other than the items reads (the
// alarm consumer) and returns the Interest change the last of them waits
// for (0: none waits).
func (b *Backend) pin(sts []*attrState) uint64 {
	if b.interest == nil {
		return 0
	}
	var last uint64
	for _, st := range sts {
		st.pins++
		b.follow(st)
		if b.stale(st) {
			last = max(last, st.addID)
		}
	}
	return last
}

// unpin undoes pin.
func (b *Backend) unpin(sts []*attrState) {
	if b.interest == nil {
		return
	}
	for _, st := range sts {
		st.pins--
		b.unfollow(st)
	}
}

// freshWaiter is a caller waiting (off the STA) for Interest change id.
type freshWaiter struct {
	id uint64
	ch chan struct{}
}

// notifyFresh returns a channel closed once Interest change id is applied
// or the runtime is lost (STA only; id 0 is closed at once).
func (b *Backend) notifyFresh(id uint64) <-chan struct{} {
	ch := make(chan struct{})
	if id == 0 || b.lost {
		close(ch)
		return ch
	}
	b.freshWaiters = append(b.freshWaiters, freshWaiter{id: id, ch: ch})
	return ch
}

// wakeFresh closes the waiters of changes up to id (all of them, lost).
func (b *Backend) wakeFresh(id uint64, lost bool) {
	keep := b.freshWaiters[:0]
	for _, w := range b.freshWaiters {
		if lost || w.id <= id {
			close(w.ch)
		} else {
			keep = append(keep, w)
		}
	}
	b.freshWaiters = keep
}

// awaitFresh waits off the STA for ch, or for the simulator's end.
func (b *Backend) awaitFresh(ch <-chan struct{}) {
	select {
	case <-ch:
	case <-b.abort:
	case <-b.dead:
	}
}
