package sim

import (
	"container/heap"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	"github.com/mxgateway/mxgateway/internal/itemref"
)

// attrState is the runtime state of one attribute, shared by every
// registration (the Galaxy is one).
type attrState struct {
	obj     *Object
	attr    *Attribute
	value   *mxgatewayv1.MxValue // never mutated in place; replaced on change
	quality uint16
	ts      time.Time
	subs    []*item // advised items that read this attribute, in advise order

	category int32 // Galaxy-level failure status category; 0 none
	inFlight int   // session: own writes sent to the runtime, not echoed yet

	// Session role with an interest link (interest.go).
	followed bool     // in the interest set (an item advises it, or pins > 0)
	pins     int      // followed for a reader other than items (the alarm consumer)
	fresh    bool     // followed, and the Galaxy's current value arrived
	addID    uint64   // the Interest change that added it
	waiting  []func() // first values and writes waiting for fresh

	gen     genState
	flipped bool   // quality flip in progress
	saved   uint16 // quality to restore after the flip
}

type registration struct {
	handle      int32
	clientName  string
	items       map[int32]*item
	nextHandle  int32
	free        handleHeap
	users       map[int32]*User
	bufInterval time.Duration
	bufGen      uint64
	bufRunning  bool
}

// itemKind is what an item reference resolved to.
type itemKind int

const (
	kindUnresolved   itemKind = iota // malformed, unknown, out of range
	kindArrayNoIndex                 // array attribute without []: detail 1003
	kindValue                        // the attribute's value (scalar or whole array)
	kindElement                      // one array element
	kindBit                          // a bit of an integer (or integer element)
	kindProperty                     // a property other than .Value
	kindAttrList                     // Obj._Attributes
)

type item struct {
	id       uint64
	reg      *registration
	handle   int32
	ref      string
	buffered bool
	alive    bool

	kind  itemKind
	obj   *Object
	st    *attrState
	index int // 0-based element for kindElement and kindBit on elements; -1 none
	bit   int
	prop  itemref.Property

	advised     bool
	supervisory bool
	suspended   bool
	delivered   bool // the initial value went out (or was due while suspended)
	adviseGen   uint64

	hasLast bool
	lastVal *mxgatewayv1.MxValue
	lastQ   uint16
	lastTS  time.Time

	samples []*mxgatewayv1.BufferedSample
}

// readsAttribute reports whether the item follows an attribute's changes
// (failed items never change after their first value).
func (it *item) readsAttribute() bool {
	switch it.kind {
	case kindValue, kindElement, kindBit, kindProperty:
		return it.st != nil
	}
	return false
}

// handleHeap is a min-heap of freed item handles.
type handleHeap []int32

func (h handleHeap) Len() int           { return len(h) }
func (h handleHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h handleHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *handleHeap) Push(x any)        { *h = append(*h, x.(int32)) }
func (h *handleHeap) Pop() any {
	old := *h
	v := old[len(old)-1]
	*h = old[:len(old)-1]
	return v
}

func (r *registration) allocHandle(reuse string) int32 {
	if reuse == HandleReuseLowest && len(r.free) > 0 {
		return heap.Pop(&r.free).(int32)
	}
	r.nextHandle++
	return r.nextHandle
}

func (r *registration) freeHandle(h int32, reuse string) {
	delete(r.items, h)
	if reuse == HandleReuseLowest {
		heap.Push(&r.free, h)
	}
}

func (r *registration) sortedItems() []*item {
	out := make([]*item, 0, len(r.items))
	for _, it := range r.items {
		out = append(out, it)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].handle < out[j].handle })
	return out
}

