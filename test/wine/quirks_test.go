//go:build wine

package wine

import (
	"fmt"
	"math/rand/v2"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/mxgateway/mxgateway/internal/testutil"
)

// runQuirk runs a quirks mode under Wine and returns its result line.
func runQuirk(t *testing.T, exe string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(suite.tools["wine"], append([]string{winPath(exe)}, args...)...)
	cmd.Env = append(wineEnv(suite.prefix), env...)
	out, err := output(cmd)
	if err != nil {
		t.Fatalf("quirks %v: %v\n%s", args, err, out)
	}
	// Wine may add lines of its own (a "wine client error" from a thread
	// still running at exit, for example): take the mode's result line.
	for _, l := range strings.Split(out, "\n") {
		if resultLine.MatchString(l) {
			return strings.TrimSpace(l)
		}
	}
	t.Fatalf("quirks %v printed no result line:\n%s", args, out)
	return ""
}

// resultLine matches the one result line each quirks mode prints.
var resultLine = regexp.MustCompile(`^(dial|accept|removeall|spawned|services\.exe|installed): `)

// settingLine matches the lines of quirks service-config.
var settingLine = regexp.MustCompile(`^(description|delayed-auto-start|recovery-actions|recovery-on-non-crash-failures): `)

// TestWinePipeFirstInstance proves the named-pipe difference the suite
// works around (shim/pipefix.c): a client dialling a go-winio listener
// that has not called Accept connects under Wine, where on Windows it
// times out (go-winio's own TestDialListenerTimesOut asserts that). The
// client has taken go-winio's first pipe instance, which nobody accepts.
// When this starts failing, Wine behaves like Windows: drop the
// work-around.
func TestWinePipeFirstInstance(t *testing.T) {
	for _, exe := range []string{suite.quirks64, suite.quirks32} {
		// The shim's work-around acts only in processes started with
		// --endpoint; this is go-winio on its own.
		if got := runQuirk(t, exe, nil, "pipe-first-instance"); got != "dial: connected" {
			t.Errorf("%s: %q, want the Wine behaviour %q", exe, got, "dial: connected")
		}
	}
}

// TestWinePipeAcceptWorkaround shows the consequence and the work-around
// with the gateway's own shape: a 64-bit server with go-winio ListenPipe
// and Accept, a 32-bit client started after the pipe exists, dialling
// with go-winio. Without the work-around Accept never sees the client;
// with it, Accept gets the client's connection and the peer pid is the
// client's (so the gateway's peer check still holds).
func TestWinePipeAcceptWorkaround(t *testing.T) {
	if got := runQuirk(t, suite.quirks64, nil, "pipe-accept", winPath(suite.quirks32)); got != "accept: timeout" {
		t.Errorf("without the work-around: %q, want %q", got, "accept: timeout")
	}
	got := runQuirk(t, suite.quirks64, nil, "pipe-accept", winPath(suite.quirks32), "as-worker")
	m := regexp.MustCompile(`^accept: ok peer=(\d+) child=(\d+)$`).FindStringSubmatch(got)
	if m == nil || m[1] != m[2] {
		t.Errorf("with the work-around: %q, want accept: ok with the child as peer", got)
	}
}

// TestWineRemoveAll proves the second difference: os.RemoveAll fails under
// Wine 8 ("Invalid function": Wine answers FileDispositionInformationEx
// with a status Go's Deleteat does not fall back on) while os.Remove
// works. The gateway's run directory therefore outlives it under Wine;
// the harness removes it (removeRunDirs).
func TestWineRemoveAll(t *testing.T) {
	for _, exe := range []string{suite.quirks64, suite.quirks32} {
		got := runQuirk(t, exe, nil, "removeall")
		if !strings.HasPrefix(got, "removeall: ") || got == "removeall: ok" || !strings.HasSuffix(got, "(os.Remove: <nil>)") {
			t.Errorf("%s: %q, want the Wine failure with os.Remove working", exe, got)
		}
	}
}

// TestWineOrphanSurvives is the control of the Job Object tests: a child
// started outside any job keeps running when its parent exits, under Wine
// as on Windows. So when the worker's child ends with the worker
// (TestWorkerKillJobTakesChildren), the job ended it.
func TestWineOrphanSurvives(t *testing.T) {
	marker := fmt.Sprintf("orphan-%d", rand.IntN(1e9))
	if got := runQuirk(t, suite.quirks32, nil, "spawn-orphan", marker); !strings.HasPrefix(got, "spawned: ") {
		t.Fatalf("spawn-orphan: %q", got)
	}
	var pids []int
	testutil.Eventually(t, eventTimeout, func() error {
		if pids = processesMatching("sleep " + marker); len(pids) != 1 {
			return fmt.Errorf("orphan processes %v", pids)
		}
		return nil
	})
	// Its parent has exited (runQuirk waited for it); it still runs.
	if err := gone(pids[0]); err == nil {
		t.Fatalf("the orphan ended with its parent")
	}
	_ = syscall.Kill(pids[0], syscall.SIGKILL)
	testutil.Eventually(t, eventTimeout, func() error { return gone(pids[0]) })
}

// TestWineServiceManager proves the two service-manager differences the
// service test works around in its set-up: Wine's ChangeServiceConfig2
// lacks the delayed-auto-start and failure-actions-flag levels (so
// `mxgateway service install` fails; the suite installs with
// quirks service-install), and services.exe runs in session 1 (so the
// product's service detection, x/sys's "parent is services.exe in session
// 0", never fires; the service test's gateway is built with the winetest
// tag).
func TestWineServiceManager(t *testing.T) {
	name := fmt.Sprintf("mxgw-quirk-%d", rand.IntN(1e6))
	cmd := exec.Command(suite.tools["wine64"], winPath(suite.quirks64), "service-config", name, winPath(suite.gateway))
	cmd.Env = wineEnv(suite.prefix)
	out, err := output(cmd)
	if err != nil {
		t.Fatalf("service-config: %v\n%s", err, out)
	}
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if settingLine.MatchString(l) {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	want := "description: ok\ndelayed-auto-start: Invalid level.\nrecovery-actions: ok\nrecovery-on-non-crash-failures: Invalid level."
	if strings.Join(lines, "\n") != want {
		t.Errorf("service-config:\n%s\nwant the Wine answers:\n%s", out, want)
	}
	if got := runQuirk(t, suite.quirks64, nil, "services-session"); got != "services.exe: session=1" {
		t.Errorf("services-session: %q, want the Wine answer %q", got, "services.exe: session=1")
	}
}
