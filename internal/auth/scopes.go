package auth

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc/health/grpc_health_v1"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/reflect/protoreflect"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// Scope is a permission granted to an API key.
type Scope string

// The scopes. ScopeAdmin implies every other scope.
const (
	ScopeSessionOpen  Scope = "session:open"  // OpenSession, ListSessions
	ScopeSessionClose Scope = "session:close" // CloseSession
	ScopeInvokeRead   Scope = "invoke:read"   // Register, AddItem, Advise, ReadBulk, ...
	ScopeInvokeWrite  Scope = "invoke:write"  // Write, Write2 and their bulk forms
	ScopeInvokeSecure Scope = "invoke:secure" // WriteSecured*, AuthenticateUser, ArchestrAUserToId
	ScopeEventsRead   Scope = "events:read"   // StreamEvents
	ScopeAdmin        Scope = "admin"         // the Admin service, every session, all of the above
)

// AllScopes lists every scope in a stable order.
var AllScopes = []Scope{
	ScopeSessionOpen, ScopeSessionClose, ScopeInvokeRead, ScopeInvokeWrite,
	ScopeInvokeSecure, ScopeEventsRead, ScopeAdmin,
}

// ParseScope returns the scope named s.
func ParseScope(s string) (Scope, error) {
	sc := Scope(strings.TrimSpace(s))
	if slices.Contains(AllScopes, sc) {
		return sc, nil
	}
	return "", fmt.Errorf("%w: unknown scope %q (known: %s)", ErrInvalidSpec, s, scopeNames(AllScopes))
}

