package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	"github.com/mxgateway/mxgateway/client"
	"github.com/mxgateway/mxgateway/internal/auth"
	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/backend/sim"
	"github.com/mxgateway/mxgateway/internal/gateway"
	"github.com/mxgateway/mxgateway/internal/ipc"
	"github.com/mxgateway/mxgateway/internal/session"
	"github.com/mxgateway/mxgateway/internal/store"
	"github.com/mxgateway/mxgateway/internal/supervisor"
	"github.com/mxgateway/mxgateway/internal/worker"
)

// workerArg makes mxbench run as a simulator worker (profile mode only):
// `mxbench __mxbench_worker <profile-dir> <worker flags>`.
const workerArg = "__mxbench_worker"

// runProfileWorker is the worker of profile mode: `mxgateway worker` with a
// CPU profile over its whole life and an allocation profile at its end,
// written to <dir>/worker-<pid>.{cpu,allocs}.pprof.
func runProfileWorker(args []string) int {
	if len(args) < 1 {
		fmt.Fprintln(os.Stderr, "mxbench: worker mode needs a profile directory")
		return 2
	}
	dir, args := args[0], args[1:]
	prefix := filepath.Join(dir, "worker-"+strconv.Itoa(os.Getpid()))
	cpu, err := os.Create(prefix + ".cpu.pprof")
	if err == nil {
		if err := pprof.StartCPUProfile(cpu); err != nil {
			cpu.Close()
			cpu = nil
		}
	} else {
		cpu = nil
	}
	code := worker.Main(context.Background(), args, worker.MainOptions{
		Prog:   "mxbench worker",
		Stdin:  os.Stdin,
		Stderr: os.Stderr,
		Dial:   ipc.Dial,
		Backends: map[string]worker.BackendFactory{
			"sim": func(f worker.Flags, logger *slog.Logger, exit func(int)) (backend.Backend, error) {
				b, err := sim.New(sim.Options{ModelPath: f.SimModel, Profile: f.SimProfile, Seed: f.SimSeed, Exit: exit, Logger: logger})
				if err != nil {
					return nil, err
				}
				return b, nil
			},
		},
	})
	if cpu != nil {
		pprof.StopCPUProfile()
		cpu.Close()
	}
	writeProfile(prefix+".allocs.pprof", "allocs")
	return code
}

func writeProfile(path, name string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup(name).WriteTo(f, 0)
}

// inProcessGateway is the gateway of profile mode: the same packages
// `mxgateway serve` wires (supervisor, session manager, gRPC server), without
// authentication, in the driver's process, with mxbench itself as the worker
// executable.
type inProcessGateway struct {
	sup  *supervisor.Supervisor
	gw   *gateway.Server
	addr string
	done chan error

	mu     sync.Mutex
	worker []time.Duration // workerclient round trips of the commands
}

func startInProcessGateway(model, profDir string) (*inProcessGateway, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	g := &inProcessGateway{done: make(chan error, 1)}
	sup, err := supervisor.New(supervisor.Options{
		Executable: self,
		Args:       []string{workerArg, profDir, "--backend=sim", "--sim-profile=test", "--sim-model=" + model, "--log-level=warn"},
		Logger:     log,
	})
	if err != nil {
		return nil, err
	}
	sessions, err := session.New(session.Options{
		Launch: func(ctx context.Context, id string) (session.Worker, error) {
			c, err := sup.Launch(ctx, id)
			if err != nil {
				return nil, err
			}
			return c, nil
		},
		Logger: log,
		// The worker round trip of every command (workerclient.Invoke), to
		// split a Write's time between the gateway's gRPC side and the
		// worker.
		Hooks: session.Hooks{CommandDone: func(_ *catalog.Kind, d time.Duration, _ *mxgatewayv1.Reply, _ error) {
			g.mu.Lock()
			g.worker = append(g.worker, d)
			g.mu.Unlock()
		}},
	})
	if err != nil {
		sup.Close()
		return nil, err
	}
	gw, err := gateway.New(gateway.Options{Sessions: sessions, Logger: log})
	if err != nil {
		sessions.Close()
		sup.Close()
		return nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		gw.Close()
		sup.Close()
		return nil, err
	}
	g.sup, g.gw, g.addr = sup, gw, lis.Addr().String()
	go func() { g.done <- gw.Serve(lis) }()
	return g, nil
}

