package auth

import (
	"fmt"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// ItemRefFunc resolves an item handle of the calling session to the
// reference it was added with; ok is false for handles the session does not
// know. The gateway's session keeps this map (from AddItem, AddItem2,
// AddBufferedItem, AddItemBulk and SubscribeBulk results) because writes name
// items by handle only.
type ItemRefFunc func(itemHandle int32) (ref string, ok bool)

const (
	msgReadDenied   = "reference not allowed for reading by this API key"
	msgWriteDenied  = "reference not allowed for writing by this API key"
	msgHandleDenied = "item handle unknown to the gateway; writes of this API key are restricted by reference"
)

func entryDenial(msg string) *mxgatewayv1.EntryDenial {
	return &mxgatewayv1.EntryDenial{Reason: mxgatewayv1.ReasonReferenceForbidden, Message: msg}
}

// CheckCommand applies p's reference constraints to cmd before it reaches
// the worker.
//
// Single-item commands (AddItem, AddItem2, AddBufferedItem, Write, Write2,
// WriteSecured, WriteSecured2) that break a constraint return a *DeniedError
// (PERMISSION_DENIED, reason REFERENCE_NOT_ALLOWED): the whole call fails.
//
// Bulk commands never fail as a whole: the result maps the input index of
// each denied entry to its EntryDenial. The gateway must leave those entries
// out of what it sends to the worker and put the denial into that entry's
// BulkEntryResult.denial (ReadResult.denial for ReadBulk), keeping input
// order. Read-side bulks (AddItemBulk, SubscribeBulk, ReadBulk) are checked
// against the read patterns, write bulks against the write patterns via
// itemRef.
//
// Writes are checked only when p has write patterns; a handle itemRef cannot
// resolve is then denied. itemRef may be nil when p has none. Other commands
// (by-handle Advise, Remove, ...) need no check: their handles could only be
// obtained through a checked add.
func CheckCommand(p *Principal, cmd *mxgatewayv1.Command, itemRef ItemRefFunc) (map[int]*mxgatewayv1.EntryDenial, error) {
	if p == nil {
		return nil, &DeniedError{Reason: mxgatewayv1.ReasonPermissionDenied, Message: "no principal"}
	}
	if cmd == nil {
		return nil, nil
	}
	readOne := func(ref string) error {
		if p.AllowRead(ref) {
			return nil
		}
		return &DeniedError{Reason: mxgatewayv1.ReasonReferenceForbidden, Message: fmt.Sprintf("%s: %q", msgReadDenied, ref)}
	}
	writeOne := func(handle int32) *mxgatewayv1.EntryDenial {
		if !p.HasWriteConstraints() {
			return nil
		}
		if itemRef == nil {
			return entryDenial(msgHandleDenied)
		}
		ref, ok := itemRef(handle)
		if !ok {
			return entryDenial(msgHandleDenied)
		}
		if !p.AllowWrite(ref) {
			return entryDenial(fmt.Sprintf("%s: %q", msgWriteDenied, ref))
		}
		return nil
	}
	writeSingle := func(handle int32) error {
		if d := writeOne(handle); d != nil {
			return &DeniedError{Reason: d.Reason, Message: d.Message}
		}
		return nil
	}
	readBulk := func(refs []string) map[int]*mxgatewayv1.EntryDenial {
		var out map[int]*mxgatewayv1.EntryDenial
		for i, ref := range refs {
			if !p.AllowRead(ref) {
				if out == nil {
					out = make(map[int]*mxgatewayv1.EntryDenial)
				}
				out[i] = entryDenial(fmt.Sprintf("%s: %q", msgReadDenied, ref))
			}
		}
		return out
	}
	writeBulk := func(n int, handle func(i int) int32) map[int]*mxgatewayv1.EntryDenial {
		if !p.HasWriteConstraints() {
			return nil
		}
		var out map[int]*mxgatewayv1.EntryDenial
		for i := range n {
			if d := writeOne(handle(i)); d != nil {
				if out == nil {
					out = make(map[int]*mxgatewayv1.EntryDenial)
				}
				out[i] = d
			}
		}
		return out
	}

	switch k := cmd.GetKind().(type) {
	case *mxgatewayv1.Command_AddItem:
		return nil, readOne(k.AddItem.GetItemDefinition())
	case *mxgatewayv1.Command_AddItem2:
		return nil, readOne(k.AddItem2.GetItemDefinition())
	case *mxgatewayv1.Command_AddBufferedItem:
		return nil, readOne(k.AddBufferedItem.GetItemDefinition())
	case *mxgatewayv1.Command_AddItemBulk:
		return readBulk(k.AddItemBulk.GetItemDefinitions()), nil
	case *mxgatewayv1.Command_SubscribeBulk:
		return readBulk(k.SubscribeBulk.GetItemDefinitions()), nil
	case *mxgatewayv1.Command_ReadBulk:
		return readBulk(k.ReadBulk.GetItemDefinitions()), nil
	case *mxgatewayv1.Command_Write:
		return nil, writeSingle(k.Write.GetItemHandle())
	case *mxgatewayv1.Command_Write2:
		return nil, writeSingle(k.Write2.GetItemHandle())
	case *mxgatewayv1.Command_WriteSecured:
		return nil, writeSingle(k.WriteSecured.GetItemHandle())
	case *mxgatewayv1.Command_WriteSecured2:
		return nil, writeSingle(k.WriteSecured2.GetItemHandle())
	case *mxgatewayv1.Command_WriteBulk:
		e := k.WriteBulk.GetEntries()
		return writeBulk(len(e), func(i int) int32 { return e[i].GetItemHandle() }), nil
	case *mxgatewayv1.Command_Write2Bulk:
		e := k.Write2Bulk.GetEntries()
		return writeBulk(len(e), func(i int) int32 { return e[i].GetItemHandle() }), nil
	case *mxgatewayv1.Command_WriteSecuredBulk:
		e := k.WriteSecuredBulk.GetEntries()
		return writeBulk(len(e), func(i int) int32 { return e[i].GetItemHandle() }), nil
	case *mxgatewayv1.Command_WriteSecured2Bulk:
		e := k.WriteSecured2Bulk.GetEntries()
		return writeBulk(len(e), func(i int) int32 { return e[i].GetItemHandle() }), nil
	}
	return nil, nil
}

// CheckSessionAccess returns nil when p may use a session opened by
// ownerKeyID, else a *DeniedError (PERMISSION_DENIED, NOT_SESSION_OWNER).
func CheckSessionAccess(p *Principal, ownerKeyID string) error {
	if CanAccessSession(p, ownerKeyID) {
		return nil
	}
	return &DeniedError{Reason: mxgatewayv1.ReasonNotSessionOwner, Message: "the session belongs to another API key"}
}
