package worker

import (
	"errors"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
)

const (
	statusOK           = mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK
	statusFailure      = mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_MXACCESS_FAILURE
	statusNotSupported = mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_NOT_SUPPORTED
	statusBulk         = mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK
)

// outcome is how MXAccess answered one call.
type outcome struct {
	status   mxgatewayv1.GatewayStatusCode
	hresult  int32
	statuses []*mxgatewayv1.MxStatus
	message  string
}

// outcomeOf classifies a backend error. Refusals and unsupported methods are
// data for the client; any other error means the backend is broken and is
// returned as fatal.
func outcomeOf(err error) (outcome, error) {
	if err == nil {
		return outcome{status: statusOK}, nil
	}
	var ce *backend.CallError
	if errors.As(err, &ce) {
		return outcome{status: statusFailure, hresult: ce.HRESULT, statuses: ce.Statuses, message: ce.Error()}, nil
	}
	var ns *backend.NotSupportedError
	if errors.As(err, &ns) {
		return outcome{status: statusNotSupported, hresult: mxtypes.E_NOTIMPL, message: ns.Error()}, nil
	}
	return outcome{}, err
}

// replyFor builds the reply of a single MXAccess call.
func replyFor(err error) (*mxgatewayv1.Reply, error) {
	o, fatal := outcomeOf(err)
	if fatal != nil {
		return nil, fatal
	}
	return &mxgatewayv1.Reply{Status: o.status, Hresult: o.hresult, Statuses: o.statuses, Message: o.message}, nil
}

// execute runs one command on the backend. A non-nil error means the backend
// is broken and the worker must fault.
func (w *worker) execute(c *queuedCmd) (*mxgatewayv1.Reply, error) {
	var deadline time.Time
	if d := c.cmd.GetTimeout(); d != nil && d.AsDuration() > 0 {
		// Leave the gateway a margin to receive the reply before it gives up.
		deadline = c.received.Add(d.AsDuration() * 9 / 10)
	}
	rep, err := w.dispatch(c.cmd.GetCommand(), deadline)
	if err != nil {
		return nil, err
	}
	if pw := w.be.TakeParityWarnings(); len(pw) > 0 {
		rep.ParityWarnings = append(rep.ParityWarnings, pw...)
	}
	return rep, nil
}

