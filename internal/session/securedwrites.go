package session

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/protobuf/proto"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
)

// Secured and verified writes present credentials: the user ids a client
// got from AuthenticateUser. MXAccess gives their verdict later, in the
// write's OnWriteComplete, as MxCategorySecurityError (MXACCESS.md §3.3,
// §5.6). OnWriteComplete carries no write id, so the session keeps a write
// ledger: every write it sends is matched to its final completion FIFO per
// item handle, and a refused secured write is reported to
// Options.OnSecuredWriteRefused, which treats it like a failed
// AuthenticateUser. Completions themselves go to subscribers unchanged.
//
// A write is entered when it is sent (in flight) and queued when its reply
// says MXAccess accepted it. The worker sends a write's reply before its
// completion, but the reply reaches the Invoke goroutine and the completion
// the pump on different goroutines; a final completion that finds no
// queued write while one is in flight is kept (early) and given to the next
// write of that handle that is accepted. Concurrent writes to one item are
// matched in the order their replies reached the session: no more than
// FIFO per item is promised (MXACCESS.md §3.3).
//
// A write whose reply never reached the session (its caller timed out or
// went away) may or may not have run, so the handle's FIFO can no longer
// be trusted: the handle is unsynchronised from then on, and every
// MxCategorySecurityError completion on it is reported, against the write
// it matched if that was a secured one, else the first secured write still
// queued for the handle, else the last secured write made to it. So a
// caller cannot hide a verdict by abandoning writes; it can only be
// counted once too often. Past maxUnsyncedHandles such handles the whole
// session is unsynchronised.
//
// Bounds: plain writes are counted, not stored (a run of them is one
// number); a session holds at most MaxSecuredWrites secured write entries
// (further secured writes are refused with ErrPendingLimit until
// completions arrive), and at most maxLedgerUsers user names. The ledger
// forgets a handle's writes when the item leaves the session's item table.

// DefaultMaxSecuredWrites is the default of Options.MaxSecuredWrites.
const DefaultMaxSecuredWrites = 256

// maxLedgerUsers bounds the user names a session remembers for its audit
// rows (from AuthenticateUser and ArchestrAUserToId replies).
const maxLedgerUsers = 256

// maxUnsyncedHandles bounds the handles a session keeps unsynchronised
// (see above) before it treats all of them as unsynchronised.
const maxUnsyncedHandles = 1024

// SecuredWriteRefusal is a secured or verified write whose OnWriteComplete
// said MxCategorySecurityError: MXAccess refused its credentials.
type SecuredWriteRefusal struct {
	// SessionID is the session.
	SessionID string
	// Command is the command that made the write: write_secured,
	// write_secured2 or one of their bulk forms.
	Command *catalog.Kind
	// ServerHandle and ItemHandle name the item written.
	ServerHandle, ItemHandle int32
	// UserID and VerifierUserID are the ids the write presented.
	UserID, VerifierUserID int32
	// UserName and VerifierName are the names this session authenticated
	// for those ids ("" when it got no such id from AuthenticateUser or
	// ArchestrAUserToId).
	UserName, VerifierName string
	// Statuses are the completion's statuses.
	Statuses []*mxgatewayv1.MxStatus
}

// Users describes the credentials for an audit row or a log line: user
// names and ids, never a password (a write carries none).
func (r SecuredWriteRefusal) Users() string {
	who := func(role, name string, id int32) string {
		if name == "" {
			return fmt.Sprintf("%s id %d (not authenticated in this session)", role, id)
		}
		return fmt.Sprintf("%s %q (id %d)", role, name, id)
	}
	s := who("user", r.UserName, r.UserID)
	if r.VerifierUserID != r.UserID || r.VerifierName != r.UserName {
		s += ", " + who("verifier", r.VerifierName, r.VerifierUserID)
	}
	return s
}

type writeKey struct{ server, item int32 }

// securedWrite is one secured write entry of the ledger.
type securedWrite struct {
	ctx              context.Context // the Invoke's, without its cancellation
	kind             *catalog.Kind
	user, verifier   int32
	userN, verifierN string
}

// writeRun is a run of accepted writes in a handle's queue: plain > 0
// plain writes, or one secured write.
type writeRun struct {
	plain int
	sec   *securedWrite
}

// handleWrites is the ledger of one item handle.
type handleWrites struct {
	inflight int        // writes sent whose reply the session has not seen
	queue    []writeRun // accepted writes awaiting their final completion, oldest first
	early    []*mxgatewayv1.OnWriteComplete
	unsynced bool          // a write's outcome is unknown: see above
	lastSec  *securedWrite // the last secured write made to the handle
}

