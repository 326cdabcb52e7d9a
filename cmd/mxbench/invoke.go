package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/client"
)

// InvokeParams is the workload of the Invoke figures.
type InvokeParams struct {
	// Calls is the number of timed calls per repetition, issued one at a
	// time (each waits for its reply) after Warmup untimed ones.
	Calls  int `json:"calls_per_rep"`
	Warmup int `json:"warmup_calls"`
}

// InvokeFigure is the round trip of one command against the echo.
type InvokeFigure struct {
	Command string        `json:"command"`
	Gateway LatencySpread `json:"gateway"`
	Echo    LatencySpread `json:"echo"`
	// RatioP50 is median gateway p50 / median echo p50.
	RatioP50 float64 `json:"ratio_p50"`
	// EchoProcess is the same echo served by a process of its own, so that
	// it crosses a process boundary as the call to the gateway does (the
	// gateway's call crosses two: SDK to gateway, gateway to worker);
	// RatioP50Process is median gateway p50 / its median p50. Reported
	// beside the target, which stays against Echo.
	EchoProcess     *LatencySpread `json:"echo_process,omitempty"`
	RatioP50Process float64        `json:"ratio_p50_process,omitempty"`
	// CPU is the CPU time per call of each process (nil when /proc cannot
	// be read).
	CPU *InvokeCPU `json:"cpu_us_per_call,omitempty"`
	// RequestBytes and ReplyBytes are the encoded message sizes.
	RequestBytes int `json:"request_bytes"`
	ReplyBytes   int `json:"reply_bytes"`
}

// InvokeCPU is the CPU time per call, in µs: the gateway, its children
// (the session's worker, spare workers, the Galaxy runtime) and the driver
// (the SDK client) on the gateway; the driver alone (SDK client and echo
// server in one process) on the echo.
type InvokeCPU struct {
	Gateway Spread `json:"gateway"`
	Workers Spread `json:"workers"`
	Driver  Spread `json:"driver"`
	Echo    Spread `json:"echo"`
	// Ratio is the sum of the gateway's medians over the echo's median.
	Ratio float64 `json:"ratio"`
}

// InvokeResult holds the Write and AddItem figures.
type InvokeResult struct {
	Params InvokeParams `json:"params"`
	// Auth is the gateway's authentication for these figures.
	Auth    string         `json:"authentication"`
	Figures []InvokeFigure `json:"figures"`
}

// invokeTarget is what a timed call runs on: a session (gateway or
// ceiling) with a registration and an advised item.
type invokeTarget struct {
	mx    *client.MX
	h     int32
	hItem int32
}

// timedCalls runs n calls of kind one at a time and returns their
// durations.
func timedCalls(ctx context.Context, t invokeTarget, kind string, n, warmup int) ([]time.Duration, error) {
	call := func(i int) error {
		switch kind {
		case "write":
			return t.mx.Write(ctx, t.h, t.hItem, client.MustValue(int32(i)), 0)
		default:
			_, err := t.mx.AddItem(ctx, t.h, memRef(i%1000))
			return err
		}
	}
	for i := range warmup {
		if err := call(i); err != nil {
			return nil, err
		}
	}
	ds := make([]time.Duration, n)
	for i := range n {
		start := time.Now()
		if err := call(warmup + i); err != nil {
			return nil, err
		}
		ds[i] = time.Since(start)
	}
	return ds, nil
}

