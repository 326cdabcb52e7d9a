package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/ipc"
	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/internal/testutil"
	"github.com/mxgateway/mxgateway/internal/workerclient"
)

func TestMain(m *testing.M) {
	switch mode := os.Getenv(workerModeEnv); mode {
	case "":
	case modeSim:
		os.Exit(simWorker())
	default:
		os.Exit(testWorker(mode))
	}
	testutil.VerifyNoLeaks(m)
}

const waitFor = 10 * time.Second

// capture is a slog handler that keeps every record.
type capture struct {
	mu    *sync.Mutex
	recs  *[]slog.Record
	attrs []slog.Attr
}

func newCapture() *capture { return &capture{mu: &sync.Mutex{}, recs: &[]slog.Record{}} }

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(c.attrs...)
	c.mu.Lock()
	*c.recs = append(*c.recs, r)
	c.mu.Unlock()
	return nil
}
func (c *capture) WithAttrs(as []slog.Attr) slog.Handler {
	return &capture{mu: c.mu, recs: c.recs, attrs: append(append([]slog.Attr(nil), c.attrs...), as...)}
}
func (c *capture) WithGroup(string) slog.Handler { return c }

// find returns the attributes of the first record with msg, or of the first
// re-emitted plain worker output line that reads msg.
func (c *capture) find(msg string) (map[string]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range *c.recs {
		m := map[string]string{"level": r.Level.String()}
		r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
		if r.Message != msg && (r.Message != "worker output" || m[logging.KeyLine] != msg) {
			continue
		}
		return m, true
	}
	return nil, false
}

type exitReport struct {
	pid, code int
	killed    bool
}

type fixture struct {
	t        *testing.T
	s        *Supervisor
	log      *capture
	exits    chan exitReport
	startups chan time.Duration
	dir      string
}

// newFixture builds a Supervisor that re-executes this test binary as a
// worker in mode.
func newFixture(t *testing.T, mode string, mod ...func(*Options)) *fixture {
	t.Helper()
	t.Setenv(workerModeEnv, mode)
	dir, err := os.MkdirTemp("", "svt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fixture{t: t, log: newCapture(), exits: make(chan exitReport, 16), startups: make(chan time.Duration, 16), dir: dir}
	opts := Options{
		Executable:        os.Args[0],
		Args:              []string{"worker"},
		RuntimeDir:        dir,
		StartupTimeout:    waitFor,
		HeartbeatInterval: 20 * time.Millisecond,
		Logger:            slog.New(f.log),
		OnStartup:         func(d time.Duration) { f.startups <- d },
		OnExit:            func(pid, code int, killed bool) { f.exits <- exitReport{pid, code, killed} },
	}
	for _, m := range mod {
		m(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.s = s
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		if pids := s.Running(); len(pids) != 0 {
			t.Errorf("workers still running after Close: %v", pids)
		}
	})
	return f
}

func (f *fixture) exit() exitReport {
	f.t.Helper()
	select {
	case e := <-f.exits:
		return e
	case <-time.After(waitFor):
		f.t.Fatal("no exit reported")
		panic("unreachable")
	}
}

// assertGone fails unless pid no longer names a live process.
func assertGone(t *testing.T, pid int) {
	t.Helper()
	testutil.Eventually(t, waitFor, func() error {
		if _, err := processIdentity(pid); err == nil {
			return fmt.Errorf("process %d still alive", pid)
		}
		return nil
	})
}

// assertNoEndpoints fails if any endpoint directory or worker record is left
// in the run directory.
func (f *fixture) assertNoEndpoints() {
	f.t.Helper()
	entries, err := os.ReadDir(f.s.runDir)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		f.t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != gatewayRecord {
			f.t.Errorf("left in the run dir: %s", e.Name())
		}
	}
}

