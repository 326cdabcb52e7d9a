package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/backend/sim"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

// The process tests re-execute the test binary as a worker: childMain runs
// instead of the tests when childEnv is set, with the worker's arguments in
// childArgsEnv (separated by \x1f).
const (
	childEnv     = "MXWORKER_TEST_CHILD"
	childArgsEnv = "MXWORKER_TEST_ARGS"
)

func childMain() int {
	args := strings.Split(os.Getenv(childArgsEnv), "\x1f")
	return Main(context.Background(), args, MainOptions{
		Prog:   "mxworker-test",
		Stdin:  os.Stdin,
		Stderr: os.Stderr,
		Dial:   dialUnix,
		Backends: map[string]BackendFactory{
			"sim": func(Flags, *slog.Logger, func(int)) (backend.Backend, error) { return newFake(), nil },
			"simreal": func(f Flags, logger *slog.Logger, exit func(int)) (backend.Backend, error) {
				b, err := sim.New(sim.Options{Profile: f.SimProfile, Seed: f.SimSeed, Exit: exit, Logger: logger})
				if err != nil {
					return nil, err
				}
				return b, nil
			},
			"mxaccess": func(Flags, *slog.Logger, func(int)) (backend.Backend, error) {
				return nil, errors.New("backend mxaccess is only available in the windows/386 build")
			},
		},
	})
}

// startProcess runs the worker as a child process with stdin as its input.
func startProcess(t testing.TB, stdin string, extra ...string) (*harness, *bytes.Buffer) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the process test uses a Unix socket endpoint")
	}
	stderr := &bytes.Buffer{}
	h := launch(t, func(h *harness, path string) {
		args := append([]string{"--session-id", testSession, "--endpoint", path, "--log-level", "debug"}, extra...)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=1", childArgsEnv+"="+strings.Join(args, "\x1f"))
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			err := cmd.Wait()
			h.proc = cmd.ProcessState
			var ee *exec.ExitError
			switch {
			case err == nil:
				h.code <- 0
			case errors.As(err, &ee):
				h.code <- ee.ExitCode()
			default:
				h.code <- -1
			}
		}()
	})
	return h, stderr
}

func TestProcessLifecycle(t *testing.T) {
	h, stderr := startProcess(t, nonceLine())
	ready := h.ready(noHeartbeats)
	if ready.GetBackend().GetKind() != "fake" {
		t.Fatalf("backend %v", ready.GetBackend())
	}
	if runtime.GOOS != "windows" {
		// SIGINT is ignored: the gateway decides when the worker stops.
		pid := int(h.readyPID)
		p, err := os.FindProcess(pid)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
	}
	rep := h.call(5, register(), nil)
	wantStatus(t, "Register", rep, mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK)
	h.shutdown()
	h.expectEOF()
	if code := h.exitCode(); code != protocol.ExitOK {
		t.Fatalf("exit code %d\n%s", code, stderr)
	}
	logs := stderr.String()
	if !strings.Contains(logs, `"msg":"worker: ready"`) || strings.Contains(logs, nonceLine()[:64]) {
		t.Fatalf("stderr logs unexpected:\n%s", logs)
	}
}

func TestProcessExitCodes(t *testing.T) {
	cases := []struct {
		name    string
		stdin   string
		args    []string
		connect bool
		want    int
	}{
		{"bad flag", nonceLine(), []string{"--no-such-flag"}, false, protocol.ExitBadArguments},
		{"bad backend", nonceLine(), []string{"--backend", "opc"}, false, protocol.ExitBadArguments},
		{"negative max procs", nonceLine(), []string{"--max-procs", "-1"}, false, protocol.ExitBadArguments},
		{"too many max procs", nonceLine(), []string{"--max-procs", strconv.Itoa(protocol.MaxWorkerProcs + 1)}, false, protocol.ExitBadArguments},
		{"no nonce", "", nil, false, protocol.ExitNoNonce},
		{"mxaccess elsewhere", nonceLine(), []string{"--backend", "mxaccess"}, true, protocol.ExitBackendInit},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, stderr := startProcess(t, tc.stdin, tc.args...)
			if tc.connect {
				h.hello(noHeartbeats)
				if h.next().GetWorkerHello() == nil {
					t.Fatal("no WorkerHello")
				}
				if f := h.expectFault(); !strings.Contains(f.GetMessage(), "windows/386") {
					t.Fatalf("fault %q does not explain", f.GetMessage())
				}
			} else if h.conn != nil {
				t.Fatal("worker connected")
			}
			if code := h.exitCode(); code != tc.want {
				t.Fatalf("exit code %d, want %d\n%s", code, tc.want, stderr)
			}
		})
	}
}

// TestProcessMaxProcs: a worker runs on DefaultMaxProcs Ps unless
// --max-procs says otherwise, and says so in its starting line.
func TestProcessMaxProcs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, min(2, runtime.NumCPU())},
		{[]string{"--max-procs", "1"}, 1},
		{[]string{"--max-procs", "3"}, 3},
	} {
		h, stderr := startProcess(t, nonceLine(), tc.args...)
		h.ready(noHeartbeats)
		h.shutdown()
		if code := h.exitCode(); code != protocol.ExitOK {
			t.Fatalf("%q: exit code %d\n%s", tc.args, code, stderr)
		}
		got := -1
		for line := range strings.Lines(stderr.String()) {
			var rec struct {
				Msg      string `json:"msg"`
				MaxProcs *int   `json:"max_procs"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "worker: starting" && rec.MaxProcs != nil {
				got = *rec.MaxProcs
			}
		}
		if got != tc.want {
			t.Fatalf("%q: the worker ran with GOMAXPROCS %d, want %d\n%s", tc.args, got, tc.want, stderr)
		}
	}
}

func TestDefaultMaxProcs(t *testing.T) {
	if want := min(2, runtime.NumCPU()); DefaultMaxProcs("sim") != want || DefaultMaxProcs(backendMXAccess) != 0 {
		t.Fatalf("DefaultMaxProcs: sim %d, mxaccess %d; want %d and 0 (Go's default)", DefaultMaxProcs("sim"), DefaultMaxProcs(backendMXAccess), want)
	}
}

// TestProcessSimCrash: in a real process the simulator's crash fault ends
// the worker with the chosen code, after the Write that asked for it was
// answered (the Exiter flushes first).
func TestProcessSimCrash(t *testing.T) {
	h, stderr := startProcess(t, nonceLine(), "--backend", "simreal", "--sim-profile", "test")
	h.ready(noHeartbeats)
	sh := h.call(1, register(), nil).GetRegister().GetServerHandle()
	crash := h.call(2, addItem(sh, "Sim.Crash"), nil).GetItemHandle().GetItemHandle()
	h.call(3, advise(sh, crash), nil)
	rep := h.call(4, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Write{Write: &mxgatewayv1.WriteCommand{
		ServerHandle: sh, ItemHandle: crash, Value: int32Value(9)}}}, nil)
	wantStatus(t, "Write Sim.Crash", rep, mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK)
	if code := h.exitCode(); code != 9 {
		t.Fatalf("exit code %d, want 9\n%s", code, stderr)
	}
}
