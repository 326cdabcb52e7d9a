package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/internal/tlsutil"
)

// Timeouts of the harness itself.
const (
	// StartTimeout bounds how long a gateway may take to print its
	// addresses (its readiness probe starts a worker first, which a test
	// may give a longer start-up deadline than the default 15 s).
	StartTimeout = 150 * time.Second
	// StopTimeout bounds how long a gateway may take to exit after SIGTERM.
	StopTimeout = 30 * time.Second
	// LeftoverTimeout bounds how long worker processes and sockets may take
	// to disappear after their gateway exited.
	LeftoverTimeout = 10 * time.Second
)

const modulePath = "github.com/mxgateway/mxgateway"

// suite is the state of one test binary run: one build, one root directory.
var suite struct {
	mainCalled atomic.Bool
	once       sync.Once
	root       string // holds bin/ and one directory per gateway
	binary     string
	err        error
	count      atomic.Int64
}

// Main builds mxgateway, runs the tests, then fails the run if any process
// started from the built binary is still alive or any socket file is left
// under the harness's directories; finally it removes them (unless a test
// failed or MXGATEWAY_E2E_KEEP is set: then it says where they are). Call
// it from TestMain.
func Main(m *testing.M) {
	suite.mainCalled.Store(true)
	code := m.Run()
	if suite.root != "" {
		if err := suiteLeftovers(); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: e2e leftovers after the suite: %v\n", err)
			code = 1
		}
		if code == 0 && os.Getenv("MXGATEWAY_E2E_KEEP") == "" {
			os.RemoveAll(suite.root)
		} else {
			fmt.Fprintf(os.Stderr, "e2e: kept %s for inspection\n", suite.root)
		}
	}
	os.Exit(code)
}

