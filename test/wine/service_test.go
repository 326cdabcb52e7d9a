//go:build wine

package wine

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxgateway/mxgateway/internal/testutil"
)

// freePort returns a loopback port that was free a moment ago (the service
// prints its addresses to nobody, so the test chooses them).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestWindowsService runs the gateway as a Windows service under Wine's
// service manager: `mxgateway service start` (StartService, then waiting
// for SERVICE_RUNNING, which the gateway reports from winsvc.Run), a client
// session through it with a worker over the named pipe, `mxgateway service
// stop` (the SCM's Stop control cancels serve, which stops its workers),
// and `mxgateway service uninstall`. Two steps differ from a Windows node,
// each proven by TestWineServiceManager: the service is registered by the
// set-up (quirks service-install: winsvc.Install without the two settings
// Wine's SCM lacks), and the gateway is built with the winetest tag (Wine's
// services.exe is not in session 0).
func TestWindowsService(t *testing.T) {
	dir := t.TempDir()
	name := fmt.Sprintf("mxgw-wine-%d", rand.IntN(1e6))
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "mxgateway.exe") // its own copy, to find its processes
	if err := copyFile(suite.serviceGateway, exe); err != nil {
		t.Fatal(err)
	}
	model, _ := filepath.Abs("testdata/standin.yaml")
	grpcPort, httpPort := freePort(t), freePort(t)
	cfg := filepath.Join(dir, "mxgateway.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: 127.0.0.1:%d
http_listen: 127.0.0.1:%d
nats_listen: 127.0.0.1:0
data_dir: %s
log_file: %s
log_format: json
worker_backend: sim
sim_model: %s
sim_profile: test
`, grpcPort, httpPort, winPath(dataDir), winPath(filepath.Join(dir, "gateway.log")), winPath(model))), 0o644); err != nil {
		t.Fatal(err)
	}
	before := runDirs()
	t.Cleanup(func() { removeRunDirs(before) })
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("service log:\n%s", readTail(filepath.Join(dir, "gateway.log")))
		}
	})
	svc := func(args ...string) (string, error) {
		cmd := exec.Command(suite.tools["wine64"], append([]string{winPath(exe), "service"}, args...)...)
		cmd.Env = wineEnv(suite.prefix)
		return output(cmd)
	}
	if out, err := runQuirkErr(suite.quirks64, "service-install", name, winPath(exe), "serve", "--config", winPath(cfg)); err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	installed := true
	t.Cleanup(func() {
		if installed {
			svc("stop", "--name", name)
			svc("uninstall", "--name", name)
		}
	})
	if out, err := svc("start", "--name", name); err != nil {
		t.Fatalf("service start: %v\n%s\nlog:\n%s", err, out, readTail(filepath.Join(dir, "gateway.log")))
	}
	running := processesMatching(winPath(exe) + " serve")
	if len(running) != 1 {
		t.Fatalf("service processes %v, want one", running)
	}

	// A client call through the service, with a worker.
	// SERVICE_RUNNING comes before the listeners: wait for the gRPC port.
	var key []byte
	testutil.Eventually(t, eventTimeout, func() error {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", grpcPort))
		if err != nil {
			return err
		}
		c.Close()
		key, err = os.ReadFile(filepath.Join(dataDir, "admin.key"))
		return err
	})
	g := &gateway{grpcAddr: fmt.Sprintf("127.0.0.1:%d", grpcPort), adminKey: strings.TrimSpace(string(key))}
	s, mx, h, rec := openCOMSession(t, g)
	hi, err := mx.AddItem(stepCtx(t), h, "Types.Int")
	if err != nil {
		t.Fatal(err)
	}
	if err := mx.Advise(stepCtx(t), h, hi); err != nil {
		t.Fatal(err)
	}
	if dc := rec.next(t, "first value through the service", dataChangeOf(h, hi)).DataChange(); dc.Err() != nil {
		t.Fatalf("first value: %v", dc.Err())
	}
	workers := processesMatching("--session-id=" + s.ID())
	if len(workers) != 1 {
		t.Fatalf("worker of the service's session: %v", workers)
	}

	if out, err := svc("stop", "--name", name); err != nil {
		t.Fatalf("service stop: %v\n%s", err, out)
	}
	for _, pid := range append(running, workers...) {
		testutil.Eventually(t, eventTimeout, func() error { return gone(pid) })
	}
	if out, err := svc("uninstall", "--name", name); err != nil {
		t.Fatalf("service uninstall: %v\n%s", err, out)
	}
	installed = false
	if out, err := svc("start", "--name", name); err == nil {
		t.Fatalf("service start after uninstall succeeded:\n%s", out)
	}
	if log := readTail(filepath.Join(dir, "gateway.log")); !strings.Contains(log, `"msg":"stopped"`) {
		t.Errorf("the service's log does not end with a clean stop:\n%s", log)
	}
}

// runQuirkErr runs a quirks mode and returns its output and error.
func runQuirkErr(exe string, args ...string) (string, error) {
	cmd := exec.Command(suite.tools["wine64"], append([]string{winPath(exe)}, args...)...)
	cmd.Env = wineEnv(suite.prefix)
	return output(cmd)
}

func readTail(path string) string {
	b, _ := os.ReadFile(path)
	return tail(string(b), 20)
}
