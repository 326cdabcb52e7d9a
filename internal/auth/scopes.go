package auth

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc/health/grpc_health_v1"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
)

// Scope is a permission granted to an API key.
type Scope string

// The scopes. ScopeAdmin implies every other scope.
const (
	ScopeSessionOpen  Scope = "session:open"   // OpenSession, ListSessions
	ScopeSessionClose Scope = "session:close"  // CloseSession
	ScopeInvokeRead   Scope = "invoke:read"    // Register, AddItem, Advise, ReadBulk, ...
	ScopeInvokeWrite  Scope = "invoke:write"   // Write, Write2 and their bulk forms
	ScopeInvokeSecure Scope = "invoke:secure"  // WriteSecured*, AuthenticateUser, ArchestrAUserToId
	ScopeEventsRead   Scope = "events:read"    // StreamEvents
	ScopeBrowseRead   Scope = "browse:read"    // the Galaxy service (browse)
	ScopeAlarmsRead   Scope = "alarms:read"    // StreamAlarms, ListActiveAlarms
	ScopeAlarmsAck    Scope = "alarms:ack"     // AcknowledgeAlarm
	ScopeDashboard    Scope = "dashboard:read" // the pages of the web dashboard (docs/dashboard.md)
	ScopeAdmin        Scope = "admin"          // the Admin service, every session, all of the above
)

// AllScopes lists every scope in a stable order.
var AllScopes = []Scope{
	ScopeSessionOpen, ScopeSessionClose, ScopeInvokeRead, ScopeInvokeWrite,
	ScopeInvokeSecure, ScopeEventsRead, ScopeBrowseRead, ScopeAlarmsRead, ScopeAlarmsAck, ScopeDashboard, ScopeAdmin,
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

// target is one row key of the scope table: a gRPC full method name or a
// whole service ("/pkg.Service/").
type target struct {
	Method string
}

var invoke = mxgatewayv1grpc.Gateway_Invoke_FullMethodName

// scopeTable maps every RPC to exactly one scope; Invoke's scope is the
// command kind's, from the command catalogue (CommandScope). Anything not
// listed is denied. TestScopeTableCoversServer and
// TestScopeTableCoversCommands fail when something is missing.
var scopeTable = map[target]Scope{
	// Service Gateway.
	{Method: mxgatewayv1grpc.Gateway_OpenSession_FullMethodName}:  ScopeSessionOpen,
	{Method: mxgatewayv1grpc.Gateway_CloseSession_FullMethodName}: ScopeSessionClose,
	{Method: mxgatewayv1grpc.Gateway_StreamEvents_FullMethodName}: ScopeEventsRead,
	{Method: mxgatewayv1grpc.Gateway_ListSessions_FullMethodName}: ScopeSessionOpen,
	{Method: invoke}: scopePerCommand,

	// Service Admin.
	{Method: mxgatewayv1grpc.Admin_CreateApiKey_FullMethodName}:    ScopeAdmin,
	{Method: mxgatewayv1grpc.Admin_ListApiKeys_FullMethodName}:     ScopeAdmin,
	{Method: mxgatewayv1grpc.Admin_RevokeApiKey_FullMethodName}:    ScopeAdmin,
	{Method: mxgatewayv1grpc.Admin_RotateApiKey_FullMethodName}:    ScopeAdmin,
	{Method: mxgatewayv1grpc.Admin_ListAuditEvents_FullMethodName}: ScopeAdmin,

	// Service Galaxy (browse).
	{Method: mxgatewayv1grpc.Galaxy_GetGalaxy_FullMethodName}:         ScopeBrowseRead,
	{Method: mxgatewayv1grpc.Galaxy_BrowseChildren_FullMethodName}:    ScopeBrowseRead,
	{Method: mxgatewayv1grpc.Galaxy_GetObject_FullMethodName}:         ScopeBrowseRead,
	{Method: mxgatewayv1grpc.Galaxy_DiscoverHierarchy_FullMethodName}: ScopeBrowseRead,
	{Method: mxgatewayv1grpc.Galaxy_WatchGalaxy_FullMethodName}:       ScopeBrowseRead,

	// Service Alarms.
	{Method: mxgatewayv1grpc.Alarms_StreamAlarms_FullMethodName}:     ScopeAlarmsRead,
	{Method: mxgatewayv1grpc.Alarms_ListActiveAlarms_FullMethodName}: ScopeAlarmsRead,
	{Method: mxgatewayv1grpc.Alarms_AcknowledgeAlarm_FullMethodName}: ScopeAlarmsAck,

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

// commandScopes maps the catalogue's command scopes to key scopes.
var commandScopes = map[mxgatewayv1.CommandScope]Scope{
	mxgatewayv1.CommandScope_COMMAND_SCOPE_INVOKE_READ:   ScopeInvokeRead,
	mxgatewayv1.CommandScope_COMMAND_SCOPE_INVOKE_WRITE:  ScopeInvokeWrite,
	mxgatewayv1.CommandScope_COMMAND_SCOPE_INVOKE_SECURE: ScopeInvokeSecure,
}

// CommandScope returns the scope an Invoke command kind needs, from the
// command catalogue; ok is false for nil (no kind, or one this build does
// not know) and for a kind without a scope.
func CommandScope(kind *catalog.Kind) (Scope, bool) {
	s, ok := commandScopes[kind.Scope()]
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

// ScopeTable returns the table's rows, one per RPC and one per Invoke
// command kind, sorted by method then command.
func ScopeTable() []ScopeRow {
	rows := make([]ScopeRow, 0, len(scopeTable)+catalog.Len())
	for _, k := range catalog.Kinds() {
		s, _ := CommandScope(k)
		rows = append(rows, ScopeRow{Method: invoke, Command: k.Name(), Scope: s})
	}
	for t, s := range scopeTable {
		r := ScopeRow{Method: t.Method, Scope: s}
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
