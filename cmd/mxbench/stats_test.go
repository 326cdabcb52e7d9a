package main

import (
	"testing"
	"time"
)

func TestSpreadOf(t *testing.T) {
	cases := []struct {
		in   []float64
		want Spread
	}{
		{nil, Spread{}},
		{[]float64{3}, Spread{3, 3, 3, 1}},
		{[]float64{5, 1, 3}, Spread{1, 3, 5, 3}},
		{[]float64{4, 1, 3, 2}, Spread{1, 2.5, 4, 4}},
	}
	for _, c := range cases {
		if got := spreadOf(c.in); got != c.want {
			t.Errorf("spreadOf(%v) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestSpreadOfDoesNotReorderInput(t *testing.T) {
	in := []float64{3, 1, 2}
	spreadOf(in)
	if in[0] != 3 || in[1] != 1 || in[2] != 2 {
		t.Fatalf("input reordered: %v", in)
	}
}

func TestPercentileNearestRank(t *testing.T) {
	s := make([]float64, 100)
	for i := range s {
		s[i] = float64(i + 1) // 1..100
	}
	for _, c := range []struct{ p, want float64 }{{50, 50}, {99, 99}, {100, 100}, {1, 1}, {0.1, 1}} {
		if got := percentile(s, c.p); got != c.want {
			t.Errorf("percentile(1..100, %v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := percentile([]float64{7}, 99); got != 7 {
		t.Errorf("percentile of one value = %v", got)
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile of nothing = %v", got)
	}
}

func TestLatencyOf(t *testing.T) {
	ds := []time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond, 10 * time.Millisecond}
	l := latencyOf(ds)
	if l.P50 != 2 || l.P99 != 10 || l.Max != 10 || l.N != 4 {
		t.Fatalf("latencyOf = %+v", l)
	}
}

func TestLatencySpread(t *testing.T) {
	ls := latencySpread([]Latency{{1, 5, 9, 10}, {2, 4, 8, 10}, {3, 6, 7, 10}})
	if ls.P50 != (Spread{1, 2, 3, 3}) || ls.P99 != (Spread{4, 5, 6, 3}) || ls.Max != (Spread{7, 8, 9, 3}) || ls.Samples != 10 {
		t.Fatalf("latencySpread = %+v", ls)
	}
}

func TestRatio(t *testing.T) {
	if ratio(1, 0) != 0 || ratio(3, 2) != 1.5 {
		t.Fatal("ratio")
	}
}
