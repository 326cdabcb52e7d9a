package metrics

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	"github.com/mxgateway/mxgateway/internal/buildinfo"
)

// Namespace starts every metric name.
const Namespace = "mxgateway"

// Command outcomes, the values of the outcome label of commands_total.
const (
	OutcomeOK              = "ok"               // MXAccess accepted the call
	OutcomeMXAccessFailure = "mxaccess_failure" // MXAccess refused it (HRESULT/status in the reply)
	OutcomeError           = "error"            // the gateway or worker failed (timeout, worker gone, ...)
)

// outcomes lists the outcomes in the order of the per-kind children.
var outcomes = [...]string{OutcomeOK, OutcomeMXAccessFailure, OutcomeError}

const numOutcomes = len(outcomes)

// Histogram buckets, in seconds.
var (
	startupBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60}
	commandBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
	sendBuckets    = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5}
)

// Metrics holds the gateway's Prometheus collectors. Its methods are the
// only way packages touch them, with label values that stay bounded:
// command kinds, event families, outcomes and reasons, never sessions,
// keys or item references.
//
// A nil *Metrics is valid: every method is a no-op, so packages can take
// one optionally.
type Metrics struct {
	sessionsOpened  prometheus.Counter
	sessionsClosed  prometheus.Counter
	sessionsOpen    prometheus.Gauge
	workersRunning  prometheus.Gauge
	workersStarted  prometheus.Counter
	workersExited   *prometheus.CounterVec
	workersKilled   *prometheus.CounterVec
	workersEnded    *prometheus.CounterVec
	workerStartup   prometheus.Histogram
	commandsStarted *prometheus.CounterVec
	commands        *prometheus.CounterVec
	commandDuration *prometheus.HistogramVec
	eventsReceived  *prometheus.CounterVec
	eventsSent      *prometheus.CounterVec
	sendLatency     prometheus.Histogram
	overflows       *prometheus.CounterVec
	heartbeatFails  prometheus.Counter
	faults          *prometheus.CounterVec
	authDenials     *prometheus.CounterVec
	disconnects     *prometheus.CounterVec
	healthChanges   *prometheus.CounterVec

	// Per-family children, indexed by family and resolved once in New:
	// events are the hot path. A nil slot (UNSPECIFIED, or a family this
	// build does not know) falls back to a label lookup.
	received []prometheus.Counter
	sent     []prometheus.Counter

	// Per-command-kind children, indexed by catalog.Kind.Index and
	// resolved once in New from the catalogue (the label is Kind.Name).
	started  []prometheus.Counter
	done     [][numOutcomes]prometheus.Counter
	duration []prometheus.Observer

	queueDepth atomic.Pointer[func() int]
	dataHealth atomic.Pointer[func() map[mxgatewayv1.DataHealth]int]
	spares     atomic.Pointer[func() int]

	limits limitMetrics
}

