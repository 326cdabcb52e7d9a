package gateway

import (
	"context"
	"errors"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/auth"
	"github.com/mxgateway/mxgateway/internal/session"
	"github.com/mxgateway/mxgateway/internal/workerclient"
)

// errUnexpectedDenials reports per-entry denials for a command that has no
// entries; it becomes INTERNAL.
var errUnexpectedDenials = errors.New("gateway: per-entry denials for a command without entries")

// Constraints applies an API key's reference constraints to commands
// (auth.Guard does).
type Constraints interface {
	// CheckCommand decides what the caller behind ctx may do with cmd on
	// session sessionID, resolving written item handles with itemRef (the
	// session's mirror of the worker's item table). An error fails the
	// call; Decision.Denials leave those entries of a bulk command out of
	// what the worker sees; Decision.Approved becomes the item guard the
	// worker re-checks. Denials are audited.
	CheckCommand(ctx context.Context, sessionID string, cmd *mxgatewayv1.Command, itemRef auth.ItemRefFunc) (auth.Decision, error)
	// Refused audits a write the worker's item guard refused after the
	// constraints approved it: entries refused bulk entries (0 for a single
	// command), detail the worker's explanation.
	Refused(ctx context.Context, sessionID string, cmd *mxgatewayv1.Command, entries int, detail string)
}

// wireGuard is the item guard of a decision; nil when the command is not
// guarded.
func wireGuard(dec auth.Decision) *workerv1.ItemGuard {
	if !dec.Guarded {
		return nil
	}
	g := &workerv1.ItemGuard{Items: make([]*workerv1.GuardedItem, len(dec.Approved))}
	for i, a := range dec.Approved {
		g.Items[i] = &workerv1.GuardedItem{ServerHandle: a.Server, ItemHandle: a.Item, ItemDefinition: a.Ref}
	}
	return g
}

// run sends cmd to the session's worker without its denied entries and
// with its item guard, then puts the worker's per-entry results and a
// denied result for every denied entry back into input order. When every
// entry is denied the worker sees nothing. A worker reply that is not a
// per-entry result (MXAccess refused the whole call) is returned as it is.
func (sv *Service) run(ctx context.Context, s *session.Session, cmd *mxgatewayv1.Command,
	denials map[int]*mxgatewayv1.EntryDenial, guard *workerv1.ItemGuard, timeout time.Duration) (*mxgatewayv1.Reply, error) {
	if len(denials) == 0 {
		reply, err := s.InvokeGuarded(ctx, cmd, guard, timeout)
		sv.auditRefusals(ctx, s, cmd, guard, reply, err)
		return reply, err
	}
	k := catalog.Of(cmd)
	if !k.HasInputs() {
		// Only commands with entries have per-entry denials; anything else
		// is a bug in a checker: refuse rather than run an unchecked command.
		return nil, errUnexpectedDenials
	}
	n := k.Inputs(cmd)
	allowed := make([]int, 0, n)
	for i := range n {
		if denials[i] == nil {
			allowed = append(allowed, i)
		}
	}
	var reply *mxgatewayv1.Reply
	if len(allowed) > 0 {
		var err error
		reply, err = s.InvokeGuarded(ctx, k.Keep(cmd, allowed), guard, timeout)
		sv.auditRefusals(ctx, s, cmd, guard, reply, err)
		if err != nil {
			return nil, err
		}
	}

	merged := reply
	if merged == nil {
		merged = &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK}
	}
	if k.IsReadBulk() {
		out, ok := mergeDenied(n, allowed, reply.GetReadBulk().GetEntries(), denials,
			func(i int, d *mxgatewayv1.EntryDenial) *mxgatewayv1.ReadResult {
				return &mxgatewayv1.ReadResult{ItemDefinition: k.Input(cmd, i).Ref, Denial: d}
			})
		if !ok {
			return reply, nil
		}
		merged.Result = &mxgatewayv1.Reply_ReadBulk{ReadBulk: &mxgatewayv1.ReadBulkResult{Entries: out}}
		return merged, nil
	}
	out, ok := mergeDenied(n, allowed, reply.GetBulk().GetEntries(), denials,
		func(i int, d *mxgatewayv1.EntryDenial) *mxgatewayv1.BulkEntryResult {
			in := k.Input(cmd, i)
			return &mxgatewayv1.BulkEntryResult{ItemDefinition: in.Ref, ItemHandle: in.Item, Denial: d}
		})
	if !ok {
		return reply, nil
	}
	merged.Result = &mxgatewayv1.Reply_Bulk{Bulk: &mxgatewayv1.BulkResult{Entries: out}}
	return merged, nil
}

// mergeDenied puts the worker's results for the allowed inputs (got, in
// the order sent) and a denied result for every denied input back into
// input order. It returns false when got does not answer every allowed
// input (MXAccess refused the whole call, or the worker sent no reply).
func mergeDenied[R any](n int, allowed []int, got []R, denials map[int]*mxgatewayv1.EntryDenial,
	denied func(i int, d *mxgatewayv1.EntryDenial) R) ([]R, bool) {
	if len(got) != len(allowed) {
		return nil, false
	}
	out := make([]R, n)
	for j, i := range allowed {
		out[i] = got[j]
	}
	for i, d := range denials {
		if i >= 0 && i < n {
			out[i] = denied(i, d)
		}
	}
	return out, true
}

// auditRefusals audits what the worker's item guard refused of a guarded
// command: the single command (a *workerclient.GuardError), or the bulk
// entries whose results carry a denial (the worker's reply holds no other
// denials: the gateway merges its own in later).
func (sv *Service) auditRefusals(ctx context.Context, s *session.Session, cmd *mxgatewayv1.Command,
	guard *workerv1.ItemGuard, reply *mxgatewayv1.Reply, err error) {
	if guard == nil || sv.constraints == nil {
		return
	}
	var ge *workerclient.GuardError
	if errors.As(err, &ge) {
		sv.constraints.Refused(ctx, s.ID(), cmd, 0, ge.Denial.GetMessage())
		return
	}
	n, first := 0, ""
	for _, e := range reply.GetBulk().GetEntries() {
		if d := e.GetDenial(); d != nil {
			if n == 0 {
				first = d.GetMessage()
			}
			n++
		}
	}
	if n > 0 {
		sv.constraints.Refused(ctx, s.ID(), cmd, n, first)
	}
}
