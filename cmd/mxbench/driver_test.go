package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxgateway/mxgateway/internal/backend/sim"
)

// The generated models must be valid simulator models (the simulator
// refuses a bad model at start-up, which would only show in `make bench`).
func TestWriteModelLoads(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name        string
		mem, peer   int
		peerEvery   time.Duration
		wantRefsIn  []string
		wantRefsOut []string
	}{
		{"main", 1000, 0, 0, []string{"Mem.A0999", "Bench.W", refRuntimeStorm}, []string{"Peer.P00000"}},
		{"peer", 0, 3, 100 * time.Millisecond, []string{"Peer.P00002", "Bench.W"}, []string{"Mem.A0000"}},
	} {
		path := filepath.Join(dir, c.name+".yaml")
		if err := writeModel(path, c.mem, c.peer, c.peerEvery); err != nil {
			t.Fatal(err)
		}
		m, err := sim.LoadModel(path)
		if err != nil {
			t.Fatalf("%s: model refused: %v", c.name, err)
		}
		for _, ref := range c.wantRefsIn {
			tag, attr, _ := strings.Cut(ref, ".")
			if o := m.Object(tag); o == nil || o.Attribute(attr) == nil {
				t.Errorf("%s: %s missing", c.name, ref)
			}
		}
		for _, ref := range c.wantRefsOut {
			tag, _, _ := strings.Cut(ref, ".")
			if m.Object(tag) != nil {
				t.Errorf("%s: %s present", c.name, tag)
			}
		}
	}
}

func TestRefNames(t *testing.T) {
	if memRef(7) != "Mem.A0007" || peerRef(12) != "Peer.P00012" {
		t.Fatalf("memRef/peerRef: %s %s", memRef(7), peerRef(12))
	}
}

func TestParseStat(t *testing.T) {
	ppid, state, ok := parseStat("1234 (my (odd) name) S 42 1234 1234 0 -1")
	if !ok || ppid != 42 || state != "S" {
		t.Fatalf("parseStat = %d %q %v", ppid, state, ok)
	}
	if _, _, ok := parseStat("garbage"); ok {
		t.Fatal("parseStat accepted garbage")
	}
}