// resolve binds an item reference to the model. Resolution failures are not
// errors: they surface on the first OnDataChange.
func (b *Backend) resolve(it *item, r itemref.Ref, parseErr error) {
	it.kind, it.index = kindUnresolved, -1
	if parseErr != nil {
		return
	}
	if r.Galaxy != "" && !strings.EqualFold(r.Galaxy, b.model.Galaxy) {
		return
	}
	obj := b.model.Object(r.Object)
	if obj == nil {
		return
	}
	it.obj = obj
	if r.IsAttributeList() {
		it.kind = kindAttrList
		return
	}
	prop := r.Property
	attr := obj.Attribute(r.AttributeOrDefault())
	if prop != itemref.PropNone && !r.PropertyEscaped && r.IndexKind == itemref.IndexNone && !r.HasBit {
		// "Attr.Quality" names the attribute "Attr.Quality" when one exists;
		// PROPERTY(quality) is how to reach the property then.
		if a := obj.Attribute(r.AttributeOrDefault() + "." + r.PropertyText); a != nil {
			attr, prop = a, itemref.PropNone
		}
	}
	if attr == nil && prop == itemref.PropNone && r.IndexKind == itemref.IndexNone && !r.HasBit {
		// "Obj.Quality" with no attribute of that name: a property of PV.
		if p, ok := itemref.LookupProperty(r.Attribute); ok {
			attr, prop = obj.Attribute(itemref.DefaultAttribute), p
		}
	}
	if attr == nil {
		return
	}
	it.st = b.attrs[attr]
	if prop == itemref.PropValue {
		prop = itemref.PropNone
	}
	switch r.IndexKind {
	case itemref.IndexWhole:
		if attr.Dimension == 0 {
			return
		}
	case itemref.IndexElement:
		if attr.Dimension == 0 {
			return
		}
		switch {
		case r.Index == -1:
			// The grammar allows [-1]; the simulator treats it as [].
		case r.Index >= 1 && r.Index <= attr.Dimension:
			it.index = r.Index - 1
		default:
			return
		}
	default:
		if attr.Dimension > 0 && prop == itemref.PropNone {
			if r.HasBit {
				return
			}
			it.kind = kindArrayNoIndex
			return
		}
	}
	if prop != itemref.PropNone {
		it.kind, it.prop = kindProperty, prop
		return
	}
	if r.HasBit {
		if attr.Type != tInt || (attr.Dimension > 0 && it.index < 0) {
			return
		}
		it.kind, it.bit = kindBit, r.Bit
		return
	}
	if attr.Type == tQStruct {
		return // not readable whole; reference its fields
	}
	if it.index >= 0 {
		it.kind = kindElement
		return
	}
	it.kind = kindValue
}

// view computes what an item currently shows.
func (b *Backend) view(it *item) (val *mxgatewayv1.MxValue, q uint16, ts time.Time, sts statusSpec) {
	switch it.kind {
	case kindUnresolved:
		return mxtypes.NullValue(tNoData), b.knobs.UnresolvedQuality, b.now,
			b.failSpec(b.knobs.UnresolvedCategory, srcRespondingLmx, b.knobs.UnresolvedDetail)
	case kindArrayNoIndex:
		return mxtypes.NullValue(tNoData), mxtypes.QualityBad, b.now,
			b.failSpec(b.knobs.ArrayWithoutBracketsCategory, srcRespondingLmx, detailArrayWithoutBrackets)
	case kindAttrList:
		names := make([]*mxgatewayv1.MxValue, len(it.obj.Attributes))
		for i, a := range it.obj.Attributes {
			names[i] = mxtypes.StringValue(a.Name)
		}
		return buildArray(tString, names), mxtypes.QualityGood, b.start, b.okSpec()
	}
	st := it.st
	q, ts = st.quality, st.ts
	sts = b.okSpec()
	if st.category != 0 && it.kind != kindProperty {
		sts = b.failSpec(st.category, srcRespondingLmx, 0)
	}
	switch it.kind {
	case kindValue:
		val = st.value
	case kindElement:
		val = mxtypes.ArrayElement(st.value.GetArrayValue(), it.index)
	case kindBit:
		base := st.value
		if it.index >= 0 {
			base = mxtypes.ArrayElement(st.value.GetArrayValue(), it.index)
		}
		val = mxtypes.BoolValue(base.GetInt32Value()>>uint(it.bit)&1 == 1)
	case kindProperty:
		a := st.attr
		q = mxtypes.QualityGood
		switch it.prop {
		case itemref.PropType:
			val = mxtypes.Int32Value(tDTEnum, int32(a.Type))
		case itemref.PropQuality:
			val = mxtypes.Int32Value(tQual, int32(st.quality))
		case itemref.PropDimension1:
			val = mxtypes.IntegerValue(int32(a.Dimension))
		case itemref.PropSecurityClassification:
			val = mxtypes.Int32Value(tSecEnum, int32(a.Security))
		case itemref.PropLocked:
			val = mxtypes.BoolValue(a.Locked)
		case itemref.PropCategory:
			val = mxtypes.IntegerValue(a.Category)
		case itemref.PropName:
			val = mxtypes.StringValue(a.Name)
		case itemref.PropTime:
			val = mxtypes.TimeValue(st.ts)
		}
	}
	return val, q, ts, sts
}

