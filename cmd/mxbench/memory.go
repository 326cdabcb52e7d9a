package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mxgateway/mxgateway/client"
)

// MemoryParams is the memory workload.
type MemoryParams struct {
	// Levels are the session counts, reached one after the other on one
	// gateway (sessions stay open between levels).
	Levels []int `json:"levels"`
	// Items is the number of items each session adds and advises (one
	// SubscribeBulk; constant values).
	Items int `json:"advised_items_per_session"`
	// Samples is how many RSS readings are taken per level, SampleGapMs
	// apart, after SettleMs.
	Samples     int `json:"samples"`
	SampleGapMs int `json:"sample_gap_ms"`
	SettleMs    int `json:"settle_ms"`
	// BudgetS bounds the time spent opening sessions; levels not reached
	// within it are reported as not run.
	BudgetS int `json:"budget_s"`
}

// MemoryLevel is the RSS at one session count.
type MemoryLevel struct {
	Sessions int `json:"sessions"`
	Items    int `json:"advised_items_per_session"`
	// GatewayMiB is the gateway's RSS over the samples.
	GatewayMiB Spread `json:"gateway_rss_mib"`
	// WorkerMiB is the per-worker RSS over the workers (last sample).
	WorkerMiB Spread `json:"worker_rss_mib"`
	// WorkersTotalMiB is the sum over the workers (last sample).
	WorkersTotalMiB float64 `json:"workers_total_rss_mib"`
	// WorkersTotalPSSMiB is the sum of the workers' proportional set
	// sizes (last sample): the pages they share (the worker binary's text)
	// counted once, so what the workers cost the machine together.
	WorkersTotalPSSMiB float64 `json:"workers_total_pss_mib,omitempty"`
	Workers            int     `json:"workers"`
	// OpenSeconds is how long reaching this level took (opens + subscribes).
	OpenSeconds float64 `json:"open_seconds"`
}

// MemoryResult holds the memory figures.
type MemoryResult struct {
	Params MemoryParams `json:"params"`
	// Idle is one session with nothing registered.
	Idle   *MemoryLevel  `json:"idle"`
	Levels []MemoryLevel `json:"levels"`
	Note   string        `json:"note,omitempty"`
}

const mib = 1 << 20

// sampleMemory reads the gateway's and its workers' RSS.
func sampleMemory(ctx context.Context, g *gatewayProc, p MemoryParams, sessions, items int) (MemoryLevel, error) {
	lv := MemoryLevel{Sessions: sessions, Items: items}
	if err := sleepCtx(ctx, time.Duration(p.SettleMs)*time.Millisecond); err != nil {
		return lv, err
	}
	var gw []float64
	var workers []float64
	for i := range p.Samples {
		if i > 0 {
			if err := sleepCtx(ctx, time.Duration(p.SampleGapMs)*time.Millisecond); err != nil {
				return lv, err
			}
		}
		r, err := rssBytes(g.pid())
		if err != nil {
			return lv, fmt.Errorf("mxbench: gateway RSS: %w", err)
		}
		gw = append(gw, float64(r)/mib)
		workers = workers[:0]
		lv.WorkersTotalPSSMiB = 0
		for _, pid := range g.sessionWorkers() {
			if r, err := rssBytes(pid); err == nil {
				workers = append(workers, float64(r)/mib)
			}
			if p, err := pssBytes(pid); err == nil {
				lv.WorkersTotalPSSMiB += float64(p) / mib
			}
		}
	}
	lv.GatewayMiB = spreadOf(gw)
	lv.WorkerMiB = spreadOf(workers)
	lv.Workers = len(workers)
	for _, w := range workers {
		lv.WorkersTotalMiB += w
	}
	return lv, nil
}

// runMemory opens sessions level by level, each advising p.Items items,
// and samples RSS at each level. g must allow max(p.Levels)+1 sessions.
func runMemory(ctx context.Context, g *gatewayProc, p MemoryParams, logf func(string, ...any)) (*MemoryResult, error) {
	c, err := g.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	res := &MemoryResult{Params: p}

	idle, err := c.OpenSession(ctx, "mxbench-idle")
	if err != nil {
		return nil, err
	}
	lv, err := sampleMemory(ctx, g, p, 1, 0)
	idle.Close()
	if err != nil {
		return nil, err
	}
	res.Idle = &lv
	logf("memory idle: gateway %.1f MiB, worker %.1f MiB", lv.GatewayMiB.Median, lv.WorkerMiB.Median)

	refs := make([]string, p.Items)
	for i := range refs {
		refs[i] = memRef(i)
	}
	open := func() (*client.Session, error) {
		s, err := c.OpenSession(ctx, "mxbench-mem")
		if err != nil {
			return nil, err
		}
		mx := s.MX()
		h, err := mx.Register(ctx, "mxbench")
		if err == nil {
			var entries []client.BulkEntry
			entries, err = mx.SubscribeBulk(ctx, h, refs, false)
			for _, e := range entries {
				if err == nil {
					err = e.Err()
				}
			}
		}
		if err != nil {
			s.Close()
			return nil, err
		}
		return s, nil
	}

	var sessions []*client.Session
	defer func() {
		// Close in parallel: 256 sequential graceful closes take a while.
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for _, s := range sessions {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				s.Close()
			})
		}
		wg.Wait()
	}()
	deadline := time.Now().Add(time.Duration(p.BudgetS) * time.Second)
	levels := slices.Clone(p.Levels)
	slices.Sort(levels)
	start := time.Now()
	for _, want := range levels {
		var (
			mu   sync.Mutex
			errs []error
			wg   sync.WaitGroup
		)
		sem := make(chan struct{}, 4)
		for len(sessions) < want && time.Now().Before(deadline) {
			batch := min(want-len(sessions), 16)
			for range batch {
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					s, err := open()
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs = append(errs, err)
						return
					}
					sessions = append(sessions, s)
				})
			}
			wg.Wait()
			if len(errs) > 0 {
				break
			}
		}
		if len(errs) > 0 || len(sessions) < want {
			reason := "the time budget ran out"
			if len(errs) > 0 {
				reason = errs[0].Error()
			}
			res.Note = fmt.Sprintf("stopped at %d of %d sessions: %s", len(sessions), want, reason)
			if len(sessions) > 0 && (len(res.Levels) == 0 || res.Levels[len(res.Levels)-1].Sessions < len(sessions)) {
				lv, err := sampleMemory(ctx, g, p, len(sessions), p.Items)
				if err == nil {
					lv.OpenSeconds = time.Since(start).Seconds()
					res.Levels = append(res.Levels, lv)
				}
			}
			break
		}
		lv, err := sampleMemory(ctx, g, p, len(sessions), p.Items)
		if err != nil {
			return nil, err
		}
		lv.OpenSeconds = time.Since(start).Seconds()
		res.Levels = append(res.Levels, lv)
		logf("memory %d sessions x %d items: gateway %.1f MiB, worker median %.1f MiB (max %.1f), %d workers",
			want, p.Items, lv.GatewayMiB.Median, lv.WorkerMiB.Median, lv.WorkerMiB.Max, lv.Workers)
	}
	return res, nil
}