func TestLaunchInvokeShutdown(t *testing.T) {
	f := newFixture(t, modeOK)
	ctx := context.Background()
	c, err := f.s.Launch(ctx, "sess-ok")
	if err != nil {
		t.Fatal(err)
	}
	if c.State() != workerclient.StateReady {
		t.Fatalf("state %v", c.State())
	}
	pid := c.PID()
	if pid <= 0 || pid == os.Getpid() {
		t.Fatalf("pid %d", pid)
	}
	if running := f.s.Running(); len(running) != 1 || running[0] != pid {
		t.Fatalf("running %v, want [%d]", running, pid)
	}
	if c.Backend().GetModelName() != "test" {
		t.Fatalf("backend %v", c.Backend())
	}
	select {
	case d := <-f.startups:
		if d <= 0 {
			t.Errorf("startup duration %v", d)
		}
	default:
		t.Error("OnStartup not called")
	}
	// The endpoint is gone as soon as the one connection was accepted.
	f.assertNoEndpointDirs()

	reply, err := c.Invoke(ctx, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{}}}, nil, waitFor)
	if err != nil {
		t.Fatal(err)
	}
	if reply.GetMessage() != "ok:register" {
		t.Fatalf("reply %v", reply)
	}
	sctx, cancel := context.WithTimeout(ctx, waitFor)
	defer cancel()
	warnings, err := c.Shutdown(sctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || warnings[0] != "test teardown" {
		t.Fatalf("warnings %v", warnings)
	}
	if c.State() != workerclient.StateClosed || c.Err() != nil {
		t.Fatalf("state %v err %v", c.State(), c.Err())
	}
	e := f.exit()
	if e.pid != pid || e.code != 0 || e.killed {
		t.Fatalf("exit %+v", e)
	}
	assertGone(t, pid)
	f.assertNoEndpoints()
}

func (f *fixture) assertNoEndpointDirs() {
	f.t.Helper()
	entries, _ := os.ReadDir(f.s.runDir)
	for _, e := range entries {
		if e.IsDir() {
			f.t.Errorf("endpoint dir %s still exists", e.Name())
		}
	}
}

func TestNonceMismatchFailsLaunch(t *testing.T) {
	f := newFixture(t, modeWrongNonce)
	_, err := f.s.Launch(context.Background(), "sess-nonce")
	if !errors.Is(err, workerclient.ErrNonceMismatch) || !errors.Is(err, workerclient.ErrHandshake) {
		t.Fatalf("err %v, want a nonce mismatch", err)
	}
	e := f.exit()
	assertGone(t, e.pid)
	f.assertNoEndpoints()
}

