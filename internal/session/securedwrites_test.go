package session

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

// refusals collects what OnSecuredWriteRefused reports.
type refusals struct {
	mu  sync.Mutex
	got []SecuredWriteRefusal
	// lastSeq is the session's last delivered sequence when each refusal
	// was reported.
	lastSeq []uint64
	ctxVal  []any
	s       *Session
}

type ctxKey struct{}

func (r *refusals) hook(ctx context.Context, rf SecuredWriteRefusal) {
	r.mu.Lock()
	s := r.s
	r.mu.Unlock()
	var last uint64
	if s != nil {
		last = s.Info().LastSequence
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, rf)
	r.lastSeq = append(r.lastSeq, last)
	r.ctxVal = append(r.ctxVal, ctx.Value(ctxKey{}))
}

func (r *refusals) list() []SecuredWriteRefusal {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]SecuredWriteRefusal(nil), r.got...)
}

func okReply() *mxgatewayv1.Reply {
	return &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK}
}

func completion(seq uint64, server, item int32, cat mxgatewayv1.MxStatusCategory) *mxgatewayv1.Event {
	ev := writeComplete(seq, server, item)
	ev.GetWriteComplete().Statuses = []*mxgatewayv1.MxStatus{{Success: cat == mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_OK ||
		cat == mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_PENDING, Category: cat, CategoryRaw: int32(cat)}}
	return ev
}

func securedWriteCmd(server, item, user, verifier int32) *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_WriteSecured{WriteSecured: &mxgatewayv1.WriteSecuredCommand{
		ServerHandle: server, ItemHandle: item, CurrentUserId: user, VerifierUserId: verifier,
		Value: &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_Int32Value{Int32Value: 1}}}}}
}

func plainWrite(server, item int32) *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Write{Write: &mxgatewayv1.WriteCommand{
		ServerHandle: server, ItemHandle: item, Value: &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_Int32Value{Int32Value: 1}}}}}
}

func authenticate(server int32, user string) *mxgatewayv1.Command {
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AuthenticateUser{AuthenticateUser: &mxgatewayv1.AuthenticateUserCommand{
		ServerHandle: server, UserName: user, Password: "not-kept"}}}
}

const (
	catOK       = mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_OK
	catPending  = mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_PENDING
	catSecurity = mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_SECURITY_ERROR
)

func ledgerHarness(t *testing.T, opts Options) (*harness, *refusals) {
	rs := &refusals{}
	opts.OnSecuredWriteRefused = rs.hook
	return newHarness(t, opts), rs
}

func mustInvoke(t *testing.T, ctx context.Context, s *Session, cmd *mxgatewayv1.Command) *mxgatewayv1.Reply {
	t.Helper()
	r, err := s.Invoke(ctx, cmd, 0)
	if err != nil {
		t.Fatalf("Invoke %v: %v", cmd, err)
	}
	return r
}