func scopeNames(ss []Scope) string {
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// scopeExempt marks a target that needs no key at all (health checks).
const scopeExempt Scope = "(exempt)"

// scopePerCommand marks Invoke, whose scope depends on the command kind.
const scopePerCommand Scope = "(per command kind)"

// target is one row key of the scope table: a gRPC full method name, a whole
// service ("/pkg.Service/"), or an Invoke command kind (Method is Invoke and
// Command the oneof field name).
type target struct {
	Method  string
	Command protoreflect.Name
}

var invoke = mxgatewayv1.Gateway_Invoke_FullMethodName

// scopeTable is THE table: every RPC and every Invoke command kind maps to
// exactly one scope. Anything not listed is denied. TestScopeTableCoversServer
// and TestScopeTableCoversCommands fail when something is missing.
var scopeTable = map[target]Scope{
	// Service Gateway.
	{Method: mxgatewayv1.Gateway_OpenSession_FullMethodName}:  ScopeSessionOpen,
	{Method: mxgatewayv1.Gateway_CloseSession_FullMethodName}: ScopeSessionClose,
	{Method: mxgatewayv1.Gateway_StreamEvents_FullMethodName}: ScopeEventsRead,
	{Method: mxgatewayv1.Gateway_ListSessions_FullMethodName}: ScopeSessionOpen,
	{Method: invoke}: scopePerCommand,

	// Invoke command kinds (the mxgateway.v1.Command oneof).
	{invoke, "register"}:                     ScopeInvokeRead,
	{invoke, "unregister"}:                   ScopeInvokeRead,
	{invoke, "add_item"}:                     ScopeInvokeRead,
	{invoke, "add_item2"}:                    ScopeInvokeRead,
	{invoke, "remove_item"}:                  ScopeInvokeRead,
	{invoke, "advise"}:                       ScopeInvokeRead,
	{invoke, "advise_supervisory"}:           ScopeInvokeRead,
	{invoke, "un_advise"}:                    ScopeInvokeRead,
	{invoke, "suspend"}:                      ScopeInvokeRead,
	{invoke, "activate"}:                     ScopeInvokeRead,
	{invoke, "add_buffered_item"}:            ScopeInvokeRead,
	{invoke, "set_buffered_update_interval"}: ScopeInvokeRead,
	{invoke, "write"}:                        ScopeInvokeWrite,
	{invoke, "write2"}:                       ScopeInvokeWrite,
	{invoke, "write_secured"}:                ScopeInvokeSecure,
	{invoke, "write_secured2"}:               ScopeInvokeSecure,
	{invoke, "authenticate_user"}:            ScopeInvokeSecure,
	{invoke, "archestra_user_to_id"}:         ScopeInvokeSecure,
	{invoke, "add_item_bulk"}:                ScopeInvokeRead,
	{invoke, "advise_bulk"}:                  ScopeInvokeRead,
	{invoke, "subscribe_bulk"}:               ScopeInvokeRead,
	{invoke, "unsubscribe_bulk"}:             ScopeInvokeRead,
	{invoke, "remove_item_bulk"}:             ScopeInvokeRead,
	{invoke, "un_advise_bulk"}:               ScopeInvokeRead,
	{invoke, "write_bulk"}:                   ScopeInvokeWrite,
	{invoke, "write2_bulk"}:                  ScopeInvokeWrite,
	{invoke, "write_secured_bulk"}:           ScopeInvokeSecure,
	{invoke, "write_secured2_bulk"}:          ScopeInvokeSecure,
	{invoke, "read_bulk"}:                    ScopeInvokeRead,

	// Service Admin.
	{Method: mxgatewayv1.Admin_CreateApiKey_FullMethodName}:    ScopeAdmin,
	{Method: mxgatewayv1.Admin_ListApiKeys_FullMethodName}:     ScopeAdmin,
	{Method: mxgatewayv1.Admin_RevokeApiKey_FullMethodName}:    ScopeAdmin,
	{Method: mxgatewayv1.Admin_RotateApiKey_FullMethodName}:    ScopeAdmin,
	{Method: mxgatewayv1.Admin_ListAuditEvents_FullMethodName}: ScopeAdmin,

	// Server reflection reveals only the public schema; a key that may open
	// sessions may discover the API (grpcurl and similar tools).
	{Method: reflectionv1.ServerReflection_ServerReflectionInfo_FullMethodName}:      ScopeSessionOpen,
	{Method: reflectionv1alpha.ServerReflection_ServerReflectionInfo_FullMethodName}: ScopeSessionOpen,

	// Health checks need no key: load balancers and service managers call them.
	{Method: "/" + grpc_health_v1.Health_ServiceDesc.ServiceName + "/"}: scopeExempt,
}

// methodScope looks fullMethod up: its own row, else its service's row.
func methodScope(fullMethod string) (Scope, bool) {
	if s, ok := scopeTable[target{Method: fullMethod}]; ok {
		return s, true
	}
	if i := strings.LastIndexByte(fullMethod, '/'); i > 0 {
		if s, ok := scopeTable[target{Method: fullMethod[:i+1]}]; ok {
			return s, true
		}
	}
	return "", false
}

// MethodScope returns the scope a gRPC method needs. exempt is true for
// methods that need no key; ok is false for methods not in the table, which
// are denied. For Invoke it returns ok with an empty scope: use CommandScope.
func MethodScope(fullMethod string) (scope Scope, exempt, ok bool) {
	s, ok := methodScope(fullMethod)
	switch {
	case !ok:
		return "", false, false
	case s == scopeExempt:
		return "", true, true
	case s == scopePerCommand:
		return "", false, true
	}
	return s, false, true
}

// CommandKind returns the name of the command's oneof field ("add_item",
// "write_bulk", ...), or "" when none is set (or the kind is unknown to
// this build).
func CommandKind(cmd *mxgatewayv1.Command) protoreflect.Name {
	if cmd == nil {
		return ""
	}
	m := cmd.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("kind"))
	if fd == nil {
		return ""
	}
	return fd.Name()
}

// CommandScope returns the scope an Invoke command kind needs; ok is false
// when the kind is not set or not in the table.
func CommandScope(kind protoreflect.Name) (Scope, bool) {
	if kind == "" {
		return "", false
	}
	s, ok := scopeTable[target{Method: invoke, Command: kind}]
	return s, ok
}

// ScopeRow is one row of the scope table, for documentation and tests.
type ScopeRow struct {
	// Method is a gRPC full method name, or a service prefix ending in "/".
	Method string
	// Command is the Invoke command kind, or "".
	Command string
	// Scope is the scope needed; "" when exempt or decided per command.
	Scope Scope
	// Exempt is true when no key is needed.
	Exempt bool
}

// ScopeTable returns the table's rows sorted by method then command.
func ScopeTable() []ScopeRow {
	rows := make([]ScopeRow, 0, len(scopeTable))
	for t, s := range scopeTable {
		r := ScopeRow{Method: t.Method, Command: string(t.Command), Scope: s}
		switch s {
		case scopeExempt:
			r.Scope, r.Exempt = "", true
		case scopePerCommand:
			r.Scope = ""
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b ScopeRow) int {
		if c := strings.Compare(a.Method, b.Method); c != 0 {
			return c
		}
		return strings.Compare(a.Command, b.Command)
	})
	return rows
}