// changed reports whether an item's view differs from what it last sent.
func (b *Backend) changed(it *item, val *mxgatewayv1.MxValue, q uint16, ts time.Time) bool {
	if !it.hasLast {
		return true
	}
	if q != it.lastQ || !valueEqual(val, it.lastVal) {
		return true
	}
	return b.knobs.EmitTimestampOnlyChanges && !ts.Equal(it.lastTS)
}

// send delivers an item's current view (OnDataChange, or a buffered
// sample) and remembers it.
func (b *Backend) send(it *item, val *mxgatewayv1.MxValue, q uint16, ts time.Time, sts statusSpec) {
	it.hasLast, it.lastVal, it.lastQ, it.lastTS = true, val, q, ts
	if it.buffered {
		it.samples = append(it.samples, &mxgatewayv1.BufferedSample{
			Value: cloneValue(val), Quality: mxtypes.NewQuality(q), Timestamp: mxtypes.Timestamp(ts),
		})
		return
	}
	if !b.emitting() {
		return
	}
	e := &dataChangeEvent{}
	e.dc.ServerHandle, e.dc.ItemHandle = it.reg.handle, it.handle
	e.dc.Value = cloneInto(val, &e.value)
	b.qmemo.set(&e.quality, q)
	e.dc.Quality = &e.quality
	setTimestamp(&e.ts, ts)
	e.dc.Timestamp = &e.ts
	if sts.n == 1 {
		sts.fill(&e.status)
		e.statuses[0] = &e.status
		e.dc.Statuses = e.statuses[:]
	} else {
		e.dc.Statuses = sts.build()
	}
	e.body.DataChange = &e.dc
	e.ev.Family = mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE
	e.ev.Body = &e.body
	setWorkerTime(&e.workerTime, b.clock.Now())
	e.ev.WorkerTime = &e.workerTime
	b.sink.Event(&e.ev)
}

// dataChangeEvent is an OnDataChange event with its parts, allocated at
// once: a storm sends one per change, and one allocation instead of ten
// is most of its cost. The parts are ordinary messages; the block lives as
// long as any of them is referenced. value holds the event's copy of an
// MxInteger value (the storm's; other kinds are copied apart, see
// cloneInto), status the entry of a one-entry status array (the default
// statusArrayLength).
type dataChangeEvent struct {
	ev         mxgatewayv1.Event
	body       mxgatewayv1.Event_DataChange
	dc         mxgatewayv1.OnDataChange
	quality    mxgatewayv1.Quality
	ts         timestamppb.Timestamp
	workerTime timestamppb.Timestamp
	value      int32Box
	status     mxgatewayv1.MxStatus
	statuses   [1]*mxgatewayv1.MxStatus
}

// setQuality stores q in dst as mxtypes.NewQuality would make it.
func setQuality(dst *mxgatewayv1.Quality, q uint16) {
	dst.Raw, dst.QualityClass, dst.OpcuaStatusCode = uint32(q), mxtypes.ClassifyQuality(q), mxtypes.OPCUAStatusCode(q)
}

// qualityMemo is setQuality remembering its last quality: the OPC UA code
// is a map lookup, and a storm's events all carry the same quality.
type qualityMemo struct {
	valid bool
	q     uint16
	class mxgatewayv1.QualityClass
	code  uint32
}

func (m *qualityMemo) set(dst *mxgatewayv1.Quality, q uint16) {
	if !m.valid || m.q != q {
		m.valid, m.q, m.class, m.code = true, q, mxtypes.ClassifyQuality(q), mxtypes.OPCUAStatusCode(q)
	}
	dst.Raw, dst.QualityClass, dst.OpcuaStatusCode = uint32(q), m.class, m.code
}

// setTimestamp stores t in dst as mxtypes.Timestamp would make it (UTC,
// millisecond precision).
func setTimestamp(dst *timestamppb.Timestamp, t time.Time) {
	t = mxtypes.TruncateTime(t)
	dst.Seconds, dst.Nanos = t.Unix(), int32(t.Nanosecond())
}

// setWorkerTime stores t in dst at the clock's full resolution, as the
// MXAccess backend stamps worker_time: it is the gateway's own field, not
// an MXAccess timestamp, and the latency measured from it (mxbench's
// worker time → receipt) must not gain up to a millisecond of truncation.
func setWorkerTime(dst *timestamppb.Timestamp, t time.Time) {
	dst.Seconds, dst.Nanos = t.Unix(), int32(t.Nanosecond())
}

