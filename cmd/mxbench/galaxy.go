package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/protobuf/proto"

	galaxyv1 "github.com/mxgateway/mxgateway/api/mxgateway/galaxy/v1"
	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/galaxy/runtime"
	"github.com/mxgateway/mxgateway/internal/galaxy/wire"
)

// galaxyAdminTimeout bounds one admin request to the runtime.
const galaxyAdminTimeout = 10 * time.Second

// RuntimeStormResult is the storm made in the Galaxy runtime (`mxgateway
// galaxy`), delivered runtime → worker → gateway → SDK, beside the
// worker-local Sim.Storm of the same gateway and the ceiling, all in the
// same repetitions.
type RuntimeStormResult struct {
	Params EventParams `json:"params"`
	// Runtime is events/s of the runtime storm; Local of Sim.Storm (made
	// in the worker) on the same gateway; Ceiling the bare server sending
	// the last runtime storm event.
	Runtime Spread `json:"runtime_events_per_s"`
	Local   Spread `json:"worker_local_events_per_s"`
	Ceiling Spread `json:"ceiling_events_per_s"`
	// Ratio is median runtime / median ceiling; RatioLocal median runtime
	// / median worker-local: what the runtime hop costs.
	Ratio      float64 `json:"ratio"`
	RatioLocal float64 `json:"ratio_runtime_to_worker_local"`
	EventBytes int     `json:"event_message_bytes"`
	// CPU is what each process spent per delivered event (Linux only).
	CPU *RuntimeStormCPU `json:"cpu_us_per_event,omitempty"`
	// Auth is the gateway's authentication.
	Auth string `json:"authentication"`
}

// RuntimeStormCPU is user+system CPU time per delivered event, in µs.
type RuntimeStormCPU struct {
	// Runtime, Gateway, Workers and Driver are the processes of the
	// runtime storm: the Galaxy runtime, the gateway, its workers and the
	// driver (the SDK reader).
	Runtime Spread `json:"runtime"`
	Gateway Spread `json:"gateway"`
	Workers Spread `json:"workers"`
	Driver  Spread `json:"driver"`
	// Local is gateway + workers + driver of the worker-local storm.
	Local Spread `json:"worker_local_total"`
	// Ratio is the median runtime storm total over median Local.
	Ratio float64 `json:"ratio"`
}

// galaxyProc is one `mxgateway galaxy --listen DIR` process started by the
// driver, with an admin connection kept open for the storm requests.
type galaxyProc struct {
	dir     string
	cmd     *exec.Cmd
	logFile *os.File
	exited  chan struct{}
	waitErr error
	admin   *galaxyAdmin
}

// startGalaxyRuntime starts `bin galaxy` on root/name/runtime serving
// model, waits until it listens and opens the admin connection.
func startGalaxyRuntime(ctx context.Context, bin, root, name, model string) (*galaxyProc, error) {
	base := filepath.Join(root, name)
	r := &galaxyProc{dir: filepath.Join(base, "runtime"), exited: make(chan struct{})}
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return nil, err
	}
	r.cmd = exec.Command(bin, "galaxy", "--listen="+r.dir, "--sim-model="+model, "--log-level=warn")
	lf, err := os.Create(filepath.Join(base, "runtime.log"))
	if err != nil {
		return nil, err
	}
	r.logFile = lf
	r.cmd.Stderr = lf
	stdout, err := r.cmd.StdoutPipe()
	if err != nil {
		lf.Close()
		return nil, err
	}
	if err := r.cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("mxbench: start %s galaxy: %w", bin, err)
	}
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "galaxy runtime listening on ") {
				close(listening)
				break
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		r.waitErr = r.cmd.Wait()
		close(r.exited)
	}()
	select {
	case <-listening:
	case <-r.exited:
		lf.Close()
		return nil, fmt.Errorf("mxbench: galaxy runtime exited before listening (%v); log: %s", r.waitErr, lf.Name())
	case <-time.After(gatewayStartTimeout):
		r.stop()
		return nil, fmt.Errorf("mxbench: galaxy runtime not listening within %v; log: %s", gatewayStartTimeout, lf.Name())
	case <-ctx.Done():
		r.stop()
		return nil, ctx.Err()
	}
	if r.admin, err = dialGalaxyAdmin(ctx, r.dir); err != nil {
		r.stop()
		return nil, err
	}
	return r, nil
}

// pid is the runtime's process id.
func (r *galaxyProc) pid() int { return r.cmd.Process.Pid }

// stop closes the admin connection, sends SIGTERM and waits for the exit
// (killing after gatewayStopTimeout).
func (r *galaxyProc) stop() error {
	if r.admin != nil {
		r.admin.close()
	}
	select {
	case <-r.exited:
	default:
		if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			r.cmd.Process.Kill()
		}
		select {
		case <-r.exited:
		case <-time.After(gatewayStopTimeout):
			r.cmd.Process.Kill()
			<-r.exited
		}
	}
	r.logFile.Close()
	return r.waitErr
}

// galaxyAdmin is one admin connection to a runtime (the request
// `mxgateway galaxy admin` sends, kept open for many requests).
type galaxyAdmin struct{ a *wire.Admin }

// dialGalaxyAdmin connects to the runtime serving dir with its key file.
func dialGalaxyAdmin(ctx context.Context, dir string) (*galaxyAdmin, error) {
	dctx, cancel := context.WithTimeout(ctx, galaxyAdminTimeout)
	defer cancel()
	a, err := wire.DialAdmin(dctx, dir, "mxbench")
	if err != nil {
		return nil, fmt.Errorf("mxbench: dial galaxy runtime: %w", err)
	}
	return &galaxyAdmin{a: a}, nil
}

