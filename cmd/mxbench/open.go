package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// OpenParams is the workload of the session-open figure.
type OpenParams struct {
	// Opens per repetition, one at a time; each session is closed before
	// the next opens (the close is not timed).
	Opens int `json:"opens_per_rep"`
	// SpareReady waits (untimed) before each open until the gateway has a
	// spare worker ready (mxgateway_spare_workers_ready >= 1): the open
	// then takes a pre-started worker instead of starting one.
	SpareReady bool `json:"spare_ready,omitempty"`
}

// OpenResult is session open (spawn + handshake + ready, as the SDK sees
// it) against a bare spawn and exit of the same binary (`mxgateway
// version`).
type OpenResult struct {
	Params OpenParams `json:"params"`
	// Worker is the worker executable: "mxgateway worker" (the default,
	// the gateway re-executes itself) or "mxworker" (--worker-exe).
	Worker   string        `json:"worker"`
	Gateway  LatencySpread `json:"gateway_open"`
	Spawn    LatencySpread `json:"bare_spawn_exit"`
	RatioP50 float64       `json:"ratio_p50"`
	// CloseP50 is the untimed close's median, for information.
	CloseP50 Spread `json:"close_p50_ms"`
	// IdleWorkerMiB is the RSS of one idle worker (nothing registered),
	// over 3 samples; Linux only.
	IdleWorkerMiB Spread `json:"idle_worker_rss_mib"`
}

// runOpen times session opens on g against spawning workerBin with
// spawnArgs (a command that exits at once).
func runOpen(ctx context.Context, g *gatewayProc, worker, workerBin string, spawnArgs []string, p OpenParams, reps int, logf func(string, ...any)) (*OpenResult, error) {
	c, err := g.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// Warm up: the first spawn pays for the page cache.
	if s, err := c.OpenSession(ctx, "mxbench-open"); err == nil {
		s.Close()
	} else {
		return nil, err
	}
	res := &OpenResult{Params: p, Worker: worker}
	var gw, sp []Latency
	var closes []float64
	for rep := range reps {
		opens := make([]time.Duration, p.Opens)
		cl := make([]time.Duration, p.Opens)
		for i := range p.Opens {
			if p.SpareReady {
				if err := g.waitSpare(ctx); err != nil {
					return nil, err
				}
			}
			start := time.Now()
			s, err := c.OpenSession(ctx, "mxbench-open")
			opens[i] = time.Since(start)
			if err != nil {
				return nil, fmt.Errorf("mxbench: open %d: %w", i, err)
			}
			start = time.Now()
			if err := s.Close(); err != nil {
				return nil, fmt.Errorf("mxbench: close %d: %w", i, err)
			}
			cl[i] = time.Since(start)
		}
		spawns := make([]time.Duration, p.Opens)
		for i := range p.Opens {
			start := time.Now()
			if err := exec.CommandContext(ctx, workerBin, spawnArgs...).Run(); err != nil {
				return nil, fmt.Errorf("mxbench: %s %v: %w", workerBin, spawnArgs, err)
			}
			spawns[i] = time.Since(start)
		}
		gw, sp = append(gw, latencyOf(opens)), append(sp, latencyOf(spawns))
		closes = append(closes, latencyOf(cl).P50)
		logf("session open (%s) rep %d: p50 %.2f ms p99 %.2f ms; bare spawn p50 %.2f ms", worker, rep+1, gw[rep].P50, gw[rep].P99, sp[rep].P50)
	}
	res.Gateway, res.Spawn = latencySpread(gw), latencySpread(sp)
	res.RatioP50 = ratio(res.Gateway.P50.Median, res.Spawn.P50.Median)
	res.CloseP50 = spreadOf(closes)

	s, err := c.OpenSession(ctx, "mxbench-idle")
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if err := sleepCtx(ctx, time.Second); err != nil {
		return nil, err
	}
	var idle []float64
	for i := range 3 {
		if i > 0 {
			if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
				return nil, err
			}
		}
		if info := s.Info(); info != nil {
			if r, err := rssBytes(int(info.GetWorkerPid())); err == nil {
				idle = append(idle, float64(r)/mib)
			}
		}
	}
	res.IdleWorkerMiB = spreadOf(idle)
	return res, nil
}

// waitSpare polls the gateway's metrics until a spare worker is ready.
func (g *gatewayProc) waitSpare(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		body, err := g.get(ctx, "/metrics")
		if err != nil {
			return err
		}
		for line := range strings.SplitSeq(body, "\n") {
			if v, ok := strings.CutPrefix(line, "mxgateway_spare_workers_ready "); ok {
				if n, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && n >= 1 {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return errors.New("mxbench: no spare worker ready within 30s")
		}
		if err := sleepCtx(ctx, 2*time.Millisecond); err != nil {
			return err
		}
	}
}

// get fetches path from the gateway's HTTP listener.
func (g *gatewayProc) get(ctx context.Context, path string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+g.httpAddr+path, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