func (h *handleWrites) empty() bool {
	return h.inflight == 0 && len(h.queue) == 0 && len(h.early) == 0 && !h.unsynced
}

// firstSecured is the oldest secured write queued for the handle, else the
// last one made to it (nil when none was).
func (h *handleWrites) firstSecured() *securedWrite {
	for _, r := range h.queue {
		if r.sec != nil {
			return r.sec
		}
	}
	return h.lastSec
}

// writeTarget is one write a command makes.
type writeTarget struct {
	key   writeKey
	entry int // the bulk entry, -1 for a single command
	sec   *securedWrite
}

// writeTicket is what begin entered for one command, for end.
type writeTicket struct {
	kind    *catalog.Kind
	targets []writeTarget
	secured bool // the writes present credentials
}

// writeLedger is a session's write ledger. It may be locked under
// Session.mu; only the item table's lock is taken while it is held.
type writeLedger struct {
	mu        sync.Mutex
	handles   map[writeKey]*handleWrites
	secured   int                 // secured entries in flight or queued
	unsynced  int                 // handles with unsynced set
	allUnsync bool                // past maxUnsyncedHandles: every handle is unsynchronised
	lastSec   *securedWrite       // the session's last secured write (for allUnsync)
	users     map[writeKey]string // (server handle, user id) -> name
	userOrder []writeKey          // oldest first, for eviction
}

// writingKinds says, by Kind.Index, which command kinds write items: a
// single command with an item field it writes, or a bulk form whose steps
// do. Derived from the catalogue once, so that other commands skip the
// ledger.
var writingKinds = func() []bool {
	w := make([]bool, catalog.Len())
	var writes func(k *catalog.Kind) bool
	writes = func(k *catalog.Kind) bool {
		if k.IsBulk() {
			for _, st := range k.Steps() {
				if writes(st.Kind) || (st.Supervisory != nil && writes(st.Supervisory)) {
					return true
				}
			}
			return false
		}
		for _, f := range k.Fields() {
			if f.Access == mxgatewayv1.ItemAccess_ITEM_ACCESS_WRITE {
				return true
			}
		}
		return false
	}
	for _, k := range catalog.Kinds() {
		w[k.Index()] = writes(k)
	}
	return w
}()

// userIDs returns the current and verifier user ids of a secured write
// message (a single command's, or a bulk entry's).
func userIDs(m proto.Message) (user, verifier int32) {
	switch c := m.(type) {
	case *mxgatewayv1.WriteSecuredCommand:
		return c.GetCurrentUserId(), c.GetVerifierUserId()
	case *mxgatewayv1.WriteSecured2Command:
		return c.GetCurrentUserId(), c.GetVerifierUserId()
	}
	return 0, 0
}

// writesOf lists the writes cmd (of kind k) makes, for begin; nil when it
// makes none. It locks nothing (callers run it before taking Session.mu).
func writesOf(ctx context.Context, k *catalog.Kind, cmd *mxgatewayv1.Command) *writeTicket {
	if k == nil || !writingKinds[k.Index()] {
		return nil
	}
	var targets []writeTarget
	// The writes of an invoke:secure command present credentials.
	secured := k.Scope() == mxgatewayv1.CommandScope_COMMAND_SCOPE_INVOKE_SECURE
	var sctx context.Context
	for _, u := range catalog.Uses(cmd) {
		if u.Access != mxgatewayv1.ItemAccess_ITEM_ACCESS_WRITE || u.ByRef {
			continue
		}
		t := writeTarget{key: writeKey{u.Server, u.Item}, entry: -1}
		if k.HasInputs() {
			t.entry = u.Entry
		}
		if secured {
			if sctx == nil {
				sctx = context.WithoutCancel(ctx)
			}
			msg := k.Inner(cmd)
			if k.HasInputs() {
				msg = k.Input(cmd, u.Entry).Entry
			}
			t.sec = &securedWrite{ctx: sctx, kind: k}
			if msg != nil {
				t.sec.user, t.sec.verifier = userIDs(msg.Interface())
			}
		}
		targets = append(targets, t)
	}
	if len(targets) == 0 {
		return nil
	}
	return &writeTicket{kind: k, targets: targets, secured: secured}
}

