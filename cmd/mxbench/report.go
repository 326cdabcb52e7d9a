package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the whole run: bench/results/latest.json.
type Report struct {
	Started   time.Time `json:"started"`
	Finished  time.Time `json:"finished"`
	DurationS float64   `json:"duration_s"`
	Reps      int       `json:"repetitions"`
	Machine   Machine   `json:"machine"`
	// Auth says whether the gateway ran with authentication and which key
	// the workloads used.
	Auth   string        `json:"authentication"`
	Events *EventsResult `json:"events_one_subscriber,omitempty"`
	// Batch is one subscriber reading with client.Batch, against a ceiling
	// that sends batches of the same size.
	Batch  *EventsResult `json:"events_batched,omitempty"`
	FanOut *EventsResult `json:"events_fan_out,omitempty"`
	// RuntimeStorm is the storm made in the Galaxy runtime (the other
	// event figures storm in the worker).
	RuntimeStorm *RuntimeStormResult `json:"events_runtime_storm,omitempty"`
	Invoke       *InvokeResult       `json:"invoke,omitempty"`
	// InvokeNoAuth is Write on a gateway started with --auth=none (only
	// when the main gateway ran with authentication).
	InvokeNoAuth *InvokeResult `json:"invoke_auth_off,omitempty"`
	Open         *OpenResult   `json:"session_open,omitempty"`
	// OpenSlim is session open with the standalone mxworker executable
	// (--worker-exe) instead of the gateway re-executing itself.
	OpenSlim *OpenResult `json:"session_open_mxworker,omitempty"`
	// OpenSpare is session open with a spare worker ready (spare_workers).
	OpenSpare *OpenResult   `json:"session_open_spare,omitempty"`
	Memory    *MemoryResult `json:"memory,omitempty"`
	Peer      *PeerResult   `json:"peer,omitempty"`
	Browse    *BrowseResult `json:"browse,omitempty"`
	// NATSFanOut is one advise fanned out to many NATS consumers against
	// as many gRPC event streams.
	NATSFanOut *NATSFanOutResult `json:"nats_fan_out,omitempty"`
	Targets    []TargetStatus    `json:"targets"`
	Errors     []string          `json:"errors,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	OS           string  `json:"os"`
	Arch         string  `json:"arch"`
	CPUs         int     `json:"cpus"`
	CPUModel     string  `json:"cpu_model,omitempty"`
	MemTotalGiB  float64 `json:"mem_total_gib,omitempty"`
	Kernel       string  `json:"kernel,omitempty"`
	Go           string  `json:"go"`
	LoadAvgStart string  `json:"load_avg_start,omitempty"`
	LoadAvgEnd   string  `json:"load_avg_end,omitempty"`
}

// TargetStatus is one target of issue 9 and where the run stands.
type TargetStatus struct {
	Target string `json:"target"`
	Value  string `json:"value"`
	// Met is "yes", "no", "not measured" or unclear.
	Met string `json:"met"`
}

func machineInfo() Machine {
	m := Machine{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadAvgStart: loadAvg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPUModel = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kb float64
				fmt.Sscan(strings.TrimSpace(v), &kb)
				m.MemTotalGiB = kb / (1 << 20)
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// Targets of issue 14, written once: finish evaluates them and printTable
// shows them in the target column.
const (
	targetEventsRatio   = 0.80 // unbatched events/s over the typed ceiling, 1 subscriber
	targetBatchedPerS   = 2e6  // batched events/s, one session to one SDK client
	targetWriteRatio    = 3.0  // Write p50 over the bare echo
	targetOpenMs        = 3.0  // session open p50
	targetIdleRSSMiB    = 10.0 // idle worker RSS
	targetPeerRatio     = 10.0 // over node-opcua's saturated updates/s
	targetLatencyLoad   = 1e5  // events/s offered for the latency target
	targetLatencyP50Ms  = 1.0  // event latency p50 at that load
	peerSaturatedFactor = 0.9  // a side delivering less than this share of the offer is saturated
)

// unclear is the verdict of a target whose run cannot decide it (the
// ceiling ran slower than what it bounds).
const unclear = "unclear: the ceiling ran below the gateway (too loaded to judge)"

// finish evaluates the targets.
func (r *Report) finish() {
	none := "not measured"
	add := func(target, value string, met bool, measured bool) {
		s := TargetStatus{Target: target, Value: value, Met: none}
		if measured {
			s.Met = map[bool]string{true: "yes", false: "no"}[met]
		}
		r.Targets = append(r.Targets, s)
	}
	t := fmt.Sprintf("events/s >= %.0f%% of the typed ceiling, 1 subscriber", 100*targetEventsRatio)
	if e := r.Events; e != nil {
		v := fmt.Sprintf("%.0f%%", 100*e.Ratio)
		if e.CPU != nil && e.CPU.Ratio > 0 {
			v += fmt.Sprintf(" (CPU says %.0f%%)", 100/e.CPU.Ratio)
		}
		add(t, v, e.Ratio >= targetEventsRatio, true)
		if e.Ratio > 1 {
			// The bare server fed the same SDK reader more slowly than the
			// gateway did: the machine's other load decided the run.
			r.Targets[len(r.Targets)-1].Met = unclear
		}
	} else {
		add(t, "", false, false)
	}
	t = fmt.Sprintf("batched events/s >= %s, one session, one SDK client", fmtRate(targetBatchedPerS))
	if b := r.Batch; b != nil {
		add(t, fmt.Sprintf("%s/s (ceiling %s/s)", fmtRate(b.Gateway.Median), fmtRate(b.Ceiling.Median)), b.Gateway.Median >= targetBatchedPerS, true)
	} else {
		add(t, "", false, false)
	}
	t = fmt.Sprintf("Write p50 <= %.0fx the bare echo", targetWriteRatio)
	found := false
	if r.Invoke != nil {
		for _, f := range r.Invoke.Figures {
			if f.Command == "Write" {
				v := fmt.Sprintf("%.1fx", f.RatioP50)
				if r.InvokeNoAuth != nil && len(r.InvokeNoAuth.Figures) > 0 {
					v += fmt.Sprintf(" (auth off: %.1fx)", r.InvokeNoAuth.Figures[0].RatioP50)
				}
				if f.EchoProcess != nil {
					v += fmt.Sprintf("; echo in its own process: %.1fx", f.RatioP50Process)
				}
				add(t, v, f.RatioP50 <= targetWriteRatio, true)
				found = true
			}
		}
	}
	if !found {
		add(t, "", false, false)
	}
	t = fmt.Sprintf("session open p50 <= %.0f ms", targetOpenMs)
	if o := r.Open; o != nil {
		v := fmt.Sprintf("%.1f ms", o.Gateway.P50.Median)
		if s := r.OpenSlim; s != nil {
			v += fmt.Sprintf(" (mxworker: %.1f ms)", s.Gateway.P50.Median)
		}
		add(t, v, o.Gateway.P50.Median <= targetOpenMs, true)
	} else {
		add(t, "", false, false)
	}
	if o := r.OpenSpare; o != nil {
		add(fmt.Sprintf("session open p50 <= %.0f ms (spare worker ready)", targetOpenMs), fmt.Sprintf("%.2f ms", o.Gateway.P50.Median), o.Gateway.P50.Median <= targetOpenMs, true)
	} else {
		add(fmt.Sprintf("session open p50 <= %.0f ms (spare worker ready)", targetOpenMs), "", false, false)
	}
	t = fmt.Sprintf("idle worker RSS <= %.0f MiB", targetIdleRSSMiB)
	if m := r.Memory; m != nil && m.Idle != nil {
		v := fmt.Sprintf("%.1f MiB", m.Idle.WorkerMiB.Median)
		if s := r.OpenSlim; s != nil && s.IdleWorkerMiB.N > 0 {
			v += fmt.Sprintf(" (mxworker: %.1f MiB)", s.IdleWorkerMiB.Median)
		}
		add(t, v, m.Idle.WorkerMiB.Median <= targetIdleRSSMiB, true)
	} else {
		add(t, "", false, false)
	}
	// The peer: node-opcua's saturated throughput is the most it delivered
	// at a load it could not carry; mxgateway's is the most it delivered.
	t = fmt.Sprintf(">= %.0fx node-opcua's saturated updates/s", targetPeerRatio)
	opcuaSat, ours := 0.0, 0.0
	if r.Peer != nil {
		for _, f := range r.Peer.Figures {
			if f.OPCUA != nil && f.OPCUA.UpdatesPerS.Median < peerSaturatedFactor*f.Params.OfferedPerS {
				opcuaSat = max(opcuaSat, f.OPCUA.UpdatesPerS.Median)
			}
			if f.MxGateway != nil && f.MxGateway.UpdatesPerS.N > 0 {
				ours = max(ours, f.MxGateway.UpdatesPerS.Median)
			}
		}
	}
	if opcuaSat > 0 {
		add(t, fmt.Sprintf("%.1fx (%s/s vs %s/s)", ratio(ours, opcuaSat), fmtRate(ours), fmtRate(opcuaSat)), ratio(ours, opcuaSat) >= targetPeerRatio, true)
	} else {
		add(t, "no load saturated node-opcua", false, false)
	}
	t = fmt.Sprintf("event latency p50 < %.0f ms at %s events/s", targetLatencyP50Ms, fmtRate(targetLatencyLoad))
	measured := false
	if r.Peer != nil {
		for _, f := range r.Peer.Figures {
			if f.Params.OfferedPerS != targetLatencyLoad || f.MxGateway == nil || f.MxGateway.WorkerLatency == nil || f.MxGateway.UpdatesPerS.N == 0 {
				continue
			}
			p50 := f.MxGateway.WorkerLatency.P50.Median
			add(t, fmt.Sprintf("%s ms worker -> SDK at %d values/%d ms", fmtMs(p50), f.Params.Values, f.Params.IntervalMs), p50 < targetLatencyP50Ms, true)
			measured = true
		}
	}
	if !measured {
		add(t, "", false, false)
	}
	r.Targets = append(r.Targets, browseTarget(r.Browse))
}

func (r *Report) write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// fmtRate formats events/s compactly.
func fmtRate(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func fmtMs(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

func fmtMiB(v float64) string { return fmt.Sprintf("%.1f", v) }

// spreadStr formats min / median / max.
func spreadStr(s Spread, f func(float64) string) string {
	if s.N == 0 {
		return "-"
	}
	return f(s.Min) + " / " + f(s.Median) + " / " + f(s.Max)
}

type row struct{ figure, workload, ours, ref, ratio, target string }

// noteFigure marks a row printed below the table (long text).
const noteFigure = "note"

// printTable prints the one table of the run.
func printTable(w io.Writer, r *Report) {
	var rows []row
	ev := func(name string, e *EventsResult, target string) {
		if e == nil {
			return
		}
		wl := fmt.Sprintf("%d subscriber(s) x %d storm events, %d B/event", e.Params.Subscribers, e.Params.Events, e.EventBytes)
		if e.Params.Batch > 1 {
			wl += fmt.Sprintf(", batches of <= %d (ceiling too)", e.Params.Batch)
		}
		rows = append(rows, row{name, wl, spreadStr(e.Gateway, fmtRate), spreadStr(e.Ceiling, fmtRate), fmt.Sprintf("%.2f", e.Ratio), target})
		if c := e.CPU; c != nil {
			us := func(v float64) string { return fmt.Sprintf("%.2f", v) }
			rows = append(rows, row{"  CPU µs/event (medians)",
				fmt.Sprintf("gateway %s + worker %s + SDK %s; ceiling: server + SDK", us(c.Gateway.Median), us(c.Workers.Median), us(c.Driver.Median)),
				us(c.Gateway.Median + c.Workers.Median + c.Driver.Median), us(c.Ceiling.Median), fmt.Sprintf("%.2f", c.Ratio), ""})
		}
	}
	ev("events/s, 1 subscriber", r.Events, fmt.Sprintf(">= %.2f", targetEventsRatio))
	ev("events/s, batched", r.Batch, ">= "+fmtRate(targetBatchedPerS)+"/s")
	ev("events/s, fan-out (aggregate)", r.FanOut, "")
	if rs := r.RuntimeStorm; rs != nil {
		wl := fmt.Sprintf("1 subscriber x %d events of %s stormed in the Galaxy runtime, %d B/event", rs.Params.Events, refRuntimeStorm, rs.EventBytes)
		rows = append(rows,
			row{"events/s, Galaxy runtime storm", wl, spreadStr(rs.Runtime, fmtRate), spreadStr(rs.Ceiling, fmtRate), fmt.Sprintf("%.2f", rs.Ratio), ""},
			row{"  same gateway, worker-local Sim.Storm", "ratio: worker-local / ceiling", spreadStr(rs.Local, fmtRate), spreadStr(rs.Ceiling, fmtRate), fmt.Sprintf("%.2f", ratio(rs.Local.Median, rs.Ceiling.Median)), ""},
			row{"  runtime / worker-local storm", "what the runtime hop costs (medians)", fmtRate(rs.Runtime.Median), fmtRate(rs.Local.Median), fmt.Sprintf("%.2f", rs.RatioLocal), ""},
		)
		if c := rs.CPU; c != nil {
			us := func(v float64) string { return fmt.Sprintf("%.2f", v) }
			rows = append(rows, row{"  CPU µs/event (medians)",
				fmt.Sprintf("runtime %s + gateway %s + worker %s + SDK %s; ref: worker-local storm", us(c.Runtime.Median), us(c.Gateway.Median), us(c.Workers.Median), us(c.Driver.Median)),
				us(c.Runtime.Median + c.Gateway.Median + c.Workers.Median + c.Driver.Median), us(c.Local.Median), fmt.Sprintf("%.2f", c.Ratio), ""})
		}
	}
	for _, inv := range []*InvokeResult{r.Invoke, r.InvokeNoAuth} {
		if inv == nil {
			continue
		}
		for _, f := range inv.Figures {
			wl := fmt.Sprintf("%d calls x %d reps, req %d B, reply %d B", inv.Params.Calls, r.Reps, f.RequestBytes, f.ReplyBytes)
			name := f.Command
			if inv == r.InvokeNoAuth {
				name += " (auth off)"
			}
			target := ""
			if inv == r.Invoke && f.Command == "Write" {
				target = fmt.Sprintf("<= %.1f", targetWriteRatio)
			}
			rows = append(rows,
				row{name + " p50 ms", wl, spreadStr(f.Gateway.P50, fmtMs), spreadStr(f.Echo.P50, fmtMs), fmt.Sprintf("%.2f", f.RatioP50), target},
				row{name + " p99 ms", "", spreadStr(f.Gateway.P99, fmtMs), spreadStr(f.Echo.P99, fmtMs), fmt.Sprintf("%.2f", ratio(f.Gateway.P99.Median, f.Echo.P99.Median)), ""},
				row{name + " max ms", "", spreadStr(f.Gateway.Max, fmtMs), spreadStr(f.Echo.Max, fmtMs), "", ""},
			)
			if e := f.EchoProcess; e != nil {
				rows = append(rows, row{"  p50 ms, echo apart", "ref: the echo in a process of its own", spreadStr(f.Gateway.P50, fmtMs), spreadStr(e.P50, fmtMs), fmt.Sprintf("%.2f", f.RatioP50Process), ""})
			}
			if c := f.CPU; c != nil {
				us := func(v float64) string { return fmt.Sprintf("%.1f", v) }
				rows = append(rows, row{"  CPU µs/call (medians)",
					fmt.Sprintf("gateway %s + children %s + SDK %s; ref: SDK and echo in one process", us(c.Gateway.Median), us(c.Workers.Median), us(c.Driver.Median)),
					us(c.Gateway.Median + c.Workers.Median + c.Driver.Median), us(c.Echo.Median), fmt.Sprintf("%.2f", c.Ratio), ""})
			}
		}
	}
	for _, o := range []*OpenResult{r.Open, r.OpenSlim, r.OpenSpare} {
		if o == nil {
			continue
		}
		if o.Params.SpareReady {
			wl := fmt.Sprintf("%d opens x %d reps, each with a spare worker ready; ref: spawn+exit of `%s version`", o.Params.Opens, r.Reps, strings.Fields(o.Worker)[0])
			rows = append(rows,
				row{"session open p50 ms (spare ready)", wl, spreadStr(o.Gateway.P50, fmtMs), spreadStr(o.Spawn.P50, fmtMs), fmt.Sprintf("%.2f", o.RatioP50), "<= 3 ms"},
				row{"session open p99 ms (spare ready)", "", spreadStr(o.Gateway.P99, fmtMs), spreadStr(o.Spawn.P99, fmtMs), fmt.Sprintf("%.2f", ratio(o.Gateway.P99.Median, o.Spawn.P99.Median)), ""},
			)
			continue
		}
		wl := fmt.Sprintf("%d opens x %d reps; ref: spawn+exit of `%s version`", o.Params.Opens, r.Reps, strings.Fields(o.Worker)[0])
		rows = append(rows,
			row{"session open p50 ms (" + o.Worker + ")", wl, spreadStr(o.Gateway.P50, fmtMs), spreadStr(o.Spawn.P50, fmtMs), fmt.Sprintf("%.2f", o.RatioP50), fmt.Sprintf("<= %.0f ms", targetOpenMs)},
			row{"session open p99 ms (" + o.Worker + ")", "", spreadStr(o.Gateway.P99, fmtMs), spreadStr(o.Spawn.P99, fmtMs), fmt.Sprintf("%.2f", ratio(o.Gateway.P99.Median, o.Spawn.P99.Median)), ""},
			row{"idle worker RSS MiB (" + o.Worker + ")", "1 session, nothing registered; 3 samples", spreadStr(o.IdleWorkerMiB, fmtMiB), "", "", fmt.Sprintf("<= %.0f MiB", targetIdleRSSMiB)},
		)
	}
	if m := r.Memory; m != nil {
		if m.Idle != nil {
			rows = append(rows, row{"idle worker RSS MiB", "1 session, nothing registered", spreadStr(m.Idle.WorkerMiB, fmtMiB), "gateway " + spreadStr(m.Idle.GatewayMiB, fmtMiB), "", fmt.Sprintf("<= %.0f MiB", targetIdleRSSMiB)})
		}
		for _, lv := range m.Levels {
			rows = append(rows,
				row{fmt.Sprintf("gateway RSS MiB, %d sessions", lv.Sessions), fmt.Sprintf("%d advised items each; %d samples", lv.Items, m.Params.Samples), spreadStr(lv.GatewayMiB, fmtMiB), "", "", ""},
				row{fmt.Sprintf("worker RSS MiB, %d sessions", lv.Sessions), fmt.Sprintf("over %d workers; total %.0f MiB, PSS %.0f MiB", lv.Workers, lv.WorkersTotalMiB, lv.WorkersTotalPSSMiB), spreadStr(lv.WorkerMiB, fmtMiB), "", "", ""},
			)
		}
		if m.Note != "" {
			rows = append(rows, row{noteFigure, "memory: " + m.Note, "", "", "", ""})
		}
	}
	if p := r.Peer; p != nil {
		if p.Skipped != "" && len(p.Figures) == 0 {
			rows = append(rows, row{noteFigure, "OPC UA peer skipped: " + p.Skipped, "", "", "", ""})
		}
		for _, f := range p.Figures {
			wl := fmt.Sprintf("%d values every %d ms (%s/s offered), 1 subscriber", f.Params.Values, f.Params.IntervalMs, fmtRate(f.Params.OfferedPerS))
			if f.Params.Batch > 1 {
				wl += fmt.Sprintf(", mxgateway batches <= %d", f.Params.Batch)
			}
			ours, ref, ourLat, refLat, ourP99, refP99, ourW50, ourW99, ourG50, ourG99 := "-", "-", "-", "-", "-", "-", "-", "-", "-", "-"
			if f.MxGateway != nil {
				ours, ourLat, ourP99 = spreadStr(f.MxGateway.UpdatesPerS, fmtRate), spreadStr(f.MxGateway.Latency.P50, fmtMs), spreadStr(f.MxGateway.Latency.P99, fmtMs)
				if wl := f.MxGateway.WorkerLatency; wl != nil {
					ourW50, ourW99 = spreadStr(wl.P50, fmtMs), spreadStr(wl.P99, fmtMs)
				}
				if gl := f.MxGateway.GatewayLatency; gl != nil {
					ourG50, ourG99 = spreadStr(gl.P50, fmtMs), spreadStr(gl.P99, fmtMs)
				}
			}
			if f.OPCUA != nil {
				ref, refLat, refP99 = spreadStr(f.OPCUA.UpdatesPerS, fmtRate), spreadStr(f.OPCUA.Latency.P50, fmtMs), spreadStr(f.OPCUA.Latency.P99, fmtMs)
			} else if f.Skipped != "" {
				ref = "skipped"
			}
			rt := ""
			if f.Ratio > 0 {
				rt = fmt.Sprintf("%.2f", f.Ratio)
			}
			rows = append(rows,
				row{"peer updates/s", wl, ours, ref, rt, ""},
				row{"peer latency p50 ms", "value timestamp -> receipt", ourLat, refLat, "", ""},
				row{"peer latency p99 ms", "", ourP99, refP99, "", ""},
				row{"peer latency p50 ms", "worker time -> receipt (mxgateway)", ourW50, "", "", latTarget(f.Params.OfferedPerS)},
				row{"peer latency p99 ms", "", ourW99, "", "", ""},
				row{"peer latency p50 ms", "gateway time -> receipt (mxgateway)", ourG50, "", "", ""},
				row{"peer latency p99 ms", "", ourG99, "", "", ""},
			)
			what := fmt.Sprintf("peer %d values/%d ms", f.Params.Values, f.Params.IntervalMs)
			if f.MxGateway != nil && f.MxGateway.Note != "" {
				rows = append(rows, row{noteFigure, what + ", mxgateway: " + f.MxGateway.Note, "", "", "", ""})
			}
			if f.OPCUA != nil && f.OPCUA.Note != "" {
				rows = append(rows, row{noteFigure, what + ", OPC UA: " + f.OPCUA.Note, "", "", "", ""})
			}
			if f.Skipped != "" {
				rows = append(rows, row{noteFigure, what + ": " + f.Skipped, "", "", "", ""})
			}
		}
	}

	rows = append(rows, browseRows(r.Browse)...)
	rows = append(rows, natsFanOutRows(r.NATSFanOut)...)

	fmt.Fprintf(w, "\nmxgateway benchmarks  %s  %d CPUs (%s), %.0f GiB, load %s -> %s, %s, auth %s\n",
		r.Started.Format(time.RFC3339), r.Machine.CPUs, r.Machine.CPUModel, r.Machine.MemTotalGiB,
		r.Machine.LoadAvgStart, r.Machine.LoadAvgEnd, r.Machine.Go, r.Auth)
	fmt.Fprintf(w, "values: min / median / max over %d repetitions; ratio = median / median\n\n", r.Reps)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tworkload\tmxgateway\tceiling / peer\tratio\ttarget")
	var notes []string
	for _, x := range rows {
		if x.figure == noteFigure {
			notes = append(notes, x.workload)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", x.figure, x.workload, x.ours, x.ref, x.ratio, x.target)
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, n := range notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	for _, t := range r.Targets {
		fmt.Fprintf(w, "target: %-45s %-28s met: %s\n", t.Target, t.Value, t.Met)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
	fmt.Fprintf(w, "took %.0f s\n", r.DurationS)
}

// latTarget is the target column of the worker-latency row at a load.
func latTarget(offered float64) string {
	if offered != targetLatencyLoad {
		return ""
	}
	return fmt.Sprintf("< %.0f ms", targetLatencyP50Ms)
}

// runTable prints the table of a saved report.
func runTable(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mxbench:", err)
		return 1
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		fmt.Fprintf(os.Stderr, "mxbench: %s: %v\n", path, err)
		return 1
	}
	printTable(os.Stdout, &r)
	return 0
}
