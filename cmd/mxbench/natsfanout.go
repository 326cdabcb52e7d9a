package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mxgateway/mxgateway/client"
	"github.com/mxgateway/mxgateway/client/shared"
)

// NATSFanOutParams is the workload of the NATS fan-out figure: one advise
// of a reference, fanned out to Consumers consumers through NATS (the
// gateway's shared subscriptions, docs/nats.md) and, in the same
// repetitions, to Consumers StreamEvents subscribers of one session.
type NATSFanOutParams struct {
	// Consumers is the number of consumers on each side, each on its own
	// connection (a NATS connection with a lease, or a gRPC connection with
	// one event stream attached to the one session).
	Consumers int `json:"consumers"`
	// Values is how many storm values each repetition's throughput run
	// makes (Sim.Storm), in chunks of Chunk with at most Window values not
	// yet received by the slowest consumer.
	Values int `json:"storm_values"`
	Chunk  int `json:"storm_chunk"`
	Window int `json:"window"`
	// Writes is how many paced writes of Bench.W each repetition's latency
	// run makes, GapMs apart; every consumer times each from the value's
	// source time (the worker applying the write) to its receipt.
	Writes int `json:"latency_writes"`
	GapMs  int `json:"latency_gap_ms"`
}

// NATSFanOutResult is the NATS fan-out against the gRPC fan-out.
type NATSFanOutResult struct {
	Params NATSFanOutParams `json:"params"`
	// NATS and GRPC are deliveries/s summed over the consumers (messages
	// received, not values made: the NATS path may conflate a storm).
	NATS Spread `json:"nats_deliveries_per_s"`
	GRPC Spread `json:"grpc_deliveries_per_s"`
	// Ratio is median NATS / median gRPC deliveries/s.
	Ratio float64 `json:"ratio"`
	// NATSDelivered and GRPCDelivered are the share of values×consumers
	// that arrived as messages (1: nothing conflated).
	NATSDelivered Spread `json:"nats_delivered_share"`
	GRPCDelivered Spread `json:"grpc_delivered_share"`
	// NATSLatency and GRPCLatency are source time → receipt of the paced
	// writes, over every consumer's every delivery.
	NATSLatency LatencySpread `json:"nats_latency"`
	GRPCLatency LatencySpread `json:"grpc_latency"`
	// GRPCLimits are the gateway limits raised for the gRPC side.
	GRPCLimits string `json:"grpc_limits"`
	Auth       string `json:"authentication"`
}

// fanConsumer is one consumer of either side.
type fanConsumer struct {
	storm    atomic.Int64 // last Sim.StormValue received
	stormMsg atomic.Int64 // Sim.StormValue messages received
	lastW    atomic.Int64 // last Bench.W received
	mu       sync.Mutex
	lat      []float64 // ms, live Bench.W deliveries since reset
	err      atomic.Value
}

func (c *fanConsumer) onStorm(v client.Value) {
	n, err := v.AsInt64()
	if err != nil {
		return
	}
	c.stormMsg.Add(1)
	c.storm.Store(n)
}

func (c *fanConsumer) onW(v client.Value, src time.Time) {
	n, err := v.AsInt64()
	if err != nil {
		return
	}
	now := time.Now()
	c.mu.Lock()
	if !src.IsZero() {
		c.lat = append(c.lat, float64(now.Sub(src))/float64(time.Millisecond))
	}
	c.mu.Unlock()
	c.lastW.Store(n)
}

func (c *fanConsumer) takeLat() []float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.lat
	c.lat = nil
	return l
}

// fanSide is one side of the figure: its consumers and how to make values.
type fanSide struct {
	name      string
	consumers []*fanConsumer
	storm     func(ctx context.Context, n int) error
	writeW    func(ctx context.Context, v int32) error
	failed    func() error
}

func minOf(cs []*fanConsumer, f func(*fanConsumer) int64) int64 {
	m := int64(math.MaxInt64)
	for _, c := range cs {
		m = min(m, f(c))
	}
	return m
}

