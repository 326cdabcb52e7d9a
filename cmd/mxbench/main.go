package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const usage = `usage: mxbench [flags]            run the benchmarks, print the table, write the JSON report
       mxbench profile [flags]    write CPU and allocation profiles of the event and command paths
       mxbench table FILE         print the table of a JSON report again

`

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == workerArg {
		os.Exit(runProfileWorker(args[1:]))
	}
	if len(args) == 1 && args[0] == echoArg {
		os.Exit(runEchoProcess(os.Stdin, os.Stdout))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) > 0 && args[0] == "profile" {
		os.Exit(runProfile(ctx, args[1:]))
	}
	if len(args) == 2 && args[0] == "table" {
		os.Exit(runTable(args[1]))
	}
	os.Exit(runBench(ctx, args))
}

// config is the command line of a benchmark run.
type config struct {
	reps       int
	out        string
	gatewayBin string
	opcuaDir   string
	keep       bool
	only       map[string]bool
	peerBatch  int
	peerSpares int

	events EventParams
	batch  EventParams
	fanout EventParams
	invoke InvokeParams
	open   OpenParams
	memory MemoryParams
	browse BrowseParams
	peers  []PeerParams

	natsFanOut NATSFanOutParams
}

var sections = []string{"events", "batch", "fanout", "runtime-storm", "invoke", "open", "memory", "peer", "browse", "nats-fanout"}

func parseConfig(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("mxbench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	fs.IntVar(&c.reps, "reps", 3, "repetitions of every figure (at least 3 for min/median/max)")
	fs.StringVar(&c.out, "out", "bench/results/latest.json", "JSON report path (\"\" writes none)")
	fs.StringVar(&c.gatewayBin, "gateway-bin", "", "mxgateway binary to use (default: go build ./cmd/mxgateway into a temp dir)")
	fs.StringVar(&c.opcuaDir, "opcua-dir", "bench/opcua", "directory of the OPC UA peer (server.js, client.js, node_modules)")
	fs.BoolVar(&c.keep, "keep", false, "keep the temp directory (gateway logs, models)")
	only := fs.String("only", strings.Join(sections, ","), "comma-separated sections to run: "+strings.Join(sections, ", "))
	fs.IntVar(&c.events.Events, "events", 200000, "storm events per repetition, one subscriber")
	fs.IntVar(&c.batch.Events, "batch-events", 1000000, "storm events per repetition, one batched subscriber")
	fs.IntVar(&c.batch.Batch, "batch", 1024, "max_batch of the batched subscriber (client.Batch)")
	batchChunk := fs.Int("batch-storm-chunk", 4000, "Sim.Storm value per trigger, batched figure")
	batchWindow := fs.Int("batch-storm-window", 8000, "events triggered but not yet received, batched figure")
	fs.IntVar(&c.peerSpares, "peer-spare-workers", 0, "spare_workers of the peer workloads' gateway (idle sessions' workers attached to the same Galaxy runtime)")
	fs.IntVar(&c.peerBatch, "peer-batch", 1024, "max_batch of the mxgateway peer subscriber (0: one event per message)")
	fs.IntVar(&c.fanout.Events, "fanout-events", 50000, "storm events per subscriber per repetition, fan-out")
	fs.IntVar(&c.fanout.Subscribers, "fanout-subscribers", 8, "subscribers of the fan-out figure")
	chunk := fs.Int("storm-chunk", 2000, "Sim.Storm value per trigger")
	window := fs.Int("storm-window", 4000, "events triggered but not yet received by the slowest subscriber")
	fs.IntVar(&c.invoke.Calls, "calls", 10000, "timed Invoke calls per command per repetition")
	fs.IntVar(&c.invoke.Warmup, "warmup-calls", 500, "untimed Invoke calls before each timed run")
	fs.IntVar(&c.open.Opens, "opens", 100, "session opens per repetition")
	levels := fs.String("mem-levels", "1,64,256", "session counts of the memory figure")
	fs.IntVar(&c.memory.Items, "mem-items", 1000, "advised items per session in the memory figure")
	fs.IntVar(&c.memory.BudgetS, "mem-budget", 300, "seconds allowed for opening the memory figure's sessions")
	peers := fs.String("peer", "1000x100ms,20000x100ms,50000x100ms,100x1ms", "peer workloads: VALUESxINTERVAL, comma-separated")
	peerDur := fs.Int("peer-duration", 5, "seconds per peer repetition")
	pubMs := fs.Int("opcua-publishing-ms", 50, "OPC UA requested publishing interval (node-opcua minimum 50)")
	fs.IntVar(&c.browse.PlantAreas, "browse-plant", 50, "areas of the generated plant the browse figures read (about 2,100 attributes each)")
	fs.IntVar(&c.browse.Calls, "browse-calls", 500, "timed BrowseChildren calls per repetition")
	fs.IntVar(&c.natsFanOut.Consumers, "nats-fanout-consumers", 1000, "consumers on each side of the NATS fan-out figure (at most 1024)")
	fs.IntVar(&c.natsFanOut.Values, "nats-fanout-values", 50, "storm values per repetition, NATS fan-out")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("mxbench: unexpected arguments: %v", fs.Args())
	}
	if c.reps < 1 {
		return c, errors.New("mxbench: -reps must be at least 1")
	}
	c.only = map[string]bool{}
	for s := range strings.SplitSeq(*only, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(sections, s) {
			return c, fmt.Errorf("mxbench: unknown section %q (want %s)", s, strings.Join(sections, ", "))
		}
		c.only[s] = true
	}
	c.events.Subscribers = 1
	c.events.Chunk, c.events.Window = *chunk, *window
	c.fanout.Chunk, c.fanout.Window = *chunk, *window
	c.batch.Subscribers = 1
	c.batch.Chunk, c.batch.Window = *batchChunk, *batchWindow
	if c.batch.Chunk <= 0 || c.batch.Window < c.batch.Chunk || c.batch.Batch < 2 {
		return c, errors.New("mxbench: need 0 < -batch-storm-chunk <= -batch-storm-window and -batch >= 2")
	}
	if c.events.Chunk <= 0 || c.events.Window < c.events.Chunk {
		return c, errors.New("mxbench: need 0 < -storm-chunk <= -storm-window")
	}
	for s := range strings.SplitSeq(*levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return c, fmt.Errorf("mxbench: bad -mem-levels entry %q", s)
		}
		c.memory.Levels = append(c.memory.Levels, n)
	}
	c.natsFanOut.Chunk, c.natsFanOut.Window, c.natsFanOut.Writes, c.natsFanOut.GapMs = 1, 50, 10, 200
	c.browse.WideObjects, c.browse.WideAttributes, c.browse.Warmup = 2000, 5, 50
	c.memory.Samples, c.memory.SampleGapMs, c.memory.SettleMs = 3, 500, 2000
	for s := range strings.SplitSeq(*peers, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		n, iv, ok := strings.Cut(s, "x")
		values, err1 := strconv.Atoi(n)
		every, err2 := time.ParseDuration(iv)
		if !ok || err1 != nil || err2 != nil || values < 1 || every < time.Millisecond {
			return c, fmt.Errorf("mxbench: bad -peer workload %q (want e.g. 1000x100ms)", s)
		}
		c.peers = append(c.peers, PeerParams{
			Values: values, IntervalMs: int(every / time.Millisecond),
			OfferedPerS:  float64(values) * float64(time.Second) / float64(every),
			PublishingMs: *pubMs, QueueSize: 10, WarmupS: 2, DurationS: *peerDur, Batch: c.peerBatch,
		})
	}
	return c, nil
}

