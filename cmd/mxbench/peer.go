package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mxgateway/mxgateway/client"
	"github.com/mxgateway/mxgateway/internal/gateway"
)

// PeerParams is one peer workload: N values, each changing every Interval,
// one subscriber.
type PeerParams struct {
	Values     int `json:"values"`
	IntervalMs int `json:"change_interval_ms"`
	// OfferedPerS is Values * 1000 / IntervalMs.
	OfferedPerS float64 `json:"offered_updates_per_s"`
	// PublishingMs is the OPC UA subscription's requested publishing
	// interval (node-opcua's minimum is 50 ms); monitored items sample
	// exception-based (samplingInterval 0) with a queue of QueueSize.
	PublishingMs int `json:"opcua_publishing_interval_ms"`
	QueueSize    int `json:"opcua_queue_size"`
	WarmupS      int `json:"warmup_s"`
	DurationS    int `json:"duration_s_per_rep"`
	// Batch is the mxgateway subscriber's max_batch (client.Batch; 0: one
	// event per message). OPC UA batches by its publishing interval.
	Batch int `json:"mxgateway_max_batch,omitempty"`
}

// PeerSide is one side's figures over the repetitions.
type PeerSide struct {
	UpdatesPerS Spread        `json:"updates_per_s"`
	Latency     LatencySpread `json:"latency"`
	// WorkerLatency (mxgateway only) is receipt - the event's worker time,
	// at full clock resolution: the value timestamps of both sides are
	// whole milliseconds.
	WorkerLatency *LatencySpread `json:"worker_latency,omitempty"`
	// GatewayLatency (mxgateway only) is receipt - the event's gateway
	// time (when the gateway read it from the worker's pipe): the part of
	// WorkerLatency after the worker.
	GatewayLatency *LatencySpread `json:"gateway_latency,omitempty"`
	// Note says what else happened (gaps, errors, revised intervals).
	Note string `json:"note,omitempty"`
}

// PeerFigure compares mxgateway and the OPC UA peer on one workload.
type PeerFigure struct {
	Params PeerParams `json:"params"`
	// MxGateway is the simulator → gateway → SDK side.
	MxGateway *PeerSide `json:"mxgateway,omitempty"`
	// OPCUA is the node-opcua server → node-opcua client side.
	OPCUA *PeerSide `json:"opcua,omitempty"`
	// Ratio is median mxgateway updates/s / median OPC UA updates/s.
	Ratio   float64 `json:"ratio_updates"`
	Skipped string  `json:"skipped,omitempty"`
}

// PeerResult holds the peer figures.
type PeerResult struct {
	NodeOPCUA string       `json:"node_opcua_version,omitempty"`
	Node      string       `json:"node_version,omitempty"`
	Figures   []PeerFigure `json:"figures"`
	Skipped   string       `json:"skipped,omitempty"`
}

// peerWindow is one measured window of the mxgateway side.
type peerWindow struct {
	count int
	lat   []float64
	wlat  []float64 // receipt - worker time
	glat  []float64 // receipt - gateway time
}

