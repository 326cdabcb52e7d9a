package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// ErrSessionRecreated ends a wait whose outcome was lost with the old
// session of a recovering session (a write completion that can no longer
// arrive).
var ErrSessionRecreated = errors.New("client: the session was recreated; the outcome of this operation was lost")

// SessionOption configures OpenSession.
type SessionOption func(*sessionOptions)

type sessionOptions struct {
	recovering bool
}

// Recovering makes the session survive the loss of its gateway session: a
// gateway restart, an expired lease or a faulted worker. When the gateway
// reports the session gone (ErrSessionNotFound, ErrSessionFaulted), the SDK
// opens a new session with the same client name and replays, in their
// original order, the registrations, items (AddItem, AddItem2,
// AddBufferedItem), advises and supervisory advises, suspensions and
// buffered update intervals that the application made through this Session
// and still holds. The handles the application holds keep working: the SDK
// maps them to the new session's handles in every command, reply and event.
//
// Each Events iterator then delivers one Event whose Recreated is non-nil
// before anything of the new session: values may have been missed while
// there was no session, and sequence numbers start again. The fresh initial
// values of the re-advised items follow.
//
// Not replayed: writes (a write whose reply or completion was lost is not
// repeated; a WriteValue waiting for it fails with ErrSessionRecreated) and
// user ids from AuthenticateUser, which die with their registration
// (authenticate again after the marker). A command refused with
// ErrSessionNotFound never ran, so it is sent again on the new session;
// any other failure is returned, and recovery happens on the next use.
func Recovering() SessionOption { return func(o *sessionOptions) { o.recovering = true } }

// SessionRecreated is the marker a recovering session puts in its event
// stream after it had to open a new session.
type SessionRecreated struct {
	// OldSessionID is the session that was lost; NewSessionID replaces it.
	OldSessionID, NewSessionID string
	// Cause is how the gateway reported the old session gone.
	Cause error
	// Warnings lists replay steps MXAccess refused on the new session (the
	// item stays known, with the refusal).
	Warnings []string
}

// sessionGone reports whether err means the gateway no longer has the
// session (restart, lease expiry, fault), so a recovering session opens a
// new one.
func sessionGone(err error) bool { return IsSessionNotFound(err) || IsSessionFaulted(err) }

type adviseKind int

const (
	notAdvised adviseKind = iota
	advisedUser
	advisedSupervisory
)

type itemKind int

const (
	plainItem itemKind = iota
	contextItem
	bufferedItem
)

// jitem is one item the application holds, under its virtual handle.
type jitem struct {
	v, r      int32
	kind      itemKind
	ref, ictx string
	advise    adviseKind
	suspended bool
}

// jreg is one registration the application holds, with its items in the
// order they were added.
type jreg struct {
	v, r       int32
	name       string
	intervalMs int32
	items      []*jitem
	byV, byR   map[int32]*jitem
}

func (g *jreg) addItem(it *jitem) {
	it.v = allocVirtual(it.r, func(v int32) bool { return g.byV[v] != nil })
	g.items = append(g.items, it)
	g.byV[it.v], g.byR[it.r] = it, it
}

func (g *jreg) removeItem(it *jitem) {
	g.items = slices.DeleteFunc(g.items, func(x *jitem) bool { return x == it })
	delete(g.byV, it.v)
	if g.byR[it.r] == it {
		delete(g.byR, it.r)
	}
}

// allocVirtual keeps the real handle as the application's handle unless an
// older handle already uses that number (after a recovery renumbered).
func allocVirtual(real int32, used func(int32) bool) int32 {
	if !used(real) {
		return real
	}
	v := real
	for used(v) {
		v++
	}
	return v
}

// recovery is the state of a recovering session: the journal of what the
// application holds, and the markers of the recoveries so far.
type recovery struct {
	// run serialises recoveries; it is held across the replay (a rare
	// control operation) so that commands and iterators wait for it.
	run sync.Mutex

	mu      sync.Mutex
	regs    []*jreg
	byV     map[int32]*jreg
	byR     map[int32]*jreg
	markers map[string]*SessionRecreated // by old session id
}

func newRecovery() *recovery {
	return &recovery{byV: map[int32]*jreg{}, byR: map[int32]*jreg{}, markers: map[string]*SessionRecreated{}}
}

