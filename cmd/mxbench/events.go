package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/client"
)

// EventParams is the workload of an events/s figure.
type EventParams struct {
	// Subscribers is the number of event streams (each on its own
	// connection) on the one session.
	Subscribers int `json:"subscribers"`
	// Events is how many storm events each subscriber receives per
	// repetition.
	Events int `json:"events_per_subscriber"`
	// Chunk is the Sim.Storm value written per trigger; Window bounds the
	// events triggered but not yet received by the slowest subscriber (the
	// worker's event queue holds 10,000 and the gateway's subscriber queue
	// 4,096 by default: a storm without a window would overflow them).
	Chunk  int `json:"storm_chunk"`
	Window int `json:"window"`
	// Batch is the readers' max_batch (client.Batch; 0: one event per
	// message). The ceiling then sends batches of the same size.
	Batch int `json:"max_batch,omitempty"`
}

// EventsResult is one events/s figure against its ceiling.
type EventsResult struct {
	Params EventParams `json:"params"`
	// Gateway and Ceiling are aggregate events/s (all subscribers).
	Gateway Spread `json:"gateway_events_per_s"`
	Ceiling Spread `json:"ceiling_events_per_s"`
	// Ratio is median gateway / median ceiling.
	Ratio float64 `json:"ratio"`
	// EventBytes is the encoded size of one StreamEventsResponse.
	EventBytes int `json:"event_message_bytes"`
	// CPU is what each process spent per event (Linux only), a figure
	// that other load on the machine disturbs far less than a rate.
	CPU *EventsCPU `json:"cpu_us_per_event,omitempty"`
}

// EventsCPU is user+system CPU time per delivered event, in µs.
type EventsCPU struct {
	// Gateway is the gateway process; Workers its children (the
	// session's worker).
	Gateway Spread `json:"gateway"`
	Workers Spread `json:"workers"`
	// Driver is the driver process during the gateway repetitions (the
	// SDK readers); Ceiling the driver during the ceiling repetitions
	// (the bare server and the same SDK readers).
	Driver  Spread `json:"driver_gateway_side"`
	Ceiling Spread `json:"driver_ceiling_side"`
	// Ratio is median (gateway + workers + driver) over median ceiling:
	// how many times the ceiling's CPU an event costs end to end.
	Ratio float64 `json:"ratio"`
}

// stormCPU is the CPU time of one gateway repetition.
type stormCPU struct{ gateway, workers, driver time.Duration }

// eventReader counts the storm events one subscriber receives.
type eventReader struct {
	count   atomic.Int64
	target  atomic.Int64  // done is closed when count reaches it (0: not armed)
	done    chan struct{} // the target was reached
	stopped chan struct{} // the iteration ended
	doneAt  atomic.Int64  // unix nanos
	last    *mxgatewayv1.Event
	err     error // why the iteration ended, valid after stopped
}

func newEventReader() *eventReader {
	return &eventReader{done: make(chan struct{}), stopped: make(chan struct{})}
}

// read consumes one Events iterator, counting data changes of item handle
// h; the event that reaches the target is kept in last. kick is called
// every 256 events.
func (r *eventReader) read(ctx context.Context, s *client.Session, h int32, batch int, kick func()) {
	defer close(r.stopped)
	for ev, err := range s.Events(ctx, client.Batch(batch, 0)) {
		if err != nil {
			r.err = err
			return
		}
		dc := ev.DataChange()
		if dc == nil || dc.ItemHandle != h {
			continue
		}
		n := r.count.Add(1)
		if t := r.target.Load(); t > 0 && n == t {
			r.last = ev.Proto()
			r.doneAt.Store(time.Now().UnixNano())
			close(r.done)
		}
		if n%256 == 0 {
			kick()
		}
	}
	r.err = ctx.Err()
}

// failed reports a reader whose iteration ended before its target.
func failed(rs []*eventReader) error {
	for i, r := range rs {
		select {
		case <-r.stopped:
			select {
			case <-r.done:
				continue
			default:
			}
			return fmt.Errorf("mxbench: subscriber %d stopped after %d events: %v", i, r.count.Load(), r.err)
		default:
		}
	}
	return nil
}

