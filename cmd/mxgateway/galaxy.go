package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mxgateway/mxgateway/api/mxgateway/galaxy/v1"
	"github.com/mxgateway/mxgateway/internal/config"
	"github.com/mxgateway/mxgateway/internal/galaxy/runtime"
	"github.com/mxgateway/mxgateway/internal/galaxy/wire"
	"github.com/mxgateway/mxgateway/internal/ipc"
	"github.com/mxgateway/mxgateway/internal/logging"
)

const galaxyUsage = `usage:
  mxgateway galaxy --listen DIR [--sim-model PATH | --sim-plant N] [--log-level info]
      run the simulated Galaxy runtime; its endpoint and key file live in DIR
  mxgateway galaxy admin --dir DIR ACTION [TARGET] [--model PATH] [--ms N] [--count N]
      ACTION: status, deploy, platformDown, platformUp, engineOffScan,
      engineOnScan, slowFirstBind, storm, crash
`

// runGalaxy is `mxgateway galaxy`: the simulated Galaxy runtime every sim
// worker attaches to (started and supervised by serve, or run by hand for
// gateways that share it), and its admin client.
func runGalaxy(args []string) int {
	if len(args) > 0 && args[0] == "admin" {
		return runGalaxyAdmin(args[1:], os.Stdout, os.Stderr)
	}
	fs := flag.NewFlagSet("mxgateway galaxy", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	fs.Usage = func() { fmt.Fprint(os.Stderr, galaxyUsage); fs.PrintDefaults() }
	dir := fs.String("listen", "", "runtime directory: endpoint and key file (created 0700)")
	model := fs.String("sim-model", "", "Galaxy model file (default: the built-in demo Galaxy)")
	plant := fs.Int("sim-plant", 0, "serve the generated plant of N areas instead of a model file")
	level := fs.String("log-level", "info", "log level")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *dir == "" {
		*dir = os.Getenv(wire.EnvDir) // how serve passes it
	}
	if *dir == "" || fs.NArg() != 0 || (*model != "" && *plant > 0) || *plant < 0 || *plant > config.MaxSimPlantAreas {
		fs.Usage()
		return 2
	}
	log, err := logging.New(os.Stderr, *level, logging.FormatText)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mxgateway galaxy:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if os.Getenv(envGalaxyChild) != "" {
		// Started by serve: end with the gateway, however it ends (its
		// end of our stdin closes).
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			cancel()
		}()
	}
	if err := serveGalaxy(ctx, *dir, *model, *plant, os.Getenv(wire.EnvKey), log); err != nil {
		fmt.Fprintln(os.Stderr, "mxgateway galaxy:", err)
		return 1
	}
	return 0
}

// galaxyModel describes the model of a runtime.
func galaxyModel(model string, plant int) (*galaxyv1.Model, error) {
	switch {
	case plant > 0:
		return &galaxyv1.Model{Source: &galaxyv1.Model_PlantAreas{PlantAreas: uint32(plant)}}, nil
	case model != "":
		data, err := os.ReadFile(model)
		if err != nil {
			return nil, err
		}
		return &galaxyv1.Model{Source: &galaxyv1.Model_Yaml{Yaml: data}}, nil
	}
	return &galaxyv1.Model{Source: &galaxyv1.Model_Demo{Demo: true}}, nil
}

// serveGalaxy runs a runtime on dir until ctx ends. keyHex, when set, is
// the credential to use (the gateway's, so a restarted runtime accepts the
// workers it already launched); else a fresh one is made. Either way it is
// written to the key file.
func serveGalaxy(ctx context.Context, dir, model string, plant int, keyHex string, log *slog.Logger) error {
	src, err := galaxyModel(model, plant)
	if err != nil {
		return err
	}
	ln, err := ipc.ListenNamed(dir, wire.EndpointName)
	if err != nil {
		return err
	}
	defer ln.Close()
	var key []byte
	if keyHex != "" {
		if key, err = wire.ParseKey(keyHex); err == nil {
			err = writeKeyFile(dir, keyHex)
		}
	} else {
		key, err = runtime.WriteKey(dir)
	}
	if err != nil {
		return err
	}
	rt, err := runtime.New(runtime.Options{Model: src, ModelPath: model, Credential: key, Logger: log, Exit: os.Exit})
	if err != nil {
		return err
	}
	defer rt.Close()
	log.Info("galaxy runtime listening", "endpoint", ln.Endpoint(), "status", rt.Admin(&galaxyv1.AdminRequest{Action: runtime.ActionStatus}).GetStatus())
	fmt.Println("galaxy runtime listening on", ln.Endpoint())
	return rt.Serve(ctx, ln)
}