func TestWorkerExitsBeforeHandshake(t *testing.T) {
	f := newFixture(t, modeExitEarly)
	_, err := f.s.Launch(context.Background(), "sess-early")
	if !errors.Is(err, ErrWorkerExited) {
		t.Fatalf("err %v, want ErrWorkerExited", err)
	}
	for _, want := range []string{"exit status 3", "backend exploded", "plain text line"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	e := f.exit()
	if e.code != 3 || e.killed {
		t.Fatalf("exit %+v", e)
	}
	// The worker's JSON log line is re-emitted with its level and attrs and
	// the gateway's session id; the plain line too.
	rec, ok := f.log.find("backend exploded")
	if !ok {
		t.Fatal("worker stderr not re-emitted")
	}
	if rec["level"] != "ERROR" || rec["detail"] != "no galaxy" || rec[logging.KeySession] != "sess-early" || rec[logging.KeyWorkerPID] != strconv.Itoa(e.pid) {
		t.Fatalf("re-emitted record %v", rec)
	}
	if rec, ok := f.log.find("plain text line"); !ok || rec[logging.KeySession] != "sess-early" {
		t.Fatalf("plain line %v %v", rec, ok)
	}
	f.assertNoEndpoints()
}

// A worker that exits by itself during the handshake is not killed: the
// client waits for its exit, and the launch error carries its status and
// stderr.
func TestWorkerExitsDuringHandshake(t *testing.T) {
	f := newFixture(t, modeDieInHello)
	_, err := f.s.Launch(context.Background(), "sess-hello")
	if !errors.Is(err, ErrWorkerExited) || !errors.Is(err, workerclient.ErrHandshake) {
		t.Fatalf("err %v, want ErrWorkerExited wrapping the handshake error", err)
	}
	for _, want := range []string{"exit status 9", "dying in the handshake"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if e := f.exit(); e.code != 9 || e.killed {
		t.Fatalf("exit %+v, want 9 and not killed", e)
	}
	f.assertNoEndpoints()
}

func TestStartupTimeoutKills(t *testing.T) {
	f := newFixture(t, modeHang, func(o *Options) { o.StartupTimeout = 300 * time.Millisecond })
	_, err := f.s.Launch(context.Background(), "sess-hang")
	if !errors.Is(err, ErrStartTimeout) {
		t.Fatalf("err %v, want ErrStartTimeout", err)
	}
	e := f.exit()
	if !e.killed {
		t.Fatalf("exit %+v: not killed", e)
	}
	assertGone(t, e.pid)
	f.assertNoEndpoints()
}

func TestCallerContextCancelsLaunch(t *testing.T) {
	f := newFixture(t, modeHang)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		testutil.Eventually(t, waitFor, func() error {
			if len(f.s.Running()) == 0 {
				return errors.New("not started")
			}
			return nil
		})
		cancel()
	}()
	_, err := f.s.Launch(ctx, "sess-cancel")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	assertGone(t, f.exit().pid)
}

func TestProcessExitMidCommand(t *testing.T) {
	f := newFixture(t, modeDieOnCommand)
	c, err := f.s.Launch(context.Background(), "sess-die")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Invoke(context.Background(), &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{}}}, nil, waitFor)
	if !errors.Is(err, workerclient.ErrWorkerGone) {
		t.Fatalf("pending command: %v, want ErrWorkerGone", err)
	}
	select {
	case <-c.Done():
	case <-time.After(waitFor):
		t.Fatal("client not done")
	}
	if !errors.Is(c.Err(), workerclient.ErrWorkerGone) {
		t.Fatalf("client err %v", c.Err())
	}
	e := f.exit()
	if e.code != 7 {
		t.Fatalf("exit %+v", e)
	}
	assertGone(t, e.pid)
}

