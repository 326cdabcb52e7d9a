package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// TestDataWatchdogSeesSilentDeath drives the simulator's silent-death fault
// (calls succeed, no data arrives) through the real gateway and worker: the
// data watchdog (default reference, the demo Galaxy's clock) reports the
// session DEGRADED, then FAILED in SessionInfo, as gateway events in the
// stream, in the metrics and in /readyz, while the session stays READY;
// when data flows again it is HEALTHY and ready again. The client never
// sees the watchdog's registration.
func TestDataWatchdogSeesSilentDeath(t *testing.T) {
	t.Parallel()
	g := harness.Start(t, "--data-watchdog-stale-after=3s", "--data-watchdog-fail-after=5s")
	s := openSession(t, g.Client(), "watchdog")
	eventually(t, "healthy data", func() error {
		if h := s.info().GetDataHealth(); h != mxgatewayv1.DataHealth_DATA_HEALTH_HEALTHY {
			return fmt.Errorf("data health %v", h)
		}
		return nil
	})
	if s.info().GetDataLastChange() == nil {
		t.Fatal("healthy without data_last_change")
	}
	st := s.streamEvents(&mxgatewayv1.StreamEventsRequest{})
	s.register()
	// The watchdog's registration is the worker's first; commands naming it
	// are refused.
	_, err := s.invokeErr(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Unregister{Unregister: &mxgatewayv1.UnregisterCommand{ServerHandle: 1}}})
	wantCode(t, err, codes.InvalidArgument, mxgatewayv1.ReasonHandleReserved)

	death := s.subscribe("Sim.SilentDeath")
	first := st.waitFor("first value of Sim.SilentDeath", dataChangeOf(s.hlmx, death))
	s.write(death, boolValue(true))

	health := func(want mxgatewayv1.DataHealth) func(*mxgatewayv1.Event) bool {
		return func(ev *mxgatewayv1.Event) bool {
			return ev.GetFamily() == mxgatewayv1.EventFamily_EVENT_FAMILY_DATA_HEALTH && ev.GetDataHealth().GetHealth() == want
		}
	}
	deg := st.waitFor("DEGRADED", health(mxgatewayv1.DataHealth_DATA_HEALTH_DEGRADED))
	failed := st.waitFor("FAILED", health(mxgatewayv1.DataHealth_DATA_HEALTH_FAILED))
	for _, ev := range []*mxgatewayv1.Event{deg, failed} {
		if !ev.GetGatewayGenerated() || ev.GetDataHealth().GetReference() != "Line1.Clock" || ev.GetDataHealth().GetReason() == "" {
			t.Fatalf("data health event %v: want gateway-generated, naming Line1.Clock, with a reason", ev)
		}
	}
	if deg.GetSequence() <= first.GetSequence() || failed.GetSequence() != deg.GetSequence()+1 {
		t.Fatalf("sequences: first value %d, DEGRADED %d, FAILED %d; want contiguous after the client's events",
			first.GetSequence(), deg.GetSequence(), failed.GetSequence())
	}
	info := s.info()
	if info.GetDataHealth() != mxgatewayv1.DataHealth_DATA_HEALTH_FAILED || info.GetDataHealthReason() == "" ||
		info.GetState() != mxgatewayv1.SessionState_SESSION_STATE_READY {
		t.Fatalf("SessionInfo under silent death: %v", info)
	}
	if m := g.Metrics(t); !strings.Contains(m, `mxgateway_sessions_data_health{health="failed"} 1`) ||
		!strings.Contains(m, `mxgateway_data_health_changes_total{health="failed"} 1`) {
		t.Fatalf("metrics lack the failed data health:\n%s", grepLines(m, "data_health"))
	}
	eventually(t, "/readyz failing on the failed data", func() error {
		if code, body := g.Get(t, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "data_watchdog") {
			return fmt.Errorf("/readyz %d %q", code, body)
		}
		return nil
	})

	// Calls still succeed; data again makes the session healthy and ready.
	s.write(death, boolValue(false))
	st.waitFor("HEALTHY", health(mxgatewayv1.DataHealth_DATA_HEALTH_HEALTHY))
	eventually(t, "/readyz ready again", func() error {
		if code, body := g.Get(t, "/readyz"); code != http.StatusOK {
			return fmt.Errorf("/readyz %d %q", code, body)
		}
		return nil
	})
	st.stop()
}

func boolValue(v bool) *mxgatewayv1.MxValue {
	return &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_BoolValue{BoolValue: v}}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
