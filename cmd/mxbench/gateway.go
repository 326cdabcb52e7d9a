package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mxgateway/mxgateway/client"
)

// gatewayStartTimeout bounds how long a gateway may take to print its
// addresses; gatewayStopTimeout how long it may take to exit after SIGTERM.
const (
	gatewayStartTimeout = 3 * time.Minute // a Galaxy runtime of 50,000 changing values, under load
	gatewayStopTimeout  = 60 * time.Second
)

// benchScopes are the scopes of the key the workloads use: what an
// application needs, not admin.
var benchScopes = []string{"session:open", "session:close", "invoke:read", "invoke:write", "events:read"}

// buildBinaries builds cmd/mxgateway and cmd/mxworker into dir (as `make
// build` does, without version stamping) and returns their paths.
func buildBinaries(ctx context.Context, dir string) (gateway, worker string, err error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", "", err
	}
	gateway, worker = filepath.Join(dir, "mxgateway"), filepath.Join(dir, "mxworker")
	for _, b := range []struct{ out, pkg string }{{gateway, "./cmd/mxgateway"}, {worker, "./cmd/mxworker"}} {
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", b.out, b.pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("mxbench: go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	return gateway, worker, nil
}

// moduleRoot is the directory of the main module's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("mxbench: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("mxbench: run from inside the mxgateway module")
	}
	return filepath.Dir(gomod), nil
}

// gatewayProc is one `mxgateway serve` process started by the driver.
type gatewayProc struct {
	name     string
	dir      string
	dataDir  string
	grpcAddr string
	httpAddr string

	// key is the API key the workloads use ("" when the gateway has no
	// authentication); auth describes it for the report.
	key  string
	auth string

	cmd     *exec.Cmd
	logFile *os.File
	exited  chan struct{}
	waitErr error
	stdout  bytes.Buffer
	mu      sync.Mutex
}

// startGateway starts `bin serve` on loopback ports chosen by the kernel,
// with its own data and temp directories under root/name, the simulator's
// test profile and args appended. It waits for both addresses, then sets up
// the API key: with a first-run admin key in the data directory, it creates
// a key with application scopes (falling back to the admin key).
func startGateway(ctx context.Context, bin, root, name string, args ...string) (*gatewayProc, error) {
	g := &gatewayProc{name: name, dir: filepath.Join(root, name), exited: make(chan struct{})}
	g.dataDir = filepath.Join(g.dir, "data")
	tmp := filepath.Join(g.dir, "tmp")
	for _, d := range []string{g.dataDir, tmp} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	full := append([]string{"serve",
		"--listen=127.0.0.1:0", "--http-listen=127.0.0.1:0", "--nats-listen=127.0.0.1:0",
		"--data-dir=" + g.dataDir, "--sim-profile=test",
		"--alarms=off", // its session and worker would count in every figure
	}, args...)
	g.cmd = exec.Command(bin, full...)
	g.cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	lf, err := os.Create(filepath.Join(g.dir, "gateway.log"))
	if err != nil {
		return nil, err
	}
	g.logFile = lf
	g.cmd.Stderr = lf
	stdout, err := g.cmd.StdoutPipe()
	if err != nil {
		lf.Close()
		return nil, err
	}
	if err := g.cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("mxbench: start %s: %w", bin, err)
	}
	addrs := make(chan [2]string, 1)
	go g.readStdout(stdout, addrs)
	go func() {
		g.waitErr = g.cmd.Wait()
		close(g.exited)
	}()
	select {
	case a := <-addrs:
		g.grpcAddr, g.httpAddr = a[0], a[1]
	case <-g.exited:
		lf.Close()
		return nil, fmt.Errorf("mxbench: gateway %s exited before listening (%v); log: %s", name, g.waitErr, lf.Name())
	case <-time.After(gatewayStartTimeout):
		g.stop()
		return nil, fmt.Errorf("mxbench: gateway %s did not print its addresses within %v; log: %s", name, gatewayStartTimeout, lf.Name())
	case <-ctx.Done():
		g.stop()
		return nil, ctx.Err()
	}
	if err := g.setupKey(ctx); err != nil {
		g.stop()
		return nil, err
	}
	return g, nil
}