func (w *worker) dispatch(cmd *mxgatewayv1.Command, deadline time.Time) (*mxgatewayv1.Reply, error) {
	be := w.be
	switch k := cmd.GetKind().(type) {
	case *mxgatewayv1.Command_Register:
		name := k.Register.GetClientName()
		if name == "" {
			// A unique name per registration: System Platform logs use it.
			name = "mxgateway-" + w.cfg.SessionID
		}
		sh, err := be.Register(name)
		rep, ferr := replyFor(err)
		if ferr == nil && err == nil {
			rep.Result = &mxgatewayv1.Reply_Register{Register: &mxgatewayv1.RegisterResult{ServerHandle: sh}}
		}
		return rep, ferr

	case *mxgatewayv1.Command_Unregister:
		sh := k.Unregister.GetServerHandle()
		err := be.Unregister(sh)
		if err == nil {
			w.trackUnregister(sh)
		}
		return replyFor(err)

	case *mxgatewayv1.Command_AddItem:
		a := k.AddItem
		ih, err := be.AddItem(a.GetServerHandle(), a.GetItemDefinition())
		if err == nil {
			w.trackAdd(a.GetServerHandle(), ih, a.GetItemDefinition())
		}
		return itemHandleReply(ih, err)

	case *mxgatewayv1.Command_AddItem2:
		a := k.AddItem2
		ih, err := be.AddItem2(a.GetServerHandle(), a.GetItemDefinition(), a.GetItemContext())
		if err == nil {
			w.trackAdd(a.GetServerHandle(), ih, a.GetItemDefinition())
		}
		return itemHandleReply(ih, err)

	case *mxgatewayv1.Command_AddBufferedItem:
		// Buffered items deliver OnBufferedDataChange; ReadBulk never answers
		// from them, so they are not tracked.
		a := k.AddBufferedItem
		ih, err := be.AddBufferedItem(a.GetServerHandle(), a.GetItemDefinition())
		return itemHandleReply(ih, err)

	case *mxgatewayv1.Command_RemoveItem:
		return replyFor(w.removeItem(k.RemoveItem.GetServerHandle(), k.RemoveItem.GetItemHandle()))

	case *mxgatewayv1.Command_Advise:
		return replyFor(w.advise(k.Advise.GetServerHandle(), k.Advise.GetItemHandle(), false))

	case *mxgatewayv1.Command_AdviseSupervisory:
		return replyFor(w.advise(k.AdviseSupervisory.GetServerHandle(), k.AdviseSupervisory.GetItemHandle(), true))

	case *mxgatewayv1.Command_UnAdvise:
		return replyFor(w.unAdvise(k.UnAdvise.GetServerHandle(), k.UnAdvise.GetItemHandle()))

	case *mxgatewayv1.Command_Suspend:
		sh, ih := k.Suspend.GetServerHandle(), k.Suspend.GetItemHandle()
		err := be.Suspend(sh, ih)
		if err == nil {
			w.trackSuspended(sh, ih, true)
		}
		return replyFor(err)

	case *mxgatewayv1.Command_Activate:
		sh, ih := k.Activate.GetServerHandle(), k.Activate.GetItemHandle()
		err := be.Activate(sh, ih)
		if err == nil {
			w.trackSuspended(sh, ih, false)
		}
		return replyFor(err)

	case *mxgatewayv1.Command_SetBufferedUpdateInterval:
		s := k.SetBufferedUpdateInterval
		return replyFor(be.SetBufferedUpdateInterval(s.GetServerHandle(), s.GetIntervalMs()))

	case *mxgatewayv1.Command_Write:
		return replyFor(w.write(0, k.Write))

	case *mxgatewayv1.Command_Write2:
		return replyFor(w.write2(0, k.Write2))

	case *mxgatewayv1.Command_WriteSecured:
		return replyFor(w.writeSecured(0, k.WriteSecured))

	case *mxgatewayv1.Command_WriteSecured2:
		return replyFor(w.writeSecured2(0, k.WriteSecured2))

	case *mxgatewayv1.Command_AuthenticateUser:
		a := k.AuthenticateUser
		id, err := be.AuthenticateUser(a.GetServerHandle(), a.GetUserName(), a.GetPassword())
		return userIDReply(id, err)

	case *mxgatewayv1.Command_ArchestraUserToId:
		a := k.ArchestraUserToId
		id, err := be.ArchestrAUserToId(a.GetServerHandle(), a.GetUserIdentity())
		return userIDReply(id, err)

	case *mxgatewayv1.Command_AddItemBulk:
		b := k.AddItemBulk
		return w.bulk(len(b.GetItemDefinitions()), func(i int, e *mxgatewayv1.BulkEntryResult) error {
			ref := b.GetItemDefinitions()[i]
			e.ItemDefinition = ref
			ih, err := be.AddItem(b.GetServerHandle(), ref)
			if err == nil {
				e.ItemHandle = ih
				w.trackAdd(b.GetServerHandle(), ih, ref)
			}
			return record(e, "AddItem", err)
		})

	case *mxgatewayv1.Command_AdviseBulk:
		b := k.AdviseBulk
		method := "Advise"
		if b.GetSupervisory() {
			method = "AdviseSupervisory"
		}
		return w.bulk(len(b.GetItemHandles()), func(i int, e *mxgatewayv1.BulkEntryResult) error {
			e.ItemHandle = b.GetItemHandles()[i]
			return record(e, method, w.advise(b.GetServerHandle(), e.ItemHandle, b.GetSupervisory()))
		})

	case *mxgatewayv1.Command_SubscribeBulk:
		b := k.SubscribeBulk
		method := "Advise"
		if b.GetSupervisory() {
			method = "AdviseSupervisory"
		}
		return w.bulk(len(b.GetItemDefinitions()), func(i int, e *mxgatewayv1.BulkEntryResult) error {
			ref := b.GetItemDefinitions()[i]
			e.ItemDefinition = ref
			ih, err := be.AddItem(b.GetServerHandle(), ref)
			if err != nil {
				return record(e, "AddItem", err)
			}
			e.ItemHandle = ih
			w.trackAdd(b.GetServerHandle(), ih, ref)
			// A failed advise leaves the item added; its handle is in the
			// entry so the client can remove it.
			return record(e, method, w.advise(b.GetServerHandle(), ih, b.GetSupervisory()))
		})

	case *mxgatewayv1.Command_UnsubscribeBulk:
		b := k.UnsubscribeBulk
		return w.bulk(len(b.GetItemHandles()), func(i int, e *mxgatewayv1.BulkEntryResult) error {
			e.ItemHandle = b.GetItemHandles()[i]
			// Best effort, like teardown: remove even when UnAdvise failed.
			if err := record(e, "UnAdvise", w.unAdvise(b.GetServerHandle(), e.ItemHandle)); err != nil {
				return err
			}
			return record(e, "RemoveItem", w.removeItem(b.GetServerHandle(), e.ItemHandle))
		})

	case *mxgatewayv1.Command_RemoveItemBulk:
		b := k.RemoveItemBulk
		return w.bulk(len(b.GetItemHandles()), func(i int, e *mxgatewayv1.BulkEntryResult) error {
			e.ItemHandle = b.GetItemHandles()[i]
			return record(e, "RemoveItem", w.removeItem(b.GetServerHandle(), e.ItemHandle))
		})

	case *mxgatewayv1.Command_UnAdviseBulk:
		b := k.UnAdviseBulk
		return w.bulk(len(b.GetItemHandles()), func(i int, e *mxgatewayv1.BulkEntryResult) error {
			e.ItemHandle = b.GetItemHandles()[i]
			return record(e, "UnAdvise", w.unAdvise(b.GetServerHandle(), e.ItemHandle))
		})

	case *mxgatewayv1.Command_WriteBulk:
		b := k.WriteBulk
		return w.bulk(len(b.GetEntries()), func(i int, e *mxgatewayv1.BulkEntryResult) error {
			x := b.GetEntries()[i]
			e.ItemHandle = x.GetItemHandle()
			return record(e, "Write", w.write(b.GetServerHandle(), x))
		})

	case *mxgatewayv1.Command_Write2Bulk:
		b := k.Write2Bulk
		return w.bulk(len(b.GetEntries()), func(i int, e *mxgatewayv1.BulkEntryResult) error {
			x := b.GetEntries()[i]
			e.ItemHandle = x.GetItemHandle()
			return record(e, "Write2", w.write2(b.GetServerHandle(), x))
		})

	case *mxgatewayv1.Command_WriteSecuredBulk:
		b := k.WriteSecuredBulk
		return w.bulk(len(b.GetEntries()), func(i int, e *mxgatewayv1.BulkEntryResult) error {
			x := b.GetEntries()[i]
			e.ItemHandle = x.GetItemHandle()
			return record(e, "WriteSecured", w.writeSecured(b.GetServerHandle(), x))
		})

	case *mxgatewayv1.Command_WriteSecured2Bulk:
		b := k.WriteSecured2Bulk
		return w.bulk(len(b.GetEntries()), func(i int, e *mxgatewayv1.BulkEntryResult) error {
			x := b.GetEntries()[i]
			e.ItemHandle = x.GetItemHandle()
			return record(e, "WriteSecured2", w.writeSecured2(b.GetServerHandle(), x))
		})

	case *mxgatewayv1.Command_ReadBulk:
		return w.readBulk(k.ReadBulk, deadline)
	}
	// A kind this build does not know (a newer gateway) or none at all.
	return &mxgatewayv1.Reply{
		Status:  statusNotSupported,
		Hresult: mxtypes.E_NOTIMPL,
		Message: "worker: command kind " + kindName(cmd) + " is not supported by this worker",
	}, nil
}