func (g *inProcessGateway) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g.gw.Shutdown(ctx)
	<-g.done
	g.sup.Close()
}

// runProfile profiles the event path (a storm to one subscriber) and the
// command path (Write round trips) and prints the top of each profile.
func runProfile(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("mxbench profile", flag.ContinueOnError)
	dir := fs.String("dir", "bench/results/profiles", "output directory")
	events := fs.Int("events", 300000, "storm events of the event-path profile")
	calls := fs.Int("calls", 20000, "Write calls of the command-path profile")
	phases := fs.String("phases", "events,batch,invoke", "comma-separated phases: events (one event per message), batch (client.Batch(1024, 0)), invoke")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := profile(ctx, *dir, strings.Split(*phases, ","), *events, *calls); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func profile(ctx context.Context, dir string, phases []string, events, calls int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	dir, _ = filepath.Abs(dir)
	root, err := os.MkdirTemp("", "mxbench-prof-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	model := filepath.Join(root, "bench.yaml")
	if err := writeModel(model, 1000, 0, 0); err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(os.Stderr, "mxbench profile: "+format+"\n", a...) }

	for _, phase := range phases {
		if phase != "events" && phase != "batch" && phase != "invoke" {
			return fmt.Errorf("mxbench profile: unknown phase %q (want events, batch, invoke)", phase)
		}
		pdir := filepath.Join(dir, phase)
		if err := os.MkdirAll(pdir, 0o755); err != nil {
			return err
		}
		old, _ := filepath.Glob(filepath.Join(pdir, "*.pprof"))
		for _, f := range old {
			os.Remove(f)
		}
		g, err := startInProcessGateway(model, pdir)
		if err != nil {
			return err
		}
		err = profilePhase(ctx, g, phase, pdir, events, calls, logf)
		g.close()
		if err != nil {
			return err
		}
		summarise(pdir, logf)
	}
	pdir := filepath.Join(dir, "auth")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		return err
	}
	if err := profileAuth(ctx, filepath.Join(root, "auth"), pdir, calls, logf); err != nil {
		return err
	}
	summarise(pdir, logf)
	return nil
}

