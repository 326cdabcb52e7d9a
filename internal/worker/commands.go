package worker

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/itemtable"
	"github.com/mxgateway/mxgateway/internal/logging"
)

const (
	statusOK           = mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK
	statusFailure      = mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_MXACCESS_FAILURE
	statusNotSupported = mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_NOT_SUPPORTED
	statusCancelled    = mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_CANCELLED
	statusBulk         = mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK
)

// errNoBinding is a catalogue kind this worker's dispatch does not call;
// a catalogue test keeps it from happening.
var errNoBinding = errors.New("worker: no backend binding for the command")

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

// done is the outcome of one command: its reply, or a refusal by the item
// guard before MXAccess saw it.
type done struct {
	reply  *mxgatewayv1.Reply
	denial *mxgatewayv1.EntryDenial
}

// execute runs one command. Every shape takes one generic path driven by
// the catalogue: the item guard, the MXAccess call(s) through call, the
// reply, and the item table. A non-nil error means the backend is broken
// and the worker must fault.
func (w *worker) execute(c *queuedCmd) (done, error) {
	var deadline time.Time
	if d := c.cmd.GetTimeout(); d != nil && d.AsDuration() > 0 {
		// Leave the gateway a margin to receive the reply before it gives up.
		deadline = c.received.Add(d.AsDuration() * 9 / 10)
	}
	cmd := c.cmd.GetCommand()
	g := newGuard(c.cmd.GetItemGuard())
	var (
		d   done
		err error
	)
	switch k := catalog.Of(cmd); {
	case k.IsSingle():
		if den := w.guardSingle(g, cmd); den != nil {
			return done{reply: &mxgatewayv1.Reply{Status: statusCancelled, Message: den.GetMessage()}, denial: den}, nil
		}
		d.reply, err = w.single(k, cmd)
	case k.IsBulk():
		d.reply, err = w.bulk(k, cmd, g)
	case k.IsReadBulk():
		d.reply, err = w.readBulk(cmd.GetReadBulk(), deadline)
	default:
		// A kind this build does not know (a newer gateway) or none at all.
		d.reply = &mxgatewayv1.Reply{
			Status:  statusNotSupported,
			Hresult: mxtypes.E_NOTIMPL,
			Message: "worker: command kind " + k.Name() + " is not supported by this worker",
		}
	}
	if err != nil {
		return done{}, err
	}
	if pw := w.be.TakeParityWarnings(); len(pw) > 0 {
		d.reply.ParityWarnings = append(d.reply.ParityWarnings, pw...)
	}
	return d, nil
}

// single runs a single command: one MXAccess call, its reply, its effect
// on the item table.
func (w *worker) single(k *catalog.Kind, cmd *mxgatewayv1.Command) (*mxgatewayv1.Reply, error) {
	w.beforeCall(k, cmd)
	v, err := w.call(cmd)
	o, fatal := outcomeOf(err)
	if fatal != nil {
		return nil, fatal
	}
	rep := &mxgatewayv1.Reply{Status: o.status, Hresult: o.hresult, Statuses: o.statuses, Message: o.message}
	if err == nil {
		setResult(rep, k, v)
	}
	w.apply(k, cmd, rep)
	return rep, nil
}

// setResult puts a single command's typed result into its reply.
func setResult(rep *mxgatewayv1.Reply, k *catalog.Kind, v int32) {
	switch k.Result() {
	case mxgatewayv1.CommandResult_COMMAND_RESULT_SERVER_HANDLE:
		rep.Result = &mxgatewayv1.Reply_Register{Register: &mxgatewayv1.RegisterResult{ServerHandle: v}}
	case mxgatewayv1.CommandResult_COMMAND_RESULT_ITEM_HANDLE:
		rep.Result = &mxgatewayv1.Reply_ItemHandle{ItemHandle: &mxgatewayv1.ItemHandleResult{ItemHandle: v}}
	case mxgatewayv1.CommandResult_COMMAND_RESULT_USER_ID:
		rep.Result = &mxgatewayv1.Reply_UserId{UserId: &mxgatewayv1.UserIdResult{UserId: v}}
	}
}

