package metrics

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
)

// gather returns every sample of reg as "name{l1=v1,...}" -> value (the
// sample count for histograms).
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, lp.GetName()+"="+lp.GetValue())
			}
			name := mf.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[name] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[name] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[name+"#count"] = float64(m.GetHistogram().GetSampleCount())
				out[name+"#sum"] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

func TestMetricsMove(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.SessionOpened()
	m.SessionOpened()
	m.SessionClosed()
	m.WorkerStarted(250 * time.Millisecond)
	m.WorkerStarted(time.Second)
	m.WorkerExited("crash")
	m.WorkerKilled("heartbeat")
	m.WorkerEnded("fault")
	write, read := catalog.ByName("write"), catalog.ByName("read_bulk")
	m.CommandStarted(write)
	m.CommandDone(write, OutcomeOK, 2*time.Millisecond)
	m.CommandDone(write, OutcomeMXAccessFailure, time.Millisecond)
	m.CommandDone(read, "weird", time.Millisecond)
	m.CommandDone(nil, OutcomeOK, time.Millisecond)
	m.EventsReceived(mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE, 5)
	m.EventSent(mxgatewayv1.EventFamily_EVENT_FAMILY_ON_WRITE_COMPLETE, 3*time.Millisecond)
	m.EventSent(mxgatewayv1.EventFamily(99), time.Millisecond)
	m.EventsReceived(mxgatewayv1.EventFamily(-3), 2)
	m.EventsReceived(mxgatewayv1.EventFamily_EVENT_FAMILY_UNSPECIFIED, 4)
	m.QueueOverflow("disconnect-subscriber")
	m.HeartbeatFailure()
	m.Fault(mxgatewayv1.ReasonHeartbeatExpired)
	m.AuthDenied(mxgatewayv1.ReasonUnauthenticated)
	m.StreamDisconnect("slow_consumer")
	depth := 7
	m.SetQueueDepthFunc(func() int { return depth })
	m.DataHealthChanged(mxgatewayv1.DataHealth_DATA_HEALTH_FAILED)
	m.SetSparesFunc(func() int { return 2 })
	m.SetDataHealthFunc(func() map[mxgatewayv1.DataHealth]int {
		return map[mxgatewayv1.DataHealth]int{mxgatewayv1.DataHealth_DATA_HEALTH_HEALTHY: 3, mxgatewayv1.DataHealth_DATA_HEALTH_FAILED: 1}
	})

	got := gather(t, reg)
	want := map[string]float64{
		"mxgateway_sessions_opened_total":                                     2,
		"mxgateway_sessions_closed_total":                                     1,
		"mxgateway_sessions_open":                                             1,
		"mxgateway_workers_started_total":                                     2,
		"mxgateway_workers_running":                                           1,
		"mxgateway_workers_exited_total{reason=crash}":                        1,
		"mxgateway_workers_killed_total{reason=heartbeat}":                    1,
		"mxgateway_workers_ended_total{cause=fault}":                          1,
		"mxgateway_worker_startup_duration_seconds#count":                     2,
		"mxgateway_worker_startup_duration_seconds#sum":                       1.25,
		"mxgateway_commands_started_total{command=write}":                     1,
		"mxgateway_commands_total{command=write,outcome=ok}":                  1,
		"mxgateway_commands_total{command=write,outcome=mxaccess_failure}":    1,
		"mxgateway_commands_total{command=read_bulk,outcome=error}":           1,
		"mxgateway_commands_total{command=none,outcome=ok}":                   1,
		"mxgateway_commands_started_total{command=add_item_bulk}":             0,
		"mxgateway_command_duration_seconds{command=write}#count":             2,
		"mxgateway_events_received_total{family=on_data_change}":              5,
		"mxgateway_events_received_total{family=on_write_complete}":           0,
		"mxgateway_events_sent_total{family=on_write_complete}":               1,
		"mxgateway_events_sent_total{family=unknown}":                         1,
		"mxgateway_events_received_total{family=unknown}":                     2,
		"mxgateway_events_received_total{family=unspecified}":                 4,
		"mxgateway_stream_send_latency_seconds#count":                         2,
		"mxgateway_subscriber_queue_depth":                                    7,
		"mxgateway_event_queue_overflows_total{policy=disconnect-subscriber}": 1,
		"mxgateway_heartbeat_failures_total":                                  1,
		"mxgateway_faults_total{reason=HEARTBEAT_EXPIRED}":                    1,
		"mxgateway_auth_denials_total{reason=UNAUTHENTICATED}":                1,
		"mxgateway_stream_disconnects_total{reason=slow_consumer}":            1,
		"mxgateway_data_health_changes_total{health=failed}":                  1,
		"mxgateway_sessions_data_health{health=healthy}":                      3,
		"mxgateway_sessions_data_health{health=failed}":                       1,
		"mxgateway_sessions_data_health{health=degraded}":                     0,
		"mxgateway_sessions_data_health{health=disabled}":                     0,
		"mxgateway_spare_workers_ready":                                       2,
	}
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("missing %s", k)
			continue
		}
		if g != v {
			t.Errorf("%s = %v, want %v", k, g, v)
		}
	}

	depth = 0
	m.SetQueueDepthFunc(nil)
	if got := gather(t, reg)["mxgateway_subscriber_queue_depth"]; got != 0 {
		t.Errorf("queue depth without func = %v", got)
	}

	var build bool
	for k, v := range got {
		if strings.HasPrefix(k, "mxgateway_build_info{") {
			build = v == 1 && strings.Contains(k, "version=") && strings.Contains(k, "go_version=")
		}
	}
	if !build {
		t.Error("build_info missing or not 1")
	}
}

