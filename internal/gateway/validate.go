package gateway

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// Validation bounds.
const (
	// DefaultMaxBulkEntries bounds the list of a bulk command.
	DefaultMaxBulkEntries = 10000
	// maxReferenceLen bounds one item reference (Galaxy references are far
	// shorter; this only stops abuse).
	maxReferenceLen = 1024
	// maxNameLen bounds client names, user names and identities.
	maxNameLen = 256
	// maxTimeoutMs bounds a per-call or ReadBulk timeout (one hour).
	maxTimeoutMs = 3_600_000
	// maxSessionIDLen bounds a session id (ours are 32 characters).
	maxSessionIDLen = 128
)

// invalidError is a malformed request: every problem found, as BadRequest
// field violations. It never reaches a worker.
type invalidError struct {
	violations []*errdetails.BadRequest_FieldViolation
}

func (e *invalidError) Error() string {
	parts := make([]string, 0, len(e.violations))
	for i, v := range e.violations {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(e.violations)-3))
			break
		}
		parts = append(parts, v.GetField()+": "+v.GetDescription())
	}
	return "gateway: invalid request: " + strings.Join(parts, "; ")
}

// validator collects field violations.
type validator struct {
	maxBulk    int
	violations []*errdetails.BadRequest_FieldViolation
}

func (v *validator) add(field, format string, args ...any) {
	// A huge bad bulk list must not produce a huge error.
	if len(v.violations) < 100 {
		v.violations = append(v.violations, &errdetails.BadRequest_FieldViolation{
			Field: field, Description: fmt.Sprintf(format, args...),
		})
	}
}

func (v *validator) err() error {
	if len(v.violations) == 0 {
		return nil
	}
	return &invalidError{violations: v.violations}
}

func (v *validator) sessionID(field, id string) {
	switch {
	case id == "":
		v.add(field, "required")
	case len(id) > maxSessionIDLen:
		v.add(field, "longer than %d bytes", maxSessionIDLen)
	}
}

func (v *validator) handle(field string, h int32) {
	if h <= 0 {
		v.add(field, "must be > 0 (got %d)", h)
	}
}

func (v *validator) text(field, s string, max int, required bool) {
	switch {
	case required && strings.TrimSpace(s) == "":
		v.add(field, "required")
	case len(s) > max:
		v.add(field, "longer than %d bytes", max)
	case !utf8.ValidString(s):
		v.add(field, "not valid UTF-8")
	}
}

func (v *validator) reference(field, ref string) { v.text(field, ref, maxReferenceLen, true) }

func (v *validator) value(field string, val *mxgatewayv1.MxValue) {
	switch {
	case val == nil:
		v.add(field, "required")
	case val.GetKind() == nil && !val.GetIsNull():
		v.add(field, "has no value and is not null")
	}
}

func (v *validator) timestamp(field string, ts *timestamppb.Timestamp) {
	if ts == nil {
		v.add(field, "required")
		return
	}
	if err := ts.CheckValid(); err != nil {
		v.add(field, "invalid: %v", err)
	}
}

func (v *validator) timeoutMs(field string, ms uint32) {
	if ms > maxTimeoutMs {
		v.add(field, "above %d ms", maxTimeoutMs)
	}
}

func (v *validator) list(field string, n int) bool {
	switch {
	case n == 0:
		v.add(field, "must not be empty")
		return false
	case n > v.maxBulk:
		v.add(field, "%d entries, at most %d allowed", n, v.maxBulk)
		return false
	}
	return true
}

func (v *validator) handles(field string, hs []int32) {
	if !v.list(field, len(hs)) {
		return
	}
	for i, h := range hs {
		v.handle(fmt.Sprintf("%s[%d]", field, i), h)
	}
}

func (v *validator) references(field string, refs []string) {
	if !v.list(field, len(refs)) {
		return
	}
	for i, r := range refs {
		v.reference(fmt.Sprintf("%s[%d]", field, i), r)
	}
}

// entryServer checks a bulk entry's own server handle: unset or the bulk's.
func (v *validator) entryServer(field string, got, bulk int32) {
	if got != 0 && got != bulk {
		v.add(field, "must be 0 or the bulk command's server_handle %d (got %d)", bulk, got)
	}
}

// validateInvoke checks an InvokeRequest completely before anything reaches
// a worker.
func validateInvoke(req *mxgatewayv1.InvokeRequest, maxBulk int) error {
	v := &validator{maxBulk: maxBulk}
	v.sessionID("session_id", req.GetSessionId())
	v.timeoutMs("timeout_ms", req.GetTimeoutMs())
	v.command("command", req.GetCommand())
	return v.err()
}