// New creates the collectors and registers them on reg (use a fresh
// prometheus.NewRegistry per test). It panics if reg already holds them,
// like prometheus.MustRegister.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sessionsOpened: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "sessions_opened_total",
			Help: "Sessions opened."}),
		sessionsClosed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "sessions_closed_total",
			Help: "Sessions closed, for any reason."}),
		sessionsOpen: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "sessions_open",
			Help: "Sessions open now."}),
		workersRunning: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "workers_running",
			Help: "Worker processes running now."}),
		workersStarted: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "workers_started_total",
			Help: "Worker processes that completed the handshake."}),
		workersExited: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "workers_exited_total",
			Help: "Worker processes that ended, by reason."}, []string{"reason"}),
		workersKilled: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "workers_killed_total",
			Help: "Worker processes the gateway killed, by reason."}, []string{"reason"}),
		workersEnded: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "workers_ended_total",
			Help: "Session workers whose life ended, by the first cause (the worker client's terminal point)."}, []string{"cause"}),
		workerStartup: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "worker_startup_duration_seconds",
			Help: "Time from launching a worker to the end of its handshake.", Buckets: startupBuckets}),
		commandsStarted: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "commands_started_total",
			Help: "Commands sent to workers, by command kind."}, []string{"command"}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "commands_total",
			Help: "Commands finished, by command kind and outcome (ok, mxaccess_failure, error)."}, []string{"command", "outcome"}),
		commandDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "command_duration_seconds",
			Help: "Command round trip through the worker, by command kind.", Buckets: commandBuckets}, []string{"command"}),
		eventsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "events_received_total",
			Help: "Events received from workers, by family."}, []string{"family"}),
		eventsSent: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "events_sent_total",
			Help: "Events sent to subscribers, by family (one per subscriber)."}, []string{"family"}),
		sendLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "stream_send_latency_seconds",
			Help: "Time from the gateway receiving an event to it being sent on a subscriber stream.", Buckets: sendBuckets}),
		overflows: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "event_queue_overflows_total",
			Help: "Subscriber queues that overflowed, by the slow-consumer policy applied."}, []string{"policy"}),
		heartbeatFails: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "heartbeat_failures_total",
			Help: "Workers faulted because their heartbeats stopped."}),
		faults: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "faults_total",
			Help: "Sessions faulted, by reason."}, []string{"reason"}),
		authDenials: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "auth_denials_total",
			Help: "Calls denied by authentication or authorisation, by reason."}, []string{"reason"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "stream_disconnects_total",
			Help: "Event streams ended by the gateway or the client, by reason."}, []string{"reason"}),
		healthChanges: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "data_health_changes_total",
			Help: "Changes of a session's data health found by the data watchdog, by the new health."}, []string{"health"}),
	}
	queueDepth := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "subscriber_queue_depth",
		Help: "Events waiting in all subscriber queues together (sum over subscribers), sampled at scrape."},
		func() float64 {
			if f := m.queueDepth.Load(); f != nil {
				return float64((*f)())
			}
			return 0
		})
	spares := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "spare_workers_ready",
		Help: "Spare workers started and handshaken, waiting for the next OpenSession, sampled at scrape."},
		func() float64 {
			if f := m.spares.Load(); f != nil {
				return float64((*f)())
			}
			return 0
		})
	bi := buildinfo.Get()
	build := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "build_info",
		Help:        "Always 1; the labels describe the running build.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "commit": bi.Commit, "go_version": bi.GoVersion}})
	build.Set(1)

	slots := 0
	for f := range mxgatewayv1.EventFamily_name {
		slots = max(slots, int(f)+1)
	}
	m.received = make([]prometheus.Counter, slots)
	m.sent = make([]prometheus.Counter, slots)
	for f := range mxgatewayv1.EventFamily_name {
		fam := mxgatewayv1.EventFamily(f)
		if fam == mxgatewayv1.EventFamily_EVENT_FAMILY_UNSPECIFIED || f < 0 {
			continue
		}
		m.received[f] = m.eventsReceived.WithLabelValues(FamilyLabel(fam))
		m.sent[f] = m.eventsSent.WithLabelValues(FamilyLabel(fam))
	}

	kinds := catalog.Kinds()
	m.started = make([]prometheus.Counter, len(kinds))
	m.done = make([][numOutcomes]prometheus.Counter, len(kinds))
	m.duration = make([]prometheus.Observer, len(kinds))
	for _, k := range kinds {
		m.started[k.Index()] = m.commandsStarted.WithLabelValues(k.Name())
		for i, o := range outcomes {
			m.done[k.Index()][i] = m.commands.WithLabelValues(k.Name(), o)
		}
		m.duration[k.Index()] = m.commandDuration.WithLabelValues(k.Name())
	}

	reg.MustRegister(m.sessionsOpened, m.sessionsClosed, m.sessionsOpen, m.workersRunning, m.workersStarted,
		m.workersExited, m.workersKilled, m.workersEnded, m.workerStartup, m.commandsStarted, m.commands, m.commandDuration,
		m.eventsReceived, m.eventsSent, m.sendLatency, queueDepth, m.overflows, m.heartbeatFails, m.faults,
		m.authDenials, m.disconnects, build, m.healthChanges, &dataHealthCollector{m: m}, spares)
	m.limits = newLimitMetrics(reg)
	return m
}

// HealthLabel returns the health label value of a data health: "disabled",
// "starting", "healthy", "degraded" or "failed".
func HealthLabel(h mxgatewayv1.DataHealth) string {
	if _, ok := mxgatewayv1.DataHealth_name[int32(h)]; !ok {
		return "unknown"
	}
	return strings.ToLower(strings.TrimPrefix(h.String(), "DATA_HEALTH_"))
}