// gatewayPeer runs the mxgateway side of a peer workload on g (which
// serves the model with the Peer object).
func gatewayPeer(ctx context.Context, g *gatewayProc, p PeerParams, batch, reps int) (*PeerSide, error) {
	c, err := g.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	s, err := c.OpenSession(ctx, "mxbench-peer")
	if err != nil {
		return nil, err
	}
	defer s.Close()
	mx := s.MX()
	h, err := mx.Register(ctx, "mxbench")
	if err != nil {
		return nil, err
	}
	refs := make([]string, p.Values)
	for i := range refs {
		refs[i] = peerRef(i)
	}

	var (
		mu       sync.Mutex
		counting bool
		win      peerWindow
		gaps     int
	)
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	var readErr error // under mu
	attached := make(chan struct{})
	ended := make(chan struct{}) // closed when the stream ends
	wg.Go(func() {
		defer close(ended)
		first := true
		for ev, err := range s.Events(rctx, client.Batch(batch, 0)) {
			if err != nil {
				mu.Lock()
				readErr = err
				mu.Unlock()
				return
			}
			now := time.Now()
			if first {
				close(attached)
				first = false
			}
			if ev.Gap() != nil {
				mu.Lock()
				gaps++
				mu.Unlock()
				continue
			}
			dc := ev.DataChange()
			if dc == nil {
				continue
			}
			mu.Lock()
			if counting {
				win.count++
				win.lat = append(win.lat, float64(now.Sub(dc.Timestamp))/float64(time.Millisecond))
				win.wlat = append(win.wlat, float64(now.Sub(ev.WorkerTime()))/float64(time.Millisecond))
				win.glat = append(win.glat, float64(now.Sub(ev.GatewayTime()))/float64(time.Millisecond))
			}
			mu.Unlock()
		}
	})
	// In calls of at most the gateway's bulk bound, each with a deadline of
	// its own (the SDK's and the gateway's default is 30 s): at a load the
	// machine cannot carry, a reply waits in the worker's outbound queue
	// behind every event made before it, in order.
	subStart := time.Now()
	for chunk := range slices.Chunk(refs, gateway.DefaultMaxBulkEntries) {
		sctx, cancel := context.WithTimeout(ctx, peerSubscribeTimeout)
		entries, err := mx.SubscribeBulk(sctx, h, chunk, false)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("mxbench: SubscribeBulk of %d items (deadline %v): %w", len(chunk), peerSubscribeTimeout, err)
		}
		for _, e := range entries {
			if err := e.Err(); err != nil {
				return nil, fmt.Errorf("mxbench: subscribe %s: %w", e.ItemDefinition, err)
			}
		}
	}
	subscribed := time.Since(subStart)
	select {
	case <-attached:
	case <-time.After(30 * time.Second):
		return nil, errors.New("mxbench: no event within 30s of subscribing")
	}
	if err := sleepCtx(ctx, time.Duration(p.WarmupS)*time.Second); err != nil {
		return nil, err
	}
	var rates []float64
	var lats, wlats, glats []Latency
	var notes []string
	if subscribed > 5*time.Second {
		notes = append(notes, fmt.Sprintf("subscribing took %.1f s", subscribed.Seconds()))
	}
	measuredS := 0.0
	for range reps {
		mu.Lock()
		n := int(p.OfferedPerS) * p.DurationS
		win, counting = peerWindow{lat: make([]float64, 0, n), wlat: make([]float64, 0, n), glat: make([]float64, 0, n)}, true
		mu.Unlock()
		start := time.Now()
		// A stream that ends (the session faults) ends the window early:
		// what it delivered until then is the figure of a saturated load.
		t := time.NewTimer(time.Duration(p.DurationS) * time.Second)
		select {
		case <-t.C:
		case <-ended:
		case <-ctx.Done():
		}
		t.Stop()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		mu.Lock()
		w := win
		counting = false
		win = peerWindow{}
		rerr := readErr
		mu.Unlock()
		elapsed := time.Since(start).Seconds()
		measuredS += elapsed
		if rerr != nil && (w.count == 0 || elapsed < 0.5) {
			if len(rates) == 0 {
				return nil, fmt.Errorf("mxbench: event stream ended: %w", rerr)
			}
			notes = append(notes, fmt.Sprintf("the session ended after %.1f s of measurement: %v", measuredS, rerr))
			break
		}
		rates = append(rates, float64(w.count)/elapsed)
		lats = append(lats, latencyOfMs(w.lat))
		wlats = append(wlats, latencyOfMs(w.wlat))
		glats = append(glats, latencyOfMs(w.glat))
		if rerr != nil {
			notes = append(notes, fmt.Sprintf("the session ended after %.1f s of measurement (the last window is partial): %v", measuredS, rerr))
			break
		}
	}
	wl, gl := latencySpread(wlats), latencySpread(glats)
	side := &PeerSide{UpdatesPerS: spreadOf(rates), Latency: latencySpread(lats), WorkerLatency: &wl, GatewayLatency: &gl}
	mu.Lock()
	if gaps > 0 {
		notes = append(notes, fmt.Sprintf("%d replay gaps (the subscriber fell behind)", gaps))
	}
	mu.Unlock()
	side.Note = strings.Join(notes, "; ")
	return side, nil
}