// runInvoke measures Write and AddItem round trips on the gateway and the
// same calls against the ceiling's unary echo (which answers with the
// gateway's own reply, so both directions carry the same bytes).
func runInvoke(ctx context.Context, g *gatewayProc, ce *ceiling, ep *echoProcess, p InvokeParams, kinds []string, reps int, logf func(string, ...any)) (*InvokeResult, error) {
	c, err := g.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ec, err := client.Dial(ctx, ce.addr, client.WithInsecure(), client.WithoutSessionCleanup(), client.WithUserAgent("mxbench"))
	if err != nil {
		return nil, err
	}
	defer ec.Close()
	var epc *client.Client
	if ep != nil {
		if epc, err = client.Dial(ctx, ep.addr, client.WithInsecure(), client.WithoutSessionCleanup(), client.WithUserAgent("mxbench")); err != nil {
			return nil, err
		}
		defer epc.Close()
	}
	res := &InvokeResult{Params: p, Auth: g.auth}
	for _, kind := range kinds {
		fig := InvokeFigure{Command: map[string]string{"write": "Write", "add_item": "AddItem"}[kind]}
		var gw, echo, echoProc []Latency
		var cg, cw, cd, cecho []float64
		perCall := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / float64(p.Calls) }
		for rep := range reps {
			// A fresh session per repetition: AddItem handles and the
			// write events do not pile up across repetitions.
			s, err := c.OpenSession(ctx, "mxbench-invoke")
			if err != nil {
				return nil, err
			}
			mx := s.MX()
			h, err := mx.Register(ctx, "mxbench")
			if err != nil {
				s.Close()
				return nil, err
			}
			hw, err := mx.AddItem(ctx, h, refWrite)
			if err == nil {
				err = mx.Advise(ctx, h, hw)
			}
			if err != nil {
				s.Close()
				return nil, err
			}
			// Capture one real reply for the echo, and the message sizes.
			cmd := sampleCommand(kind, h, hw)
			reply, err := mx.Invoke(ctx, cmd)
			if err != nil {
				s.Close()
				return nil, err
			}
			if reply.GetHresult() != 0 {
				s.Close()
				return nil, fmt.Errorf("mxbench: %s failed on the gateway: hresult %#x", kind, uint32(reply.GetHresult()))
			}
			ce.setReply(kind, reply)
			fig.RequestBytes = proto.Size(&mxgatewayv1.InvokeRequest{SessionId: s.ID(), Command: cmd})
			fig.ReplyBytes = proto.Size(&mxgatewayv1.InvokeResponse{Reply: reply})

			cpu0 := stormCPU{cpuTime(strconv.Itoa(g.pid())), cpuOf(g.workers()), cpuTime("self")}
			ds, err := timedCalls(ctx, invokeTarget{mx, h, hw}, kind, p.Calls, p.Warmup)
			cpu1 := stormCPU{cpuTime(strconv.Itoa(g.pid())), cpuOf(g.workers()), cpuTime("self")}
			s.Close()
			if err != nil {
				return nil, err
			}
			gw = append(gw, latencyOf(ds))

			es, err := ec.AttachSession(s.ID())
			if err != nil {
				return nil, err
			}
			e0 := cpuTime("self")
			eds, err := timedCalls(ctx, invokeTarget{es.MX(), h, hw}, kind, p.Calls, p.Warmup)
			if err != nil {
				return nil, err
			}
			if e1 := cpuTime("self"); cpu1.gateway > 0 && e1 > 0 {
				// The warm-up calls are inside both intervals alike.
				cg, cw = append(cg, perCall(cpu1.gateway-cpu0.gateway)), append(cw, perCall(cpu1.workers-cpu0.workers))
				cd, cecho = append(cd, perCall(cpu1.driver-cpu0.driver)), append(cecho, perCall(e1-e0))
			}
			echo = append(echo, latencyOf(eds))
			if epc != nil {
				if err := ep.setReply(kind, reply); err != nil {
					return nil, err
				}
				ps, err := epc.AttachSession(s.ID())
				if err != nil {
					return nil, err
				}
				pds, err := timedCalls(ctx, invokeTarget{ps.MX(), h, hw}, kind, p.Calls, p.Warmup)
				if err != nil {
					return nil, err
				}
				echoProc = append(echoProc, latencyOf(pds))
				logf("invoke %s rep %d: echo in its own process p50 %.3f ms", fig.Command, rep+1, echoProc[rep].P50)
			}
			logf("invoke %s (auth %s) rep %d: gateway p50 %.3f ms p99 %.3f ms, echo p50 %.3f ms p99 %.3f ms",
				fig.Command, g.authShort(), rep+1, gw[rep].P50, gw[rep].P99, echo[rep].P50, echo[rep].P99)
		}
		fig.Gateway, fig.Echo = latencySpread(gw), latencySpread(echo)
		fig.RatioP50 = ratio(fig.Gateway.P50.Median, fig.Echo.P50.Median)
		if len(echoProc) > 0 {
			ls := latencySpread(echoProc)
			fig.EchoProcess = &ls
			fig.RatioP50Process = ratio(fig.Gateway.P50.Median, ls.P50.Median)
		}
		if len(cg) > 0 {
			c := &InvokeCPU{Gateway: spreadOf(cg), Workers: spreadOf(cw), Driver: spreadOf(cd), Echo: spreadOf(cecho)}
			c.Ratio = ratio(c.Gateway.Median+c.Workers.Median+c.Driver.Median, c.Echo.Median)
			fig.CPU = c
		}
		res.Figures = append(res.Figures, fig)
	}
	return res, nil
}

// sampleCommand is one command of kind, as the SDK builds it.
func sampleCommand(kind string, h, hw int32) *mxgatewayv1.Command {
	if kind == "write" {
		return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Write{
			Write: &mxgatewayv1.WriteCommand{ServerHandle: h, ItemHandle: hw, Value: client.MustValue(int32(1)).Proto()}}}
	}
	return &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem{
		AddItem: &mxgatewayv1.AddItemCommand{ServerHandle: h, ItemDefinition: memRef(1)}}}
}
