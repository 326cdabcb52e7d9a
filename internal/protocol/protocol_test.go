package protocol

import "testing"

func TestExitReasonBounded(t *testing.T) {
	seen := map[string]bool{}
	for code := -5; code < 300; code++ {
		for _, killed := range []bool{false, true} {
			seen[ExitReason(code, killed)] = true
		}
	}
	if len(seen) > 15 {
		t.Fatalf("ExitReason produced %d distinct labels: %v", len(seen), seen)
	}
	for _, c := range []struct {
		code   int
		killed bool
		want   string
	}{{0, false, "ok"}, {0, true, "killed"}, {-1, false, "signal"}, {7, false, "connection_lost"}, {42, false, "simulated_crash"}, {77, false, "other"},
		{ExitCrashed, false, "crashed"}, {ExitBadArguments, false, "bad_arguments"}, {-1073741819, false, "crashed"}} {
		if got := ExitReason(c.code, c.killed); got != c.want {
			t.Errorf("ExitReason(%d, %v) = %q, want %q", c.code, c.killed, got, c.want)
		}
	}
}