// begin enters the writes of tk (from writesOf; may be nil) as in flight.
// Secured writes past limit entries are refused with ErrPendingLimit.
func (l *writeLedger) begin(tk *writeTicket, limit int) error {
	if tk == nil {
		return nil
	}
	targets := tk.targets
	l.mu.Lock()
	defer l.mu.Unlock()
	if tk.secured && l.secured+len(targets) > limit {
		return fmt.Errorf("%w: %d secured writes await their OnWriteComplete (at most %d)", ErrPendingLimit, l.secured, limit)
	}
	if l.handles == nil {
		l.handles = make(map[writeKey]*handleWrites)
	}
	for i := range targets {
		t := &targets[i]
		h := l.handles[t.key]
		if h == nil {
			h = &handleWrites{}
			l.handles[t.key] = h
		}
		h.inflight++
		if t.sec != nil {
			h.lastSec, l.lastSec = t.sec, t.sec
			l.secured++
			t.sec.userN = l.users[writeKey{t.key.server, t.sec.user}]
			t.sec.verifierN = l.users[writeKey{t.key.server, t.sec.verifier}]
		}
	}
	return nil
}

// accepted reports whether the write of target t was accepted by MXAccess
// (so one final completion will come).
func (t *writeTicket) accepted(i int, reply *mxgatewayv1.Reply, err error) bool {
	if err != nil || reply == nil {
		return false
	}
	e := t.targets[i].entry
	if e < 0 {
		return reply.GetStatus() == mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK
	}
	entries := reply.GetBulk().GetEntries()
	if e >= len(entries) {
		return false
	}
	return entries[e].GetDenial() == nil && entries[e].GetStatus() == mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK
}

// end records the reply of a command of kind k begin entered (tk may be nil) and
// remembers user names from AuthenticateUser and ArchestrAUserToId. It
// returns the refusals of writes whose completion had come first.
func (l *writeLedger) end(tk *writeTicket, k *catalog.Kind, cmd *mxgatewayv1.Command, reply *mxgatewayv1.Reply, err error, alive func(server, item int32) bool) []refusal {
	if tk == nil && !k.Changes() && reply.GetUserId() == nil {
		return nil // most commands: nothing to record
	}
	var out []refusal
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil {
		l.rememberUserLocked(cmd, reply)
	}
	if tk != nil {
		for i, t := range tk.targets {
			h := l.handles[t.key]
			h.inflight--
			ok := tk.accepted(i, reply, err)
			switch {
			case err != nil:
				// No reply: the write may have run or not.
				l.unsyncLocked(h)
				if t.sec != nil {
					l.secured--
				}
			case ok && len(h.early) > 0:
				wc := h.early[0]
				h.early = h.early[1:]
				if t.sec != nil {
					l.secured--
				}
				if r, refused := l.verdictLocked(h, t.key, t.sec, wc); refused {
					out = append(out, r)
				}
			case ok:
				if t.sec != nil {
					h.queue = append(h.queue, writeRun{sec: t.sec})
				} else if n := len(h.queue); n > 0 && h.queue[n-1].sec == nil {
					h.queue[n-1].plain++
				} else {
					h.queue = append(h.queue, writeRun{plain: 1})
				}
			case t.sec != nil:
				l.secured--
			}
			if h.inflight == 0 {
				// Completions of writes the session did not see accepted:
				// nobody's, unless the handle is unsynchronised.
				for _, wc := range h.early {
					if r, refused := l.verdictLocked(h, t.key, nil, wc); refused {
						out = append(out, r)
					}
				}
				h.early = nil
			}
			if h.empty() {
				delete(l.handles, t.key)
			}
		}
	}
	if k.Changes() && alive != nil {
		// A removed item completes none of its queued writes; with handle
		// reuse its handle may name a new item.
		for key, h := range l.handles {
			if h.inflight == 0 && !alive(key.server, key.item) {
				for _, r := range h.queue {
					if r.sec != nil {
						l.secured--
					}
				}
				if h.unsynced {
					l.unsynced--
				}
				delete(l.handles, key)
			}
		}
	}
	return out
}

// completed matches a write completion to its write; it returns the
// refusal when the write was a secured one MXAccess refused. Pending
// completions (accepted, in progress) are not final and match nothing.
func (l *writeLedger) completed(wc *mxgatewayv1.OnWriteComplete) (refusal, bool) {
	if sts := wc.GetStatuses(); len(sts) > 0 && sts[0].GetCategory() == mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_PENDING {
		return refusal{}, false
	}
	key := writeKey{wc.GetServerHandle(), wc.GetItemHandle()}
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.handles[key]
	switch {
	case h == nil && l.allUnsync && l.lastSec != nil:
		return refusalOf(key, l.lastSec, wc)
	case h == nil:
		return refusal{}, false // a write the session did not send (or forgot)
	case len(h.queue) == 0 && len(h.early) < h.inflight:
		h.early = append(h.early, wc) // its write's reply is on its way
		return refusal{}, false
	case len(h.queue) == 0:
		return l.verdictLocked(h, key, nil, wc) // nobody's, unless unsynchronised
	}
	run := h.queue[0]
	if run.sec == nil {
		if h.queue[0].plain--; h.queue[0].plain == 0 {
			h.queue = h.queue[1:]
		}
	} else {
		h.queue = h.queue[1:]
		l.secured--
	}
	r, refused := l.verdictLocked(h, key, run.sec, wc)
	if h.empty() {
		delete(l.handles, key)
	}
	return r, refused
}