// TestSecuredWriteRefusalMatchedFIFO: completions are matched to writes
// FIFO per item handle (Pending ones match nothing); only a secured write
// whose completion is MxCategorySecurityError is reported, with the user
// name the session authenticated and the Invoke's context values, before
// the completion reaches a subscriber, which gets every completion
// unchanged.
func TestSecuredWriteRefusalMatchedFIFO(t *testing.T) {
	h, rs := ledgerHarness(t, Options{})
	h.prepare = func(w *fakeWorker) {
		w.invoke = func(ctx context.Context, cmd *mxgatewayv1.Command, timeout time.Duration) (*mxgatewayv1.Reply, error) {
			r := okReply()
			if cmd.GetAuthenticateUser() != nil {
				r.Result = &mxgatewayv1.Reply_UserId{UserId: &mxgatewayv1.UserIdResult{UserId: 7}}
			}
			return r, nil
		}
	}
	s, w := h.open()
	rs.mu.Lock()
	rs.s = s
	rs.mu.Unlock()
	sub, err := s.Subscribe(SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "caller-a"))
	mustInvoke(t, ctx, s, authenticate(1, "alice"))
	mustInvoke(t, ctx, s, plainWrite(1, 5))
	mustInvoke(t, ctx, s, securedWriteCmd(1, 5, 7, 7))
	mustInvoke(t, ctx, s, securedWriteCmd(1, 6, 9, 7))
	mustInvoke(t, ctx, s, securedWriteCmd(1, 6, 7, 7))
	cancel() // the context's values outlive the call

	evs := []*mxgatewayv1.Event{
		completion(1, 1, 5, catPending),  // not final: matches nothing
		completion(2, 1, 5, catSecurity), // the plain write's (FIFO): not a credential check
		completion(3, 1, 5, catSecurity), // the secured write's: reported
		completion(4, 1, 6, catSecurity), // user 9: reported, not authenticated here
		completion(5, 1, 6, catOK),       // accepted: nothing
		completion(6, 1, 6, catSecurity), // no write left: nothing
	}
	for _, ev := range evs {
		w.send(t, proto.Clone(ev).(*mxgatewayv1.Event))
	}
	for _, want := range evs {
		got, err := next(t, sub)
		if err != nil {
			t.Fatal(err)
		}
		got.SessionId, got.GatewayTime = "", nil
		if !proto.Equal(got, want) {
			t.Fatalf("subscriber got %v, want it unchanged: %v", got, want)
		}
	}
	got := rs.list()
	if len(got) != 2 {
		t.Fatalf("%d refusals reported, want 2: %+v", len(got), got)
	}
	want := []SecuredWriteRefusal{
		{SessionID: s.ID(), ServerHandle: 1, ItemHandle: 5, UserID: 7, VerifierUserID: 7, UserName: "alice", VerifierName: "alice"},
		{SessionID: s.ID(), ServerHandle: 1, ItemHandle: 6, UserID: 9, VerifierUserID: 7, VerifierName: "alice"},
	}
	for i, r := range got {
		if r.Command.Name() != "write_secured" || len(r.Statuses) != 1 || r.Statuses[0].GetCategory() != catSecurity {
			t.Fatalf("refusal %d: command %s, statuses %v", i, r.Command.Name(), r.Statuses)
		}
		r.Command, r.Statuses = nil, nil
		if !reflect.DeepEqual(r, want[i]) {
			t.Fatalf("refusal %d = %+v, want %+v", i, r, want[i])
		}
		// Reported before the completion (sequences 3 and 4) was delivered.
		if seq := rs.lastSeq[i]; seq >= evs[2+i].GetSequence() {
			t.Fatalf("refusal %d reported after sequence %d was delivered", i, seq)
		}
		if rs.ctxVal[i] != "caller-a" {
			t.Fatalf("refusal %d: context value %v, want the Invoke's", i, rs.ctxVal[i])
		}
	}
	if u := got[0].Users(); u != `user "alice" (id 7)` {
		t.Fatalf("Users() = %s", u)
	}
	if u := got[1].Users(); u != `user id 9 (not authenticated in this session), verifier "alice" (id 7)` {
		t.Fatalf("Users() = %s", u)
	}
	if n := ledgerSize(s); n != 0 {
		t.Fatalf("ledger holds %d handles after every write completed", n)
	}
}

func ledgerSize(s *Session) int {
	s.writes.mu.Lock()
	defer s.writes.mu.Unlock()
	return len(s.writes.handles)
}

func ledgerSecured(s *Session) int {
	s.writes.mu.Lock()
	defer s.writes.mu.Unlock()
	return s.writes.secured
}