// errGalaxyAdmin is an admin request the runtime refused.
var errGalaxyAdmin = errors.New("mxbench: galaxy runtime refused the request")

// do sends one admin request and waits for its reply.
func (a *galaxyAdmin) do(req *galaxyv1.AdminRequest) (*galaxyv1.AdminReply, error) {
	ctx, cancel := context.WithTimeout(context.Background(), galaxyAdminTimeout)
	defer cancel()
	rep, err := a.a.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	if rep.GetError() != "" {
		return rep, fmt.Errorf("%w: %s %s: %s", errGalaxyAdmin, req.GetAction(), req.GetTarget(), rep.GetError())
	}
	return rep, nil
}

// storm asks the runtime to count the shared MxInteger ref up n times.
func (a *galaxyAdmin) storm(ref string, n int) error {
	// The count travels in duration_ms (as `galaxy admin storm --count`).
	_, err := a.do(&galaxyv1.AdminRequest{Action: runtime.ActionStorm, Target: ref, DurationMs: int64(n)})
	return err
}

func (a *galaxyAdmin) close() { a.a.Close() }

// runtimeStormSection starts a runtime serving the bench model and a
// gateway attached to it (serve --sim-galaxy), then measures the runtime
// storm figure.
func runtimeStormSection(ctx context.Context, bin, root string, ce *ceiling, p EventParams, reps int, logf func(string, ...any)) (*RuntimeStormResult, error) {
	model := filepath.Join(root, "runtime.yaml")
	if err := writeModel(model, 0, 0, 0); err != nil {
		return nil, err
	}
	rt, err := startGalaxyRuntime(ctx, bin, root, "runtime", model)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := rt.stop(); err != nil {
			logf("galaxy runtime exit: %v", err)
		}
	}()
	g, err := startGateway(ctx, bin, root, "runtime-gw", "--sim-galaxy="+rt.dir, "--spare-workers=0")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := g.stop(); err != nil {
			logf("gateway runtime-gw exit: %v", err)
		}
	}()
	logf("galaxy runtime at %s (pid %d), gateway at %s", rt.dir, rt.pid(), g.grpcAddr)
	res, err := runRuntimeStorm(ctx, g, rt.admin, rt.pid(), ce, p, reps, logf)
	if res != nil {
		res.Auth = g.auth
	}
	return res, err
}

// runRuntimeStorm measures reps repetitions of the runtime storm, the
// worker-local storm on the same gateway and the ceiling.
func runRuntimeStorm(ctx context.Context, g *gatewayProc, admin *galaxyAdmin, rtPid int, ce *ceiling, p EventParams, reps int, logf func(string, ...any)) (*RuntimeStormResult, error) {
	var rt, lo, cl []float64
	var cr, cg, cw, cd, clo []float64
	us := func(d time.Duration) float64 {
		return float64(d) / float64(time.Microsecond) / float64(p.Events*p.Subscribers)
	}
	res := &RuntimeStormResult{Params: p}
	for i := range reps {
		var cpu, lcpu stormCPU
		rcpu0 := cpuTime(strconv.Itoa(rtPid))
		rate, tpl, err := gatewayStormFrom(ctx, g, p, &cpu, admin)
		rcpu := cpuTime(strconv.Itoa(rtPid)) - rcpu0
		if err != nil {
			return nil, fmt.Errorf("runtime storm: %w", err)
		}
		if tpl == nil {
			return nil, errNoTemplate
		}
		rt = append(rt, rate)
		res.EventBytes = proto.Size(&mxgatewayv1.StreamEventsResponse{Event: tpl})
		lrate, _, err := gatewayStormFrom(ctx, g, p, &lcpu, nil)
		if err != nil {
			return nil, fmt.Errorf("worker-local storm: %w", err)
		}
		lo = append(lo, lrate)
		crate, _, err := ceilingStream(ctx, ce, tpl, p)
		if err != nil {
			return nil, err
		}
		cl = append(cl, crate)
		if cpu.gateway > 0 && lcpu.gateway > 0 && rcpu > 0 {
			cr, cg, cw, cd = append(cr, us(rcpu)), append(cg, us(cpu.gateway)), append(cw, us(cpu.workers)), append(cd, us(cpu.driver))
			clo = append(clo, us(lcpu.gateway+lcpu.workers+lcpu.driver))
		}
		logf("runtime storm rep %d: runtime %.0f/s, worker-local %.0f/s, ceiling %.0f/s", i+1, rate, lrate, crate)
	}
	res.Runtime, res.Local, res.Ceiling = spreadOf(rt), spreadOf(lo), spreadOf(cl)
	res.Ratio = ratio(res.Runtime.Median, res.Ceiling.Median)
	res.RatioLocal = ratio(res.Runtime.Median, res.Local.Median)
	if len(cr) > 0 {
		c := &RuntimeStormCPU{Runtime: spreadOf(cr), Gateway: spreadOf(cg), Workers: spreadOf(cw), Driver: spreadOf(cd), Local: spreadOf(clo)}
		c.Ratio = ratio(c.Runtime.Median+c.Gateway.Median+c.Workers.Median+c.Driver.Median, c.Local.Median)
		res.CPU = c
	}
	return res, nil
}
