package metrics

import "github.com/prometheus/client_golang/prometheus"

// Values of the limit label of limit_refusals_total: one per hardening
// limit (docs/security.md lists them with their configuration keys).
const (
	LimitKeySessions     = "key_sessions"     // max_sessions_per_key
	LimitKeyStreams      = "key_streams"      // max_streams_per_key
	LimitHealthWatches   = "health_watches"   // max_health_watches
	LimitCredentialRetry = "credential_retry" // a credential check inside its back-off
)

// limitMetrics are the counters of the hardening limits.
type limitMetrics struct {
	refusals    *prometheus.CounterVec
	credentials *prometheus.CounterVec
}

func newLimitMetrics(reg prometheus.Registerer) limitMetrics {
	l := limitMetrics{
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "limit_refusals_total",
			Help: "Calls refused with RESOURCE_EXHAUSTED by a per-key or pre-authentication limit, by limit."}, []string{"limit"}),
		credentials: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "credential_failures_total",
			Help: "Failed MXAccess credential checks (AuthenticateUser, secured and verified writes), by command kind."}, []string{"command"}),
	}
	reg.MustRegister(l.refusals, l.credentials)
	return l
}

// LimitRefused counts a call refused by the limit named by one of the
// Limit* constants.
func (m *Metrics) LimitRefused(limit string) {
	if m == nil {
		return
	}
	m.limits.refusals.WithLabelValues(limit).Inc()
}

// CredentialFailed counts a failed credential check of a command kind
// (its catalogue name).
func (m *Metrics) CredentialFailed(command string) {
	if m == nil {
		return
	}
	m.limits.credentials.WithLabelValues(command).Inc()
}