// TestSecuredWriteEarlyCompletion: a completion that reaches the session
// before its write's reply is matched when the reply arrives, and the
// refusal is reported before Invoke returns; a write MXAccess refused at
// once (no completion will come) takes no completion.
func TestSecuredWriteEarlyCompletion(t *testing.T) {
	h, rs := ledgerHarness(t, Options{})
	var s *Session
	var seq uint64
	h.prepare = func(w *fakeWorker) {
		w.invoke = func(ctx context.Context, cmd *mxgatewayv1.Command, timeout time.Duration) (*mxgatewayv1.Reply, error) {
			ws := cmd.GetWriteSecured()
			if ws == nil {
				return okReply(), nil
			}
			if ws.GetItemHandle() == 9 { // refused at once: no completion
				return &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_MXACCESS_FAILURE, Hresult: -2147024809}, nil
			}
			// The completion overtakes the reply.
			seq++
			w.send(t, completion(seq, ws.GetServerHandle(), ws.GetItemHandle(), catSecurity))
			want := seq
			testutil.Eventually(t, 5*time.Second, func() error {
				if got := s.Info().LastSequence; got < want {
					return fmt.Errorf("last sequence %d, want %d", got, want)
				}
				return nil
			})
			return okReply(), nil
		}
	}
	s, w := h.open()
	mustInvoke(t, context.Background(), s, securedWriteCmd(1, 5, 3, 3))
	if n := len(rs.list()); n != 1 {
		t.Fatalf("%d refusals when Invoke returned, want 1", n)
	}
	// A refused write (item 9) leaves nothing behind: a stray completion
	// for it is nobody's.
	mustInvoke(t, context.Background(), s, securedWriteCmd(1, 9, 3, 3))
	seq++
	w.send(t, completion(seq, 1, 9, catSecurity))
	waitLastSeq(t, s, seq)
	if n := len(rs.list()); n != 1 {
		t.Fatalf("%d refusals, want still 1", n)
	}
	if n, sec := ledgerSize(s), ledgerSecured(s); n != 0 || sec != 0 {
		t.Fatalf("ledger holds %d handles, %d secured writes", n, sec)
	}
}

// TestSecuredWritesBounded: a session holds at most MaxSecuredWrites
// secured writes awaiting their completion; further ones (a bulk form
// counts each entry) are refused with ErrPendingLimit until completions
// arrive. Plain writes are not bounded by it.
func TestSecuredWritesBounded(t *testing.T) {
	h, rs := ledgerHarness(t, Options{MaxSecuredWrites: 2})
	h.prepare = func(w *fakeWorker) {
		w.invoke = func(ctx context.Context, cmd *mxgatewayv1.Command, timeout time.Duration) (*mxgatewayv1.Reply, error) {
			if b := cmd.GetWriteSecuredBulk(); b != nil {
				r := &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK}
				entries := make([]*mxgatewayv1.BulkEntryResult, len(b.GetEntries()))
				for i, e := range b.GetEntries() {
					entries[i] = &mxgatewayv1.BulkEntryResult{ItemHandle: e.GetItemHandle(), Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK}
					if e.GetItemHandle() == 0 {
						entries[i].Status = mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_MXACCESS_FAILURE
					}
				}
				r.Result = &mxgatewayv1.Reply_Bulk{Bulk: &mxgatewayv1.BulkResult{Entries: entries}}
				return r, nil
			}
			return okReply(), nil
		}
	}
	s, w := h.open()
	ctx := context.Background()
	bulk := func(items ...int32) *mxgatewayv1.Command {
		b := &mxgatewayv1.WriteSecuredBulkCommand{ServerHandle: 1}
		for _, it := range items {
			b.Entries = append(b.Entries, securedWriteCmd(0, it, 4, 4).GetWriteSecured())
		}
		return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_WriteSecuredBulk{WriteSecuredBulk: b}}
	}
	// Entry 0 is refused at once (handle 0): only item 5's write waits.
	mustInvoke(t, ctx, s, bulk(0, 5))
	mustInvoke(t, ctx, s, securedWriteCmd(1, 6, 4, 4))
	if _, err := s.Invoke(ctx, securedWriteCmd(1, 7, 4, 4), 0); !errors.Is(err, ErrPendingLimit) {
		t.Fatalf("third secured write: %v, want ErrPendingLimit", err)
	}
	for range 10 {
		mustInvoke(t, ctx, s, plainWrite(1, 7))
	}
	w.send(t, completion(1, 1, 5, catSecurity))
	waitLastSeq(t, s, 1)
	if _, err := s.Invoke(ctx, bulk(7, 8), 0); !errors.Is(err, ErrPendingLimit) {
		t.Fatalf("bulk of two with one slot: %v, want ErrPendingLimit", err)
	}
	mustInvoke(t, ctx, s, securedWriteCmd(1, 8, 4, 4))
	got := rs.list()
	if len(got) != 1 || got[0].Command.Name() != "write_secured_bulk" || got[0].ItemHandle != 5 || got[0].UserID != 4 {
		t.Fatalf("refusals %+v, want write_secured_bulk on item 5 by user 4", got)
	}
}