// awaitReaders waits until every reader reached its target and returns the
// latest time one did.
func awaitReaders(ctx context.Context, rs []*eventReader, start time.Time) (time.Time, error) {
	end := start
	timeout := time.After(120 * time.Second)
	for i, r := range rs {
		select {
		case <-r.done:
		case <-r.stopped:
			select {
			case <-r.done:
			default:
				return end, fmt.Errorf("mxbench: subscriber %d stopped after %d events: %v", i, r.count.Load(), r.err)
			}
		case <-timeout:
			return end, fmt.Errorf("mxbench: subscriber %d has %d of %d events after 120s", i, r.count.Load(), r.target.Load())
		case <-ctx.Done():
			return end, ctx.Err()
		}
		if t := time.Unix(0, r.doneAt.Load()); t.After(end) {
			end = t
		}
	}
	return end, nil
}

// gatewayStorm runs one repetition against the gateway: one session,
// p.Subscribers streams (each on its own connection), p.Events storm events
// each. It returns aggregate events/s and the last storm event received
// (the ceiling's template).
func gatewayStorm(ctx context.Context, g *gatewayProc, p EventParams) (float64, *mxgatewayv1.Event, stormCPU, error) {
	var cpu stormCPU
	rate, last, err := gatewayStormCPU(ctx, g, p, &cpu)
	return rate, last, cpu, err
}