func TestParseConfig(t *testing.T) {
	c, err := parseConfig([]string{"-only", "events,peer", "-peer", "100x50ms, 20x1s", "-mem-levels", "1,8"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.only["events"] || !c.only["peer"] || c.only["memory"] {
		t.Errorf("only = %v", c.only)
	}
	if len(c.peers) != 2 || c.peers[0].Values != 100 || c.peers[0].IntervalMs != 50 || c.peers[0].OfferedPerS != 2000 ||
		c.peers[1].OfferedPerS != 20 {
		t.Errorf("peers = %+v", c.peers)
	}
	if len(c.memory.Levels) != 2 || c.memory.Levels[1] != 8 {
		t.Errorf("levels = %v", c.memory.Levels)
	}
	for _, bad := range [][]string{
		{"-only", "nope"}, {"-peer", "10"}, {"-peer", "0x1s"}, {"-mem-levels", "0"},
		{"-storm-chunk", "10", "-storm-window", "5"}, {"-reps", "0"}, {"extra"},
	} {
		if _, err := parseConfig(bad); err == nil {
			t.Errorf("parseConfig(%v) accepted", bad)
		}
	}
}

func TestReportTargets(t *testing.T) {
	one := func(v float64) Spread { return Spread{Min: v, Median: v, Max: v, N: 1} }
	r := &Report{
		Events: &EventsResult{Ratio: 0.8},
		Batch:  &EventsResult{Gateway: one(1.5e6), Ceiling: one(3e6)},
		Invoke: &InvokeResult{Figures: []InvokeFigure{{Command: "Write", RatioP50: 3.5}}},
		Peer: &PeerResult{Figures: []PeerFigure{
			// node-opcua keeps up here: not its saturated figure.
			{Params: PeerParams{OfferedPerS: 10000}, OPCUA: &PeerSide{UpdatesPerS: one(10000)}, MxGateway: &PeerSide{UpdatesPerS: one(10000)}},
			{Params: PeerParams{OfferedPerS: 200000}, OPCUA: &PeerSide{UpdatesPerS: one(16000)}, MxGateway: &PeerSide{UpdatesPerS: one(190000)}},
			{Params: PeerParams{OfferedPerS: 100000, Values: 100, IntervalMs: 1},
				MxGateway: &PeerSide{UpdatesPerS: one(100000), WorkerLatency: &LatencySpread{P50: one(0.4)}}},
		}},
	}
	r.finish()
	got := map[string]string{}
	for _, ts := range r.Targets {
		got[ts.Target] = ts.Met
	}
	want := map[string]string{
		"events/s >= 80% of the typed ceiling, 1 subscriber":     "yes",
		"batched events/s >= 2.00M, one session, one SDK client": "no",
		"Write p50 <= 3x the bare echo":                          "no",
		"session open p50 <= 3 ms":                               "not measured",
		"session open p50 <= 3 ms (spare worker ready)":          "not measured",
		"idle worker RSS <= 10 MiB":                              "not measured",
		">= 10x node-opcua's saturated updates/s":                "yes", // 190k / 16k
		"event latency p50 < 1 ms at 100.0k events/s":            "yes",
		"BrowseChildren p50 < 1 ms, page of 500":                 "not measured",
	}
	if len(got) != len(want) {
		t.Errorf("targets %v, want %d of them", got, len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: met %q, want %q", k, got[k], v)
		}
	}
}

// docs/performance.md lists the sections -only takes; the list is
// sections.
func TestDocsListSections(t *testing.T) {
	b, err := os.ReadFile("../../docs/performance.md")
	if err != nil {
		t.Fatal(err)
	}
	const marker = "# some sections: "
	for line := range strings.SplitSeq(string(b), "\n") {
		if _, list, ok := strings.Cut(line, marker); ok {
			if got := strings.Fields(list); !slices.Equal(got, sections) {
				t.Fatalf("docs/performance.md lists sections %v, want %v", got, sections)
			}
			return
		}
	}
	t.Fatalf("docs/performance.md has no %q line", marker)
}

// TestEventsTargetUnclearWhenTheCeilingLoses: a ceiling slower than the
// gateway in front of the same reader cannot judge the events target; the
// CPU-based estimate is shown beside the ratio.
func TestEventsTargetUnclearWhenTheCeilingLoses(t *testing.T) {
	r := &Report{Events: &EventsResult{Ratio: 1.65, CPU: &EventsCPU{Ratio: 2}}}
	r.finish()
	ts := r.Targets[0]
	if !strings.HasPrefix(ts.Target, "events/s") || ts.Met != unclear || !strings.Contains(ts.Value, "CPU says 50%") {
		t.Fatalf("target %+v", ts)
	}
}

// The peer rows split the mxgateway latency at the gateway: worker time
// -> receipt and gateway time -> receipt are both printed.
func TestPeerRowsSplitAtTheGateway(t *testing.T) {
	one := func(v float64) Spread { return Spread{Min: v, Median: v, Max: v, N: 1} }
	r := &Report{Peer: &PeerResult{Figures: []PeerFigure{{
		Params: PeerParams{Values: 100, IntervalMs: 1, OfferedPerS: 100000},
		MxGateway: &PeerSide{UpdatesPerS: one(100000), WorkerLatency: &LatencySpread{P50: one(1.25)},
			GatewayLatency: &LatencySpread{P50: one(0.375)}},
	}}}}
	var b strings.Builder
	printTable(&b, r)
	for _, want := range []string{"worker time -> receipt (mxgateway)", "1.25", "gateway time -> receipt (mxgateway)", "0.375"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}
