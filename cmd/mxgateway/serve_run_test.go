package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/internal/config"
	"github.com/mxgateway/mxgateway/internal/testutil"
	"github.com/mxgateway/mxgateway/internal/tlsutil"
)

// TestMain lets the test binary be its own simulator worker and Galaxy
// runtime, as the real binary is: serve re-executes os.Executable() with
// "worker" and "galaxy".
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		os.Exit(runWorker(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "galaxy" {
		os.Exit(runGalaxy(os.Args[2:]))
	}
	testutil.VerifyNoLeaks(m)
}

// syncBuffer is a goroutine-safe output buffer.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type running struct {
	grpcAddr, httpAddr, caFile, dataDir string
	stdout, stderr                      *syncBuffer
}

// startServe runs serve in-process with cfg adjusted for a test (loopback
// ports chosen by the kernel, its own data and temp directories, the
// simulator's test profile) and stops it at cleanup, checking that it
// returned nil.
func startServe(t *testing.T, adjust func(*config.Config)) *running {
	t.Helper()
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", tmp) // the supervisor's runtime directory
	cfg := config.Default()
	cfg.Listen, cfg.HTTPListen, cfg.NATS.Listen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.SimProfile = "test"
	cfg.Alarms = config.AlarmsOff // its session would be in every listing
	cfg.ShutdownGrace = 30 * time.Second
	if adjust != nil {
		adjust(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r := &running{dataDir: cfg.DataDir, stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, &cfg, log, r.stdout, r.stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve = %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("serve did not return within 60s of its context ending")
		}
		if t.Failed() {
			t.Logf("log:\n%s", logs.String())
		}
	})
	testutil.Eventually(t, 60*time.Second, func() error {
		select {
		case err := <-done:
			t.Fatalf("serve returned early: %v\n%s", err, logs.String())
		default:
		}
		for _, line := range strings.Split(r.stdout.String(), "\n") {
			if a, ok := strings.CutPrefix(line, "mxgateway: gRPC listening on "); ok {
				r.grpcAddr = a
			}
			if a, ok := strings.CutPrefix(line, "mxgateway: HTTP listening on "); ok {
				r.httpAddr = a
			}
			if a, ok := strings.CutPrefix(line, "mxgateway: TLS CA file "); ok {
				r.caFile, _, _ = strings.Cut(a, " ")
			}
		}
		if r.grpcAddr == "" || r.httpAddr == "" || (cfg.TLS == config.TLSSelfSigned && r.caFile == "") {
			return fmt.Errorf("listen lines not printed yet: %q", r.stdout.String())
		}
		return nil
	})
	return r
}

type bearerKey string

func (k bearerKey) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(k)}, nil
}
func (k bearerKey) RequireTransportSecurity() bool { return false }

func (r *running) dial(t *testing.T, key string) *grpc.ClientConn {
	t.Helper()
	tc, err := tlsutil.ClientConfig(r.caFile, "")
	if err != nil {
		t.Fatal(err)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(tc))}
	if key != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearerKey(key)))
	}
	conn, err := grpc.NewClient(r.grpcAddr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func (r *running) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + r.httpAddr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func wantDenied(t *testing.T, err error, code codes.Code, reason string) {
	t.Helper()
	st, _ := status.FromError(err)
	got := ""
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			got = info.GetReason()
		}
	}
	if st.Code() != code || got != reason {
		t.Fatalf("got %v (reason %q), want %v %s", err, got, code, reason)
	}
}