// profileAuth profiles the per-call API key check the gateway's guard runs
// on every RPC (Manager.Authenticate: parse, key store lookup, HMAC).
func profileAuth(ctx context.Context, data, dir string, calls int, logf func(string, ...any)) error {
	if err := store.EnsureDataDir(data); err != nil {
		return err
	}
	st, err := store.OpenInDir(ctx, data, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	peppers, err := auth.LoadPeppers(auth.PepperConfig{DataDir: data})
	if err != nil {
		return err
	}
	mgr, err := auth.NewManager(auth.ManagerConfig{Store: st, Peppers: peppers})
	if err != nil {
		return err
	}
	raw, _, err := auth.EnsureBootstrapKey(ctx, mgr, data)
	if err != nil {
		return err
	}
	key := raw.Reveal()
	for range 100 {
		if _, err := mgr.Authenticate(ctx, key); err != nil {
			return err
		}
	}
	runtime.GC()
	if err := writeProfile(filepath.Join(dir, "gateway-before.allocs.pprof"), "allocs"); err != nil {
		return err
	}
	cpu, err := os.Create(filepath.Join(dir, "gateway.cpu.pprof"))
	if err != nil {
		return err
	}
	defer cpu.Close()
	if err := pprof.StartCPUProfile(cpu); err != nil {
		return err
	}
	start := time.Now()
	for range calls {
		if _, err := mgr.Authenticate(ctx, key); err != nil {
			pprof.StopCPUProfile()
			return err
		}
	}
	took := time.Since(start)
	pprof.StopCPUProfile()
	logf("auth: %d key checks, %.1f µs each", calls, float64(took.Microseconds())/float64(calls))
	return writeProfile(filepath.Join(dir, "gateway-after.allocs.pprof"), "allocs")
}

// profilePhase runs one phase against g with the driver's own CPU profile
// on (the driver process holds the gateway and the SDK client).
func profilePhase(ctx context.Context, g *inProcessGateway, phase, dir string, events, calls int, logf func(string, ...any)) error {
	gp := &gatewayProc{name: "in-process", grpcAddr: g.addr}
	c, err := gp.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	// Warm up once (spawn, page cache), untimed and unprofiled.
	if s, err := c.OpenSession(ctx, "warmup"); err == nil {
		s.Close()
	}
	runtime.GC()
	if err := writeProfile(filepath.Join(dir, "gateway-before.allocs.pprof"), "allocs"); err != nil {
		return err
	}
	cpu, err := os.Create(filepath.Join(dir, "gateway.cpu.pprof"))
	if err != nil {
		return err
	}
	defer cpu.Close()
	if err := pprof.StartCPUProfile(cpu); err != nil {
		return err
	}
	start := time.Now()
	switch phase {
	case "events":
		var rate float64
		rate, _, _, err = gatewayStorm(ctx, gp, EventParams{Subscribers: 1, Events: events, Chunk: 2000, Window: 4000})
		logf("events: %d events at %.0f/s", events, rate)
	case "batch":
		var rate float64
		rate, _, _, err = gatewayStorm(ctx, gp, EventParams{Subscribers: 1, Events: events, Batch: 1024, Chunk: 4000, Window: 8000})
		logf("batch: %d events at %.0f/s, batches of <= 1024", events, rate)
	case "invoke":
		g.mu.Lock()
		g.worker = g.worker[:0]
		g.mu.Unlock()
		var ds []time.Duration
		ds, err = profileWrites(ctx, c, calls)
		g.mu.Lock()
		w := latencyOf(g.worker[max(0, len(g.worker)-len(ds)):])
		g.mu.Unlock()
		logf("invoke: %d Writes in %v; p50 %.3f ms at the SDK, of which %.3f ms gateway -> worker -> gateway (workerclient.Invoke)",
			calls, time.Since(start).Round(time.Millisecond), latencyOf(ds).P50, w.P50)
	}
	pprof.StopCPUProfile()
	if err != nil {
		return err
	}
	return writeProfile(filepath.Join(dir, "gateway-after.allocs.pprof"), "allocs")
}

func profileWrites(ctx context.Context, c *client.Client, calls int) ([]time.Duration, error) {
	s, err := c.OpenSession(ctx, "mxbench-profile")
	if err != nil {
		return nil, err
	}
	defer s.Close()
	mx := s.MX()
	h, err := mx.Register(ctx, "mxbench")
	if err != nil {
		return nil, err
	}
	hw, err := mx.AddItem(ctx, h, refWrite)
	if err == nil {
		err = mx.Advise(ctx, h, hw)
	}
	if err != nil {
		return nil, err
	}
	return timedCalls(ctx, invokeTarget{mx, h, hw}, "write", calls, 0)
}

// summarise writes `go tool pprof -top` of each profile next to it.
func summarise(dir string, logf func(string, ...any)) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.pprof"))
	for _, f := range files {
		if strings.HasSuffix(f, "-before.allocs.pprof") {
			continue
		}
		args := []string{"tool", "pprof", "-top", "-nodecount=40"}
		if strings.HasSuffix(f, ".allocs.pprof") {
			args = append(args, "-sample_index=alloc_space")
			if strings.HasSuffix(f, "gateway-after.allocs.pprof") {
				args = append(args, "-diff_base="+filepath.Join(dir, "gateway-before.allocs.pprof"))
			}
		}
		out, err := exec.Command("go", append(args, f)...).CombinedOutput()
		if err != nil {
			logf("pprof %s: %v", f, err)
			continue
		}
		txt := strings.TrimSuffix(f, ".pprof") + ".top.txt"
		os.WriteFile(txt, out, 0o644)
		logf("wrote %s", txt)
	}
}