// toReal returns a copy of cmd with the application's handles replaced by
// the current session's, or cmd itself when nothing changes.
func (rc *recovery) toReal(cmd *mxgatewayv1.Command) *mxgatewayv1.Command {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.identityLocked() {
		return cmd
	}
	out := proto.Clone(cmd).(*mxgatewayv1.Command)
	rc.rewriteLocked(out.ProtoReflect(), nil, true)
	return out
}

// toVirtualEvent returns ev with the current session's handles replaced by
// the application's, copying it only when something changes.
func (rc *recovery) toVirtualEvent(ev *mxgatewayv1.Event) *mxgatewayv1.Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.identityLocked() {
		return ev
	}
	out := proto.Clone(ev).(*mxgatewayv1.Event)
	rc.rewriteLocked(out.ProtoReflect(), nil, false)
	return out
}

// identityLocked reports whether every handle is its own virtual handle (no
// recovery renumbered anything), so nothing needs a copy.
func (rc *recovery) identityLocked() bool {
	for _, g := range rc.regs {
		if g.v != g.r {
			return false
		}
		for _, it := range g.items {
			if it.v != it.r {
				return false
			}
		}
	}
	return true
}

// Handle fields, by the API's naming convention: every message that
// carries a registration handle calls it server_handle, and item handles
// item_handle or item_handles (commands, bulk entries, events).
const (
	fieldServerHandle = "server_handle"
	fieldItemHandle   = "item_handle"
	fieldItemHandles  = "item_handles"
)

// rewriteLocked maps every handle field of m (and of the messages inside it)
// in one direction. reg is the registration of the enclosing message, for
// messages that carry item handles without a server handle (bulk entries).
func (rc *recovery) rewriteLocked(m protoreflect.Message, reg *jreg, toReal bool) {
	fields := m.Descriptor().Fields()
	if fd := fields.ByName(fieldServerHandle); fd != nil && fd.Kind() == protoreflect.Int32Kind && m.Has(fd) {
		h := int32(m.Get(fd).Int())
		g := rc.byR[h]
		if toReal {
			g = rc.byV[h]
		}
		if g != nil {
			reg = g
			m.Set(fd, protoreflect.ValueOfInt32(pick(toReal, g.r, g.v)))
		}
	}
	mapItem := func(h int32) int32 {
		if reg == nil {
			return h
		}
		it := reg.byR[h]
		if toReal {
			it = reg.byV[h]
		}
		if it == nil {
			return h
		}
		return pick(toReal, it.r, it.v)
	}
	if fd := fields.ByName(fieldItemHandle); fd != nil && fd.Kind() == protoreflect.Int32Kind && m.Has(fd) {
		m.Set(fd, protoreflect.ValueOfInt32(mapItem(int32(m.Get(fd).Int()))))
	}
	if fd := fields.ByName(fieldItemHandles); fd != nil && fd.Kind() == protoreflect.Int32Kind && fd.IsList() {
		l := m.Mutable(fd).List()
		for i := 0; i < l.Len(); i++ {
			l.Set(i, protoreflect.ValueOfInt32(mapItem(int32(l.Get(i).Int()))))
		}
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				rc.rewriteLocked(l.Get(i).Message(), reg, toReal)
			}
			return true
		}
		rc.rewriteLocked(v.Message(), reg, toReal)
		return true
	})
}

func pick(toReal bool, r, v int32) int32 {
	if toReal {
		return r
	}
	return v
}