// Binary returns the path of the mxgateway binary, building it and mxworker
// beside it on first use (with -race when the tests run with -race).
func Binary(t testing.TB) string {
	t.Helper()
	if !suite.mainCalled.Load() {
		t.Fatal("harness: call harness.Main(m) from TestMain")
	}
	suite.once.Do(func() {
		suite.root, suite.err = os.MkdirTemp("", "mxg-e2e-")
		if suite.err != nil {
			return
		}
		exe := "mxgateway"
		if runtime.GOOS == "windows" {
			exe += ".exe"
		}
		// mxworker beside mxgateway, from the same build, as make build and
		// go install leave them: sim sessions run the lean worker.
		bin := filepath.Join(suite.root, "bin")
		suite.binary = filepath.Join(bin, exe)
		args := []string{"build", "-o", bin + string(filepath.Separator)}
		env := append(os.Environ(), "CGO_ENABLED=0")
		if raceEnabled {
			// The gateway and its workers run with the race detector too.
			args = append(args, "-race")
			env = append(os.Environ(), "CGO_ENABLED=1")
		}
		cmd := exec.Command("go", append(args, modulePath+"/cmd/mxgateway", modulePath+"/cmd/mxworker")...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			suite.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if suite.err != nil {
		t.Fatalf("harness: build mxgateway: %v", suite.err)
	}
	return suite.binary
}

// Gateway is one running `mxgateway serve` process.
type Gateway struct {
	// GRPCAddr and HTTPAddr are the addresses the gateway printed.
	GRPCAddr string
	HTTPAddr string
	// NATSAddr is the embedded NATS server's client address ("" with
	// --nats-mode off); the harness starts it on a port the kernel picks.
	NATSAddr string
	// NATSLeafAddr is the embedded NATS server's leaf-node address, with
	// --nats-leaf-listen.
	NATSLeafAddr string
	// Dir is this gateway's own directory; DataDir (--data-dir), TempDir
	// (its $TMPDIR, where worker endpoints live) and gateway.log (its
	// stderr) are inside it.
	Dir     string
	DataDir string
	TempDir string
	// Stdout and Stderr capture the process's output.
	Stdout *Buffer
	Stderr *Buffer
	// AdminKey is the first-run admin key the gateway wrote to
	// DataDir/admin.key ("" with --auth=none). Conn and Client send it.
	AdminKey string
	// CAFile is the certificate clients pin when the gateway runs with
	// --tls=self-signed (as it printed it); "" for plaintext.
	CAFile string

	t         testing.TB
	extraArgs []string
	cmd       *exec.Cmd
	exited    chan struct{}
	err       error // exit status, valid after exited is closed

	mu      sync.Mutex
	conn    *grpc.ClientConn
	stopped bool
	killed  bool
	// natsAddr is the NATS line's address (a string), stored by the
	// stdout reader before it sends the other addresses.
	natsAddr, natsLeafAddr atomic.Value
}

// Start starts `mxgateway serve` on loopback ports chosen by the kernel,
// with --sim-profile test and --alarms off, its own data and temp directories, and
// extraArgs appended (later flags win, so extraArgs may override the
// defaults). It waits until the gateway printed both addresses. Cleanup
// closes the connection, stops the gateway (SIGTERM), fails the test if it
// did not exit 0, and checks that no worker process or socket is left.
func Start(t testing.TB, extraArgs ...string) *Gateway {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("harness: e2e tests run on Unix-like systems")
	}
	Binary(t)
	dir := filepath.Join(suite.root, fmt.Sprintf("g%03d", suite.count.Add(1)))
	return start(t, dir, extraArgs)
}

// Restart starts a new gateway process with the same directories and
// arguments as g (which must have exited, for example after Kill): the way
// an operator restarts a crashed gateway. The new gateway has new addresses.
func (g *Gateway) Restart(t testing.TB) *Gateway {
	t.Helper()
	select {
	case <-g.exited:
	default:
		t.Fatal("harness: Restart of a gateway that is still running")
	}
	return start(t, g.Dir, g.extraArgs)
}

// RestartSameAddress is Restart on g's own gRPC and HTTP addresses, the way
// a gateway restarted in place looks to its clients: their connections see
// it go away and come back. g must have exited.
func (g *Gateway) RestartSameAddress(t testing.TB) *Gateway {
	t.Helper()
	select {
	case <-g.exited:
	default:
		t.Fatal("harness: RestartSameAddress of a gateway that is still running")
	}
	// Later flags win; the listeners set SO_REUSEADDR, so the ports are
	// free again at once.
	args := append(slices.Clone(g.extraArgs), "--listen="+g.GRPCAddr, "--http-listen="+g.HTTPAddr)
	ng := start(t, g.Dir, args)
	ng.extraArgs = g.extraArgs
	return ng
}

func start(t testing.TB, dir string, extraArgs []string) *Gateway {
	t.Helper()
	bin := suite.binary
	g := &Gateway{
		Dir:       dir,
		DataDir:   filepath.Join(dir, "data"),
		TempDir:   filepath.Join(dir, "tmp"),
		Stdout:    &Buffer{},
		Stderr:    &Buffer{},
		t:         t,
		extraArgs: extraArgs,
		exited:    make(chan struct{}),
	}
	for _, d := range []string{g.DataDir, g.TempDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatalf("harness: %v", err)
		}
	}
	args := append([]string{"serve",
		"--listen=127.0.0.1:0", "--http-listen=127.0.0.1:0", "--nats-listen=127.0.0.1:0",
		"--data-dir=" + g.DataDir, "--sim-profile=test", "--log-format=json",
		// The alarm monitor (on by default) is one more session and worker
		// per gateway; the tests of alarms turn it on.
		"--alarms=off",
	}, extraArgs...)
	g.cmd = exec.Command(bin, args...)
	g.cmd.Env = append(os.Environ(), "TMPDIR="+g.TempDir)
	logFile, err := os.OpenFile(filepath.Join(dir, "gateway.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	t.Cleanup(func() { logFile.Close() })
	// The full log stays in Dir/gateway.log (kept when a test fails).
	g.cmd.Stderr = io.MultiWriter(g.Stderr, logFile)
	stdout, err := g.cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("harness: start %s: %v", bin, err)
	}
	addrs := make(chan [3]string, 1)
	go g.readStdout(stdout, addrs) // ends when the process closes stdout
	go func() {
		g.err = g.cmd.Wait()
		close(g.exited)
	}()
	t.Cleanup(g.cleanup)

	select {
	case a := <-addrs:
		g.GRPCAddr, g.HTTPAddr, g.CAFile = a[0], a[1], a[2]
		if a, ok := g.natsAddr.Load().(string); ok {
			g.NATSAddr = a
		}
		if a, ok := g.natsLeafAddr.Load().(string); ok {
			g.NATSLeafAddr = a
		}
	case <-g.exited:
		t.Fatalf("harness: gateway exited before listening (%v)\nstderr:\n%s", g.err, g.Stderr.String())
	case <-time.After(StartTimeout):
		t.Fatalf("harness: gateway did not print its addresses within %v\nstderr:\n%s", StartTimeout, g.Stderr.String())
	}
	if !authOff(args) {
		// The gateway writes the first-run key before it listens; a
		// restarted gateway finds the file of its first run.
		key, err := os.ReadFile(filepath.Join(g.DataDir, AdminKeyFile))
		if err != nil {
			t.Fatalf("harness: no first-run admin key: %v\nstderr:\n%s", err, g.Stderr.String())
		}
		g.AdminKey = strings.TrimSpace(string(key))
	}
	return g
}

// AdminKeyFile is the name of the first-run admin key file in DataDir.
const AdminKeyFile = "admin.key"

// authOff reports whether the last --auth flag in args turns
// authentication off.
func authOff(args []string) bool {
	off := false
	for i, a := range args {
		switch {
		case a == "--auth=none" || a == "-auth=none":
			off = true
		case strings.HasPrefix(a, "--auth=") || strings.HasPrefix(a, "-auth="):
			off = false
		case (a == "--auth" || a == "-auth") && i+1 < len(args):
			off = args[i+1] == "none"
		}
	}
	return off
}

// readStdout copies stdout into g.Stdout and reports both listen addresses
// (and the CA file, printed between them with TLS) once they were printed.
func (g *Gateway) readStdout(r io.Reader, addrs chan<- [3]string) {
	var grpcAddr, httpAddr, caFile string
	sent := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		g.Stdout.Write([]byte(line + "\n"))
		if a, ok := strings.CutPrefix(line, "mxgateway: gRPC listening on "); ok {
			grpcAddr = strings.TrimSpace(a)
		}
		if a, ok := strings.CutPrefix(line, "mxgateway: NATS listening on "); ok {
			g.natsAddr.Store(strings.TrimSpace(a))
		}
		if a, ok := strings.CutPrefix(line, "mxgateway: NATS leaf nodes listening on "); ok {
			g.natsLeafAddr.Store(strings.TrimSpace(a))
		}
		if a, ok := strings.CutPrefix(line, "mxgateway: HTTP listening on "); ok {
			httpAddr = strings.TrimSpace(a)
		}
		if a, ok := strings.CutPrefix(line, "mxgateway: TLS CA file "); ok {
			caFile, _, _ = strings.Cut(a, " ")
		}
		// The TLS line, when there is one, follows the listen lines.
		if !sent && grpcAddr != "" && httpAddr != "" && (caFile != "" || !g.tlsOn()) {
			addrs <- [3]string{grpcAddr, httpAddr, caFile}
			sent = true
		}
	}
	io.Copy(io.Discard, r)
}

// tlsOn reports whether the gateway was started with TLS.
func (g *Gateway) tlsOn() bool {
	on := false
	for _, a := range g.extraArgs {
		if v, ok := strings.CutPrefix(a, "--tls="); ok {
			on = v != "off"
		}
	}
	return on
}

// PID is the gateway's process id.
func (g *Gateway) PID() int { return g.cmd.Process.Pid }

// Conn returns a client connection to the gateway that sends AdminKey with
// every call (created once, closed at cleanup).
func (g *Gateway) Conn() *grpc.ClientConn {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conn == nil {
		g.conn = g.dial(g.t, g.AdminKey)
	}
	return g.conn
}

// Client returns the generated Gateway client on Conn.
func (g *Gateway) Client() mxgatewayv1grpc.GatewayClient {
	return mxgatewayv1grpc.NewGatewayClient(g.Conn())
}

// Admin returns the generated Admin client on Conn (the admin key).
func (g *Gateway) Admin() mxgatewayv1grpc.AdminClient {
	return mxgatewayv1grpc.NewAdminClient(g.Conn())
}

// Dial returns a new connection that sends key as "authorization: Bearer
// <key>" with every call; "" sends no key. It uses TLS, pinned to CAFile,
// when the gateway runs with it. The connection is closed at t's cleanup.
func (g *Gateway) Dial(t testing.TB, key string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn := g.dial(t, key, opts...)
	t.Cleanup(func() { conn.Close() })
	return conn
}

func (g *Gateway) dial(t testing.TB, key string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	creds := insecure.NewCredentials()
	if g.CAFile != "" {
		cfg, err := tlsutil.ClientConfig(g.CAFile, "")
		if err != nil {
			t.Fatalf("harness: %v", err)
		}
		creds = credentials.NewTLS(cfg)
	}
	all := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if key != "" {
		all = append(all, grpc.WithPerRPCCredentials(bearer(key)))
	}
	conn, err := grpc.NewClient(g.GRPCAddr, append(all, opts...)...)
	if err != nil {
		t.Fatalf("harness: dial %s: %v", g.GRPCAddr, err)
	}
	return conn
}

// bearer sends an API key as "authorization: Bearer <key>", also over
// plaintext (the gateway accepts plaintext on loopback only).
type bearer string

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (b bearer) RequireTransportSecurity() bool { return false }

// CreateKey creates an API key through the Admin service (with the admin
// key) and returns the full key. allowRead and allowWrite are the
// reference constraints (nil: none).
func (g *Gateway) CreateKey(t testing.TB, name string, scopes, allowRead, allowWrite []string) string {
	t.Helper()
	resp, err := g.Admin().CreateApiKey(Context(t, 30*time.Second), &mxgatewayv1.CreateApiKeyRequest{
		Name: name, Scopes: scopes, AllowRead: allowRead, AllowWrite: allowWrite,
	})
	if err != nil {
		t.Fatalf("harness: create API key %q: %v", name, err)
	}
	return resp.GetRawKey()
}

// Get fetches path (for example "/readyz") from the HTTP listener and
// returns the status code and body.
func (g *Gateway) Get(t testing.TB, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(Context(t, 30*time.Second), http.MethodGet, "http://"+g.HTTPAddr+path, nil)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("harness: GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("harness: GET %s: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

// Metrics returns the Prometheus text of /metrics (failing the test unless
// it answers 200).
func (g *Gateway) Metrics(t testing.TB) string {
	t.Helper()
	code, body := g.Get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("harness: GET /metrics = %d\n%s", code, body)
	}
	return body
}

// Exited is closed when the gateway process has exited.
func (g *Gateway) Exited() <-chan struct{} { return g.exited }

// ExitErr is the process's exit status (nil for exit code 0); valid after
// Exited is closed.
func (g *Gateway) ExitErr() error {
	<-g.exited
	return g.err
}

// Stop sends SIGTERM and waits for the gateway to exit; it returns the
// exit status (nil for exit code 0). Safe to call twice.
func (g *Gateway) Stop() error {
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
	select {
	case <-g.exited:
		return g.err
	default:
	}
	if err := terminate(g.cmd.Process); err != nil && !errors.Is(err, os.ErrProcessDone) {
		g.cmd.Process.Kill()
	}
	select {
	case <-g.exited:
	case <-time.After(StopTimeout):
		g.cmd.Process.Kill()
		<-g.exited
		return fmt.Errorf("harness: gateway did not exit within %v of SIGTERM", StopTimeout)
	}
	return g.err
}

// Kill kills the gateway process at once (SIGKILL) and waits for it.
func (g *Gateway) Kill() {
	g.mu.Lock()
	g.stopped, g.killed = true, true
	g.mu.Unlock()
	g.cmd.Process.Kill()
	<-g.exited
}

// WorkerPIDs lists the live worker processes of this gateway (Linux; nil
// elsewhere). Workers are recognised by their endpoint inside TempDir.
func (g *Gateway) WorkerPIDs() []int {
	return processesMatching(g.TempDir)
}

// Sockets lists the socket files under Dir (worker endpoints on Unix),
// except the endpoint of the running gateway's own Galaxy runtime, which
// lives as long as the gateway.
func (g *Gateway) Sockets() []string {
	var out []string
	own := fmt.Sprintf("%cmxgw-galaxy-%d-", filepath.Separator, g.PID())
	running := true
	select {
	case <-g.exited:
		running = false
	default:
	}
	for _, s := range socketsUnder(g.Dir) {
		if running && strings.Contains(s, own) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// Leftovers reports worker processes and socket files of this gateway that
// still exist.
func (g *Gateway) Leftovers() error {
	var errs []error
	if pids := g.WorkerPIDs(); len(pids) > 0 {
		errs = append(errs, fmt.Errorf("worker processes still running: %v", pids))
	}
	if socks := g.Sockets(); len(socks) > 0 {
		errs = append(errs, fmt.Errorf("socket files left: %v", socks))
	}
	return errors.Join(errs...)
}

// cleanup stops the gateway and checks that it left nothing behind.
func (g *Gateway) cleanup() {
	t := g.t
	g.mu.Lock()
	conn, killed := g.conn, g.killed
	g.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
	if err := g.Stop(); err != nil && !killed {
		t.Errorf("harness: gateway exit: %v", err)
	}
	deadline := time.Now().Add(LeftoverTimeout)
	for {
		err := g.Leftovers()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("harness: gateway left things behind: %v", err)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if t.Failed() {
		t.Logf("gateway stderr (last 8 KiB):\n%s", tail(g.Stderr.String(), 8<<10))
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// suiteLeftovers checks, after every test, for processes started from the
// built binary and socket files anywhere under the suite directory.
func suiteLeftovers() error {
	deadline := time.Now().Add(LeftoverTimeout)
	for {
		var errs []error
		if pids := processesMatching(suite.root); len(pids) > 0 {
			errs = append(errs, fmt.Errorf("processes of %s still running: %v", suite.binary, pids))
		}
		if socks := socketsUnder(suite.root); len(socks) > 0 {
			errs = append(errs, fmt.Errorf("socket files left: %v", socks))
		}
		err := errors.Join(errs...)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// socketsUnder lists socket files below dir.
func socketsUnder(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Type()&os.ModeSocket != 0 {
			out = append(out, path)
		}
		return nil
	})
	return out
}

// Buffer is a goroutine-safe bytes.Buffer for captured output.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Context returns a context for one test step, cancelled at cleanup.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
