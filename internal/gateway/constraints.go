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
	writes := func(n int, handle func(int) int32, keep func([]int)) (bulkShape, bool) {
		return bulkShape{n: n, keep: keep, denied: func(i int) *deniedInput { return &deniedInput{handle: handle(i)} }}, true
	}
	switch k := cmd.GetKind().(type) {
	case *mxgatewayv1.Command_AddItemBulk:
		return refs(&k.AddItemBulk.ItemDefinitions, false)
	case *mxgatewayv1.Command_SubscribeBulk:
		return refs(&k.SubscribeBulk.ItemDefinitions, false)
	case *mxgatewayv1.Command_ReadBulk:
		return refs(&k.ReadBulk.ItemDefinitions, true)
	case *mxgatewayv1.Command_WriteBulk:
		e := k.WriteBulk.Entries
		return writes(len(e), func(i int) int32 { return e[i].GetItemHandle() },
			func(a []int) { k.WriteBulk.Entries = pick(e, a) })
	case *mxgatewayv1.Command_Write2Bulk:
		e := k.Write2Bulk.Entries
		return writes(len(e), func(i int) int32 { return e[i].GetItemHandle() },
			func(a []int) { k.Write2Bulk.Entries = pick(e, a) })
	case *mxgatewayv1.Command_WriteSecuredBulk:
		e := k.WriteSecuredBulk.Entries
		return writes(len(e), func(i int) int32 { return e[i].GetItemHandle() },
			func(a []int) { k.WriteSecuredBulk.Entries = pick(e, a) })
	case *mxgatewayv1.Command_WriteSecured2Bulk:
		e := k.WriteSecured2Bulk.Entries
		return writes(len(e), func(i int) int32 { return e[i].GetItemHandle() },
			func(a []int) { k.WriteSecured2Bulk.Entries = pick(e, a) })
	}
	return bulkShape{}, false
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

	if shape.read {
		got := reply.GetReadBulk().GetEntries()
		if reply != nil && len(got) != len(allowed) {
			return reply, nil
		}
		out := make([]*mxgatewayv1.ReadResult, shape.n)
		for j, i := range allowed {
			out[i] = got[j]
		}
		for i, d := range denials {
			if i >= 0 && i < shape.n {
				out[i] = &mxgatewayv1.ReadResult{ItemDefinition: shape.denied(i).ref, Denial: d}
			}
		}
		merged := bulkReply(reply)
		merged.Result = &mxgatewayv1.Reply_ReadBulk{ReadBulk: &mxgatewayv1.ReadBulkResult{Entries: out}}
		return merged, nil
	}
	got := reply.GetBulk().GetEntries()
	if reply != nil && len(got) != len(allowed) {
		return reply, nil
	}
	out := make([]*mxgatewayv1.BulkEntryResult, shape.n)
	for j, i := range allowed {
		out[i] = got[j]
	}
	for i, d := range denials {
		if i >= 0 && i < shape.n {
			in := shape.denied(i)
			out[i] = &mxgatewayv1.BulkEntryResult{ItemDefinition: in.ref, ItemHandle: in.handle, Denial: d}
		}
	}
	merged := bulkReply(reply)
	merged.Result = &mxgatewayv1.Reply_Bulk{Bulk: &mxgatewayv1.BulkResult{Entries: out}}
	return merged, nil
}

// bulkReply returns the envelope of a merged bulk reply: the worker's (its
// parity warnings kept), or a fresh BULK reply when the worker saw nothing.
func bulkReply(worker *mxgatewayv1.Reply) *mxgatewayv1.Reply {
	if worker == nil {
		return &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK}
	}
	return worker
}