func TestCloseKillsAll(t *testing.T) {
	f := newFixture(t, modeOK)
	var clients []*workerclient.Client
	for i := range 2 {
		c, err := f.s.Launch(context.Background(), fmt.Sprintf("sess-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	if err := f.s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, c := range clients {
		select {
		case <-c.Done():
		case <-time.After(waitFor):
			t.Fatal("client not done after Close")
		}
		if !errors.Is(c.Err(), workerclient.ErrWorkerGone) {
			t.Errorf("client err %v", c.Err())
		}
		assertGone(t, c.PID())
	}
	for range 2 {
		if e := f.exit(); !e.killed {
			t.Errorf("exit %+v not killed", e)
		}
	}
	if _, err := os.Stat(f.s.runDir); !os.IsNotExist(err) {
		t.Errorf("run dir left after Close: %v", err)
	}
	if _, err := f.s.Launch(context.Background(), "late"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Launch after Close: %v", err)
	}
}

func TestPeerMismatch(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("finds the endpoint through the socket directory")
	}
	f := newFixture(t, modeHang)
	type res struct{ err error }
	done := make(chan res, 1)
	go func() {
		_, err := f.s.Launch(context.Background(), "sess-peer")
		done <- res{err}
	}()
	// Connect first, from this (wrong) process.
	var sock string
	testutil.Eventually(t, waitFor, func() error {
		m, _ := filepath.Glob(filepath.Join(f.s.runDir, "*", "w.sock"))
		if len(m) == 0 {
			return errors.New("no socket yet")
		}
		sock = m[0]
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	conn, err := ipc.Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := <-done
	if !errors.Is(r.err, ErrPeerMismatch) {
		t.Fatalf("err %v, want ErrPeerMismatch", r.err)
	}
	assertGone(t, f.exit().pid)
	f.assertNoEndpoints()
}

func TestGroupKilledWithWorker(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("process groups are Unix; the job object covers Windows")
	}
	f := newFixture(t, modeChild, func(o *Options) { o.StartupTimeout = 2 * time.Second })
	_, err := f.s.Launch(context.Background(), "sess-child")
	if !errors.Is(err, ErrStartTimeout) {
		t.Fatalf("err %v", err)
	}
	rec, ok := f.log.find("grandchild")
	if !ok {
		t.Fatal("grandchild pid not logged")
	}
	gpid, err := strconv.Atoi(rec["grandchild_pid"])
	if err != nil {
		t.Fatalf("grandchild pid %q", rec["grandchild_pid"])
	}
	assertGone(t, f.exit().pid)
	assertGone(t, gpid)
}

func TestCleanupLeftovers(t *testing.T) {
	f := newFixture(t, modeOK)
	root := f.dir

	// An orphan worker of a dead gateway: a live process we start here.
	orphan := exec.Command(os.Args[0])
	orphan.Env = append(os.Environ(), workerModeEnv+"="+modeHang)
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	waited := make(chan struct{})
	go func() { waitErr = orphan.Wait(); close(waited) }()
	t.Cleanup(func() { _ = orphan.Process.Kill(); <-waited })

	stale := filepath.Join(root, runDirName(999999999))
	if err := os.MkdirAll(filepath.Join(stale, "s123"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stale, "s123", "w.sock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stale, gatewayRecord), []byte("999999999\nx\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeRecord(filepath.Join(stale, workerRecordName(orphan.Process.Pid)), orphan.Process.Pid, "old-session"); err != nil {
		t.Fatal(err)
	}
	// A record whose pid now belongs to someone else (identity differs)
	// must not be killed: this test process stands in for the stranger.
	if err := os.WriteFile(filepath.Join(stale, workerRecordName(os.Getpid())), []byte(fmt.Sprintf("%d\nnot-me\ns\n", os.Getpid())), 0o600); err != nil {
		t.Fatal(err)
	}

	// The run dir of a live gateway (this test process) is kept.
	live := filepath.Join(root, runDirName(os.Getpid()+1000000))
	if err := os.MkdirAll(live, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeRecord(filepath.Join(live, gatewayRecord), os.Getpid(), ""); err != nil {
		t.Fatal(err)
	}
	// Unrelated entries are not ours to touch.
	other := filepath.Join(root, "unrelated")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}

	if err := f.s.CleanupLeftovers(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale run dir not removed: %v", err)
	}
	select {
	case <-waited:
		if waitErr == nil {
			t.Error("orphan exited cleanly; want killed")
		}
	case <-time.After(waitFor):
		t.Fatal("orphan worker not killed")
	}
	for _, keep := range []string{live, other} {
		if _, err := os.Stat(keep); err != nil {
			t.Errorf("%s removed: %v", keep, err)
		}
	}
	// A missing runtime dir is not an error.
	s2, err := New(Options{RuntimeDir: filepath.Join(root, "missing"), Executable: os.Args[0]})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.CleanupLeftovers(); err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestStderrLogSplitsLines(t *testing.T) {
	c := newCapture()
	s := newStderrLog(slog.New(c))
	s.setLogger(slog.New(c))
	for _, chunk := range []string{`{"level":"INFO","msg":"one"}` + "\n" + `{"level":"DEB`, `UG","msg":"two"}` + "\r\n\n", "tail"} {
		if _, err := s.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	s.flush()
	for _, msg := range []string{"one", "two", "tail"} {
		if _, ok := c.find(msg); !ok {
			t.Errorf("line %q not emitted", msg)
		}
	}
	if got := s.lastLines(); len(got) != 3 {
		t.Fatalf("last lines %v", got)
	}
	long := strings.Repeat("x", maxStderrLine+10)
	if _, err := s.Write([]byte(long)); err != nil {
		t.Fatal(err)
	}
	if l := s.lastLines(); !strings.HasSuffix(l[len(l)-1], "…") {
		t.Fatal("overlong line not split and truncated in quotes")
	}
}