// TestServeSecureByDefault runs the whole gateway in-process with API keys
// and a self-signed certificate: first-run key, authentication, session
// ownership, per-entry reference constraints, metrics, readiness and a
// clean stop.
func TestServeSecureByDefault(t *testing.T) {
	r := startServe(t, func(c *config.Config) { c.TLS = config.TLSSelfSigned })
	keyBytes, err := os.ReadFile(filepath.Join(r.dataDir, "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	admin := strings.TrimSpace(string(keyBytes))
	// Standard error is a buffer, no terminal: only the key's file is named.
	if strings.Contains(r.stderr.String(), admin) || strings.Contains(r.stdout.String(), admin) ||
		!strings.Contains(r.stderr.String(), filepath.Join(r.dataDir, "admin.key")) {
		t.Fatal("the first-run key is printed to a non-terminal, or its file is not named")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Without a key nothing but health works.
	anon := r.dial(t, "")
	_, err = mxgatewayv1grpc.NewGatewayClient(anon).ListSessions(ctx, &mxgatewayv1.ListSessionsRequest{})
	wantDenied(t, err, codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated)
	testutil.Eventually(t, 30*time.Second, func() error {
		resp, err := healthpb.NewHealthClient(anon).Check(ctx, &healthpb.HealthCheckRequest{Service: "mxgateway.v1.Gateway"})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("health %v, %v", resp, err)
		}
		return nil
	})

	adminConn := r.dial(t, admin)
	adm := mxgatewayv1grpc.NewAdminClient(adminConn)
	create := func(name string, scopes, read, write []string) string {
		t.Helper()
		resp, err := adm.CreateApiKey(ctx, &mxgatewayv1.CreateApiKeyRequest{Name: name, Scopes: scopes, AllowRead: read, AllowWrite: write})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetRawKey()
	}
	limited := create("limited", []string{"session:open", "session:close", "invoke:read", "invoke:write"}, []string{"TIC101.*"}, []string{"TIC101.SP"})
	other := create("other", []string{"session:open", "invoke:read"}, nil, nil)

	lc := mxgatewayv1grpc.NewGatewayClient(r.dial(t, limited))
	open, err := lc.OpenSession(ctx, &mxgatewayv1.OpenSessionRequest{ClientName: "limited"})
	if err != nil {
		t.Fatal(err)
	}
	id := open.GetSessionId()
	invoke := func(c mxgatewayv1grpc.GatewayClient, cmd *mxgatewayv1.Command) (*mxgatewayv1.Reply, error) {
		resp, err := c.Invoke(ctx, &mxgatewayv1.InvokeRequest{SessionId: id, Command: cmd})
		return resp.GetReply(), err
	}
	reg, err := invoke(lc, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{ClientName: "t"}}})
	if err != nil {
		t.Fatal(err)
	}
	hlmx := reg.GetRegister().GetServerHandle()
	// Writes need advised items: subscribe.
	add, err := invoke(lc, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_SubscribeBulk{SubscribeBulk: &mxgatewayv1.SubscribeBulkCommand{
		ServerHandle: hlmx, ItemDefinitions: []string{"TIC101.SP", "Tank1.Level", "TIC101.PV"}}}})
	if err != nil {
		t.Fatal(err)
	}
	e := add.GetBulk().GetEntries()
	if len(e) != 3 || e[0].GetItemHandle() <= 0 || e[1].GetDenial().GetReason() != mxgatewayv1.ReasonReferenceForbidden ||
		e[1].GetItemHandle() != 0 || e[2].GetItemHandle() <= 0 || e[0].GetDenial() != nil || e[2].GetDenial() != nil {
		t.Fatalf("SubscribeBulk with a read constraint: %v", add)
	}
	sp, pv := e[0].GetItemHandle(), e[2].GetItemHandle()
	val := &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_DoubleValue{DoubleValue: 42.5}}
	wb, err := invoke(lc, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_WriteBulk{WriteBulk: &mxgatewayv1.WriteBulkCommand{
		ServerHandle: hlmx, Entries: []*mxgatewayv1.WriteCommand{{ServerHandle: hlmx, ItemHandle: sp, Value: val}, {ServerHandle: hlmx, ItemHandle: pv, Value: val}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if w := wb.GetBulk().GetEntries(); len(w) != 2 || w[0].GetDenial() != nil || w[0].GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK ||
		w[1].GetDenial().GetReason() != mxgatewayv1.ReasonReferenceForbidden || w[1].GetItemHandle() != pv {
		t.Fatalf("WriteBulk with a write constraint: %v", wb)
	}
	_, err = invoke(lc, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Write{Write: &mxgatewayv1.WriteCommand{ServerHandle: hlmx, ItemHandle: pv, Value: val}}})
	wantDenied(t, err, codes.PermissionDenied, mxgatewayv1.ReasonReferenceForbidden)

	// Another key neither sees nor uses the session; the admin key does.
	oc := mxgatewayv1grpc.NewGatewayClient(r.dial(t, other))
	if list, err := oc.ListSessions(ctx, &mxgatewayv1.ListSessionsRequest{}); err != nil || len(list.GetSessions()) != 0 {
		t.Fatalf("another key lists %v, %v", list, err)
	}
	_, err = invoke(oc, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{ServerHandle: hlmx, ItemDefinition: "TIC101.SP"}}})
	wantDenied(t, err, codes.PermissionDenied, mxgatewayv1.ReasonNotSessionOwner)
	list, err := mxgatewayv1grpc.NewGatewayClient(adminConn).ListSessions(ctx, &mxgatewayv1.ListSessionsRequest{})
	if err != nil || len(list.GetSessions()) != 1 || list.GetSessions()[0].GetOwnerKeyId() == "" ||
		!strings.Contains(limited, "_"+list.GetSessions()[0].GetOwnerKeyId()+"_") {
		t.Fatalf("admin lists %v, %v", list, err)
	}
	if _, err := lc.CloseSession(ctx, &mxgatewayv1.CloseSessionRequest{SessionId: id}); err != nil {
		t.Fatal(err)
	}

	// Metrics moved; readiness is green.
	testutil.Eventually(t, 30*time.Second, func() error {
		_, body := r.get(t, "/metrics")
		for _, want := range []string{
			"mxgateway_sessions_opened_total 1",
			"mxgateway_sessions_closed_total 1",
			"mxgateway_sessions_open 0",
			"mxgateway_workers_started_total 1",
			"mxgateway_workers_running 0",
			`mxgateway_workers_exited_total{reason="ok"} 1`,
			`mxgateway_commands_started_total{command="write_bulk"} 1`,
			`mxgateway_commands_total{command="subscribe_bulk",outcome="ok"} 1`,
			`mxgateway_auth_denials_total{reason="UNAUTHENTICATED"} 1`,
			`mxgateway_auth_denials_total{reason="NOT_SESSION_OWNER"} 1`,
		} {
			if !strings.Contains(body, want+"\n") {
				return fmt.Errorf("/metrics lacks %q", want)
			}
		}
		return nil
	})
	if code, body := r.get(t, "/readyz"); code != http.StatusOK || !strings.Contains(body, "worker_start: ok") || !strings.Contains(body, "key_store: ok") {
		t.Fatalf("/readyz = %d\n%s", code, body)
	}
}