// waitAll polls until every consumer satisfies ok (bounded).
func (s *fanSide) waitAll(ctx context.Context, what string, d time.Duration, ok func(*fanConsumer) bool) error {
	deadline := time.Now().Add(d)
	for {
		all := true
		for _, c := range s.consumers {
			if !ok(c) {
				all = false
				break
			}
		}
		if all {
			return nil
		}
		if err := s.failed(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mxbench: %s: %s not reached by every consumer within %v", s.name, what, d)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(time.Millisecond)
	}
}

// throughput runs one storm of p.Values values and returns deliveries/s
// and the delivered share.
func (s *fanSide) throughput(ctx context.Context, p NATSFanOutParams) (float64, float64, error) {
	// A base every consumer agrees on: one value past what any has seen,
	// then all equal.
	prev := -minOf(s.consumers, func(c *fanConsumer) int64 { return -c.storm.Load() })
	if err := s.storm(ctx, 1); err != nil {
		return 0, 0, err
	}
	var base int64
	if err := s.waitAll(ctx, "the first storm value", 30*time.Second, func(c *fanConsumer) bool {
		return c.storm.Load() > prev
	}); err != nil {
		return 0, 0, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		lo, hi := minOf(s.consumers, func(c *fanConsumer) int64 { return c.storm.Load() }), -minOf(s.consumers, func(c *fanConsumer) int64 { return -c.storm.Load() })
		if lo == hi {
			base = lo
			break
		}
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("mxbench: %s: consumers did not settle on one storm value", s.name)
		}
		time.Sleep(time.Millisecond)
	}
	var msgs0 int64
	for _, c := range s.consumers {
		msgs0 += c.stormMsg.Load()
	}
	target := base + int64(p.Values)
	start := time.Now()
	triggered := int64(0)
	for triggered < int64(p.Values) {
		slowest := minOf(s.consumers, func(c *fanConsumer) int64 { return c.storm.Load() }) - base
		if triggered-slowest+int64(p.Chunk) > int64(p.Window) {
			if err := s.failed(); err != nil {
				return 0, 0, err
			}
			if time.Since(start) > 120*time.Second {
				return 0, 0, fmt.Errorf("mxbench: %s: storm stuck at %d of %d values", s.name, slowest, p.Values)
			}
			time.Sleep(200 * time.Microsecond)
			continue
		}
		n := min(int64(p.Chunk), int64(p.Values)-triggered)
		if err := s.storm(ctx, int(n)); err != nil {
			return 0, 0, err
		}
		triggered += n
	}
	if err := s.waitAll(ctx, "the last storm value", 120*time.Second, func(c *fanConsumer) bool { return c.storm.Load() >= target }); err != nil {
		return 0, 0, err
	}
	el := time.Since(start).Seconds()
	var msgs int64
	for _, c := range s.consumers {
		msgs += c.stormMsg.Load()
	}
	msgs -= msgs0
	return float64(msgs) / el, float64(msgs) / float64(p.Values*len(s.consumers)), nil
}

// latency runs p.Writes paced writes of Bench.W from *w on and returns the
// latency distribution of every delivery.
func (s *fanSide) latency(ctx context.Context, p NATSFanOutParams, w *int32) (Latency, error) {
	for _, c := range s.consumers {
		c.takeLat()
	}
	t := time.NewTicker(time.Duration(p.GapMs) * time.Millisecond)
	defer t.Stop()
	for range p.Writes {
		*w++
		if err := s.writeW(ctx, *w); err != nil {
			return Latency{}, err
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return Latency{}, ctx.Err()
		}
	}
	last := int64(*w)
	if err := s.waitAll(ctx, "the last write", 60*time.Second, func(c *fanConsumer) bool { return c.lastW.Load() >= last }); err != nil {
		return Latency{}, err
	}
	var all []float64
	for _, c := range s.consumers {
		all = append(all, c.takeLat()...)
	}
	return latencyOfMs(all), nil
}

// natsAddr is the NATS address the gateway printed.
func (g *gatewayProc) natsAddr() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	for line := range strings.SplitSeq(g.stdout.String(), "\n") {
		if a, ok := strings.CutPrefix(line, "mxgateway: NATS listening on "); ok {
			return strings.TrimSpace(a)
		}
	}
	return ""
}