// readStdout keeps stdout and reports both listen addresses once printed.
func (g *gatewayProc) readStdout(r io.Reader, addrs chan<- [2]string) {
	var grpcAddr, httpAddr string
	sent := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		g.mu.Lock()
		g.stdout.WriteString(line + "\n")
		g.mu.Unlock()
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

// setupKey finds the first-run admin key and, with it, creates the
// workloads' key.
func (g *gatewayProc) setupKey(ctx context.Context) error {
	raw, err := os.ReadFile(filepath.Join(g.dataDir, "admin.key"))
	if err != nil {
		g.auth = "off (the gateway wrote no admin.key: no authentication in this build)"
		return nil
	}
	admin := strings.TrimSpace(string(raw))
	c, err := g.dialKey(ctx, admin)
	if err != nil {
		return err
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, key, err := c.Admin().CreateAPIKey(cctx, client.NewAPIKey{Name: "mxbench", Scopes: benchScopes})
	if err != nil {
		g.key = admin
		g.auth = fmt.Sprintf("on (first-run admin key; creating a scoped key failed: %v)", err)
		return nil
	}
	g.key = key
	g.auth = "on (API key with scopes " + strings.Join(benchScopes, ", ") + ")"
	return nil
}

// authShort is "on" or "off".
func (g *gatewayProc) authShort() string {
	if g.key == "" {
		return "off"
	}
	return "on"
}

// dial connects a new SDK client with the workloads' key.
func (g *gatewayProc) dial(ctx context.Context, opts ...client.Option) (*client.Client, error) {
	return g.dialKey(ctx, g.key, opts...)
}

func (g *gatewayProc) dialKey(ctx context.Context, key string, opts ...client.Option) (*client.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	all := append([]client.Option{client.WithAPIKey(key), client.WithInsecure(), client.WithUserAgent("mxbench")}, opts...)
	c, err := client.Dial(dctx, g.grpcAddr, all...)
	if err != nil {
		return nil, fmt.Errorf("mxbench: dial gateway %s: %w", g.name, err)
	}
	return c, nil
}

// pid is the gateway's process id.
func (g *gatewayProc) pid() int { return g.cmd.Process.Pid }

// workers lists the gateway's child processes (its workers).
func (g *gatewayProc) workers() []int { return childrenOf(g.pid()) }

// stop sends SIGTERM and waits for the exit (killing after
// gatewayStopTimeout). Safe to call twice.
func (g *gatewayProc) stop() error {
	select {
	case <-g.exited:
	default:
		if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			g.cmd.Process.Kill()
		}
		select {
		case <-g.exited:
		case <-time.After(gatewayStopTimeout):
			g.cmd.Process.Kill()
			<-g.exited
		}
	}
	g.logFile.Close()
	return g.waitErr
}

// rssBytes reads a process's resident set size from /proc/<pid>/status
// (Linux only).
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) < 1 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, err
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("mxbench: no VmRSS for pid %d", pid)
}

// childrenOf lists the live children of pid by scanning /proc (Linux only;
// nil elsewhere).
func childrenOf(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		ppid, state, ok := parseStat(string(stat))
		if ok && ppid == pid && state != "Z" {
			out = append(out, p)
		}
	}
	return out
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat
// (100 on every Linux the benchmark runs on).
const clockTicks = 100

// cpuTime is the user plus system CPU time a process used so far, from
// /proc/<pid>/stat ("self" for the driver); 0 when it cannot be read.
func cpuTime(pid string) time.Duration {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	k, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(u+k) * time.Second / clockTicks
}

// cpuOf sums cpuTime over pids.
func cpuOf(pids []int) time.Duration {
	var d time.Duration
	for _, p := range pids {
		d += cpuTime(strconv.Itoa(p))
	}
	return d
}

// parseStat extracts the parent pid and the state from /proc/<pid>/stat;
// the command name in parentheses may contain spaces and parentheses.
func parseStat(stat string) (ppid int, state string, ok bool) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, "", false
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 2 {
		return 0, "", false
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, "", false
	}
	return ppid, f[0], true
}