// record updates the journal after cmd (the application's, with virtual
// handles) succeeded with reply (from the gateway, with real handles), and
// returns the reply with the application's handles.
func (rc *recovery) record(cmd *mxgatewayv1.Command, reply *mxgatewayv1.Reply) *mxgatewayv1.Reply {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	ok := reply.GetStatus() == mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK
	bulk := reply.GetStatus() == mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK
	reg := func(v int32) *jreg { return rc.byV[v] }
	item := func(g *jreg, v int32) *jitem {
		if g == nil {
			return nil
		}
		return g.byV[v]
	}
	newItem := func(g *jreg, it *jitem) {
		if g != nil && it.r > 0 {
			g.addItem(it)
		}
	}
	var g *jreg // the registration whose bulk entries the reply carries
	switch k := cmd.GetKind().(type) {
	case *mxgatewayv1.Command_Register:
		if r := reply.GetRegister().GetServerHandle(); ok && r > 0 {
			ng := &jreg{r: r, name: k.Register.GetClientName(), byV: map[int32]*jitem{}, byR: map[int32]*jitem{}}
			ng.v = allocVirtual(r, func(v int32) bool { return rc.byV[v] != nil })
			rc.regs = append(rc.regs, ng)
			rc.byV[ng.v], rc.byR[ng.r] = ng, ng
		}
	case *mxgatewayv1.Command_Unregister:
		if g := reg(k.Unregister.GetServerHandle()); ok && g != nil {
			rc.regs = slices.DeleteFunc(rc.regs, func(x *jreg) bool { return x == g })
			delete(rc.byV, g.v)
			if rc.byR[g.r] == g {
				delete(rc.byR, g.r)
			}
		}
	case *mxgatewayv1.Command_AddItem:
		if ok {
			newItem(reg(k.AddItem.GetServerHandle()), &jitem{r: reply.GetItemHandle().GetItemHandle(), kind: plainItem, ref: k.AddItem.GetItemDefinition()})
		}
	case *mxgatewayv1.Command_AddItem2:
		if ok {
			newItem(reg(k.AddItem2.GetServerHandle()), &jitem{r: reply.GetItemHandle().GetItemHandle(), kind: contextItem,
				ref: k.AddItem2.GetItemDefinition(), ictx: k.AddItem2.GetItemContext()})
		}
	case *mxgatewayv1.Command_AddBufferedItem:
		if ok {
			newItem(reg(k.AddBufferedItem.GetServerHandle()), &jitem{r: reply.GetItemHandle().GetItemHandle(), kind: bufferedItem,
				ref: k.AddBufferedItem.GetItemDefinition()})
		}
	case *mxgatewayv1.Command_RemoveItem:
		g := reg(k.RemoveItem.GetServerHandle())
		if it := item(g, k.RemoveItem.GetItemHandle()); ok && it != nil {
			g.removeItem(it)
		}
	case *mxgatewayv1.Command_Advise:
		if it := item(reg(k.Advise.GetServerHandle()), k.Advise.GetItemHandle()); ok && it != nil {
			it.advise = advisedUser
		}
	case *mxgatewayv1.Command_AdviseSupervisory:
		if it := item(reg(k.AdviseSupervisory.GetServerHandle()), k.AdviseSupervisory.GetItemHandle()); ok && it != nil {
			it.advise = advisedSupervisory
		}
	case *mxgatewayv1.Command_UnAdvise:
		if it := item(reg(k.UnAdvise.GetServerHandle()), k.UnAdvise.GetItemHandle()); ok && it != nil {
			it.advise = notAdvised
		}
	case *mxgatewayv1.Command_Suspend:
		if it := item(reg(k.Suspend.GetServerHandle()), k.Suspend.GetItemHandle()); ok && it != nil {
			it.suspended = true
		}
	case *mxgatewayv1.Command_Activate:
		if it := item(reg(k.Activate.GetServerHandle()), k.Activate.GetItemHandle()); ok && it != nil {
			it.suspended = false
		}
	case *mxgatewayv1.Command_SetBufferedUpdateInterval:
		if g := reg(k.SetBufferedUpdateInterval.GetServerHandle()); ok && g != nil {
			g.intervalMs = k.SetBufferedUpdateInterval.GetIntervalMs()
		}
	case *mxgatewayv1.Command_AddItemBulk:
		g = reg(k.AddItemBulk.GetServerHandle())
		if bulk || ok {
			for i, e := range reply.GetBulk().GetEntries() {
				if entryOK(e) && i < len(k.AddItemBulk.GetItemDefinitions()) {
					newItem(g, &jitem{r: e.GetItemHandle(), kind: plainItem, ref: k.AddItemBulk.GetItemDefinitions()[i]})
				}
			}
		}
	case *mxgatewayv1.Command_SubscribeBulk:
		g = reg(k.SubscribeBulk.GetServerHandle())
		adv := advisedUser
		if k.SubscribeBulk.GetSupervisory() {
			adv = advisedSupervisory
		}
		if bulk || ok {
			for i, e := range reply.GetBulk().GetEntries() {
				if i >= len(k.SubscribeBulk.GetItemDefinitions()) || e.GetDenial() != nil || e.GetItemHandle() <= 0 ||
					(!entryOK(e) && e.GetFailedMethod() == "AddItem") {
					continue
				}
				it := &jitem{r: e.GetItemHandle(), kind: plainItem, ref: k.SubscribeBulk.GetItemDefinitions()[i]}
				if entryOK(e) {
					it.advise = adv
				}
				newItem(g, it)
			}
		}
	case *mxgatewayv1.Command_AdviseBulk:
		g = reg(k.AdviseBulk.GetServerHandle())
		adv := advisedUser
		if k.AdviseBulk.GetSupervisory() {
			adv = advisedSupervisory
		}
		rc.eachOKEntry(g, k.AdviseBulk.GetItemHandles(), reply, func(it *jitem) { it.advise = adv })
	case *mxgatewayv1.Command_UnAdviseBulk:
		g = reg(k.UnAdviseBulk.GetServerHandle())
		rc.eachOKEntry(g, k.UnAdviseBulk.GetItemHandles(), reply, func(it *jitem) { it.advise = notAdvised })
	case *mxgatewayv1.Command_UnsubscribeBulk:
		g = reg(k.UnsubscribeBulk.GetServerHandle())
		rc.eachOKEntry(g, k.UnsubscribeBulk.GetItemHandles(), reply, g.removeItem)
	case *mxgatewayv1.Command_RemoveItemBulk:
		g = reg(k.RemoveItemBulk.GetServerHandle())
		rc.eachOKEntry(g, k.RemoveItemBulk.GetItemHandles(), reply, g.removeItem)
	default:
		g = rc.byV[serverHandleOf(cmd)]
	}
	if rc.identityLocked() {
		return reply
	}
	out := proto.Clone(reply).(*mxgatewayv1.Reply)
	if r := out.GetRegister(); r != nil {
		if ng := rc.byR[r.GetServerHandle()]; ng != nil {
			r.ServerHandle = ng.v
		}
		return out
	}
	if g == nil {
		g = rc.byV[serverHandleOf(cmd)]
	}
	if g != nil {
		if ih := out.GetItemHandle(); ih != nil {
			if it := g.byR[ih.GetItemHandle()]; it != nil {
				ih.ItemHandle = it.v
			}
		}
		for _, e := range out.GetBulk().GetEntries() {
			if it := g.byR[e.GetItemHandle()]; it != nil {
				e.ItemHandle = it.v
			}
		}
	}
	return out
}

