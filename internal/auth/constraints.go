package auth

import (
	"fmt"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
)

// ItemRefFunc resolves an item handle of a registration of the calling
// session to the reference it names there; ok is false for handles the
// session does not know. The gateway answers it from its mirror of the
// worker's item table, because writes name items by handle only.
type ItemRefFunc func(serverHandle, itemHandle int32) (ref string, ok bool)

const (
	msgReadDenied   = "reference not allowed for reading by this API key"
	msgWriteDenied  = "reference not allowed for writing by this API key"
	msgHandleDenied = "item handle unknown to the gateway; writes of this API key are restricted by reference"
)

func entryDenial(msg string) *mxgatewayv1.EntryDenial {
	return &mxgatewayv1.EntryDenial{Reason: mxgatewayv1.ReasonReferenceForbidden, Message: msg}
}

// Approval is one written item the constraints allowed: the reference the
// session's item table said its handle names ("" for a handle <= 0, which
// names no item).
type Approval struct {
	Server, Item int32
	Ref          string
}

// Decision is what a principal's reference constraints allow of one
// command.
type Decision struct {
	// Denials maps the input index of each denied entry of a bulk command
	// (or ReadBulk) to its denial. The gateway leaves those entries out of
	// what it sends to the worker and puts the denial in their result, in
	// input order.
	Denials map[int]*mxgatewayv1.EntryDenial
	// Guarded is true when the key's writes are restricted and the command
	// writes: then the worker must re-check Approved against its own item
	// table before it writes (the item guard), because a command whose
	// caller stopped waiting may have changed what a handle names.
	Guarded bool
	// Approved lists each written item handle allowed, with the reference
	// it was allowed as.
	Approved []Approval
}

// CheckCommand applies p's reference constraints to cmd before it reaches
// the worker, generically over the items the command catalogue says cmd
// names (catalog.Uses):
//
//   - a reference the command reads (AddItem, AddItem2, AddBufferedItem,
//     AddItemBulk, SubscribeBulk, ReadBulk) must match allow_read;
//   - an item handle the command writes (Write, Write2, WriteSecured,
//     WriteSecured2 and their bulk forms) must name, in itemRef, a
//     reference that matches allow_write; a handle itemRef does not know
//     is denied. A handle <= 0 names no item and is approved as "", so
//     MXAccess answers it with its HRESULT. Writes are checked only when p
//     has write patterns.
//
// A single command that breaks a constraint returns a *DeniedError
// (PERMISSION_DENIED, REFERENCE_NOT_ALLOWED). A command with an input list
// never fails as a whole: its denied entries are in Decision.Denials.
// Commands that name items by handle without writing them (Advise,
// RemoveItem, ...) need no check: a handle can only come from a checked
// add.
func CheckCommand(p *Principal, cmd *mxgatewayv1.Command, itemRef ItemRefFunc) (Decision, error) {
	var dec Decision
	if p == nil {
		return dec, &DeniedError{Reason: mxgatewayv1.ReasonPermissionDenied, Message: "no principal"}
	}
	var seen map[Approval]bool
	for _, u := range catalog.Uses(cmd) {
		var d *mxgatewayv1.EntryDenial
		switch {
		case u.ByRef && u.Access == mxgatewayv1.ItemAccess_ITEM_ACCESS_READ:
			if !p.AllowRead(u.Ref) {
				d = entryDenial(fmt.Sprintf("%s: %q", msgReadDenied, u.Ref))
			}
		case !u.ByRef && u.Access == mxgatewayv1.ItemAccess_ITEM_ACCESS_WRITE && p.HasWriteConstraints():
			dec.Guarded = true
			a := Approval{Server: u.Server, Item: u.Item}
			if u.Item > 0 {
				ref, ok := "", false
				if itemRef != nil {
					ref, ok = itemRef(u.Server, u.Item)
				}
				switch {
				case !ok:
					d = entryDenial(msgHandleDenied)
				case !p.AllowWrite(ref):
					d = entryDenial(fmt.Sprintf("%s: %q", msgWriteDenied, ref))
				}
				a.Ref = ref
			}
			if d == nil && !seen[a] {
				if seen == nil {
					seen = make(map[Approval]bool)
				}
				seen[a] = true
				dec.Approved = append(dec.Approved, a)
			}
		}
		if d == nil {
			continue
		}
		if u.Entry < 0 {
			return Decision{}, &DeniedError{Reason: d.Reason, Message: d.Message}
		}
		if dec.Denials == nil {
			dec.Denials = make(map[int]*mxgatewayv1.EntryDenial)
		}
		dec.Denials[u.Entry] = d
	}
	return dec, nil
}

// CheckSessionAccess returns nil when p may use a session opened by
// ownerKeyID, else a *DeniedError (PERMISSION_DENIED, NOT_SESSION_OWNER).
func CheckSessionAccess(p *Principal, ownerKeyID string) error {
	if CanAccessSession(p, ownerKeyID) {
		return nil
	}
	return &DeniedError{Reason: mxgatewayv1.ReasonNotSessionOwner, Message: "the session belongs to another API key"}
}