// TestLedgerForgetsRemovedItems: a removed item completes none of its
// queued writes, so the ledger forgets them (and their slots).
func TestLedgerForgetsRemovedItems(t *testing.T) {
	h, _ := ledgerHarness(t, Options{MaxSecuredWrites: 1})
	h.prepare = func(w *fakeWorker) {
		w.invoke = func(ctx context.Context, cmd *mxgatewayv1.Command, timeout time.Duration) (*mxgatewayv1.Reply, error) {
			r := okReply()
			if cmd.GetAddItem() != nil {
				r.Result = &mxgatewayv1.Reply_ItemHandle{ItemHandle: &mxgatewayv1.ItemHandleResult{ItemHandle: 5}}
			}
			return r, nil
		}
	}
	s, _ := h.open()
	ctx := context.Background()
	mustInvoke(t, ctx, s, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{ServerHandle: 1, ItemDefinition: "T.A"}}})
	mustInvoke(t, ctx, s, securedWriteCmd(1, 5, 2, 2))
	if _, err := s.Invoke(ctx, securedWriteCmd(1, 5, 2, 2), 0); !errors.Is(err, ErrPendingLimit) {
		t.Fatalf("second secured write: %v, want ErrPendingLimit", err)
	}
	mustInvoke(t, ctx, s, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_RemoveItem{RemoveItem: &mxgatewayv1.RemoveItemCommand{ServerHandle: 1, ItemHandle: 5}}})
	if n, sec := ledgerSize(s), ledgerSecured(s); n != 0 || sec != 0 {
		t.Fatalf("ledger holds %d handles, %d secured writes after RemoveItem", n, sec)
	}
}

// TestWritingKinds: the ledger's view of the catalogue: every write form
// writes, nothing else does.
func TestWritingKinds(t *testing.T) {
	want := map[string]bool{"write": true, "write2": true, "write_secured": true, "write_secured2": true,
		"write_bulk": true, "write2_bulk": true, "write_secured_bulk": true, "write_secured2_bulk": true}
	for name := range want {
		if catalog.ByName(name) == nil {
			t.Errorf("no command kind %s", name)
		}
	}
	for _, k := range catalog.Kinds() {
		if got := writingKinds[k.Index()]; got != want[k.Name()] {
			t.Errorf("%s: writes = %v, want %v", k.Name(), got, want[k.Name()])
		}
	}
}

