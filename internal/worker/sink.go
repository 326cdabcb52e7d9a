package worker

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

// handleKey identifies an item: registration and item handle.
type handleKey struct {
	server, item int32
}

// itemState is what the worker knows about an item the client added. It is
// keyed by handle and cleared on RemoveItem and Unregister, because MXAccess
// reuses handle values.
type itemState struct {
	ref       string
	advised   bool
	suspended bool
	last      *mxgatewayv1.OnDataChange // last data change while advised
	lastSeq   uint64
}

// sink receives every backend event on the backend's event thread. It never
// blocks: it numbers the event, queues it and returns. Events of ReadBulk's
// transient items go to the waiting read instead and are not forwarded.
func (w *worker) sink(ev *mxgatewayv1.Event) {
	defer func() {
		if r := recover(); r != nil {
			w.fatal(protocol.ExitInternal, workerv1.FaultCode_FAULT_CODE_INTERNAL, fmt.Sprintf("worker: panic in event sink: %v", r))
		}
	}()
	if ev == nil {
		return
	}
	key, keyed := eventKey(ev)
	var overflow string

	w.mu.Lock()
	if keyed {
		if ch, ok := w.transient[key]; ok {
			if dc := ev.GetDataChange(); dc != nil {
				select {
				case ch <- dc: // the first one wins; later ones are dropped with the item
				default:
				}
			}
			w.mu.Unlock()
			return
		}
	}
	if ev.Family == mxgatewayv1.EventFamily_EVENT_FAMILY_UNSPECIFIED {
		ev.Family = familyOf(ev)
	}
	if ev.WorkerTime == nil {
		ev.WorkerTime = timestamppb.Now()
	}
	seq := w.eventSeq + 1
	ev.Sequence = seq
	if ok, queued := w.out.pushEvent(ev); !ok {
		overflow = fmt.Sprintf("worker: event queue overflow: %d events queued for the gateway (limit %d); events after sequence %d were not sent",
			queued, w.cfg.EventQueueSize, w.eventSeq)
	} else {
		w.eventSeq = seq
		if dc := ev.GetDataChange(); dc != nil && keyed {
			if it := w.items[key]; it != nil && it.advised {
				it.last, it.lastSeq = dc, seq
			}
		}
	}
	w.mu.Unlock()

	if overflow != "" {
		w.fatal(protocol.ExitEventOverflow, workerv1.FaultCode_FAULT_CODE_EVENT_OVERFLOW, overflow)
	}
}

func eventKey(ev *mxgatewayv1.Event) (handleKey, bool) {
	switch b := ev.GetBody().(type) {
	case *mxgatewayv1.Event_DataChange:
		return handleKey{b.DataChange.GetServerHandle(), b.DataChange.GetItemHandle()}, true
	case *mxgatewayv1.Event_WriteComplete:
		return handleKey{b.WriteComplete.GetServerHandle(), b.WriteComplete.GetItemHandle()}, true
	case *mxgatewayv1.Event_OperationComplete:
		return handleKey{b.OperationComplete.GetServerHandle(), b.OperationComplete.GetItemHandle()}, true
	case *mxgatewayv1.Event_BufferedDataChange:
		return handleKey{b.BufferedDataChange.GetServerHandle(), b.BufferedDataChange.GetItemHandle()}, true
	}
	return handleKey{}, false
}

func familyOf(ev *mxgatewayv1.Event) mxgatewayv1.EventFamily {
	switch ev.GetBody().(type) {
	case *mxgatewayv1.Event_DataChange:
		return mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE
	case *mxgatewayv1.Event_WriteComplete:
		return mxgatewayv1.EventFamily_EVENT_FAMILY_ON_WRITE_COMPLETE
	case *mxgatewayv1.Event_OperationComplete:
		return mxgatewayv1.EventFamily_EVENT_FAMILY_OPERATION_COMPLETE
	case *mxgatewayv1.Event_BufferedDataChange:
		return mxgatewayv1.EventFamily_EVENT_FAMILY_ON_BUFFERED_DATA_CHANGE
	}
	return mxgatewayv1.EventFamily_EVENT_FAMILY_UNSPECIFIED
}

// Item table upkeep. Each is called by the command goroutine around the
// backend call it mirrors.

func (w *worker) trackAdd(sh, ih int32, ref string) {
	w.mu.Lock()
	w.items[handleKey{sh, ih}] = &itemState{ref: ref}
	w.mu.Unlock()
}

// beginAdvise marks the item advised before the call, so a first value
// delivered while Advise is still returning is cached. It reports whether the
// item was advised already (a second Advise sends no new initial value).
func (w *worker) beginAdvise(sh, ih int32) (was bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	it := w.items[handleKey{sh, ih}]
	if it == nil {
		return false
	}
	if it.advised {
		return true
	}
	it.advised, it.last, it.lastSeq = true, nil, 0
	return false
}

func (w *worker) endAdvise(sh, ih int32, ok, was bool) {
	if ok || was {
		return
	}
	w.mu.Lock()
	if it := w.items[handleKey{sh, ih}]; it != nil {
		it.advised, it.last, it.lastSeq = false, nil, 0
	}
	w.mu.Unlock()
}

func (w *worker) trackUnAdvise(sh, ih int32) {
	w.mu.Lock()
	if it := w.items[handleKey{sh, ih}]; it != nil {
		it.advised, it.last, it.lastSeq = false, nil, 0
	}
	w.mu.Unlock()
}

func (w *worker) trackSuspended(sh, ih int32, suspended bool) {
	w.mu.Lock()
	if it := w.items[handleKey{sh, ih}]; it != nil {
		it.suspended = suspended
	}
	w.mu.Unlock()
}

func (w *worker) trackRemove(sh, ih int32) {
	w.mu.Lock()
	delete(w.items, handleKey{sh, ih})
	w.mu.Unlock()
}

func (w *worker) trackUnregister(sh int32) {
	w.mu.Lock()
	for k := range w.items {
		if k.server == sh {
			delete(w.items, k)
		}
	}
	w.mu.Unlock()
}

// cachedValues returns, per lower-cased reference, the freshest data change
// of the registration's advised (and not suspended) items that have one.
func (w *worker) cachedValues(sh int32) map[string]*mxgatewayv1.OnDataChange {
	type best struct {
		dc  *mxgatewayv1.OnDataChange
		seq uint64
	}
	found := make(map[string]best)
	w.mu.Lock()
	for k, it := range w.items {
		if k.server != sh || !it.advised || it.suspended || it.last == nil {
			continue
		}
		ref := strings.ToLower(it.ref)
		if b, ok := found[ref]; !ok || it.lastSeq > b.seq {
			found[ref] = best{it.last, it.lastSeq}
		}
	}
	w.mu.Unlock()
	out := make(map[string]*mxgatewayv1.OnDataChange, len(found))
	for ref, b := range found {
		// The event may be on its way to the gateway: hand out a copy.
		out[ref] = proto.Clone(b.dc).(*mxgatewayv1.OnDataChange)
	}
	return out
}