// callOutcome is one step's outcome in a bulk entry.
type callOutcome struct {
	method string
	o      outcome
}

// bulk runs a bulk form: for each entry, in input order, the guard and then
// the entry's steps (single commands from the catalogue), each applied to
// the item table as it returns. An entry stops at its first refused step
// unless the form is best effort; a failed entry lists every call it made.
// Only a broken backend stops the command.
func (w *worker) bulk(k *catalog.Kind, cmd *mxgatewayv1.Command, g guard) (*mxgatewayv1.Reply, error) {
	n := k.Inputs(cmd)
	steps := len(k.Steps())
	res := &mxgatewayv1.BulkResult{Entries: make([]*mxgatewayv1.BulkEntryResult, 0, n)}
	calls := make([]callOutcome, 0, steps)
	for i := 0; i < n; i++ {
		in := k.Input(cmd, i)
		e := &mxgatewayv1.BulkEntryResult{ItemDefinition: in.Ref, ItemHandle: in.Item, Status: statusOK}
		res.Entries = append(res.Entries, e)
		if u, ok := k.InputUse(cmd, i); ok && g != nil {
			if den := w.guardUse(g, []catalog.Use{u}); den != nil {
				e.Status, e.Denial = mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_UNSPECIFIED, den
				continue
			}
		}
		calls = calls[:0]
		var added int32
		for j := 0; j < steps; j++ {
			sc := k.StepCommand(cmd, i, j, added)
			sk := catalog.Of(sc)
			w.beforeCall(sk, sc)
			v, err := w.call(sc)
			o, fatal := outcomeOf(err)
			if fatal != nil {
				return nil, fatal
			}
			step := &mxgatewayv1.Reply{Status: o.status, Hresult: o.hresult}
			if err == nil {
				setResult(step, sk, v)
				if sk.Result() == mxgatewayv1.CommandResult_COMMAND_RESULT_ITEM_HANDLE {
					added, e.ItemHandle = v, v
				}
			}
			w.apply(sk, sc, step)
			calls = append(calls, callOutcome{sk.Method(), o})
			if o.status != statusOK {
				if e.Status == statusOK {
					e.Status, e.Hresult, e.FailedMethod = o.status, o.hresult, sk.Method()
				}
				if !k.BestEffort() {
					break
				}
			}
		}
		if e.Status != statusOK {
			e.Calls = make([]*mxgatewayv1.BulkCall, len(calls))
			for j, c := range calls {
				e.Calls[j] = &mxgatewayv1.BulkCall{Method: c.method, Status: c.o.status, Hresult: c.o.hresult}
			}
		}
		e.ParityWarnings = w.be.TakeParityWarnings()
	}
	return &mxgatewayv1.Reply{Status: statusBulk, Result: &mxgatewayv1.Reply_Bulk{Bulk: res}}, nil
}