// TestAbandonedWritesStillCounted: a write whose caller stopped waiting
// (its reply never reached the session) may have run or not, so its
// handle's FIFO is no longer trusted: every MxCategorySecurityError on
// that handle is reported. A caller cannot hide a secured write's verdict
// by abandoning it, or by abandoning a plain write before it.
func TestAbandonedWritesStillCounted(t *testing.T) {
	h, rs := ledgerHarness(t, Options{})
	h.prepare = func(w *fakeWorker) {
		w.invoke = func(ctx context.Context, cmd *mxgatewayv1.Command, timeout time.Duration) (*mxgatewayv1.Reply, error) {
			if v := ctx.Value(ctxKey{}); v == "abandon" {
				return nil, context.DeadlineExceeded // the worker runs it anyway, or drops it
			}
			return okReply(), nil
		}
	}
	s, w := h.open()
	abandon := context.WithValue(context.Background(), ctxKey{}, "abandon")
	wait := context.WithValue(context.Background(), ctxKey{}, "wait")
	invokeErr := func(cmd *mxgatewayv1.Command) {
		t.Helper()
		if _, err := s.Invoke(abandon, cmd, 0); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("abandoned Invoke: %v", err)
		}
	}
	// Item 5: an abandoned secured write that ran.
	invokeErr(securedWriteCmd(1, 5, 2, 2))
	// Item 6: an abandoned plain write the worker dropped, then a secured one.
	invokeErr(plainWrite(1, 6))
	mustInvoke(t, wait, s, securedWriteCmd(1, 6, 3, 3))
	// Item 7: an abandoned plain write that ran, then a secured one.
	invokeErr(plainWrite(1, 7))
	mustInvoke(t, wait, s, securedWriteCmd(1, 7, 4, 4))
	evs := []*mxgatewayv1.Event{
		completion(1, 1, 5, catSecurity), // the abandoned secured write's
		completion(2, 1, 6, catSecurity), // the secured write's
		completion(3, 1, 7, catOK),       // the abandoned plain write's
		completion(4, 1, 7, catSecurity), // the secured write's
	}
	for _, ev := range evs {
		w.send(t, ev)
	}
	waitLastSeq(t, s, 4)
	var users []int32
	for _, r := range rs.list() {
		users = append(users, r.UserID)
	}
	if !reflect.DeepEqual(users, []int32{2, 3, 4}) {
		t.Fatalf("refusals reported for users %v, want [2 3 4]", users)
	}
	if ctx := rs.ctxVal; len(ctx) != 3 || ctx[0] != "abandon" || ctx[1] != "wait" {
		t.Fatalf("refusal contexts %v", ctx)
	}
	if sec := ledgerSecured(s); sec != 0 {
		t.Fatalf("%d secured writes still counted", sec)
	}
}

// TestUnsyncedHandlesBounded: past maxUnsyncedHandles unsynchronised
// handles the session keeps no more of them: every handle counts as
// unsynchronised.
func TestUnsyncedHandlesBounded(t *testing.T) {
	h, rs := ledgerHarness(t, Options{})
	h.prepare = func(w *fakeWorker) {
		w.invoke = func(ctx context.Context, cmd *mxgatewayv1.Command, timeout time.Duration) (*mxgatewayv1.Reply, error) {
			if cmd.GetWrite() != nil {
				return nil, context.DeadlineExceeded
			}
			return okReply(), nil
		}
	}
	s, w := h.open()
	for i := range maxUnsyncedHandles + 1 {
		if _, err := s.Invoke(context.Background(), plainWrite(1, int32(100+i)), 0); err == nil {
			t.Fatal("abandoned write succeeded")
		}
	}
	if n := ledgerSize(s); n != maxUnsyncedHandles {
		t.Fatalf("ledger holds %d handles, want %d", n, maxUnsyncedHandles)
	}
	mustInvoke(t, context.Background(), s, securedWriteCmd(1, 9, 5, 5))
	w.send(t, completion(1, 1, 9, catOK))
	w.send(t, completion(2, 1, 5000, catSecurity)) // a handle the ledger holds nothing for
	waitLastSeq(t, s, 2)
	if got := rs.list(); len(got) != 1 || got[0].UserID != 5 || got[0].ItemHandle != 5000 {
		t.Fatalf("refusals %+v, want one for item 5000 against user 5", got)
	}
}