// peerSubscribeTimeout bounds each SubscribeBulk call of the peer workload.
const peerSubscribeTimeout = 2 * time.Minute

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// opcuaPeer runs the node-opcua side of a peer workload: server.js and
// client.js from dir.
func opcuaPeer(ctx context.Context, dir, pki string, p PeerParams, reps int, logf func(string, ...any)) (*PeerSide, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	srv := exec.Command("node", "server.js", "--port", strconv.Itoa(port), "--n", strconv.Itoa(p.Values),
		"--interval-ms", strconv.Itoa(p.IntervalMs), "--pki", pki)
	srv.Dir = dir
	srvLog, err := os.Create(filepath.Join(pki, fmt.Sprintf("server-%d.log", p.Values)))
	if err != nil {
		return nil, err
	}
	defer srvLog.Close()
	srv.Stderr = srvLog
	out, err := srv.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("mxbench: start node server.js: %w", err)
	}
	exited := make(chan struct{})
	var srvErr error
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var r struct {
				Ready    bool   `json:"ready"`
				Endpoint string `json:"endpoint"`
			}
			if json.Unmarshal(sc.Bytes(), &r) == nil && r.Ready {
				ready <- r.Endpoint
			}
		}
		io.Copy(io.Discard, out)
	}()
	go func() {
		srvErr = srv.Wait()
		close(exited)
	}()
	defer func() {
		srv.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			srv.Process.Kill()
			<-exited
		}
	}()
	var endpoint string
	select {
	case endpoint = <-ready:
	case <-exited:
		return nil, fmt.Errorf("mxbench: node server.js exited (%v); see %s", srvErr, srvLog.Name())
	case <-time.After(90 * time.Second):
		return nil, fmt.Errorf("mxbench: node server.js not ready within 90s; see %s", srvLog.Name())
	}

	budget := time.Duration(p.WarmupS+reps*p.DurationS)*time.Second + 120*time.Second
	cctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	cl := exec.CommandContext(cctx, "node", "client.js", "--endpoint", endpoint, "--n", strconv.Itoa(p.Values),
		"--publishing-ms", strconv.Itoa(p.PublishingMs), "--queue-size", strconv.Itoa(p.QueueSize),
		"--warmup-s", strconv.Itoa(p.WarmupS), "--duration-s", strconv.Itoa(p.DurationS),
		"--reps", strconv.Itoa(reps), "--pki", pki)
	cl.Dir = dir
	var stderr strings.Builder
	cl.Stderr = &stderr
	stdout, err := cl.Output()
	if err != nil && !strings.Contains(string(stdout), `"done":true`) {
		return nil, fmt.Errorf("mxbench: node client.js: %v: %s", err, lastLines(stderr.String(), 5))
	}
	// A failure after the results (the teardown of a saturated server)
	// keeps them.
	var teardown string
	if err != nil {
		teardown = fmt.Sprintf("; client.js failed after its results: %v", err)
	}
	var rates []float64
	var lats []Latency
	side := &PeerSide{}
	for line := range strings.SplitSeq(string(stdout), "\n") {
		var r struct {
			Done        bool    `json:"done"`
			Rate        float64 `json:"updates_per_s"`
			Updates     int     `json:"updates"`
			P50         float64 `json:"latency_p50_ms"`
			P99         float64 `json:"latency_p99_ms"`
			Max         float64 `json:"latency_max_ms"`
			RevisedPubl float64 `json:"revised_publishing_interval_ms"`
		}
		if json.Unmarshal([]byte(line), &r) != nil {
			continue
		}
		if r.Done {
			side.Note = fmt.Sprintf("revised publishing interval %g ms", r.RevisedPubl)
			continue
		}
		rates = append(rates, r.Rate)
		lats = append(lats, Latency{P50: r.P50, P99: r.P99, Max: r.Max, N: r.Updates})
	}
	if len(rates) == 0 {
		return nil, fmt.Errorf("mxbench: node client.js printed no results: %s", lastLines(stderr.String(), 5))
	}
	side.UpdatesPerS, side.Latency = spreadOf(rates), latencySpread(lats)
	side.Note += teardown
	return side, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// peerReady checks that node and the installed node-opcua are usable and
// returns their versions, or why the peer is skipped.
func peerReady(ctx context.Context, dir string) (node, opcua, skip string) {
	if reason := os.Getenv("MXBENCH_PEER_SKIP"); reason != "" {
		return "", "", reason
	}
	if _, err := exec.LookPath("node"); err != nil {
		return "", "", "node is not installed"
	}
	out, err := exec.CommandContext(ctx, "node", "--version").Output()
	if err != nil {
		return "", "", fmt.Sprintf("node --version: %v", err)
	}
	node = strings.TrimSpace(string(out))
	pkg, err := os.ReadFile(filepath.Join(dir, "node_modules", "node-opcua", "package.json"))
	if err != nil {
		return node, "", fmt.Sprintf("node-opcua is not installed in %s (run npm ci there; bench/run.sh does)", dir)
	}
	var v struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(pkg, &v); err != nil {
		return node, "", fmt.Sprintf("node-opcua package.json: %v", err)
	}
	return node, v.Version, ""
}

// peerGatewayArgs are the flags of a peer workload's gateway. No spare
// workers by default (-peer-spare-workers), as node-opcua's server serves
// only the one measured client. Spares cost little under the load since
// the simulated Galaxy runtime sends a worker only the changes of what it
// advised (docs/performance.md, "The runtime's interest filter"); before
// it did, each spare took the whole offered load off the two cores the
// measured session shares. Commands and the start get the subscribe's
// deadline: a command's reply waits behind the events made before it, and
// a runtime of 50,000 changing values starts slowly on a loaded machine.
func peerGatewayArgs(model string, spares int) []string {
	return []string{"--sim-model=" + model, "--spare-workers=" + strconv.Itoa(spares),
		"--command-timeout=" + peerSubscribeTimeout.String(), "--startup-timeout=" + peerSubscribeTimeout.String()}
}