func runBench(ctx context.Context, args []string) int {
	cfg, err := parseConfig(args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	began := time.Now()
	logf := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "mxbench %6.1fs  %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, a...))
	}
	rep := &Report{Started: began.UTC(), Reps: cfg.reps, Machine: machineInfo()}
	root, err := os.MkdirTemp("", "mxbench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "mxbench:", err)
		return 1
	}
	if cfg.keep {
		logf("keeping %s", root)
	} else {
		defer os.RemoveAll(root)
	}

	bin, wbin := cfg.gatewayBin, ""
	if bin == "" {
		logf("building mxgateway and mxworker")
		if bin, wbin, err = buildBinaries(ctx, root); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	} else if w := filepath.Join(filepath.Dir(bin), "mxworker"); fileExists(w) {
		wbin = w
	}
	ce, err := startCeiling()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mxbench: ceiling:", err)
		return 1
	}
	defer ce.close()

	fail := func(section string, err error) {
		logf("%s: %v", section, err)
		rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %v", section, err))
	}

	// One gateway for the event, command and open figures: nothing in its
	// model moves by itself.
	if cfg.only["events"] || cfg.only["batch"] || cfg.only["fanout"] || cfg.only["invoke"] || cfg.only["open"] {
		model := filepath.Join(root, "bench.yaml")
		if err := writeModel(model, 1000, 0, 0); err != nil {
			fmt.Fprintln(os.Stderr, "mxbench:", err)
			return 1
		}
		// No spare workers here: the open figure is the cold start (a
		// process per open); the spare figure has its own gateway below.
		g, err := startGateway(ctx, bin, root, "main", "--sim-model="+model, "--spare-workers=0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		rep.Auth = g.auth
		logf("gateway at %s, authentication %s", g.grpcAddr, g.auth)
		if cfg.only["events"] {
			if rep.Events, err = runEvents(ctx, g, ce, cfg.events, cfg.reps, logf); err != nil {
				fail("events", err)
			}
		}
		if cfg.only["batch"] {
			if rep.Batch, err = runEvents(ctx, g, ce, cfg.batch, cfg.reps, logf); err != nil {
				fail("batch", err)
			}
		}
		if cfg.only["fanout"] {
			if rep.FanOut, err = runEvents(ctx, g, ce, cfg.fanout, cfg.reps, logf); err != nil {
				fail("fanout", err)
			}
		}
		if cfg.only["invoke"] {
			ep, err := startEchoProcess()
			if err != nil {
				logf("echo process: %v (its figures are left out)", err)
				ep = nil
			}
			if rep.Invoke, err = runInvoke(ctx, g, ce, ep, cfg.invoke, []string{"write", "add_item"}, cfg.reps, logf); err != nil {
				fail("invoke", err)
			}
			if ep != nil {
				ep.close()
			}
		}
		// Write once more without authentication, to show what the per-call
		// key check costs.
		if cfg.only["invoke"] && g.key != "" && ctx.Err() == nil {
			na, err := startGateway(ctx, bin, root, "noauth", "--sim-model="+model, "--auth=none")
			if err != nil {
				fail("invoke (auth off)", err)
			} else {
				if rep.InvokeNoAuth, err = runInvoke(ctx, na, ce, nil, cfg.invoke, []string{"write"}, cfg.reps, logf); err != nil {
					fail("invoke (auth off)", err)
				}
				if err := na.stop(); err != nil {
					logf("gateway noauth exit: %v", err)
				}
			}
		}
		if cfg.only["open"] {
			if rep.Open, err = runOpen(ctx, g, "mxgateway worker", bin, []string{"version"}, cfg.open, cfg.reps, logf); err != nil {
				fail("open", err)
			}
		}
		if err := g.stop(); err != nil {
			logf("gateway main exit: %v", err)
		}
		// Session open when a spare worker is ready (the default of the
		// simulator backend).
		if cfg.only["open"] && ctx.Err() == nil {
			g, err := startGateway(ctx, bin, root, "spare", "--sim-model="+model)
			if err != nil {
				fail("open (spare)", err)
			} else {
				p := cfg.open
				p.SpareReady = true
				if rep.OpenSpare, err = runOpen(ctx, g, "mxgateway worker", bin, []string{"version"}, p, cfg.reps, logf); err != nil {
					fail("open (spare)", err)
				}
				if err := g.stop(); err != nil {
					logf("gateway spare exit: %v", err)
				}
			}
		}
		// The same with the standalone mxworker binary as the worker
		// (--worker-exe): a smaller executable than the gateway itself.
		if cfg.only["open"] && wbin != "" && ctx.Err() == nil {
			g, err := startGateway(ctx, bin, root, "slim", "--sim-model="+model, "--worker-exe="+wbin, "--spare-workers=0")
			if err != nil {
				fail("open (mxworker)", err)
			} else {
				if rep.OpenSlim, err = runOpen(ctx, g, "mxworker", wbin, []string{"version"}, cfg.open, cfg.reps, logf); err != nil {
					fail("open (mxworker)", err)
				}
				if err := g.stop(); err != nil {
					logf("gateway slim exit: %v", err)
				}
			}
		}
	}

	// The storm made in the Galaxy runtime, on a gateway attached to a
	// runtime of our own (serve --sim-galaxy), with the same pacing as the
	// one-subscriber figure.
	if cfg.only["runtime-storm"] && ctx.Err() == nil {
		if rep.RuntimeStorm, err = runtimeStormSection(ctx, bin, root, ce, cfg.events, cfg.reps, logf); err != nil {
			fail("runtime-storm", err)
		}
		if rep.Auth == "" && rep.RuntimeStorm != nil {
			rep.Auth = rep.RuntimeStorm.Auth
		}
	}

	if cfg.only["memory"] && ctx.Err() == nil {
		if runtime.GOOS != "linux" {
			rep.Memory = &MemoryResult{Params: cfg.memory, Note: "skipped: RSS is read from /proc (Linux only)"}
		} else {
			rep.Memory, err = memorySection(ctx, bin, root, cfg.memory, logf)
			if err != nil {
				fail("memory", err)
			}
		}
	}

	if cfg.only["browse"] && ctx.Err() == nil {
		if rep.Browse, err = browseSection(ctx, bin, root, cfg.browse, cfg.reps, logf); err != nil {
			fail("browse", err)
		}
		if rep.Auth == "" && rep.Browse != nil {
			rep.Auth = rep.Browse.Auth
		}
	}

	if cfg.only["nats-fanout"] && ctx.Err() == nil {
		if rep.NATSFanOut, err = natsFanOutSection(ctx, bin, root, cfg.natsFanOut, cfg.reps, logf); err != nil {
			fail("nats-fanout", err)
		}
		if rep.Auth == "" && rep.NATSFanOut != nil {
			rep.Auth = rep.NATSFanOut.Auth
		}
	}

	if cfg.only["peer"] && ctx.Err() == nil {
		rep.Peer = peerSection(ctx, bin, root, cfg, logf, fail)
	}

	rep.Finished = time.Now().UTC()
	rep.DurationS = time.Since(began).Seconds()
	rep.Machine.LoadAvgEnd = loadAvg()
	rep.finish()
	printTable(os.Stdout, rep)
	if cfg.out != "" {
		if err := rep.write(cfg.out); err != nil {
			fmt.Fprintln(os.Stderr, "mxbench:", err)
			return 1
		}
		logf("wrote %s", cfg.out)
	}
	if len(rep.Errors) > 0 {
		return 1
	}
	return 0
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func memorySection(ctx context.Context, bin, root string, p MemoryParams, logf func(string, ...any)) (*MemoryResult, error) {
	model := filepath.Join(root, "memory.yaml")
	if err := writeModel(model, p.Items, 0, 0); err != nil {
		return nil, err
	}
	maxLevel := slices.Max(p.Levels)
	// No spare workers: every worker measured is a session's.
	g, err := startGateway(ctx, bin, root, "memory", "--sim-model="+model, "--spare-workers=0",
		"--max-sessions="+strconv.Itoa(maxLevel+2), "--max-sessions-per-key="+strconv.Itoa(maxLevel+2), "--lease=30m", "--log-level=warn")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := g.stop(); err != nil {
			logf("gateway memory exit: %v", err)
		}
	}()
	return runMemory(ctx, g, p, logf)
}