var dataHealthDesc = prometheus.NewDesc(Namespace+"_sessions_data_health",
	"Open sessions by the data watchdog's classification of their data, sampled at scrape.", []string{"health"}, nil)

// dataHealthCollector samples the data health counts at each scrape, with
// a series for every health (0 included).
type dataHealthCollector struct{ m *Metrics }

func (c *dataHealthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- dataHealthDesc }

func (c *dataHealthCollector) Collect(ch chan<- prometheus.Metric) {
	var counts map[mxgatewayv1.DataHealth]int
	if f := c.m.dataHealth.Load(); f != nil {
		counts = (*f)()
	}
	for v := range mxgatewayv1.DataHealth_name {
		h := mxgatewayv1.DataHealth(v)
		if h == mxgatewayv1.DataHealth_DATA_HEALTH_UNSPECIFIED {
			continue
		}
		ch <- prometheus.MustNewConstMetric(dataHealthDesc, prometheus.GaugeValue, float64(counts[h]), HealthLabel(h))
	}
}

// SetDataHealthFunc sets the function sessions_data_health samples at each
// scrape: how many open sessions are in each data health.
func (m *Metrics) SetDataHealthFunc(f func() map[mxgatewayv1.DataHealth]int) {
	if m == nil {
		return
	}
	if f == nil {
		m.dataHealth.Store(nil)
		return
	}
	m.dataHealth.Store(&f)
}

// SetSparesFunc sets the function spare_workers_ready samples at each
// scrape: how many spare workers are ready.
func (m *Metrics) SetSparesFunc(f func() int) {
	if m == nil {
		return
	}
	if f == nil {
		m.spares.Store(nil)
		return
	}
	m.spares.Store(&f)
}

// DataHealthChanged counts a change of one session's data health to h.
func (m *Metrics) DataHealthChanged(h mxgatewayv1.DataHealth) {
	if m == nil {
		return
	}
	m.healthChanges.WithLabelValues(HealthLabel(h)).Inc()
}

// NewRegistry returns a registry holding the Go runtime and process
// collectors, for the gateway's /metrics.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// FamilyLabel returns the family label value of an event family:
// "on_data_change", "on_write_complete", "operation_complete",
// "on_buffered_data_change" or "replay_gap".
func FamilyLabel(f mxgatewayv1.EventFamily) string {
	if _, ok := mxgatewayv1.EventFamily_name[int32(f)]; !ok {
		return "unknown"
	}
	return strings.ToLower(strings.TrimPrefix(f.String(), "EVENT_FAMILY_"))
}

// SessionOpened counts an opened session.
func (m *Metrics) SessionOpened() {
	if m == nil {
		return
	}
	m.sessionsOpened.Inc()
	m.sessionsOpen.Inc()
}

// SessionClosed counts a closed session, whatever closed it. Call it once
// per SessionOpened.
func (m *Metrics) SessionClosed() {
	if m == nil {
		return
	}
	m.sessionsClosed.Inc()
	m.sessionsOpen.Dec()
}

// WorkerStarted counts a worker that finished its handshake after startup
// (launch to ready) and is now running.
func (m *Metrics) WorkerStarted(startup time.Duration) {
	if m == nil {
		return
	}
	m.workersStarted.Inc()
	m.workersRunning.Inc()
	m.workerStartup.Observe(startup.Seconds())
}

// WorkerExited counts a started worker whose process ended, with a bounded
// reason such as "shutdown", "crash", "killed", "connection_lost". Call it
// once per WorkerStarted.
func (m *Metrics) WorkerExited(reason string) {
	if m == nil {
		return
	}
	m.workersExited.WithLabelValues(reason).Inc()
	m.workersRunning.Dec()
}

// WorkerEnded counts a started worker whose life ended, with the typed
// first cause of its end (workerclient.Cause's name: "closed", "exited",
// "pipe_ended", "heartbeat", "fault", "killed", ...). Call it once per
// WorkerStarted, with WorkerExited.
func (m *Metrics) WorkerEnded(cause string) {
	if m == nil {
		return
	}
	m.workersEnded.WithLabelValues(cause).Inc()
}

// WorkerKilled counts a worker the gateway killed, with a bounded reason
// such as "heartbeat", "shutdown_timeout", "startup_timeout",
// "protocol_error", "gateway_shutdown".
func (m *Metrics) WorkerKilled(reason string) {
	if m == nil {
		return
	}
	m.workersKilled.WithLabelValues(reason).Inc()
}