func writeKeyFile(dir, keyHex string) error {
	p := filepath.Join(dir, wire.KeyFileName)
	if err := os.WriteFile(p+".tmp", []byte(keyHex+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(p+".tmp", p)
}

// runGalaxyAdmin sends one admin request to a runtime.
func runGalaxyAdmin(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mxgateway galaxy admin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "runtime directory")
	model := fs.String("model", "", "deploy: the new model file (default: reload the runtime's)")
	ms := fs.Int64("ms", 0, "slowFirstBind: the first-bind delay in milliseconds (0 ends it)")
	count := fs.Int64("count", 0, "storm: the number of changes")
	// Flags may follow the action: parse, take positionals, parse the rest.
	var pos []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if *dir == "" || len(pos) == 0 || len(pos) > 2 {
		fmt.Fprint(stderr, galaxyUsage)
		return 2
	}
	req := &galaxyv1.AdminRequest{Action: pos[0], DurationMs: *ms}
	if pos[0] == runtime.ActionStorm {
		req.DurationMs = *count
	}
	if len(pos) == 2 {
		req.Target = pos[1]
	}
	if *model != "" {
		src, err := galaxyModel(*model, 0)
		if err != nil {
			fmt.Fprintln(stderr, "mxgateway galaxy admin:", err)
			return 1
		}
		req.Model = src
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reply, err := galaxyAdmin(ctx, *dir, req)
	if err != nil {
		fmt.Fprintln(stderr, "mxgateway galaxy admin:", err)
		return 1
	}
	if reply.GetError() != "" {
		fmt.Fprintln(stderr, "mxgateway galaxy admin:", reply.GetError())
		return 1
	}
	fmt.Fprintln(stdout, reply.GetStatus())
	return 0
}

// galaxyAdmin sends one admin request to the runtime serving dir.
func galaxyAdmin(ctx context.Context, dir string, req *galaxyv1.AdminRequest) (*galaxyv1.AdminReply, error) {
	a, err := wire.DialAdmin(ctx, dir, "admin")
	if err != nil {
		return nil, err
	}
	defer a.Close()
	return a.Do(ctx, req)
}

// galaxyDirPrefix names the runtime directory of a gateway's own runtime:
// <temp>/mxgw-galaxy-<gateway pid>-<random>. The pid lets a later run
// find what a killed one left; the random part means a reused pid (common
// under Wine, whose pids are small) never needs the old directory gone.
const galaxyDirPrefix = "mxgw-galaxy-"

// galaxyDirPID is the gateway pid in a runtime directory's name.
func galaxyDirPID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, galaxyDirPrefix)
	if !ok {
		return 0, false
	}
	pidText, _, _ := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(pidText)
	return pid, err == nil
}

// removeStaleGalaxyDirs removes the runtime directories of gateways that no
// longer run (a gateway killed with its runtime leaves its directory).
func removeStaleGalaxyDirs(base string, log *slog.Logger) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		pid, ok := galaxyDirPID(name)
		if !e.IsDir() || !ok || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(base, name)); err != nil {
			log.Warn("could not remove the Galaxy runtime directory of an earlier run", "dir", filepath.Join(base, name), "err", err)
		} else {
			log.Info("removed the Galaxy runtime directory of an earlier run", "dir", filepath.Join(base, name))
		}
	}
}

// galaxyProbeTimeout bounds one readiness probe of the gateway's own
// runtime; startGalaxy retries until the start-up timeout.
const galaxyProbeTimeout = time.Second

// envGalaxyChild tells `mxgateway galaxy` that serve started it.
const envGalaxyChild = "MXGW_GALAXY_CHILD"

// galaxyProcess is the runtime the gateway starts for its sim workers,
// restarted whenever it exits until Stop.
type galaxyProcess struct {
	dir    string
	keyHex string
	args   []string
	log    *slog.Logger

	mu       sync.Mutex
	cmd      *exec.Cmd
	restarts int
	stopped  bool
	done     chan struct{}
}

