//go:build linux

package e2e

import (
	"bufio"
	"debug/buildinfo"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	sdk "github.com/mxgateway/mxgateway/client"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// TestQuickstartGoRunUsesTheLeanWorker runs the README's quick start as
// written, `go run ./cmd/mxgateway serve` (on kernel-chosen ports, its own
// data and temp directories, authentication off), and checks that a
// session's worker is the lean mxworker the gateway built for this go run,
// not the gateway re-executed.
func TestQuickstartGoRunUsesTheLeanWorker(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the gateway with go run")
	}
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "run", "./cmd/mxgateway", "serve",
		"--listen=127.0.0.1:0", "--http-listen=127.0.0.1:0", "--nats-listen=127.0.0.1:0", "--data-dir="+filepath.Join(dir, "data"),
		"--sim-profile=test", "--auth=none")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	// go run does not pass signals on: stop the gateway through its
	// process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr harness.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "mxgateway: gRPC listening on "); ok {
				addr <- strings.TrimSpace(a)
			}
		}
	}()
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(time.Minute):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	var grpcAddr string
	select {
	case grpcAddr = <-addr:
	case <-exited:
		t.Fatalf("go run ./cmd/mxgateway serve exited before listening\n%s", stderr.String())
	case <-time.After(10 * time.Minute):
		t.Fatalf("go run ./cmd/mxgateway serve did not listen within 10 minutes\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "sim worker: mxworker built for this go run") {
		t.Fatalf("the gateway did not build the lean worker:\n%s", stderr.String())
	}

	ctx := harness.Context(t, time.Minute)
	c, err := sdk.Dial(ctx, grpcAddr, sdk.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.OpenSession(ctx, "quickstart")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var workers []string
	for _, pid := range processesUnder(tmp) {
		exe, err := os.Readlink("/proc/" + pid + "/exe")
		if err == nil {
			workers = append(workers, exe)
		}
	}
	if len(workers) == 0 {
		t.Fatal("no worker process found")
	}
	for _, exe := range workers {
		if filepath.Base(exe) != "mxworker" {
			t.Errorf("worker %s is not the lean mxworker", exe)
			continue
		}
		// Built without cgo: a cgo worker links the C library, about
		// 1.7 MiB more RSS in every worker (docs/performance.md).
		bi, err := buildinfo.ReadFile(exe)
		if err != nil {
			t.Errorf("worker %s: %v", exe, err)
			continue
		}
		cgo := ""
		for _, s := range bi.Settings {
			if s.Key == "CGO_ENABLED" {
				cgo = s.Value
			}
		}
		if cgo != "0" {
			t.Errorf("worker %s built with CGO_ENABLED=%q, want 0", exe, cgo)
		}
	}
}

// processesUnder lists the pids whose command line mentions dir (workers
// name their endpoint, which is under the gateway's TMPDIR).
func processesUnder(dir string) []string {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(b), dir) && strings.Contains(string(b), "--session-id") {
			out = append(out, e.Name())
		}
	}
	return out
}