// natsSide connects p.Consumers SDK shared clients, each leasing
// Sim.StormValue and Bench.W; a control client writes Sim.Storm and
// Bench.W through the shared session.
func natsSide(ctx context.Context, g *gatewayProc, p NATSFanOutParams, closers *[]func()) (*fanSide, error) {
	addr := g.natsAddr()
	if addr == "" {
		return nil, errors.New("mxbench: the gateway printed no NATS address")
	}
	url := "nats://" + addr
	ctl, err := shared.Dial(ctx, shared.Options{URL: url, APIKey: g.key, Consumer: "mxbench-ctl"})
	if err != nil {
		return nil, err
	}
	*closers = append(*closers, func() { ctl.Close() })
	s := &fanSide{name: "nats", failed: func() error { return nil }}
	var subs []*shared.Subscription
	for i := range p.Consumers {
		c := &fanConsumer{}
		sh, err := shared.Dial(ctx, shared.Options{URL: url, APIKey: g.key, Consumer: fmt.Sprintf("mxbench-%04d", i)})
		if err != nil {
			return nil, fmt.Errorf("mxbench: NATS consumer %d: %w", i, err)
		}
		*closers = append(*closers, func() { sh.Close() })
		lctx, lcancel := context.WithTimeout(ctx, 30*time.Second)
		sub, err := sh.Subscribe(lctx, []string{refStormValue, refWrite}, func(v shared.Value) {
			if v.Last {
				return
			}
			switch v.Reference {
			case refStormValue:
				c.onStorm(v.Value)
			case refWrite:
				c.onW(v.Value, v.SourceTime)
			}
		})
		lcancel()
		if err != nil {
			return nil, fmt.Errorf("mxbench: NATS consumer %d lease: %w", i, err)
		}
		subs = append(subs, sub)
		s.consumers = append(s.consumers, c)
	}
	s.failed = func() error {
		for i, sub := range subs {
			if err := sub.Err(); err != nil {
				return fmt.Errorf("mxbench: NATS consumer %d: lease renewal: %w", i, err)
			}
		}
		return nil
	}
	s.storm = func(ctx context.Context, n int) error {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err := ctl.Write(wctx, refStorm, client.MustValue(int32(n)))
		return err
	}
	s.writeW = func(ctx context.Context, v int32) error {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err := ctl.Write(wctx, refWrite, client.MustValue(v))
		return err
	}
	return s, nil
}

// grpcSide opens one session advising Sim.StormValue and Bench.W and
// attaches p.Consumers event streams to it, each on its own connection.
func grpcSide(ctx context.Context, g *gatewayProc, p NATSFanOutParams, rctx context.Context, wg *sync.WaitGroup, closers *[]func()) (*fanSide, error) {
	ctl, err := g.dial(ctx)
	if err != nil {
		return nil, err
	}
	*closers = append(*closers, func() { ctl.Close() })
	sess, err := ctl.OpenSession(ctx, "mxbench-nats-fanout")
	if err != nil {
		return nil, err
	}
	*closers = append(*closers, func() { sess.Close() })
	mx := sess.MX()
	h, err := mx.Register(ctx, "mxbench")
	if err != nil {
		return nil, err
	}
	handles := map[string]int32{}
	for _, ref := range []string{refStormValue, refWrite, refStorm} {
		hi, err := mx.AddItem(ctx, h, ref)
		if err != nil {
			return nil, err
		}
		handles[ref] = hi
		// Sim.Storm too: MXAccess writes only advised items.
		if err := mx.Advise(ctx, h, hi); err != nil {
			return nil, err
		}
	}
	hs, hw, hst := handles[refStormValue], handles[refWrite], handles[refStorm]
	s := &fanSide{name: "grpc"}
	errs := make([]atomic.Pointer[error], p.Consumers)
	for i := range p.Consumers {
		c := &fanConsumer{}
		cl, err := g.dial(ctx, client.WithoutSessionCleanup())
		if err != nil {
			return nil, fmt.Errorf("mxbench: gRPC consumer %d: %w", i, err)
		}
		*closers = append(*closers, func() { cl.Close() })
		rs, err := cl.AttachSession(sess.ID())
		if err != nil {
			return nil, err
		}
		wg.Go(func() {
			for ev, err := range rs.Events(rctx) {
				if err != nil {
					if rctx.Err() == nil {
						errs[i].Store(&err)
					}
					return
				}
				dc := ev.DataChange()
				if dc == nil {
					continue
				}
				switch dc.ItemHandle {
				case hs:
					c.onStorm(dc.Value)
				case hw:
					c.onW(dc.Value, dc.Timestamp)
				}
			}
		})
		s.consumers = append(s.consumers, c)
	}
	s.failed = func() error {
		for i := range errs {
			if e := errs[i].Load(); e != nil {
				return fmt.Errorf("mxbench: gRPC consumer %d stream ended: %w", i, *e)
			}
		}
		return nil
	}
	s.storm = func(ctx context.Context, n int) error { return mx.Write(ctx, h, hst, client.MustValue(int32(n)), 0) }
	s.writeW = func(ctx context.Context, v int32) error { return mx.Write(ctx, h, hw, client.MustValue(v), 0) }
	return s, nil
}

// natsFanOutLimits are the gateway flags the gRPC side needs for n
// subscribers on one session (max_subscribers is at most 1024).
func natsFanOutLimits(n int) []string {
	return []string{
		"--max-subscribers=" + strconv.Itoa(n),
		"--max-streams-per-key=" + strconv.Itoa(n+16),
		"--max-connections=" + strconv.Itoa(n+64),
	}
}

