package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mxgateway/mxgateway/client"
)

func benchCmd() *command {
	cmd := &command{name: "bench", summary: "measure read round trips against the gateway", usage: "[REF] [--calls N] [--sessions S] [--json]",
		help: `Measures the gateway from where mxctl runs: it opens S sessions, subscribes
each to REF (default TIC101.PV) so that every read is answered from the
session's cache, then makes N ReadBulk calls in total, S at a time (one per
session), and prints the rate and the latency percentiles. Each call is a
full round trip: client → gateway → worker → gateway → client. A failed
call makes the exit code 1.

This is a quick check of one gateway and the network to it; "make bench"
(cmd/mxbench) is the benchmark suite, with ceilings measured in the same
run.

Examples:
  mxctl bench
  mxctl bench Tank1.Level --calls 200 --sessions 2 --json`}
	cmd.run = func(ctx context.Context, c *cli, args []string) int {
		var conn connFlags
		fs := c.flagSet(cmd, &conn)
		calls := fs.Int("calls", 1000, "ReadBulk calls in total")
		sessions := fs.Int("sessions", 4, "sessions, each making calls one at a time")
		asJSON := fs.Bool("json", false, "print JSON")
		pos, code, ok := c.parse(cmd, fs, args)
		if !ok {
			return code
		}
		ref := "TIC101.PV"
		switch {
		case len(pos) == 1:
			ref = pos[0]
		case len(pos) > 1:
			return c.fail(cmd.name, "", usageError("bench takes at most one reference"))
		}
		if *calls < 1 || *sessions < 1 || *sessions > 64 || *sessions > *calls {
			return c.fail(cmd.name, "", usageError("need --calls >= 1 and 1 <= --sessions <= 64, at most --calls"))
		}
		cl, addr, err := c.dial(ctx, &conn)
		if err != nil {
			return c.fail(cmd.name, addr, err)
		}
		defer cl.Close()
		ss := make([]*client.Session, *sessions)
		for i := range ss {
			s, err := cl.OpenSession(ctx, "mxctl bench")
			if err != nil {
				return c.fail(cmd.name, addr, err)
			}
			ss[i] = s
			if err := warmUp(ctx, s, ref); err != nil {
				return c.fail(cmd.name, addr, err)
			}
		}
		lat := make([][]time.Duration, len(ss))
		errs := make([]error, len(ss))
		failed := make([]int, len(ss))
		start := time.Now()
		var wg sync.WaitGroup
		for i, s := range ss {
			n := *calls / len(ss)
			if i < *calls%len(ss) {
				n++
			}
			wg.Go(func() {
				lat[i] = make([]time.Duration, 0, n)
				for range n {
					t0 := time.Now()
					res, err := s.Read(ctx, ref)
					if err == nil {
						err = res[0].Err()
					}
					if err != nil {
						failed[i]++
						if errs[i] == nil {
							errs[i] = err
						}
						if ctx.Err() != nil {
							return
						}
						continue
					}
					lat[i] = append(lat[i], time.Since(t0))
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		all := slices.Concat(lat...)
		slices.Sort(all)
		nFailed := 0
		for _, f := range failed {
			nFailed += f
		}
		pct := func(p float64) time.Duration {
			if len(all) == 0 {
				return 0
			}
			return all[min(len(all)-1, int(p*float64(len(all))))]
		}
		rate := float64(len(all)) / elapsed.Seconds()
		if *asJSON {
			writeJSON(c.stdout, map[string]any{"reference": ref, "calls": len(all), "failed": nFailed, "sessions": len(ss),
				"seconds": elapsed.Seconds(), "calls_per_second": rate,
				"p50_ms": ms(pct(0.50)), "p90_ms": ms(pct(0.90)), "p99_ms": ms(pct(0.99)), "max_ms": ms(pct(1))})
		} else {
			fmt.Fprintf(c.stdout, "%d ReadBulk calls of %s over %d sessions in %s: %.0f calls/s\n", len(all), ref, len(ss),
				elapsed.Round(time.Millisecond), rate)
			fmt.Fprintf(c.stdout, "latency p50 %s, p90 %s, p99 %s, max %s\n", pct(0.50).Round(time.Microsecond),
				pct(0.90).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond))
		}
		if nFailed > 0 {
			first := errors.Join(errs...)
			for _, e := range errs {
				if e != nil {
					first = e
					break
				}
			}
			return c.fail(cmd.name, addr, fmt.Errorf("%d of %d calls failed, for example: %w", nFailed, *calls, first))
		}
		return exitOK
	}
	return cmd
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// warmUp subscribes s to ref and waits until a read is served from the
// session's cache (the first value has arrived).
func warmUp(ctx context.Context, s *client.Session, ref string) error {
	entries, err := s.Subscribe(ctx, ref)
	if err != nil {
		return err
	}
	if err := entries[0].Err(); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := s.Read(ctx, ref)
		if err != nil {
			return err
		}
		if err := res[0].Err(); err != nil {
			return err
		}
		if res[0].WasCached {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no cached value after 30s", ref)
		}
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
