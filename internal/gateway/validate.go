package gateway

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/reflect/protoreflect"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
)

// Validation bounds: the gateway's own limits, not MXAccess's.
const (
	// DefaultMaxBulkEntries bounds the list of a bulk command: sized for a
	// plant that subscribes tens of thousands of attributes at once (the
	// request and its reply stay well inside the message limit).
	DefaultMaxBulkEntries = 100000
	// maxReferenceLen bounds one item reference (Galaxy references are far
	// shorter; this only stops abuse).
	maxReferenceLen = 1024
	// maxNameLen bounds client names, user names, identities, the AddItem2
	// context and passwords.
	maxNameLen = 256
	// maxTimeoutMs bounds a per-call or ReadBulk timeout (one hour).
	maxTimeoutMs = 3_600_000
	// maxSessionIDLen bounds a session id (ours are 32 characters).
	maxSessionIDLen = 128
)

// maxBytes is the bound of a text field by its catalogue role; 0 for the
// roles that carry no text.
func maxBytes(r mxgatewayv1.FieldRole) int {
	switch r {
	case mxgatewayv1.FieldRole_FIELD_ROLE_REFERENCE:
		return maxReferenceLen
	case mxgatewayv1.FieldRole_FIELD_ROLE_TEXT, mxgatewayv1.FieldRole_FIELD_ROLE_SECRET:
		return maxNameLen
	}
	return 0
}

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

// textProblem says what is wrong with a text field, or "".
func textProblem(s string, max int) string {
	switch {
	case len(s) > max:
		return fmt.Sprintf("longer than %d bytes", max)
	case !utf8.ValidString(s):
		return "not valid UTF-8"
	}
	return ""
}

func (v *validator) text(field, s string, max int) {
	if p := textProblem(s, max); p != "" {
		v.add(field, "%s", p)
	}
}

func (v *validator) timeoutMs(field string, ms uint32) {
	if ms > maxTimeoutMs {
		v.add(field, "above %d ms", maxTimeoutMs)
	}
}

// validateInvoke checks an InvokeRequest before anything reaches a worker,
// generically over the command catalogue. It refuses, as INVALID_ARGUMENT,
// only what cannot be an MXAccess call at all — no command kind, a bulk
// form with no entries or more than maxBulk — and what exceeds the
// gateway's own bounds on the whole call (text lengths, timeouts). Values
// MXAccess itself judges (handles <= 0, empty references, negative
// intervals, missing values or timestamps) reach the worker, which answers
// them as MXAccess does, with an HRESULT. A bulk entry beyond the
// gateway's bounds fails alone, in place: it is returned as a per-entry
// denial (reason INVALID_REQUEST) keyed by input index.
func validateInvoke(req *mxgatewayv1.InvokeRequest, maxBulk int) (map[int]*mxgatewayv1.EntryDenial, error) {
	v := &validator{maxBulk: maxBulk}
	v.sessionID("session_id", req.GetSessionId())
	v.timeoutMs("timeout_ms", req.GetTimeoutMs())
	denials := v.command("command", req.GetCommand())
	return denials, v.err()
}

// command checks one command of any kind.
func (v *validator) command(f string, cmd *mxgatewayv1.Command) map[int]*mxgatewayv1.EntryDenial {
	if cmd == nil {
		v.add(f, "required")
		return nil
	}
	k := catalog.Of(cmd)
	if k == nil {
		if len(cmd.ProtoReflect().GetUnknown()) > 0 {
			v.add(f, "command kind not supported by this gateway")
		} else {
			v.add(f, "exactly one command kind must be set")
		}
		return nil
	}
	f += "." + k.Name()
	inner := k.Inner(cmd)
	for _, fl := range k.Fields() {
		switch {
		case fl.Desc == k.InputField():
		case fl.Role == mxgatewayv1.FieldRole_FIELD_ROLE_TIMEOUT_MS:
			v.timeoutMs(f+"."+string(fl.Desc.Name()), uint32(inner.Get(fl.Desc).Uint()))
		case maxBytes(fl.Role) > 0:
			v.text(f+"."+string(fl.Desc.Name()), inner.Get(fl.Desc).String(), maxBytes(fl.Role))
		}
	}
	if !k.HasInputs() {
		return nil
	}
	field := f + "." + string(k.InputField().Name())
	switch n := k.Inputs(cmd); {
	case n == 0:
		v.add(field, "must not be empty")
		return nil
	case n > v.maxBulk:
		v.add(field, "%d entries, at most %d allowed", n, v.maxBulk)
		return nil
	}
	return entryDenials(k, cmd)
}

// entryDenials checks each entry of an input list against the gateway's
// bounds: a reference's length, a single command entry's text fields and
// its own server handle (0, or the bulk's; anything else would run in
// another registration than the one the bulk names).
func entryDenials(k *catalog.Kind, cmd *mxgatewayv1.Command) map[int]*mxgatewayv1.EntryDenial {
	var out map[int]*mxgatewayv1.EntryDenial
	deny := func(i int, format string, args ...any) {
		if out == nil {
			out = make(map[int]*mxgatewayv1.EntryDenial)
		}
		out[i] = &mxgatewayv1.EntryDenial{Reason: mxgatewayv1.ReasonInvalidRequest, Message: fmt.Sprintf(format, args...)}
	}
	bulkServer := k.ServerHandle(cmd)
	for i := range k.Inputs(cmd) {
		in := k.Input(cmd, i)
		switch {
		case in.ByRef:
			if p := textProblem(in.Ref, maxReferenceLen); p != "" {
				deny(i, "reference %s", p)
			}
		case in.Entry != nil:
			if in.OwnServer != 0 && in.OwnServer != bulkServer {
				deny(i, "server_handle must be 0 or the bulk command's %d (got %d)", bulkServer, in.OwnServer)
				continue
			}
			for _, fl := range in.EntryKind.Fields() {
				if mb := maxBytes(fl.Role); mb > 0 && fl.Desc.Kind() == protoreflect.StringKind {
					if p := textProblem(in.Entry.Get(fl.Desc).String(), mb); p != "" {
						deny(i, "%s %s", fl.Desc.Name(), p)
					}
				}
			}
		}
	}
	return out
}