// TestServeNoAuth: with auth=none every caller is an anonymous admin, no
// key is created and readiness does not check the key store.
func TestServeNoAuth(t *testing.T) {
	r := startServe(t, func(c *config.Config) { c.Auth = config.AuthNone })
	if _, err := os.Stat(filepath.Join(r.dataDir, "admin.key")); !os.IsNotExist(err) {
		t.Fatalf("admin.key with auth=none: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := grpc.NewClient(r.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := mxgatewayv1grpc.NewGatewayClient(conn)
	open, err := c.OpenSession(ctx, &mxgatewayv1.OpenSessionRequest{ClientName: "anon"})
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.ListSessions(ctx, &mxgatewayv1.ListSessionsRequest{})
	if err != nil || len(list.GetSessions()) != 1 || list.GetSessions()[0].GetOwnerKeyId() != "anonymous" {
		t.Fatalf("ListSessions = %v, %v", list, err)
	}
	// A key in the metadata is ignored, not refused.
	mctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer nonsense")
	if _, err := c.CloseSession(mctx, &mxgatewayv1.CloseSessionRequest{SessionId: open.GetSessionId()}); err != nil {
		t.Fatal(err)
	}
	if code, body := r.get(t, "/readyz"); code != http.StatusOK && !strings.Contains(body, "checks have not run yet") {
		t.Fatalf("/readyz = %d\n%s", code, body)
	} else if strings.Contains(body, "key_store") {
		t.Fatalf("/readyz checks the key store with auth=none:\n%s", body)
	}
}