// verdictLocked judges completion wc of the write sec (nil: a plain write)
// to handle h: a refusal when wc is MxCategorySecurityError and the write
// was secured, or, on an unsynchronised handle, whenever a secured write
// was made to it.
func (l *writeLedger) verdictLocked(h *handleWrites, key writeKey, sec *securedWrite, wc *mxgatewayv1.OnWriteComplete) (refusal, bool) {
	if sec == nil && h.unsynced {
		sec = h.firstSecured()
	}
	if sec == nil && l.allUnsync {
		sec = l.lastSec
	}
	if sec == nil {
		return refusal{}, false
	}
	return refusalOf(key, sec, wc)
}

// unsyncLocked marks h unsynchronised (see the top of this file).
func (l *writeLedger) unsyncLocked(h *handleWrites) {
	if h.unsynced || l.allUnsync {
		return
	}
	if l.unsynced >= maxUnsyncedHandles {
		l.allUnsync = true
		return
	}
	h.unsynced = true
	l.unsynced++
}

// refusal is a refused secured write and the context of its Invoke.
type refusal struct {
	ctx context.Context
	r   SecuredWriteRefusal
}

func refusalOf(key writeKey, sw *securedWrite, wc *mxgatewayv1.OnWriteComplete) (refusal, bool) {
	for _, st := range wc.GetStatuses() {
		if st.GetCategory() == mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_SECURITY_ERROR {
			return refusal{ctx: sw.ctx, r: SecuredWriteRefusal{
				Command: sw.kind, ServerHandle: key.server, ItemHandle: key.item,
				UserID: sw.user, VerifierUserID: sw.verifier, UserName: sw.userN, VerifierName: sw.verifierN,
				Statuses: wc.GetStatuses(),
			}}, true
		}
	}
	return refusal{}, false
}

// rememberUserLocked keeps the name behind a user id a reply returned.
func (l *writeLedger) rememberUserLocked(cmd *mxgatewayv1.Command, reply *mxgatewayv1.Reply) {
	id := reply.GetUserId().GetUserId()
	if id == 0 || reply.GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK {
		return
	}
	var key writeKey
	var name string
	switch c := cmd.GetKind().(type) {
	case *mxgatewayv1.Command_AuthenticateUser:
		key, name = writeKey{c.AuthenticateUser.GetServerHandle(), id}, c.AuthenticateUser.GetUserName()
	case *mxgatewayv1.Command_ArchestraUserToId:
		key, name = writeKey{c.ArchestraUserToId.GetServerHandle(), id}, c.ArchestraUserToId.GetUserIdentity()
	default:
		return
	}
	if l.users == nil {
		l.users = make(map[writeKey]string)
	}
	if _, ok := l.users[key]; !ok {
		if len(l.userOrder) >= maxLedgerUsers {
			delete(l.users, l.userOrder[0])
			l.userOrder = l.userOrder[1:]
		}
		l.userOrder = append(l.userOrder, key)
	}
	l.users[key] = name
}

// reportRefusals hands refusals to Options.OnSecuredWriteRefused.
func (s *Session) reportRefusals(rs []refusal) {
	h := s.m.opts.OnSecuredWriteRefused
	if h == nil {
		return
	}
	for _, r := range rs {
		r.r.SessionID = s.id
		h(r.ctx, r.r)
	}
}

// itemAlive reports whether the session's item table holds the item.
func (s *Session) itemAlive(server, item int32) bool {
	_, ok := s.ItemRef(server, item)
	return ok
}

// observeWriteComplete runs on the pump for every worker event before it
// is delivered: a refused secured write is reported first, so that the
// back-off holds by the time the client sees the completion.
func (s *Session) observeWriteComplete(ev *mxgatewayv1.Event) {
	wc := ev.GetWriteComplete()
	if wc == nil {
		return
	}
	if r, ok := s.writes.completed(wc); ok {
		s.reportRefusals([]refusal{r})
	}
}
