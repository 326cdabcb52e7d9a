package main

import (
	"math"
	"slices"
	"time"
)

// Spread is one figure over repetitions: the smallest, the median and the
// largest value.
type Spread struct {
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

// spreadOf summarises xs; an empty input gives a zero Spread.
func spreadOf(xs []float64) Spread {
	if len(xs) == 0 {
		return Spread{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return Spread{Min: s[0], Median: median(s), Max: s[len(s)-1], N: len(s)}
}

// median of sorted values.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted values by
// the nearest-rank method: the smallest value with at least p% of the
// values at or below it.
func percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// Latency is the distribution of one run of timed operations, in
// milliseconds.
type Latency struct {
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
	N   int     `json:"n"`
}

// latencyOf summarises durations.
func latencyOf(ds []time.Duration) Latency {
	ms := make([]float64, len(ds))
	for i, d := range ds {
		ms[i] = float64(d) / float64(time.Millisecond)
	}
	return latencyOfMs(ms)
}

// latencyOfMs summarises latencies given in milliseconds.
func latencyOfMs(ms []float64) Latency {
	s := slices.Clone(ms)
	slices.Sort(s)
	l := Latency{N: len(s)}
	if len(s) > 0 {
		l.P50, l.P99, l.Max = percentile(s, 50), percentile(s, 99), s[len(s)-1]
	}
	return l
}

// LatencySpread is a latency distribution over repetitions: each
// percentile's min/median/max across the runs.
type LatencySpread struct {
	P50 Spread `json:"p50_ms"`
	P99 Spread `json:"p99_ms"`
	Max Spread `json:"max_ms"`
	// Samples is the number of timed operations in each run.
	Samples int `json:"samples_per_run"`
}

func latencySpread(runs []Latency) LatencySpread {
	var p50, p99, mx []float64
	ls := LatencySpread{}
	for _, r := range runs {
		p50, p99, mx = append(p50, r.P50), append(p99, r.P99), append(mx, r.Max)
		ls.Samples = r.N
	}
	ls.P50, ls.P99, ls.Max = spreadOf(p50), spreadOf(p99), spreadOf(mx)
	return ls
}

// ratio divides medians, or returns 0 when the divisor is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
