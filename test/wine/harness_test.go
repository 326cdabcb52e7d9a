//go:build wine

package wine

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mxgateway/mxgateway/client"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

// Timeouts of the harness. Wine on a loaded two-core machine is slow to
// start processes, so these are generous; nothing waits for them to pass.
const (
	startTimeout = 90 * time.Second
	stopTimeout  = 90 * time.Second
	eventTimeout = 60 * time.Second
)

// zone is the time zone of every Wine process of the suite: not UTC, with
// a 45-minute offset, so that a VT_DATE read in the wrong zone shows.
const zone = "Asia/Kathmandu"

// winPath maps a Linux path to the Wine path of the same file (drive Z:
// is the Linux root).
func winPath(p string) string { return `Z:` + strings.ReplaceAll(p, "/", `\`) }

// buffer is a goroutine-safe bytes.Buffer.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// gwOptions configure startGateway.
type gwOptions struct {
	// backend is "mxaccess" (the worker drives the stand-in over COM) or
	// "sim" (the simulator with the same Galaxy).
	backend string
	// args are extra serve flags.
	args []string
}

// gateway is one `mxgateway.exe serve` under Wine.
type gateway struct {
	t        testing.TB
	dir      string
	dataDir  string
	traceDir string
	worker   string // Linux path of this gateway's own mxworker.exe copy
	grpcAddr string
	httpAddr string
	adminKey string
	stdout   *buffer
	stderr   *buffer
	cmd      *exec.Cmd
	exited   chan struct{}
	err      error
	runDirs  map[string]bool // the prefix's run directories before it started
	stopped  atomic.Bool
}

var gatewayCount atomic.Int64

// startGateway starts a gateway on loopback ports chosen by the kernel with
// its own data, trace and worker copies, and waits until it listens.
// Cleanup stops it (when the test did not) and checks what it left.
func startGateway(t *testing.T, o gwOptions) *gateway {
	t.Helper()
	dir := filepath.Join(suite.root, fmt.Sprintf("g%02d-%s", gatewayCount.Add(1), o.backend))
	g := &gateway{t: t, dir: dir, dataDir: filepath.Join(dir, "data"), traceDir: filepath.Join(dir, "trace"),
		stdout: &buffer{}, stderr: &buffer{}, exited: make(chan struct{}), runDirs: runDirs()}
	for _, d := range []string{g.dataDir, g.traceDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	galaxy := filepath.Join(dir, "galaxy.txt")
	if err := os.WriteFile(galaxy, suite.galaxy, 0o644); err != nil {
		t.Fatal(err)
	}
	model, _ := filepath.Abs("testdata/standin.yaml")
	args := []string{"serve", "--listen=127.0.0.1:0", "--http-listen=127.0.0.1:0", "--nats-listen=127.0.0.1:0",
		"--data-dir=" + winPath(g.dataDir), "--log-format=json", "--worker-backend=" + o.backend,
		"--sim-profile=test", "--sim-model=" + winPath(model), "--alarms=off"}
	if o.backend == "mxaccess" {
		// A copy per gateway, so that its worker processes are found by
		// their path.
		g.worker = filepath.Join(dir, "mxworker.exe")
		if err := copyFile(suite.worker, g.worker); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--worker-exe="+winPath(g.worker))
	}
	args = append(args, o.args...)
	// The 64-bit loader runs the gateway in place: the pid is the
	// gateway's, and SIGINT reaches it as a console Ctrl-C.
	g.cmd = exec.Command(suite.tools["wine64"], append([]string{winPath(suite.gateway)}, args...)...)
	g.cmd.Env = append(wineEnv(suite.prefix),
		"TZ="+zone,
		"MXG_STANDIN_GALAXY="+winPath(galaxy),
		"MXG_STANDIN_TRACE_DIR="+winPath(g.traceDir),
	)
	logFile, err := os.Create(filepath.Join(dir, "gateway.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })
	g.cmd.Stderr = io.MultiWriter(g.stderr, logFile)
	// Bound the wait for the stderr copy should a process of the prefix
	// hold the pipe.
	g.cmd.WaitDelay = 5 * time.Second
	stdout, err := g.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrs := make(chan [2]string, 1)
	go g.readStdout(stdout, addrs)
	go func() {
		g.err = g.cmd.Wait()
		close(g.exited)
	}()
	t.Cleanup(func() { g.cleanup(t) })
	select {
	case a := <-addrs:
		g.grpcAddr, g.httpAddr = a[0], a[1]
	case <-g.exited:
		t.Fatalf("gateway exited before listening (%v)\nstderr:\n%s", g.err, g.stderr.String())
	case <-time.After(startTimeout):
		t.Fatalf("gateway did not listen within %v\nstderr:\n%s", startTimeout, g.stderr.String())
	}
	key, err := os.ReadFile(filepath.Join(g.dataDir, "admin.key"))
	if err != nil {
		t.Fatalf("no first-run admin key: %v", err)
	}
	g.adminKey = strings.TrimSpace(string(key))
	return g
}

func (g *gateway) readStdout(r io.Reader, addrs chan<- [2]string) {
	var grpcAddr, httpAddr string
	sent := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		g.stdout.Write([]byte(line + "\n"))
		if a, ok := strings.CutPrefix(line, "mxgateway: gRPC listening on "); ok {
			grpcAddr = strings.TrimSpace(a)
		}
		if a, ok := strings.CutPrefix(line, "mxgateway: HTTP listening on "); ok {
			httpAddr = strings.TrimSpace(a)
		}
		if !sent && grpcAddr != "" && httpAddr != "" {
			addrs <- [2]string{grpcAddr, httpAddr}
			sent = true
		}
	}
	io.Copy(io.Discard, r)
}

// client dials the gateway through the Go SDK with the admin key.
func (g *gateway) client(t *testing.T) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, g.grpcAddr, client.WithAPIKey(g.adminKey), client.WithInsecure(),
		client.WithTimeout(60*time.Second))
	if err != nil {
		t.Fatalf("dial %s: %v", g.grpcAddr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// workerPIDs lists the Linux pids of this gateway's mxworker.exe processes.
func (g *gateway) workerPIDs() []int {
	if g.worker == "" {
		return nil
	}
	return processesMatching(winPath(g.worker))
}

// stop asks the gateway to shut down (SIGINT: a console Ctrl-C under Wine)
// and checks that it exited 0 and left no worker behind.
func (g *gateway) stop(t *testing.T) {
	t.Helper()
	if g.stopped.Swap(true) {
		return
	}
	_ = g.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-g.exited:
	case <-time.After(stopTimeout):
		_ = g.cmd.Process.Kill()
		<-g.exited
		t.Fatalf("gateway did not stop within %v\nstderr:\n%s", stopTimeout, g.stderr.String())
	}
	if g.err != nil {
		t.Errorf("gateway exited with %v\nstderr:\n%s", g.err, tail(g.stderr.String(), 40))
	}
	g.checkLeftovers(t)
}

// kill ends the gateway at once (SIGKILL); the Job Objects it held go with
// it.
func (g *gateway) kill(t *testing.T) {
	t.Helper()
	g.stopped.Store(true)
	_ = g.cmd.Process.Kill()
	<-g.exited
}

func (g *gateway) cleanup(t *testing.T) {
	if !g.stopped.Load() {
		g.stop(t)
	}
	removeRunDirs(g.runDirs)
}

// checkLeftovers fails the test when a worker of the gateway outlives it.
func (g *gateway) checkLeftovers(t *testing.T) {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, func() error {
		if pids := g.workerPIDs(); len(pids) > 0 {
			return fmt.Errorf("worker processes %v outlived their gateway", pids)
		}
		return nil
	})
}

// runDirs lists the gateway run directories (gw-<pid>) in the prefix's
// temp directories.
func runDirs() map[string]bool {
	out := map[string]bool{}
	dirs, _ := filepath.Glob(filepath.Join(suite.prefix, "drive_c", "users", "*", "Temp", "mxgateway", "gw-*"))
	for _, d := range dirs {
		out[d] = true
	}
	return out
}

// removeRunDirs removes the run directories that appeared since before was
// taken. Under Wine 8 the gateway cannot remove its own (os.RemoveAll
// fails: see quirks "removeall" and TestWineRemoveAll), and a later
// gateway that gets the same Windows pid would find it and refuse to
// start workers. Removing it from Linux once the gateway is gone is the
// test set-up's work-around; the product is unchanged.
func removeRunDirs(before map[string]bool) {
	for d := range runDirs() {
		if !before[d] {
			os.RemoveAll(d)
		}
	}
}

// processesMatching returns the pids whose command line contains s.
func processesMatching(s string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})), s) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// traceLines returns the stand-in's call and event trace of every worker of
// the gateway, in order, one slice per worker process.
func (g *gateway) traceLines(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	files, _ := filepath.Glob(filepath.Join(g.traceDir, "lmxproxy-*.log"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	return out
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stepCtx returns a context for one step of a test.
func stepCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// recorder collects a session's events in sequence order.
type recorder struct {
	mu     sync.Mutex
	events []client.Event
	err    error
	cursor int
	done   chan struct{}
}

// record starts reading the session's events until the test ends.
func record(t *testing.T, s *client.Session) *recorder {
	r := &recorder{done: make(chan struct{})}
	c, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(r.done)
		for ev, err := range s.Events(c) {
			r.mu.Lock()
			if err != nil {
				r.err = err
				r.mu.Unlock()
				return
			}
			r.events = append(r.events, ev)
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// next waits for the first event after the cursor that match accepts,
// moves the cursor past it and returns it.
func (r *recorder) next(t *testing.T, what string, match func(client.Event) bool) client.Event {
	t.Helper()
	var found client.Event
	deadline := time.Now().Add(eventTimeout)
	for {
		r.mu.Lock()
		for i := r.cursor; i < len(r.events); i++ {
			if match(r.events[i]) {
				found = r.events[i]
				r.cursor = i + 1
				r.mu.Unlock()
				return found
			}
		}
		err := r.err
		n := len(r.events)
		r.mu.Unlock()
		if err != nil {
			t.Fatalf("waiting for %s: event stream ended: %v", what, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v (%d events so far)", what, eventTimeout, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// all returns a copy of every event received so far.
func (r *recorder) all() []client.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]client.Event(nil), r.events...)
}

// streamErr returns the error that ended the stream, if any.
func (r *recorder) streamErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func dataChangeOf(h, hi int32) func(client.Event) bool {
	return func(e client.Event) bool {
		dc := e.DataChange()
		return dc != nil && dc.ServerHandle == h && dc.ItemHandle == hi
	}
}

func writeCompleteOf(h, hi int32) func(client.Event) bool {
	return func(e client.Event) bool {
		wc := e.WriteComplete()
		return wc != nil && wc.ServerHandle == h && wc.ItemHandle == hi
	}
}

func operationCompleteOf(h, hi int32) func(client.Event) bool {
	return func(e client.Event) bool {
		oc := e.OperationComplete()
		return oc != nil && oc.ServerHandle == h && oc.ItemHandle == hi
	}
}

func bufferedOf(h, hi int32) func(client.Event) bool {
	return func(e client.Event) bool {
		b := e.BufferedDataChange()
		return b != nil && b.ServerHandle == h && b.ItemHandle == hi
	}
}