// CommandStarted counts a command of kind sent to a worker; the label is
// the catalogue's name of the kind (the Command oneof's field name, for
// example "write"; "none" for a nil kind).
func (m *Metrics) CommandStarted(kind *catalog.Kind) {
	if m == nil {
		return
	}
	if i := kind.Index(); i >= 0 && i < len(m.started) {
		m.started[i].Inc()
		return
	}
	m.commandsStarted.WithLabelValues(kind.Name()).Inc()
}

// CommandDone counts a finished command of kind with its outcome (OutcomeOK,
// OutcomeMXAccessFailure or OutcomeError; anything else counts as error)
// and records its round trip d.
func (m *Metrics) CommandDone(kind *catalog.Kind, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	o := 2 // OutcomeError
	for i, name := range outcomes {
		if name == outcome {
			o = i
		}
	}
	if i := kind.Index(); i >= 0 && i < len(m.done) {
		m.done[i][o].Inc()
		m.duration[i].Observe(d.Seconds())
		return
	}
	m.commands.WithLabelValues(kind.Name(), outcomes[o]).Inc()
	m.commandDuration.WithLabelValues(kind.Name()).Observe(d.Seconds())
}

// EventsReceived counts n events of family f received from a worker.
func (m *Metrics) EventsReceived(f mxgatewayv1.EventFamily, n int) {
	if m == nil {
		return
	}
	familyCounter(m.received, m.eventsReceived, f).Add(float64(n))
}

// EventSent counts one event of family f sent to one subscriber and
// records latency, the time since the gateway received it.
func (m *Metrics) EventSent(f mxgatewayv1.EventFamily, latency time.Duration) {
	if m == nil {
		return
	}
	familyCounter(m.sent, m.eventsSent, f).Inc()
	m.sendLatency.Observe(latency.Seconds())
}

// familyCounter returns the child of vec for family f: the pre-resolved
// slot when there is one, else a label lookup.
func familyCounter(slots []prometheus.Counter, vec *prometheus.CounterVec, f mxgatewayv1.EventFamily) prometheus.Counter {
	if uint64(f) < uint64(len(slots)) {
		if c := slots[f]; c != nil {
			return c
		}
	}
	return vec.WithLabelValues(FamilyLabel(f))
}

// SetQueueDepthFunc sets the function subscriber_queue_depth samples at
// each scrape: the number of events waiting in all subscriber queues
// together. It must be cheap and safe to call from any goroutine.
func (m *Metrics) SetQueueDepthFunc(f func() int) {
	if m == nil {
		return
	}
	if f == nil {
		m.queueDepth.Store(nil)
		return
	}
	m.queueDepth.Store(&f)
}

// QueueOverflow counts a full subscriber queue and the slow-consumer policy
// applied ("fault-session" or "disconnect-subscriber").
func (m *Metrics) QueueOverflow(policy string) {
	if m == nil {
		return
	}
	m.overflows.WithLabelValues(policy).Inc()
}

// HeartbeatFailure counts a worker faulted for missing heartbeats.
func (m *Metrics) HeartbeatFailure() {
	if m == nil {
		return
	}
	m.heartbeatFails.Inc()
}

// Fault counts a faulted session with a bounded reason; use the ErrorInfo
// reason constants of api/mxgateway/v1 (WORKER_EXITED, HEARTBEAT_EXPIRED,
// SLOW_CONSUMER, ...).
func (m *Metrics) Fault(reason string) {
	if m == nil {
		return
	}
	m.faults.WithLabelValues(reason).Inc()
}

// AuthDenied counts a denied call with a bounded reason, for example
// UNAUTHENTICATED, PERMISSION_DENIED, NOT_SESSION_OWNER.
func (m *Metrics) AuthDenied(reason string) {
	if m == nil {
		return
	}
	m.authDenials.WithLabelValues(reason).Inc()
}

// StreamDisconnect counts an ended event stream with a bounded reason, for
// example "client", "slow_consumer", "session_closed", "shutdown".
func (m *Metrics) StreamDisconnect(reason string) {
	if m == nil {
		return
	}
	m.disconnects.WithLabelValues(reason).Inc()
}