// natsFanOutSection starts a gateway with the bench model and the raised
// limits, connects both sides and measures reps alternating repetitions.
func natsFanOutSection(ctx context.Context, bin, root string, p NATSFanOutParams, reps int, logf func(string, ...any)) (*NATSFanOutResult, error) {
	if p.Consumers < 1 || p.Consumers > 1024 {
		return nil, fmt.Errorf("mxbench: -nats-fanout-consumers %d: want 1..1024 (the gateway's max_subscribers range)", p.Consumers)
	}
	model := filepath.Join(root, "natsfanout.yaml")
	if err := writeModel(model, 0, 0, 0); err != nil {
		return nil, err
	}
	limits := natsFanOutLimits(p.Consumers)
	args := append([]string{"--sim-model=" + model, "--spare-workers=0", "--log-level=warn"}, limits...)
	g, err := startGateway(ctx, bin, root, "natsfanout", args...)
	if err != nil {
		return nil, err
	}
	var closers []func()
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
		wg.Wait()
		if err := g.stop(); err != nil {
			logf("gateway natsfanout exit: %v", err)
		}
	}()
	res := &NATSFanOutResult{Params: p, GRPCLimits: strings.Join(limits, " "), Auth: g.auth}
	t0 := time.Now()
	ns, err := natsSide(ctx, g, p, &closers)
	if err != nil {
		return nil, err
	}
	logf("nats fan-out: %d NATS consumers leased in %.1fs", p.Consumers, time.Since(t0).Seconds())
	t0 = time.Now()
	gs, err := grpcSide(ctx, g, p, rctx, &wg, &closers)
	if err != nil {
		return nil, err
	}
	logf("nats fan-out: %d gRPC subscribers attached in %.1fs", p.Consumers, time.Since(t0).Seconds())
	var nr, gr, nd, gd []float64
	var nl, gl []Latency
	var nw, gw int32
	for i := range reps {
		for _, side := range []*fanSide{ns, gs} {
			rate, share, err := side.throughput(ctx, p)
			if err != nil {
				return nil, err
			}
			w := &nw
			if side == gs {
				w = &gw
			}
			lat, err := side.latency(ctx, p, w)
			if err != nil {
				return nil, err
			}
			if side == ns {
				nr, nd, nl = append(nr, rate), append(nd, share), append(nl, lat)
			} else {
				gr, gd, gl = append(gr, rate), append(gd, share), append(gl, lat)
			}
			logf("nats fan-out rep %d %s: %.0f deliveries/s (%.0f%% of values), latency p50 %.2f ms p99 %.2f ms",
				i+1, side.name, rate, 100*share, lat.P50, lat.P99)
		}
	}
	res.NATS, res.GRPC = spreadOf(nr), spreadOf(gr)
	res.NATSDelivered, res.GRPCDelivered = spreadOf(nd), spreadOf(gd)
	res.NATSLatency, res.GRPCLatency = latencySpread(nl), latencySpread(gl)
	res.Ratio = ratio(res.NATS.Median, res.GRPC.Median)
	return res, nil
}

// natsFanOutRows are the table rows of the figure.
func natsFanOutRows(r *NATSFanOutResult) []row {
	if r == nil {
		return nil
	}
	p := r.Params
	pct := func(v float64) string { return fmt.Sprintf("%.0f%%", 100*v) }
	return []row{
		{"NATS fan-out deliveries/s", fmt.Sprintf("1 advise -> %d consumers x %d storm values; ref: %d StreamEvents subscribers of 1 session", p.Consumers, p.Values, p.Consumers),
			spreadStr(r.NATS, fmtRate), spreadStr(r.GRPC, fmtRate), fmt.Sprintf("%.2f", r.Ratio), ""},
		{"  share of values delivered", "1 = nothing conflated", spreadStr(r.NATSDelivered, pct), spreadStr(r.GRPCDelivered, pct), "", ""},
		{"NATS fan-out latency p50 ms", fmt.Sprintf("%d writes %d ms apart, source time -> receipt, every consumer", p.Writes, p.GapMs),
			spreadStr(r.NATSLatency.P50, fmtMs), spreadStr(r.GRPCLatency.P50, fmtMs), fmt.Sprintf("%.2f", ratio(r.NATSLatency.P50.Median, r.GRPCLatency.P50.Median)), ""},
		{"NATS fan-out latency p99 ms", "", spreadStr(r.NATSLatency.P99, fmtMs), spreadStr(r.GRPCLatency.P99, fmtMs), fmt.Sprintf("%.2f", ratio(r.NATSLatency.P99.Median, r.GRPCLatency.P99.Median)), ""},
		{noteFigure, "NATS fan-out: the gRPC side runs with " + r.GRPCLimits + " (defaults: 8 subscribers per session, 64 streams per key, 256 connections)", "", "", "", ""},
	}
}