// command checks one command of every kind. A new kind in the oneof falls
// into the default case and is refused until it is validated here.
func (v *validator) command(f string, cmd *mxgatewayv1.Command) {
	if cmd == nil {
		v.add(f, "required")
		return
	}
	switch k := cmd.GetKind().(type) {
	case nil:
		v.add(f, "exactly one command kind must be set")
	case *mxgatewayv1.Command_Register:
		v.text(f+".register.client_name", k.Register.GetClientName(), maxNameLen, false)
	case *mxgatewayv1.Command_Unregister:
		v.handle(f+".unregister.server_handle", k.Unregister.GetServerHandle())
	case *mxgatewayv1.Command_AddItem:
		v.handle(f+".add_item.server_handle", k.AddItem.GetServerHandle())
		v.reference(f+".add_item.item_definition", k.AddItem.GetItemDefinition())
	case *mxgatewayv1.Command_AddItem2:
		v.handle(f+".add_item2.server_handle", k.AddItem2.GetServerHandle())
		v.reference(f+".add_item2.item_definition", k.AddItem2.GetItemDefinition())
		v.text(f+".add_item2.item_context", k.AddItem2.GetItemContext(), maxReferenceLen, false)
	case *mxgatewayv1.Command_RemoveItem:
		v.item(f+".remove_item", k.RemoveItem.GetServerHandle(), k.RemoveItem.GetItemHandle())
	case *mxgatewayv1.Command_Advise:
		v.item(f+".advise", k.Advise.GetServerHandle(), k.Advise.GetItemHandle())
	case *mxgatewayv1.Command_AdviseSupervisory:
		v.item(f+".advise_supervisory", k.AdviseSupervisory.GetServerHandle(), k.AdviseSupervisory.GetItemHandle())
	case *mxgatewayv1.Command_UnAdvise:
		v.item(f+".un_advise", k.UnAdvise.GetServerHandle(), k.UnAdvise.GetItemHandle())
	case *mxgatewayv1.Command_Suspend:
		v.item(f+".suspend", k.Suspend.GetServerHandle(), k.Suspend.GetItemHandle())
	case *mxgatewayv1.Command_Activate:
		v.item(f+".activate", k.Activate.GetServerHandle(), k.Activate.GetItemHandle())
	case *mxgatewayv1.Command_AddBufferedItem:
		v.handle(f+".add_buffered_item.server_handle", k.AddBufferedItem.GetServerHandle())
		v.reference(f+".add_buffered_item.item_definition", k.AddBufferedItem.GetItemDefinition())
	case *mxgatewayv1.Command_SetBufferedUpdateInterval:
		v.handle(f+".set_buffered_update_interval.server_handle", k.SetBufferedUpdateInterval.GetServerHandle())
		if ms := k.SetBufferedUpdateInterval.GetIntervalMs(); ms < 0 {
			v.add(f+".set_buffered_update_interval.interval_ms", "must not be negative (got %d)", ms)
		}
	case *mxgatewayv1.Command_Write:
		checkWrite(v, f+".write", k.Write, k.Write.GetServerHandle())
	case *mxgatewayv1.Command_Write2:
		checkWrite(v, f+".write2", k.Write2, k.Write2.GetServerHandle())
	case *mxgatewayv1.Command_WriteSecured:
		checkWrite(v, f+".write_secured", k.WriteSecured, k.WriteSecured.GetServerHandle())
	case *mxgatewayv1.Command_WriteSecured2:
		checkWrite(v, f+".write_secured2", k.WriteSecured2, k.WriteSecured2.GetServerHandle())
	case *mxgatewayv1.Command_AuthenticateUser:
		v.handle(f+".authenticate_user.server_handle", k.AuthenticateUser.GetServerHandle())
		v.text(f+".authenticate_user.user_name", k.AuthenticateUser.GetUserName(), maxNameLen, true)
		if len(k.AuthenticateUser.GetPassword()) > maxNameLen {
			v.add(f+".authenticate_user.password", "longer than %d bytes", maxNameLen)
		}
	case *mxgatewayv1.Command_ArchestraUserToId:
		v.handle(f+".archestra_user_to_id.server_handle", k.ArchestraUserToId.GetServerHandle())
		v.text(f+".archestra_user_to_id.user_identity", k.ArchestraUserToId.GetUserIdentity(), maxNameLen, true)
	case *mxgatewayv1.Command_AddItemBulk:
		v.referenceBulk(f+".add_item_bulk", k.AddItemBulk.GetServerHandle(), k.AddItemBulk.GetItemDefinitions())
	case *mxgatewayv1.Command_AdviseBulk:
		v.handleBulk(f+".advise_bulk", k.AdviseBulk.GetServerHandle(), k.AdviseBulk.GetItemHandles())
	case *mxgatewayv1.Command_SubscribeBulk:
		v.referenceBulk(f+".subscribe_bulk", k.SubscribeBulk.GetServerHandle(), k.SubscribeBulk.GetItemDefinitions())
	case *mxgatewayv1.Command_UnsubscribeBulk:
		v.handleBulk(f+".unsubscribe_bulk", k.UnsubscribeBulk.GetServerHandle(), k.UnsubscribeBulk.GetItemHandles())
	case *mxgatewayv1.Command_RemoveItemBulk:
		v.handleBulk(f+".remove_item_bulk", k.RemoveItemBulk.GetServerHandle(), k.RemoveItemBulk.GetItemHandles())
	case *mxgatewayv1.Command_UnAdviseBulk:
		v.handleBulk(f+".un_advise_bulk", k.UnAdviseBulk.GetServerHandle(), k.UnAdviseBulk.GetItemHandles())
	case *mxgatewayv1.Command_WriteBulk:
		checkWriteBulk(v, f+".write_bulk", k.WriteBulk.GetServerHandle(), k.WriteBulk.GetEntries())
	case *mxgatewayv1.Command_Write2Bulk:
		checkWriteBulk(v, f+".write2_bulk", k.Write2Bulk.GetServerHandle(), k.Write2Bulk.GetEntries())
	case *mxgatewayv1.Command_WriteSecuredBulk:
		checkWriteBulk(v, f+".write_secured_bulk", k.WriteSecuredBulk.GetServerHandle(), k.WriteSecuredBulk.GetEntries())
	case *mxgatewayv1.Command_WriteSecured2Bulk:
		checkWriteBulk(v, f+".write_secured2_bulk", k.WriteSecured2Bulk.GetServerHandle(), k.WriteSecured2Bulk.GetEntries())
	case *mxgatewayv1.Command_ReadBulk:
		v.referenceBulk(f+".read_bulk", k.ReadBulk.GetServerHandle(), k.ReadBulk.GetItemDefinitions())
		v.timeoutMs(f+".read_bulk.timeout_ms", k.ReadBulk.GetTimeoutMs())
	default:
		v.add(f, "command kind %T is not supported by this gateway", k)
	}
}