// eachOKEntry calls f for the item of each successful bulk entry; handles
// are the application's (virtual) ones, in input order.
func (rc *recovery) eachOKEntry(g *jreg, handles []int32, reply *mxgatewayv1.Reply, f func(*jitem)) {
	if g == nil {
		return
	}
	for i, e := range reply.GetBulk().GetEntries() {
		if i < len(handles) && entryOK(e) {
			if it := g.byV[handles[i]]; it != nil {
				f(it)
			}
		}
	}
}

func entryOK(e *mxgatewayv1.BulkEntryResult) bool {
	return e.GetDenial() == nil && e.GetStatus() == mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK && e.GetHresult() >= 0
}

// serverHandleOf returns the server_handle of whatever command cmd holds.
func serverHandleOf(cmd *mxgatewayv1.Command) int32 {
	m := cmd.ProtoReflect()
	od := m.Descriptor().Oneofs().ByName("kind")
	if od == nil {
		return 0
	}
	fd := m.WhichOneof(od)
	if fd == nil || fd.Kind() != protoreflect.MessageKind {
		return 0
	}
	inner := m.Get(fd).Message()
	if sh := inner.Descriptor().Fields().ByName(fieldServerHandle); sh != nil && sh.Kind() == protoreflect.Int32Kind {
		return int32(inner.Get(sh).Int())
	}
	return 0
}

// marker returns the marker of the recovery away from oldID, if one
// happened.
func (rc *recovery) marker(oldID string) *SessionRecreated {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.markers[oldID]
}