// startGalaxy starts the gateway's own runtime in a fresh private
// directory and waits until it serves.
func startGalaxy(ctx context.Context, cfg *config.Config, log *slog.Logger) (*galaxyProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	// One directory per gateway process, named after its pid with a random
	// suffix (a reused pid never meets an earlier run's directory), so a
	// later run can remove what a killed one left.
	base := os.TempDir()
	removeStaleGalaxyDirs(base, log)
	dir, err := os.MkdirTemp(base, galaxyDirPrefix+strconv.Itoa(os.Getpid())+"-*")
	if err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	// The directory travels in the environment: the process list shows
	// workers by their endpoint paths, the runtime by its command only.
	args := []string{self, "galaxy", "--log-level=" + cfg.LogLevel}
	switch {
	case cfg.SimPlant > 0:
		args = append(args, "--sim-plant="+strconv.Itoa(cfg.SimPlant))
	case cfg.SimModel != "":
		model, err := filepath.Abs(cfg.SimModel)
		if err != nil {
			return nil, err
		}
		args = append(args, "--sim-model="+model)
	}
	g := &galaxyProcess{dir: dir, keyHex: hex.EncodeToString(key), args: args, log: log.With("component", "galaxy"),
		done: make(chan struct{})}
	if err := g.launch(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	go g.supervise()
	wctx, cancel := context.WithTimeout(ctx, cfg.StartupTimeout)
	defer cancel()
	for {
		// Each probe has its own bound: a connection that never answers
		// (under Wine, the pipe's never-accepted first instance, see
		// docs/windows.md) is given up and the runtime asked again.
		actx, acancel := context.WithTimeout(wctx, galaxyProbeTimeout)
		_, err := galaxyAdmin(actx, dir, &galaxyv1.AdminRequest{Action: runtime.ActionStatus})
		acancel()
		if err == nil {
			break
		}
		select {
		case <-wctx.Done():
			g.Stop()
			return nil, fmt.Errorf("galaxy runtime did not start: %w", err)
		case <-time.After(20 * time.Millisecond): // the key file or endpoint is not there yet
		}
	}
	return g, nil
}

func (g *galaxyProcess) launch() error {
	cmd := exec.Command(g.args[0], g.args[1:]...)
	cmd.Env = append(os.Environ(), wire.EnvKey+"="+g.keyHex, wire.EnvDir+"="+g.dir, envGalaxyChild+"=1")
	cmd.Stderr = os.Stderr
	// Our end of its stdin closes when we exit, even by SIGKILL: the
	// runtime then exits too.
	if _, err := cmd.StdinPipe(); err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start galaxy runtime: %w", err)
	}
	g.mu.Lock()
	g.cmd = cmd
	g.mu.Unlock()
	g.log.Info("galaxy runtime started", "pid", cmd.Process.Pid, "dir", g.dir)
	return nil
}

// supervise restarts the runtime when it exits, with a short back-off.
func (g *galaxyProcess) supervise() {
	defer close(g.done)
	wait := 100 * time.Millisecond
	for {
		g.mu.Lock()
		cmd := g.cmd
		g.mu.Unlock()
		err := cmd.Wait()
		g.mu.Lock()
		stopped := g.stopped
		g.mu.Unlock()
		if stopped {
			return
		}
		g.log.Warn("galaxy runtime exited; restarting", "error", err, "pid", cmd.Process.Pid)
		time.Sleep(wait)
		wait = min(wait*2, 5*time.Second)
		g.mu.Lock()
		if g.stopped {
			g.mu.Unlock()
			return
		}
		g.restarts++
		g.mu.Unlock()
		if err := g.launch(); err != nil {
			g.log.Error("galaxy runtime restart failed", "error", err)
			return
		}
	}
}

// Env is what the workers need to reach the runtime.
func (g *galaxyProcess) Env() []string {
	return []string{wire.EnvDir + "=" + g.dir, wire.EnvKey + "=" + g.keyHex}
}

// Stop ends the runtime (after the sessions) and removes its directory.
func (g *galaxyProcess) Stop() {
	g.mu.Lock()
	g.stopped = true
	cmd := g.cmd
	g.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		if cmd.Process.Signal(os.Interrupt) != nil { // Windows: no interrupt
			_ = cmd.Process.Kill()
		}
		select {
		case <-g.done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-g.done
		}
	}
	os.RemoveAll(g.dir)
}

// attachedGalaxyEnv is the worker environment for an external runtime
// (serve --sim-galaxy DIR): the directory only, so each worker reads the
// key file at every connection (a runtime restarted by hand makes a new
// key). The key is checked here, so a wrong directory fails the start.
func attachedGalaxyEnv(dir string) ([]string, error) {
	if _, err := wire.ReadKey(dir); err != nil {
		return nil, fmt.Errorf("sim_galaxy: %w", err)
	}
	return []string{wire.EnvDir + "=" + dir}, nil
}