func (v *validator) item(f string, server, item int32) {
	v.handle(f+".server_handle", server)
	v.handle(f+".item_handle", item)
}

// handleBulk checks a bulk command over item handles: its server_handle
// and its item_handles list.
func (v *validator) handleBulk(f string, server int32, items []int32) {
	v.handle(f+".server_handle", server)
	v.handles(f+".item_handles", items)
}

// referenceBulk checks a bulk command over references: its server_handle
// and its item_definitions list.
func (v *validator) referenceBulk(f string, server int32, refs []string) {
	v.handle(f+".server_handle", server)
	v.references(f+".item_definitions", refs)
}

// checkWriteBulk checks any Write*Bulk command: its server_handle and every
// entry, each against that server handle.
func checkWriteBulk[W writeCommand](v *validator, f string, server int32, entries []W) {
	v.handle(f+".server_handle", server)
	if !v.list(f+".entries", len(entries)) {
		return
	}
	for i, e := range entries {
		checkWrite(v, fmt.Sprintf("%s.entries[%d]", f, i), e, server)
	}
}

// writeCommand is what every Write* command shares.
type writeCommand interface {
	comparable
	GetServerHandle() int32
	GetItemHandle() int32
	GetValue() *mxgatewayv1.MxValue
}

// checkWrite checks any Write* command; bulk is the bulk command's server
// handle, or the entry's own for a single write (then the entry's must be
// > 0). Write2 and WriteSecured2 also need their timestamp.
func checkWrite[W writeCommand](v *validator, f string, w W, bulk int32) {
	var none W
	if w == none {
		v.add(f, "required")
		return
	}
	v.server(f, w.GetServerHandle(), bulk)
	v.handle(f+".item_handle", w.GetItemHandle())
	v.value(f+".value", w.GetValue())
	if ts, ok := any(w).(interface{ GetTimestamp() *timestamppb.Timestamp }); ok {
		v.timestamp(f+".timestamp", ts.GetTimestamp())
	}
}

// server checks a write's server handle: a single write needs its own
// (bulk == its own), a bulk entry may leave it 0.
func (v *validator) server(f string, own, bulk int32) {
	if own == bulk {
		v.handle(f+".server_handle", own)
		return
	}
	v.entryServer(f+".server_handle", own, bulk)
}