func itemHandleReply(ih int32, err error) (*mxgatewayv1.Reply, error) {
	rep, ferr := replyFor(err)
	if ferr == nil && err == nil {
		rep.Result = &mxgatewayv1.Reply_ItemHandle{ItemHandle: &mxgatewayv1.ItemHandleResult{ItemHandle: ih}}
	}
	return rep, ferr
}

func userIDReply(id int32, err error) (*mxgatewayv1.Reply, error) {
	rep, ferr := replyFor(err)
	if ferr == nil && err == nil {
		rep.Result = &mxgatewayv1.Reply_UserId{UserId: &mxgatewayv1.UserIdResult{UserId: id}}
	}
	return rep, ferr
}

// bulk runs one entry function per input, in order, collecting each entry's
// parity warnings. Only a broken backend stops it.
func (w *worker) bulk(n int, entry func(i int, e *mxgatewayv1.BulkEntryResult) error) (*mxgatewayv1.Reply, error) {
	res := &mxgatewayv1.BulkResult{Entries: make([]*mxgatewayv1.BulkEntryResult, 0, n)}
	for i := 0; i < n; i++ {
		e := &mxgatewayv1.BulkEntryResult{Status: statusOK}
		res.Entries = append(res.Entries, e)
		if err := entry(i, e); err != nil {
			return nil, err
		}
		e.ParityWarnings = w.be.TakeParityWarnings()
	}
	return &mxgatewayv1.Reply{Status: statusBulk, Result: &mxgatewayv1.Reply_Bulk{Bulk: res}}, nil
}