// recoverFrom replaces the gateway session deadID, reported gone with cause,
// by a new one with the journal replayed. It returns the marker of that
// recovery (also when another caller already did it), or the error that
// stops it: ctx ended, the Session was closed, or a permanent refusal such
// as a revoked key.
func (s *Session) recoverFrom(ctx context.Context, deadID string, cause error) (*SessionRecreated, error) {
	rc := s.rec
	rc.run.Lock()
	defer rc.run.Unlock()
	if m := rc.marker(deadID); m != nil {
		return m, nil
	}
	if s.ID() != deadID {
		return nil, fmt.Errorf("client: session %s is not the current one", deadID)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.life, cancel)
	defer stop()

	// The old session may still exist (faulted): end it so it does not
	// linger until its lease runs out.
	cctx, ccancel := context.WithTimeout(ctx, closeTimeout)
	_, _ = s.c.gw.CloseSession(cctx, &mxgatewayv1.CloseSessionRequest{SessionId: deadID})
	ccancel()

	backoff := s.c.opts.eventBackoff
	for attempt := 0; ; attempt++ {
		if s.life.Err() != nil {
			return nil, ErrClosed
		}
		m, err := s.reopen(ctx, deadID, cause)
		if err == nil {
			return m, nil
		}
		var ge *GatewayError
		if errors.As(err, &ge) && ge.Permanent() && !sessionGone(err) {
			return nil, fmt.Errorf("client: recreate session: %w", err)
		}
		if backoff.MaxAttempts > 0 && attempt+1 >= backoff.MaxAttempts {
			return nil, fmt.Errorf("client: recreate session: giving up after %d attempts: %w", attempt+1, err)
		}
		if backoff.sleep(ctx, attempt) != nil {
			if s.life.Err() != nil {
				return nil, ErrClosed
			}
			return nil, fmt.Errorf("client: recreate session: %w (last attempt: %v)", ctx.Err(), err)
		}
	}
}

// reopen opens one new session and replays the journal on it. On success
// the Session switches to it.
func (s *Session) reopen(ctx context.Context, deadID string, cause error) (*SessionRecreated, error) {
	cctx, cancel := s.c.callCtx(ctx)
	resp, err := s.c.gw.OpenSession(cctx, &mxgatewayv1.OpenSessionRequest{ClientName: s.name})
	cancel()
	if err != nil {
		return nil, fromRPC(ctx, err)
	}
	newID := resp.GetSessionId()
	warnings, err := s.replay(ctx, newID)
	if err != nil {
		cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		_, _ = s.c.gw.CloseSession(cctx, &mxgatewayv1.CloseSessionRequest{SessionId: newID})
		cancel()
		return nil, err
	}
	m := &SessionRecreated{OldSessionID: deadID, NewSessionID: newID, Cause: cause, Warnings: warnings}
	rc := s.rec
	rc.mu.Lock()
	rc.markers[deadID] = m
	rc.mu.Unlock()
	s.setID(newID, resp)
	return m, nil
}