// call makes the one MXAccess call of a single command. It is the only
// place that knows which Backend method a command kind calls; every other
// part of the worker is generic over the catalogue. It returns the call's
// typed result (a server handle, an item handle or a user id; 0 for none).
func (w *worker) call(cmd *mxgatewayv1.Command) (int32, error) {
	be := w.be
	switch c := cmd.GetKind().(type) {
	case *mxgatewayv1.Command_Register:
		name := c.Register.GetClientName()
		if name == "" {
			// A unique name per registration: System Platform logs use it.
			name = "mxgateway-" + w.cfg.SessionID
		}
		return be.Register(name)
	case *mxgatewayv1.Command_Unregister:
		return 0, be.Unregister(c.Unregister.GetServerHandle())
	case *mxgatewayv1.Command_AddItem:
		return be.AddItem(c.AddItem.GetServerHandle(), c.AddItem.GetItemDefinition())
	case *mxgatewayv1.Command_AddItem2:
		x := c.AddItem2
		return be.AddItem2(x.GetServerHandle(), x.GetItemDefinition(), x.GetItemContext())
	case *mxgatewayv1.Command_RemoveItem:
		return 0, be.RemoveItem(c.RemoveItem.GetServerHandle(), c.RemoveItem.GetItemHandle())
	case *mxgatewayv1.Command_Advise:
		return 0, be.Advise(c.Advise.GetServerHandle(), c.Advise.GetItemHandle())
	case *mxgatewayv1.Command_AdviseSupervisory:
		return 0, be.AdviseSupervisory(c.AdviseSupervisory.GetServerHandle(), c.AdviseSupervisory.GetItemHandle())
	case *mxgatewayv1.Command_UnAdvise:
		return 0, be.UnAdvise(c.UnAdvise.GetServerHandle(), c.UnAdvise.GetItemHandle())
	case *mxgatewayv1.Command_Suspend:
		return 0, be.Suspend(c.Suspend.GetServerHandle(), c.Suspend.GetItemHandle())
	case *mxgatewayv1.Command_Activate:
		return 0, be.Activate(c.Activate.GetServerHandle(), c.Activate.GetItemHandle())
	case *mxgatewayv1.Command_AddBufferedItem:
		return be.AddBufferedItem(c.AddBufferedItem.GetServerHandle(), c.AddBufferedItem.GetItemDefinition())
	case *mxgatewayv1.Command_SetBufferedUpdateInterval:
		x := c.SetBufferedUpdateInterval
		return 0, be.SetBufferedUpdateInterval(x.GetServerHandle(), x.GetIntervalMs())
	case *mxgatewayv1.Command_Write:
		x := c.Write
		return 0, be.Write(x.GetServerHandle(), x.GetItemHandle(), x.GetValue(), x.GetUserId())
	case *mxgatewayv1.Command_Write2:
		x := c.Write2
		return 0, be.Write2(x.GetServerHandle(), x.GetItemHandle(), x.GetValue(), tsOf(x.GetTimestamp()), x.GetUserId())
	case *mxgatewayv1.Command_WriteSecured:
		x := c.WriteSecured
		return 0, be.WriteSecured(x.GetServerHandle(), x.GetItemHandle(), x.GetCurrentUserId(), x.GetVerifierUserId(), x.GetValue())
	case *mxgatewayv1.Command_WriteSecured2:
		x := c.WriteSecured2
		return 0, be.WriteSecured2(x.GetServerHandle(), x.GetItemHandle(), x.GetCurrentUserId(), x.GetVerifierUserId(), x.GetValue(), tsOf(x.GetTimestamp()))
	case *mxgatewayv1.Command_AuthenticateUser:
		x := c.AuthenticateUser
		return be.AuthenticateUser(x.GetServerHandle(), x.GetUserName(), x.GetPassword())
	case *mxgatewayv1.Command_ArchestraUserToId:
		x := c.ArchestraUserToId
		return be.ArchestrAUserToId(x.GetServerHandle(), x.GetUserIdentity())
	}
	return 0, fmt.Errorf("%w: %s", errNoBinding, catalog.Of(cmd).Name())
}

// tsOf is the timestamp argument of Write2 and WriteSecured2: the zero time
// when the command carries none, or one that is not a valid time (the
// backend refuses it as MXAccess refuses a timestamp VARIANT it cannot
// take).
func tsOf(t *timestamppb.Timestamp) time.Time {
	if t == nil || t.CheckValid() != nil {
		return time.Time{}
	}
	return t.AsTime()
}

// beforeCall prepares the worker's own state for a call: a fresh advise
// forgets the item's cached value, so a first value that arrives while
// Advise is still returning is cached, and no value of an earlier advise is.
func (w *worker) beforeCall(k *catalog.Kind, cmd *mxgatewayv1.Command) {
	switch k.Effect() {
	case mxgatewayv1.ItemEffect_ITEM_EFFECT_ADVISE, mxgatewayv1.ItemEffect_ITEM_EFFECT_ADVISE_SUPERVISORY:
		u := catalog.Uses(cmd)[0]
		key := itemtable.Key{Server: u.Server, Item: u.Item}
		if it, ok := w.table.Lookup(key); ok && !it.Advised {
			w.mu.Lock()
			delete(w.cache, key)
			w.mu.Unlock()
		}
	}
}

