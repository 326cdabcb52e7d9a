package auth

import (
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
)

// fullServer registers every service the gateway serves.
func fullServer() *grpc.Server {
	s := grpc.NewServer()
	mxgatewayv1grpc.RegisterGatewayServer(s, mxgatewayv1grpc.UnimplementedGatewayServer{})
	mxgatewayv1grpc.RegisterAdminServer(s, mxgatewayv1grpc.UnimplementedAdminServer{})
	mxgatewayv1grpc.RegisterGalaxyServer(s, mxgatewayv1grpc.UnimplementedGalaxyServer{})
	mxgatewayv1grpc.RegisterAlarmsServer(s, mxgatewayv1grpc.UnimplementedAlarmsServer{})
	grpc_health_v1.RegisterHealthServer(s, health.NewServer())
	reflection.Register(s)
	return s
}

// Every method of every registered service has exactly one row (or its
// service's row); nothing is left to a default.
func TestScopeTableCoversServer(t *testing.T) {
	s := fullServer()
	defer s.Stop()
	info := s.GetServiceInfo()
	want := []string{"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}
	// Every service of the API, from its descriptors: a new one fails here
	// until fullServer registers it.
	protoregistry.GlobalFiles.RangeFilesByPackage("mxgateway.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			want = append(want, string(fd.Services().Get(i).FullName()))
		}
		return true
	})
	for _, want := range want {
		if _, ok := info[want]; !ok {
			t.Fatalf("service %s not registered: the test server is incomplete", want)
		}
	}
	n := 0
	for svc, si := range info {
		for _, m := range si.Methods {
			full := "/" + svc + "/" + m.Name
			n++
			sc, exempt, ok := MethodScope(full)
			if !ok {
				t.Errorf("%s has no scope", full)
				continue
			}
			if exempt {
				if svc != grpc_health_v1.Health_ServiceDesc.ServiceName {
					t.Errorf("%s is exempt; only health may be", full)
				}
				continue
			}
			if sc == "" && full != mxgatewayv1grpc.Gateway_Invoke_FullMethodName {
				t.Errorf("%s has no scope of its own", full)
			}
			if sc != "" && !slices.Contains(AllScopes, sc) {
				t.Errorf("%s maps to unknown scope %q", full, sc)
			}
			if strings.HasPrefix(full, "/mxgateway.v1.Admin/") && sc != ScopeAdmin {
				t.Errorf("%s must need admin, has %q", full, sc)
			}
		}
	}
	if n < 10 {
		t.Fatalf("walked only %d methods", n)
	}
}

// Every kind of the Command oneof has exactly one scope.
func TestScopeTableCoversCommands(t *testing.T) {
	od := (&mxgatewayv1.Command{}).ProtoReflect().Descriptor().Oneofs().ByName("kind")
	if od == nil || od.Fields().Len() == 0 {
		t.Fatal("Command has no kind oneof")
	}
	for i := range od.Fields().Len() {
		f := od.Fields().Get(i)
		sc, ok := CommandScope(catalog.ByName(string(f.Name())))
		if !ok {
			t.Errorf("command kind %s has no scope", f.Name())
			continue
		}
		switch sc {
		case ScopeInvokeRead, ScopeInvokeWrite, ScopeInvokeSecure:
		default:
			t.Errorf("command kind %s maps to %q, want an invoke:* scope", f.Name(), sc)
		}
		// Writes and secured calls must never hide under invoke:read.
		name := string(f.Name())
		if strings.Contains(name, "secured") || strings.Contains(name, "authenticate") || strings.Contains(name, "user_to_id") {
			if sc != ScopeInvokeSecure {
				t.Errorf("%s must need invoke:secure, has %s", name, sc)
			}
		} else if strings.HasPrefix(name, "write") && sc != ScopeInvokeWrite {
			t.Errorf("%s must need invoke:write, has %s", name, sc)
		}
	}
	// And the table lists every command kind once, and no other.
	rows := 0
	for _, r := range ScopeTable() {
		if r.Command == "" {
			continue
		}
		rows++
		if od.Fields().ByName(protoName(r.Command)) == nil {
			t.Errorf("scope table lists unknown command kind %s", r.Command)
		}
	}
	if rows != od.Fields().Len() {
		t.Errorf("scope table has %d command rows for %d kinds", rows, od.Fields().Len())
	}
}

func TestUnlistedIsDenied(t *testing.T) {
	if _, _, ok := MethodScope("/mxgateway.v1.Gateway/Nope"); ok {
		t.Error("unknown Gateway method is listed")
	}
	if _, _, ok := MethodScope("/other.Service/Call"); ok {
		t.Error("unknown service is listed")
	}
	if _, ok := CommandScope(catalog.ByName("no_such_kind")); ok {
		t.Error("unknown command kind is listed")
	}
	if _, ok := CommandScope(catalog.Of(&mxgatewayv1.Command{})); ok {
		t.Error("empty command kind is listed")
	}
}

func TestAdminImpliesAllScopes(t *testing.T) {
	admin := NewPrincipal("a", "a", []Scope{ScopeAdmin}, Constraints{})
	for _, s := range AllScopes {
		if !admin.Has(s) {
			t.Errorf("admin lacks %s", s)
		}
	}
	reader := NewPrincipal("r", "r", []Scope{ScopeInvokeRead}, Constraints{})
	for _, s := range AllScopes {
		if got := reader.Has(s); got != (s == ScopeInvokeRead) {
			t.Errorf("reader.Has(%s) = %v", s, got)
		}
	}
}

func TestParseScope(t *testing.T) {
	for _, s := range AllScopes {
		if got, err := ParseScope(string(s)); err != nil || got != s {
			t.Errorf("ParseScope(%s) = %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "Admin", "invoke", "session:*"} {
		if _, err := ParseScope(s); err == nil {
			t.Errorf("ParseScope(%q) accepted", s)
		}
	}
}