func peerSection(ctx context.Context, bin, root string, cfg config, logf func(string, ...any), fail func(string, error)) *PeerResult {
	res := &PeerResult{}
	dir, err := filepath.Abs(cfg.opcuaDir)
	if err != nil {
		res.Skipped = err.Error()
		return res
	}
	node, opcua, skip := peerReady(ctx, dir)
	res.Node, res.NodeOPCUA = node, opcua
	if skip != "" {
		res.Skipped = skip
		logf("peer skipped: %s", skip)
	}
	pki := filepath.Join(root, "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		res.Skipped = err.Error()
		return res
	}
	for i, p := range cfg.peers {
		fig := PeerFigure{Params: p}
		model := filepath.Join(root, fmt.Sprintf("peer%d.yaml", i))
		if err := writeModel(model, 0, p.Values, time.Duration(p.IntervalMs)*time.Millisecond); err != nil {
			fail("peer", err)
			break
		}
		g, err := startGateway(ctx, bin, root, fmt.Sprintf("peer%d", i), peerGatewayArgs(model, cfg.peerSpares)...)
		if err != nil {
			fail("peer", err)
			break
		}
		side, err := gatewayPeer(ctx, g, p, p.Batch, cfg.reps)
		if gerr := g.stop(); gerr != nil {
			logf("gateway peer%d exit: %v", i, gerr)
		}
		if err != nil {
			// A session that cannot keep up (the worker's event queue
			// overflows) is a measured outcome, not a driver failure.
			fig.MxGateway = &PeerSide{Note: "failed: " + err.Error()}
			logf("peer %dx%dms mxgateway: %v", p.Values, p.IntervalMs, err)
		} else {
			fig.MxGateway = side
			logf("peer %dx%dms mxgateway: %.0f updates/s, latency p50 %.1f ms", p.Values, p.IntervalMs, side.UpdatesPerS.Median, side.Latency.P50.Median)
		}
		if skip == "" && ctx.Err() == nil {
			side, err := opcuaPeer(ctx, dir, pki, p, cfg.reps, logf)
			if err != nil {
				// The peer failing is not mxgateway failing: report it as
				// skipped with the reason.
				fig.Skipped = "opcua: " + err.Error()
				logf("peer %dx%dms opcua: %v", p.Values, p.IntervalMs, err)
			} else {
				fig.OPCUA = side
				logf("peer %dx%dms opcua: %.0f updates/s, latency p50 %.1f ms", p.Values, p.IntervalMs, side.UpdatesPerS.Median, side.Latency.P50.Median)
			}
		} else if skip != "" {
			fig.Skipped = "opcua: " + skip
		}
		if fig.MxGateway != nil && fig.OPCUA != nil {
			fig.Ratio = ratio(fig.MxGateway.UpdatesPerS.Median, fig.OPCUA.UpdatesPerS.Median)
		}
		res.Figures = append(res.Figures, fig)
	}
	return res
}
