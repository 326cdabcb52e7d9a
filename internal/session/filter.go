package session

import (
	"cmp"
	"math"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

// FilterOptions configure a Filter; the zero value filters nothing.
type FilterOptions struct {
	// AbsoluteDeadband drops a numeric change smaller than this from the
	// last value delivered for the item.
	AbsoluteDeadband float64
	// PercentDeadband drops a numeric change smaller than this percentage
	// of the last delivered value's magnitude.
	PercentDeadband float64
	// MinInterval delivers at most one change per item per interval; the
	// latest held change follows when the interval has passed.
	MinInterval time.Duration
}

// Filter is the non-parity per-subscriber filter of OnDataChange events
// (deadbands and a minimum interval per item). It runs in the one goroutine
// that sends a stream's events and is not safe for concurrent use. It never
// modifies an event: the events are shared with the replay ring and the
// other subscribers.
//
// Its memory is one entry per item of the session that changed, bounded by
// the session's items.
type Filter struct {
	opts  FilterOptions
	items map[itemKey]*filterItem
	held  int // items with a held event
}

type filterItem struct {
	last   *mxgatewayv1.OnDataChange // the last delivered change
	lastAt time.Time                 // when it was delivered
	held   *protocol.Event           // the latest change the interval holds back
}

// NewFilter returns a filter, or nil when opts filter nothing.
func NewFilter(opts FilterOptions) *Filter {
	if opts == (FilterOptions{}) {
		return nil
	}
	return &Filter{opts: opts, items: map[itemKey]*filterItem{}}
}

// Offer decides about ev, received at now: true to send it now, false when
// the filter dropped it or holds it for later (Due).
func (f *Filter) Offer(ev *protocol.Event, now time.Time) bool {
	if !ev.IsDataChange() {
		return true
	}
	dc := ev.Msg().GetDataChange() // the value decides: decoded once
	if dc == nil {
		return true
	}
	key := itemKey{dc.GetServerHandle(), dc.GetItemHandle()}
	it := f.items[key]
	if it == nil {
		it = &filterItem{}
		f.items[key] = it
	}
	if it.last != nil && !f.passes(it.last, dc) {
		// Within the deadband of what the subscriber shows: a held change
		// is no longer the current value either.
		f.drop(it)
		return false
	}
	if f.opts.MinInterval > 0 && it.last != nil && now.Sub(it.lastAt) < f.opts.MinInterval {
		if it.held == nil {
			f.held++
		}
		it.held = ev
		return false
	}
	f.drop(it)
	it.last, it.lastAt = dc, now
	return true
}

func (f *Filter) drop(it *filterItem) {
	if it.held != nil {
		it.held = nil
		f.held--
	}
}

// Due returns the held events whose interval has passed at now, in
// sequence order, and counts them as delivered.
func (f *Filter) Due(now time.Time) []*protocol.Event {
	if f.held == 0 {
		return nil
	}
	var out []*protocol.Event
	for _, it := range f.items {
		if it.held != nil && now.Sub(it.lastAt) >= f.opts.MinInterval {
			out = append(out, it.held)
			it.last, it.lastAt, it.held = it.held.Msg().GetDataChange(), now, nil
			f.held--
		}
	}
	slices.SortFunc(out, func(a, b *protocol.Event) int { return cmp.Compare(a.Sequence, b.Sequence) })
	return out
}

// NextDue returns when the earliest held event is due, or the zero time.
func (f *Filter) NextDue() time.Time {
	if f.held == 0 {
		return time.Time{}
	}
	var next time.Time
	for _, it := range f.items {
		if it.held != nil {
			if due := it.lastAt.Add(f.opts.MinInterval); next.IsZero() || due.Before(next) {
				next = due
			}
		}
	}
	return next
}

// passes reports whether dc differs enough from last, the item's last
// delivered change, to pass the deadbands.
func (f *Filter) passes(last, dc *mxgatewayv1.OnDataChange) bool {
	if f.opts.AbsoluteDeadband == 0 && f.opts.PercentDeadband == 0 {
		return true
	}
	if last.GetQuality().GetRaw() != dc.GetQuality().GetRaw() || !statusesEqual(last.GetStatuses(), dc.GetStatuses()) {
		return true
	}
	a, aok := numeric(last.GetValue())
	b, bok := numeric(dc.GetValue())
	if !aok || !bok || last.GetValue().GetDataType() != dc.GetValue().GetDataType() {
		return true // not numbers (or a change of kind): deadbands do not apply
	}
	d := math.Abs(b - a)
	if math.IsNaN(d) {
		return true
	}
	if f.opts.AbsoluteDeadband > 0 && d < f.opts.AbsoluteDeadband {
		return false
	}
	if f.opts.PercentDeadband > 0 && d < f.opts.PercentDeadband/100*math.Abs(a) {
		return false
	}
	return true
}

// numeric returns a scalar numeric value as float64.
func numeric(v *mxgatewayv1.MxValue) (float64, bool) {
	if v == nil || v.GetIsNull() {
		return 0, false
	}
	switch k := v.GetKind().(type) {
	case *mxgatewayv1.MxValue_Int32Value:
		return float64(k.Int32Value), true
	case *mxgatewayv1.MxValue_Int64Value:
		return float64(k.Int64Value), true
	case *mxgatewayv1.MxValue_FloatValue:
		return float64(k.FloatValue), true
	case *mxgatewayv1.MxValue_DoubleValue:
		return k.DoubleValue, true
	}
	return 0, false
}

func statusesEqual(a, b []*mxgatewayv1.MxStatus) bool {
	return slices.EqualFunc(a, b, func(x, y *mxgatewayv1.MxStatus) bool { return proto.Equal(x, y) })
}