// record notes the outcome of one call of a bulk entry; the first failure
// decides the entry's status. It returns only fatal errors.
func record(e *mxgatewayv1.BulkEntryResult, method string, err error) error {
	o, fatal := outcomeOf(err)
	if fatal != nil {
		return fatal
	}
	if o.status != statusOK && e.Status == statusOK {
		e.Status, e.Hresult, e.FailedMethod = o.status, o.hresult, method
	}
	return nil
}

func (w *worker) advise(sh, ih int32, supervisory bool) error {
	was := w.beginAdvise(sh, ih)
	var err error
	if supervisory {
		err = w.be.AdviseSupervisory(sh, ih)
	} else {
		err = w.be.Advise(sh, ih)
	}
	w.endAdvise(sh, ih, err == nil, was)
	return err
}

func (w *worker) unAdvise(sh, ih int32) error {
	err := w.be.UnAdvise(sh, ih)
	if err == nil {
		w.trackUnAdvise(sh, ih)
	}
	return err
}

func (w *worker) removeItem(sh, ih int32) error {
	err := w.be.RemoveItem(sh, ih)
	if err == nil {
		w.trackRemove(sh, ih)
	}
	return err
}

// serverHandle picks an entry's own handle, or the bulk's when it has none.
func serverHandle(bulk, entry int32) int32 {
	if entry != 0 {
		return entry
	}
	return bulk
}