// TestLabelsBounded guards against per-session, per-key or per-item labels.
func TestLabelsBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.WorkerExited("x")
	m.WorkerKilled("x")
	m.CommandStarted(catalog.ByName("x"))
	m.CommandDone(catalog.ByName("x"), OutcomeOK, 0)
	m.QueueOverflow("x")
	m.Fault("x")
	m.AuthDenied("x")
	m.StreamDisconnect("x")
	allowed := map[string]bool{"reason": true, "command": true, "outcome": true, "family": true, "policy": true, "health": true,
		"version": true, "commit": true, "go_version": true}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) < 20 {
		t.Fatalf("only %d metric families registered", len(mfs))
	}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "mxgateway_") {
			t.Errorf("%s lacks the mxgateway_ prefix", mf.GetName())
		}
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if !allowed[lp.GetName()] {
					t.Errorf("%s has unbounded-looking label %q", mf.GetName(), lp.GetName())
				}
			}
		}
	}
}

func TestNilMetricsIsNoOp(t *testing.T) {
	var m *Metrics
	m.SessionOpened()
	m.SessionClosed()
	m.WorkerStarted(time.Second)
	m.WorkerExited("x")
	m.WorkerKilled("x")
	m.CommandStarted(catalog.ByName("write"))
	m.CommandDone(catalog.ByName("write"), OutcomeOK, time.Second)
	m.EventsReceived(mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE, 1)
	m.EventSent(mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE, time.Second)
	m.SetQueueDepthFunc(func() int { return 1 })
	m.QueueOverflow("x")
	m.HeartbeatFailure()
	m.Fault("x")
	m.AuthDenied("x")
	m.StreamDisconnect("x")
	m.SetDataHealthFunc(nil)
	m.SetSparesFunc(nil)
	m.DataHealthChanged(mxgatewayv1.DataHealth_DATA_HEALTH_FAILED)
}

func TestDoubleRegistrationPanics(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg)
	defer func() {
		if recover() == nil {
			t.Fatal("second New on the same registry did not panic")
		}
	}()
	New(reg)
}

func TestNewRegistry(t *testing.T) {
	reg := NewRegistry()
	New(reg)
	got := gather(t, reg)
	if _, ok := got["go_goroutines"]; !ok {
		t.Error("go collector missing")
	}
}

func TestFamilyLabel(t *testing.T) {
	for f, want := range map[mxgatewayv1.EventFamily]string{
		mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE:          "on_data_change",
		mxgatewayv1.EventFamily_EVENT_FAMILY_ON_BUFFERED_DATA_CHANGE: "on_buffered_data_change",
		mxgatewayv1.EventFamily_EVENT_FAMILY_OPERATION_COMPLETE:      "operation_complete",
		mxgatewayv1.EventFamily_EVENT_FAMILY_REPLAY_GAP:              "replay_gap",
		mxgatewayv1.EventFamily(1234):                                "unknown",
	} {
		if got := FamilyLabel(f); got != want {
			t.Errorf("FamilyLabel(%v) = %q, want %q", f, got, want)
		}
	}
}

func BenchmarkEventSent(b *testing.B) {
	m := New(prometheus.NewRegistry())
	for b.Loop() {
		m.EventSent(mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE, time.Millisecond)
	}
}

func TestOutcome(t *testing.T) {
	if Outcome(nil, false) != OutcomeOK || Outcome(nil, true) != OutcomeMXAccessFailure || Outcome(errTest, true) != OutcomeError {
		t.Fatal("Outcome mapping wrong")
	}
}

var errTest = errors.New("test")

// TestEveryCommandKindHasItsLabel: the command metrics carry one child per
// catalogue kind from the start, labelled with its name.
func TestEveryCommandKindHasItsLabel(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg)
	got := gather(t, reg)
	for _, k := range catalog.Kinds() {
		if _, ok := got["mxgateway_commands_started_total{command="+k.Name()+"}"]; !ok {
			t.Errorf("no commands_started_total child for %s", k)
		}
	}
}
