package worker

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/frame"
	"github.com/mxgateway/mxgateway/internal/itemtable"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

// cached is the last data change of an item in the item table, with its
// event sequence. ReadBulk answers from it while the item is advised.
type cached struct {
	dc  *mxgatewayv1.OnDataChange
	seq uint64
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
	// Encoded here, once: the queue is bounded by what goes on the pipe, and
	// the event is not touched again after the backend handed it over.
	// frame.Marshal writes the bytes proto.Marshal would, through the
	// generated code, at a fraction of the cost.
	enc, err := w.encode(ev)
	var fatalCode workerv1.FaultCode
	exit := protocol.ExitEventOverflow
	switch {
	case err != nil:
		overflow = fmt.Sprintf("worker: cannot encode event %d: %v", seq, err)
		fatalCode, exit = workerv1.FaultCode_FAULT_CODE_INTERNAL, protocol.ExitInternal
	case len(enc)+frame.EventOverhead(len(w.cfg.SessionID)) > w.maxFrame:
		overflow = fmt.Sprintf("worker: event %d of %d bytes exceeds the frame limit of %d bytes", seq, len(enc), w.maxFrame)
		fatalCode, exit = workerv1.FaultCode_FAULT_CODE_INTERNAL, protocol.ExitInternal
	}
	if overflow != "" {
		w.mu.Unlock()
		w.fatal(exit, fatalCode, overflow)
		return
	}
	if ok, queued, queuedBytes := w.out.pushEvent(enc, seq); !ok {
		// The writer adds the last event it delivered: only it knows.
		overflow = fmt.Sprintf("worker: event queue overflow: the gateway did not keep up: %d events (%d bytes) queued for it (limits %d events, %d bytes)",
			queued, queuedBytes, w.out.limit, w.out.limitBytes)
	} else {
		w.eventSeq = seq
		if dc := ev.GetDataChange(); dc != nil && keyed {
			// Recorded for every item of the table: a first value may
			// arrive while Advise is still returning (beforeCall forgot
			// the old one).
			if _, ok := w.table.Lookup(key); ok {
				w.cache[key] = cached{dc, seq}
			}
		}
	}
	w.mu.Unlock()

	if overflow != "" {
		w.fatal(exit, workerv1.FaultCode_FAULT_CODE_EVENT_OVERFLOW, overflow)
	}
}

// encChunkSize is the size of the blocks the sink carves encodings from:
// one allocation for a few hundred small events instead of one each. The
// queue holds the encodings in order and drops each once written, so the
// blocks it keeps alive are those its queued bytes span: at most the
// queue's byte limit plus two blocks.
const encChunkSize = 32 << 10

// encode marshals ev into the current chunk (w.mu held), or on its own
// when it does not fit in what is left, starting a new chunk for the next
// one. The result is clipped: an append to it cannot reach the next
// event's bytes.
func (w *worker) encode(ev *mxgatewayv1.Event) ([]byte, error) {
	free := w.encChunk[len(w.encChunk):]
	enc, err := frame.AppendMarshal(free, ev)
	if err != nil {
		return nil, err
	}
	if len(enc) <= cap(free) {
		w.encChunk = w.encChunk[:len(w.encChunk)+len(enc)]
	} else {
		w.encChunk = make([]byte, 0, encChunkSize)
	}
	return enc[:len(enc):len(enc)], nil
}

func eventKey(ev *mxgatewayv1.Event) (itemtable.Key, bool) {
	switch b := ev.GetBody().(type) {
	case *mxgatewayv1.Event_DataChange:
		return itemtable.Key{Server: b.DataChange.GetServerHandle(), Item: b.DataChange.GetItemHandle()}, true
	case *mxgatewayv1.Event_WriteComplete:
		return itemtable.Key{Server: b.WriteComplete.GetServerHandle(), Item: b.WriteComplete.GetItemHandle()}, true
	case *mxgatewayv1.Event_OperationComplete:
		return itemtable.Key{Server: b.OperationComplete.GetServerHandle(), Item: b.OperationComplete.GetItemHandle()}, true
	case *mxgatewayv1.Event_BufferedDataChange:
		return itemtable.Key{Server: b.BufferedDataChange.GetServerHandle(), Item: b.BufferedDataChange.GetItemHandle()}, true
	}
	return itemtable.Key{}, false
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

// cachedValues returns, per lower-cased reference, the freshest data change
// of the registration's advised (not suspended, not buffered) items that
// have one.
func (w *worker) cachedValues(sh int32) map[string]*mxgatewayv1.OnDataChange {
	found := make(map[string]cached)
	items := w.table.Snapshot()
	w.mu.Lock()
	for _, e := range items {
		if e.Server != sh || !e.Advised || e.Suspended || e.Buffered || e.Leftover {
			continue
		}
		c, ok := w.cache[e.Key]
		if !ok {
			continue
		}
		ref := strings.ToLower(e.Ref)
		if b, ok := found[ref]; !ok || c.seq > b.seq {
			found[ref] = c
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