func gatewayStormCPU(ctx context.Context, g *gatewayProc, p EventParams, cpu *stormCPU) (float64, *mxgatewayv1.Event, error) {
	ctl, err := g.dial(ctx)
	if err != nil {
		return 0, nil, err
	}
	defer ctl.Close()
	s, err := ctl.OpenSession(ctx, "mxbench-events")
	if err != nil {
		return 0, nil, err
	}
	defer s.Close()
	mx := s.MX()
	h, err := mx.Register(ctx, "mxbench")
	if err != nil {
		return 0, nil, err
	}
	hv, err := mx.AddItem(ctx, h, refStormValue)
	if err != nil {
		return 0, nil, err
	}
	hs, err := mx.AddItem(ctx, h, refStorm)
	if err != nil {
		return 0, nil, err
	}
	for _, it := range []int32{hv, hs} {
		if err := mx.Advise(ctx, h, it); err != nil {
			return 0, nil, err
		}
	}

	rctx, cancel := context.WithCancel(ctx)
	kick := make(chan struct{}, 1)
	kickf := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	readers := make([]*eventReader, p.Subscribers)
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel (deferred later, so it runs first)
	defer cancel()
	for i := range readers {
		c, err := g.dial(ctx, client.WithoutSessionCleanup())
		if err != nil {
			return 0, nil, err
		}
		defer c.Close()
		rs, err := c.AttachSession(s.ID())
		if err != nil {
			return 0, nil, err
		}
		r := newEventReader()
		readers[i] = r
		wg.Go(func() { r.read(rctx, rs, hv, p.Batch, kickf) })
	}

	storm := func(n int) error {
		return mx.Write(ctx, h, hs, client.MustValue(int32(n)), 0)
	}
	minCount := func() int64 {
		m := readers[0].count.Load()
		for _, r := range readers[1:] {
			m = min(m, r.count.Load())
		}
		return m
	}
	// Every reader must have seen Advise's first value and one storm event
	// before the clock starts: then all streams are attached.
	if err := storm(1); err != nil {
		return 0, nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for minCount() < 2 {
		if err := failed(readers); err != nil {
			return 0, nil, err
		}
		if time.Now().After(deadline) {
			return 0, nil, errors.New("mxbench: subscribers did not attach within 30s")
		}
		time.Sleep(time.Millisecond)
	}
	// All readers have exactly 2 now (nothing else moves Sim.StormValue).
	const base = 2
	for _, r := range readers {
		r.target.Store(base + int64(p.Events))
	}

	gpid := 0
	if g.cmd != nil && g.cmd.Process != nil {
		gpid = g.cmd.Process.Pid
	}
	workers := childrenOf(gpid)
	cpu0 := stormCPU{cpuTime(strconv.Itoa(gpid)), cpuOf(workers), cpuTime("self")}
	start := time.Now()
	triggered, total := int64(0), int64(p.Events)
	for triggered < total {
		inflight := triggered - (minCount() - base)
		if inflight+int64(p.Chunk) > int64(p.Window) {
			select {
			case <-kick:
			case <-time.After(2 * time.Millisecond):
			case <-ctx.Done():
				return 0, nil, ctx.Err()
			}
			if err := failed(readers); err != nil {
				return 0, nil, err
			}
			continue
		}
		n := min(int64(p.Chunk), total-triggered)
		if err := storm(int(n)); err != nil {
			return 0, nil, err
		}
		triggered += n
	}
	end, err := awaitReaders(ctx, readers, start)
	if err != nil {
		return 0, nil, err
	}
	if gpid != 0 {
		*cpu = stormCPU{cpuTime(strconv.Itoa(gpid)) - cpu0.gateway, cpuOf(workers) - cpu0.workers, cpuTime("self") - cpu0.driver}
	}
	return float64(p.Events*p.Subscribers) / end.Sub(start).Seconds(), readers[0].last, nil
}

// ceilingStream runs one repetition against the ceiling: p.Subscribers
// connections each receive p.Events copies of template through the SDK.
func ceilingStream(ctx context.Context, ce *ceiling, template *mxgatewayv1.Event, p EventParams) (float64, time.Duration, error) {
	before := cpuTime("self")
	rate, err := ceilingStreamRun(ctx, ce, template, p)
	return rate, cpuTime("self") - before, err
}

func ceilingStreamRun(ctx context.Context, ce *ceiling, template *mxgatewayv1.Event, p EventParams) (float64, error) {
	ce.prepareStreams(template, p.Events)
	rctx, cancel := context.WithCancel(ctx)
	readers := make([]*eventReader, p.Subscribers)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	h := template.GetDataChange().GetItemHandle()
	for i := range readers {
		c, err := client.Dial(ctx, ce.addr, client.WithInsecure(), client.WithoutSessionCleanup(), client.WithUserAgent("mxbench"))
		if err != nil {
			return 0, err
		}
		defer c.Close()
		s, err := c.AttachSession(template.GetSessionId())
		if err != nil {
			return 0, err
		}
		r := newEventReader()
		r.target.Store(int64(p.Events))
		readers[i] = r
		wg.Go(func() { r.read(rctx, s, h, p.Batch, func() {}) })
	}
	if err := ce.waitStreams(ctx, p.Subscribers); err != nil {
		return 0, err
	}
	start := time.Now()
	ce.release()
	end, err := awaitReaders(ctx, readers, start)
	if err != nil {
		return 0, err
	}
	return float64(p.Events*p.Subscribers) / end.Sub(start).Seconds(), nil
}

// runEvents measures one events/s figure: reps alternating repetitions
// against the gateway and the ceiling.
func runEvents(ctx context.Context, g *gatewayProc, ce *ceiling, p EventParams, reps int, logf func(string, ...any)) (*EventsResult, error) {
	var gw, cl []float64
	var cg, cw, cd, cc []float64
	us := func(d time.Duration) float64 {
		return float64(d) / float64(time.Microsecond) / float64(p.Events*p.Subscribers)
	}
	res := &EventsResult{Params: p}
	for i := range reps {
		rate, tpl, cpu, err := gatewayStorm(ctx, g, p)
		if err != nil {
			return nil, err
		}
		if tpl == nil {
			return nil, errNoTemplate
		}
		gw = append(gw, rate)
		res.EventBytes = proto.Size(&mxgatewayv1.StreamEventsResponse{Event: tpl})
		crate, ccpu, err := ceilingStream(ctx, ce, tpl, p)
		if err != nil {
			return nil, err
		}
		cl = append(cl, crate)
		if cpu.gateway > 0 && ccpu > 0 {
			cg, cw, cd, cc = append(cg, us(cpu.gateway)), append(cw, us(cpu.workers)), append(cd, us(cpu.driver)), append(cc, us(ccpu))
		}
		logf("events x%d batch %d rep %d: gateway %.0f/s, ceiling %.0f/s", p.Subscribers, p.Batch, i+1, rate, crate)
	}
	res.Gateway, res.Ceiling = spreadOf(gw), spreadOf(cl)
	res.Ratio = ratio(res.Gateway.Median, res.Ceiling.Median)
	if len(cg) > 0 {
		c := &EventsCPU{Gateway: spreadOf(cg), Workers: spreadOf(cw), Driver: spreadOf(cd), Ceiling: spreadOf(cc)}
		c.Ratio = ratio(c.Gateway.Median+c.Workers.Median+c.Driver.Median, c.Ceiling.Median)
		res.CPU = c
	}
	return res, nil
}