// apply records a call in the authoritative item table and drops cached
// values that no longer belong to an advised item.
func (w *worker) apply(k *catalog.Kind, cmd *mxgatewayv1.Command, rep *mxgatewayv1.Reply) {
	w.table.Apply(cmd, rep)
	if rep.GetStatus() != statusOK {
		return
	}
	switch k.Effect() {
	case mxgatewayv1.ItemEffect_ITEM_EFFECT_REMOVE, mxgatewayv1.ItemEffect_ITEM_EFFECT_UNADVISE:
		u := catalog.Uses(cmd)[0]
		w.mu.Lock()
		delete(w.cache, itemtable.Key{Server: u.Server, Item: u.Item})
		w.mu.Unlock()
	case mxgatewayv1.ItemEffect_ITEM_EFFECT_UNREGISTER:
		sh := k.ServerHandle(cmd)
		w.mu.Lock()
		for key := range w.cache {
			if key.Server == sh {
				delete(w.cache, key)
			}
		}
		w.mu.Unlock()
	}
}

// guard is the item guard of one command: the reference the gateway
// approved per written handle; nil when the command is not guarded.
type guard map[itemtable.Key]string

func newGuard(g *workerv1.ItemGuard) guard {
	if g == nil {
		return nil
	}
	out := make(guard, len(g.GetItems()))
	for _, it := range g.GetItems() {
		out[itemtable.Key{Server: it.GetServerHandle(), Item: it.GetItemHandle()}] = it.GetItemDefinition()
	}
	return out
}

// guardSingle is guardUse for a single command (nothing to do unguarded).
func (w *worker) guardSingle(g guard, cmd *mxgatewayv1.Command) *mxgatewayv1.EntryDenial {
	if g == nil {
		return nil
	}
	return w.guardUse(g, catalog.Uses(cmd))
}

// guardUse checks the written items of a command (or of one bulk entry)
// against the authoritative item table: each must be approved, and the
// table must still say the handle names the approved reference. The
// gateway approves from its mirror of this table, which may lag behind
// when a caller stopped waiting for a command that still ran here.
func (w *worker) guardUse(g guard, uses []catalog.Use) *mxgatewayv1.EntryDenial {
	if g == nil {
		return nil
	}
	for _, u := range uses {
		if u.ByRef || u.Access != mxgatewayv1.ItemAccess_ITEM_ACCESS_WRITE {
			continue
		}
		key := itemtable.Key{Server: u.Server, Item: u.Item}
		approved, ok := g[key]
		if ok && w.table.Holds(key, approved) {
			continue
		}
		actual := "no item"
		if it, found := w.table.Lookup(key); found {
			actual = fmt.Sprintf("%q", it.Ref)
		}
		msg := fmt.Sprintf("item handle %d of registration %d names %s in the worker's item table", u.Item, u.Server, actual)
		if ok {
			msg += fmt.Sprintf(", not %q that the gateway approved for writing", approved)
		} else {
			msg += "; the gateway approved no write to it"
		}
		return &mxgatewayv1.EntryDenial{Reason: mxgatewayv1.ReasonReferenceForbidden, Message: msg}
	}
	return nil
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
	key := itemtable.Key{Server: sh, Item: ih}
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
// reported: the read already has its answer. An item MXAccess would not
// remove goes into the item table as a leftover, so that teardown removes
// it and the item guard knows what its handle names.
func (w *worker) cleanupTransient(sh, ih int32, ref string, advised bool) error {
	if advised {
		err := w.be.UnAdvise(sh, ih)
		if _, fatal := outcomeOf(err); fatal != nil {
			return fatal
		} else if err != nil {
			w.log.Warn("worker: transient read cleanup failed", logging.KeyMethod, "UnAdvise", "item", ref, logging.KeyErr, err)
		} else {
			advised = false
		}
	}
	err := w.be.RemoveItem(sh, ih)
	if _, fatal := outcomeOf(err); fatal != nil {
		return fatal
	} else if err != nil {
		w.log.Warn("worker: transient read cleanup failed", logging.KeyMethod, "RemoveItem", "item", ref, logging.KeyErr, err)
		w.table.AddLeftover(itemtable.Key{Server: sh, Item: ih}, ref, advised)
	}
	return nil
}
