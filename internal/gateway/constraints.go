package gateway

import (
	"context"
	"errors"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/session"
)

// errUnexpectedDenials reports per-entry denials for a command that has no
// entries; it becomes INTERNAL.
var errUnexpectedDenials = errors.New("gateway: per-entry denials for a command without entries")

// serverHandleOf returns the registration handle (server_handle) a command
// names, or 0 when it has none (Register).
func serverHandleOf(cmd *mxgatewayv1.Command) int32 {
	m := cmd.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("kind"))
	if fd == nil || fd.Kind() != protoreflect.MessageKind {
		return 0
	}
	inner := m.Get(fd).Message()
	f := inner.Descriptor().Fields().ByName("server_handle")
	if f == nil || f.Kind() != protoreflect.Int32Kind {
		return 0
	}
	return int32(inner.Get(f).Int())
}

// bulkShape describes the input list of a bulk command that reference
// constraints can deny entries of.
type bulkShape struct {
	n      int                      // number of inputs
	keep   func(allowed []int)      // keeps only the allowed inputs (on a clone)
	denied func(i int) *deniedInput // describes input i for its denied result
	read   bool                     // ReadBulk: results are ReadResults
}

type deniedInput struct {
	ref    string
	handle int32
}

// shapeOf returns the bulk shape of cmd (which it may modify through keep),
// or false for commands whose entries cannot be denied one by one.
func shapeOf(cmd *mxgatewayv1.Command) (bulkShape, bool) {
	refs := func(p *[]string, read bool) (bulkShape, bool) {
		in := *p
		return bulkShape{
			n:      len(in),
			keep:   func(allowed []int) { *p = pick(in, allowed) },
			denied: func(i int) *deniedInput { return &deniedInput{ref: in[i]} },
			read:   read,
		}, true
	}
	switch k := cmd.GetKind().(type) {
	case *mxgatewayv1.Command_AddItemBulk:
		return refs(&k.AddItemBulk.ItemDefinitions, false)
	case *mxgatewayv1.Command_SubscribeBulk:
		return refs(&k.SubscribeBulk.ItemDefinitions, false)
	case *mxgatewayv1.Command_ReadBulk:
		return refs(&k.ReadBulk.ItemDefinitions, true)
	case *mxgatewayv1.Command_WriteBulk:
		return writesShape(&k.WriteBulk.Entries)
	case *mxgatewayv1.Command_Write2Bulk:
		return writesShape(&k.Write2Bulk.Entries)
	case *mxgatewayv1.Command_WriteSecuredBulk:
		return writesShape(&k.WriteSecuredBulk.Entries)
	case *mxgatewayv1.Command_WriteSecured2Bulk:
		return writesShape(&k.WriteSecured2Bulk.Entries)
	}
	return bulkShape{}, false
}

// writesShape is the bulk shape of a Write*Bulk command's entries.
func writesShape[W interface{ GetItemHandle() int32 }](p *[]W) (bulkShape, bool) {
	in := *p
	return bulkShape{
		n:      len(in),
		keep:   func(allowed []int) { *p = pick(in, allowed) },
		denied: func(i int) *deniedInput { return &deniedInput{handle: in[i].GetItemHandle()} },
	}, true
}

func pick[T any](in []T, idx []int) []T {
	out := make([]T, len(idx))
	for j, i := range idx {
		out[j] = in[i]
	}
	return out
}

// invokeAllowed runs a bulk command without its denied entries and merges
// the worker's per-entry results back into input order, the denied entries
// carrying their denial. When every entry is denied the worker sees
// nothing. A worker reply that is not a per-entry result (MXAccess refused
// the whole call) is returned as it is.
func (sv *Service) invokeAllowed(ctx context.Context, s *session.Session, cmd *mxgatewayv1.Command,
	denials map[int]*mxgatewayv1.EntryDenial, timeout time.Duration) (*mxgatewayv1.Reply, error) {
	sent := proto.Clone(cmd).(*mxgatewayv1.Command)
	shape, ok := shapeOf(sent)
	if !ok {
		// Only bulk commands have per-entry denials; anything else is a bug
		// in the checker: refuse rather than run an unchecked command.
		return nil, errUnexpectedDenials
	}
	allowed := make([]int, 0, shape.n)
	for i := range shape.n {
		if denials[i] == nil {
			allowed = append(allowed, i)
		}
	}
	var reply *mxgatewayv1.Reply
	if len(allowed) > 0 {
		shape.keep(allowed)
		var err error
		if reply, err = s.Invoke(ctx, sent, timeout); err != nil {
			return nil, err
		}
	}

	merged := bulkReply(reply)
	if shape.read {
		out, ok := mergeDenied(shape.n, allowed, reply.GetReadBulk().GetEntries(), denials,
			func(i int, d *mxgatewayv1.EntryDenial) *mxgatewayv1.ReadResult {
				return &mxgatewayv1.ReadResult{ItemDefinition: shape.denied(i).ref, Denial: d}
			})
		if !ok {
			return reply, nil
		}
		merged.Result = &mxgatewayv1.Reply_ReadBulk{ReadBulk: &mxgatewayv1.ReadBulkResult{Entries: out}}
		return merged, nil
	}
	out, ok := mergeDenied(shape.n, allowed, reply.GetBulk().GetEntries(), denials,
		func(i int, d *mxgatewayv1.EntryDenial) *mxgatewayv1.BulkEntryResult {
			in := shape.denied(i)
			return &mxgatewayv1.BulkEntryResult{ItemDefinition: in.ref, ItemHandle: in.handle, Denial: d}
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

// bulkReply returns the envelope of a merged bulk reply: the worker's (its
// parity warnings kept), or a fresh BULK reply when the worker saw nothing.
func bulkReply(worker *mxgatewayv1.Reply) *mxgatewayv1.Reply {
	if worker == nil {
		return &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK}
	}
	return worker
}