// deliver sends an advised item's view if it changed.
func (b *Backend) deliver(it *item) {
	if !it.alive || !it.advised || !it.delivered || it.suspended {
		return
	}
	if it.readsAttribute() && b.stale(it.st) {
		return // freshened delivers it
	}
	val, q, ts, sts := b.view(it)
	if b.changed(it, val, q, ts) {
		b.send(it, val, q, ts, sts)
	}
}

// bind delivers the initial value of an advise (the first OnDataChange).
func (b *Backend) bind(it *item, gen uint64) {
	if !it.alive || !it.advised || it.adviseGen != gen || it.delivered {
		return
	}
	if it.readsAttribute() && b.stale(it.st) {
		it.st.waiting = append(it.st.waiting, func() { b.bind(it, gen) })
		return
	}
	it.delivered = true
	if it.suspended {
		return // Activate sends it
	}
	val, q, ts, sts := b.view(it)
	b.send(it, val, q, ts, sts)
	if it.buffered {
		b.ensureBufferedFlush(it.reg)
	}
}

// setAttr changes an attribute and notifies its subscribers. ts is the new
// timestamp for a change; a timestamp-only change (forceTS) is recorded
// but fires only with emitTimestampOnlyChanges.
func (b *Backend) setAttr(st *attrState, val *mxgatewayv1.MxValue, q uint16, ts time.Time, forceTS bool) bool {
	ts = mxtypes.TruncateTime(ts)
	valueChanged := q != st.quality || !valueEqual(val, st.value)
	if !valueChanged && !(forceTS && !ts.Equal(st.ts)) {
		return false
	}
	st.value, st.quality, st.ts = val, q, ts
	b.noteChange(st, !valueChanged)
	for _, it := range st.subs {
		b.deliver(it)
	}
	return valueChanged
}

func (st *attrState) subscribe(it *item) {
	st.subs = append(st.subs, it)
}

func (st *attrState) unsubscribe(it *item) {
	for i, s := range st.subs {
		if s == it {
			copy(st.subs[i:], st.subs[i+1:])
			st.subs[len(st.subs)-1] = nil
			st.subs = st.subs[:len(st.subs)-1]
			return
		}
	}
}

// ensureBufferedFlush starts the registration's buffered flush cycle.
func (b *Backend) ensureBufferedFlush(reg *registration) {
	if reg.bufRunning {
		return
	}
	reg.bufRunning = true
	gen := reg.bufGen
	b.after(reg.bufInterval, func() { b.flushBuffered(reg, gen) })
}

// flushBuffered sends one OnBufferedDataChange per buffered item that
// changed during the interval, with every sample in change order.
func (b *Backend) flushBuffered(reg *registration, gen uint64) {
	if reg.bufGen != gen || b.regs[reg.handle] != reg {
		return
	}
	reg.bufRunning = false
	live := false
	for _, it := range reg.sortedItems() {
		if !it.buffered || !it.advised {
			continue
		}
		live = true
		if len(it.samples) == 0 {
			continue
		}
		samples := it.samples
		it.samples = nil
		b.emit(&mxgatewayv1.Event{
			Family: mxgatewayv1.EventFamily_EVENT_FAMILY_ON_BUFFERED_DATA_CHANGE,
			Body: &mxgatewayv1.Event_BufferedDataChange{BufferedDataChange: &mxgatewayv1.OnBufferedDataChange{
				ServerHandle: reg.handle, ItemHandle: it.handle, Samples: samples, Statuses: b.okStatuses(),
			}},
		})
	}
	if live {
		b.ensureBufferedFlush(reg)
	}
}

// detach ends an item: no more events, handle-keyed state cleared.
func (b *Backend) detach(it *item) {
	b.unadvise(it)
	it.alive = false
	it.reg.freeHandle(it.handle, b.knobs.HandleReuse)
}

func (b *Backend) unadvise(it *item) {
	if !it.advised {
		return
	}
	it.advised, it.delivered, it.suspended = false, false, false
	it.adviseGen++
	it.hasLast, it.lastVal = false, nil
	it.samples = nil
	if it.readsAttribute() {
		it.st.unsubscribe(it)
		b.unfollow(it.st)
	}
}