// replay re-creates the journal on session id, in the original order, and
// switches the journal's real handles to the new ones. A refusal by
// MXAccess becomes a warning; a transport or gateway failure aborts.
func (s *Session) replay(ctx context.Context, id string) ([]string, error) {
	rc := s.rec
	// The journal only changes through commands, and commands wait for a
	// recovery (rc.run), so a snapshot of the structure is stable.
	rc.mu.Lock()
	regs := slices.Clone(rc.regs)
	rc.mu.Unlock()

	var warnings []string
	call := func(cmd *mxgatewayv1.Command) (*mxgatewayv1.Reply, error) {
		cctx, cancel := s.c.callCtx(ctx)
		defer cancel()
		resp, err := s.c.gw.Invoke(cctx, &mxgatewayv1.InvokeRequest{SessionId: id, Command: cmd})
		if err != nil {
			return nil, fromRPC(cctx, err)
		}
		return resp.GetReply(), nil
	}
	refused := func(what string, r *mxgatewayv1.Reply) bool {
		if st := r.GetStatus(); st == mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK || st == mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK {
			return false
		}
		warnings = append(warnings, fmt.Sprintf("%s: %s (HRESULT 0x%08X)", what, r.GetStatus(), uint32(r.GetHresult())))
		return true
	}
	newReal := map[*jreg]int32{}
	newItems := map[*jitem]int32{}
	for _, g := range regs {
		r, err := call(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{ClientName: g.name}}})
		if err != nil {
			return nil, err
		}
		if refused("Register "+g.name, r) || r.GetRegister().GetServerHandle() <= 0 {
			return nil, fmt.Errorf("client: replay: Register %q refused: %s", g.name, r.GetStatus())
		}
		h := r.GetRegister().GetServerHandle()
		newReal[g] = h
		if g.intervalMs > 0 {
			r, err := call(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_SetBufferedUpdateInterval{
				SetBufferedUpdateInterval: &mxgatewayv1.SetBufferedUpdateIntervalCommand{ServerHandle: h, IntervalMs: g.intervalMs}}})
			if err != nil {
				return nil, err
			}
			refused("SetBufferedUpdateInterval", r)
		}
		rc.mu.Lock()
		items := slices.Clone(g.items)
		rc.mu.Unlock()
		// Plain items in one AddItemBulk per run, keeping the order of
		// creation (handles are assigned in order).
		for i := 0; i < len(items); {
			it := items[i]
			if it.kind == plainItem {
				j := i
				var refs []string
				for j < len(items) && items[j].kind == plainItem {
					refs = append(refs, items[j].ref)
					j++
				}
				r, err := call(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItemBulk{
					AddItemBulk: &mxgatewayv1.AddItemBulkCommand{ServerHandle: h, ItemDefinitions: refs}}})
				if err != nil {
					return nil, err
				}
				if !refused("AddItemBulk", r) {
					for k, e := range r.GetBulk().GetEntries() {
						if k < j-i && entryOK(e) {
							newItems[items[i+k]] = e.GetItemHandle()
						} else if k < j-i {
							warnings = append(warnings, fmt.Sprintf("AddItem %s: %s (HRESULT 0x%08X)", items[i+k].ref, e.GetStatus(), uint32(e.GetHresult())))
						}
					}
				}
				i = j
				continue
			}
			var cmd *mxgatewayv1.Command
			if it.kind == contextItem {
				cmd = &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem2{AddItem2: &mxgatewayv1.AddItem2Command{ServerHandle: h, ItemDefinition: it.ref, ItemContext: it.ictx}}}
			} else {
				cmd = &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddBufferedItem{AddBufferedItem: &mxgatewayv1.AddBufferedItemCommand{ServerHandle: h, ItemDefinition: it.ref}}}
			}
			r, err := call(cmd)
			if err != nil {
				return nil, err
			}
			if !refused("add "+it.ref, r) {
				newItems[it] = r.GetItemHandle().GetItemHandle()
			}
			i++
		}
		for _, adv := range []adviseKind{advisedUser, advisedSupervisory} {
			var handles []int32
			for _, it := range items {
				if it.advise == adv && newItems[it] > 0 {
					handles = append(handles, newItems[it])
				}
			}
			if len(handles) == 0 {
				continue
			}
			r, err := call(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AdviseBulk{
				AdviseBulk: &mxgatewayv1.AdviseBulkCommand{ServerHandle: h, ItemHandles: handles, Supervisory: adv == advisedSupervisory}}})
			if err != nil {
				return nil, err
			}
			refused("AdviseBulk", r)
		}
		for _, it := range items {
			if it.suspended && newItems[it] > 0 {
				r, err := call(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Suspend{Suspend: &mxgatewayv1.SuspendCommand{ServerHandle: h, ItemHandle: newItems[it]}}})
				if err != nil {
					return nil, err
				}
				refused("Suspend "+it.ref, r)
			}
		}
	}
	// Switch the journal to the new session's handles.
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.byR = map[int32]*jreg{}
	for _, g := range rc.regs {
		g.r = newReal[g]
		rc.byR[g.r] = g
		g.byR = map[int32]*jitem{}
		for _, it := range g.items {
			it.r = newItems[it] // 0 when MXAccess refused it again
			if it.r > 0 {
				g.byR[it.r] = it
			}
		}
	}
	return warnings, nil
}