func tsOf(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

func (w *worker) write(bulkSH int32, c *mxgatewayv1.WriteCommand) error {
	return w.be.Write(serverHandle(bulkSH, c.GetServerHandle()), c.GetItemHandle(), c.GetValue(), c.GetUserId())
}

func (w *worker) write2(bulkSH int32, c *mxgatewayv1.Write2Command) error {
	return w.be.Write2(serverHandle(bulkSH, c.GetServerHandle()), c.GetItemHandle(), c.GetValue(), tsOf(c.GetTimestamp()), c.GetUserId())
}

func (w *worker) writeSecured(bulkSH int32, c *mxgatewayv1.WriteSecuredCommand) error {
	return w.be.WriteSecured(serverHandle(bulkSH, c.GetServerHandle()), c.GetItemHandle(), c.GetCurrentUserId(), c.GetVerifierUserId(), c.GetValue())
}

func (w *worker) writeSecured2(bulkSH int32, c *mxgatewayv1.WriteSecured2Command) error {
	return w.be.WriteSecured2(serverHandle(bulkSH, c.GetServerHandle()), c.GetItemHandle(), c.GetCurrentUserId(), c.GetVerifierUserId(), c.GetValue(), tsOf(c.GetTimestamp()))
}

// readBulk reads each reference (MXACCESS.md §2.6): from the cached last
// OnDataChange of the client's own advised item when there is one, otherwise
// through a transient item whose events are not forwarded.
func (w *worker) readBulk(c *mxgatewayv1.ReadBulkCommand, deadline time.Time) (*mxgatewayv1.Reply, error) {
	sh := c.GetServerHandle()
	per := w.cfg.ReadTimeout
	if ms := c.GetTimeoutMs(); ms > 0 {
		per = time.Duration(ms) * time.Millisecond
	}
	cached := w.cachedValues(sh)
	res := &mxgatewayv1.ReadBulkResult{Entries: make([]*mxgatewayv1.ReadResult, 0, len(c.GetItemDefinitions()))}
	for _, ref := range c.GetItemDefinitions() {
		r := &mxgatewayv1.ReadResult{ItemDefinition: ref}
		res.Entries = append(res.Entries, r)
		if dc := cached[strings.ToLower(ref)]; dc != nil {
			r.WasCached = true
			fillRead(r, dc)
			continue
		}
		wait := per
		if !deadline.IsZero() {
			wait = min(wait, time.Until(deadline))
		}
		if wait <= 0 {
			r.TimedOut = true
			continue
		}
		if err := w.transientRead(sh, ref, wait, r); err != nil {
			return nil, err
		}
	}
	return &mxgatewayv1.Reply{Status: statusBulk, Result: &mxgatewayv1.Reply_ReadBulk{ReadBulk: res}}, nil
}

func fillRead(r *mxgatewayv1.ReadResult, dc *mxgatewayv1.OnDataChange) {
	r.Value, r.Quality, r.Timestamp, r.Statuses = dc.GetValue(), dc.GetQuality(), dc.GetTimestamp(), dc.GetStatuses()
}

// transientRead is AddItem → Advise → first OnDataChange → UnAdvise →
// RemoveItem on a handle of its own, so the client's items are untouched.
func (w *worker) transientRead(sh int32, ref string, wait time.Duration, r *mxgatewayv1.ReadResult) error {
	ih, err := w.be.AddItem(sh, ref)
	if o, fatal := outcomeOf(err); fatal != nil {
		return fatal
	} else if err != nil {
		r.Hresult, r.FailedMethod = o.hresult, "AddItem"
		return nil
	}
	key := handleKey{sh, ih}
	ch := make(chan *mxgatewayv1.OnDataChange, 1)
	w.mu.Lock()
	w.transient[key] = ch
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.transient, key)
		w.mu.Unlock()
	}()

	err = w.be.Advise(sh, ih)
	if o, fatal := outcomeOf(err); fatal != nil {
		return fatal
	} else if err != nil {
		r.Hresult, r.FailedMethod = o.hresult, "Advise"
		return w.cleanupTransient(sh, ih, ref, false)
	}

	t := time.NewTimer(wait)
	select {
	case dc := <-ch:
		fillRead(r, dc)
	case <-t.C:
		r.TimedOut = true
	case <-w.stopping:
		r.TimedOut = true
	}
	t.Stop()
	return w.cleanupTransient(sh, ih, ref, true)
}

// cleanupTransient undoes a transient item. Refusals are logged, not
// reported: the read already has its answer.
func (w *worker) cleanupTransient(sh, ih int32, ref string, advised bool) error {
	if advised {
		err := w.be.UnAdvise(sh, ih)
		if _, fatal := outcomeOf(err); fatal != nil {
			return fatal
		} else if err != nil {
			w.log.Warn("worker: transient read cleanup failed", logging.KeyMethod, "UnAdvise", "item", ref, logging.KeyErr, err)
		}
	}
	err := w.be.RemoveItem(sh, ih)
	if _, fatal := outcomeOf(err); fatal != nil {
		return fatal
	} else if err != nil {
		w.log.Warn("worker: transient read cleanup failed", logging.KeyMethod, "RemoveItem", "item", ref, logging.KeyErr, err)
	}
	return nil
}
