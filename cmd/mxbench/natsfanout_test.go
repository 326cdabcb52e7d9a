package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseConfigNATSFanOut(t *testing.T) {
	c, err := parseConfig([]string{"-only", "nats-fanout", "-nats-fanout-consumers", "20", "-nats-fanout-values", "7"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.only["nats-fanout"] || c.only["events"] {
		t.Errorf("only = %v", c.only)
	}
	p := c.natsFanOut
	if p.Consumers != 20 || p.Values != 7 || p.Chunk < 1 || p.Window < p.Chunk || p.Writes < 1 || p.GapMs < 1 {
		t.Errorf("params = %+v", p)
	}
}

// The gRPC side's limits cover its subscribers, and the table shows the
// figure with the limits it ran with.
func TestNATSFanOutRows(t *testing.T) {
	lim := strings.Join(natsFanOutLimits(1000), " ")
	for _, want := range []string{"--max-subscribers=1000", "--max-streams-per-key=1016", "--max-connections=1064"} {
		if !strings.Contains(lim, want) {
			t.Errorf("limits %q lack %s", lim, want)
		}
	}
	if natsFanOutRows(nil) != nil {
		t.Error("rows of no figure")
	}
	r := &Report{Reps: 1, NATSFanOut: &NATSFanOutResult{
		Params: NATSFanOutParams{Consumers: 1000, Values: 50, Chunk: 1, Window: 50, Writes: 10, GapMs: 200},
		NATS:   spreadOf([]float64{20000}), GRPC: spreadOf([]float64{8000}), Ratio: 2.5, GRPCLimits: lim,
	}}
	var b bytes.Buffer
	printTable(&b, r)
	for _, want := range []string{"NATS fan-out deliveries/s", "20.0k", "8.0k", "2.50", lim} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}
