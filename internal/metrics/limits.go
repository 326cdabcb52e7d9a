package metrics

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// limitMetrics are the counters of the hardening limits.
type limitMetrics struct {
	refusals    *prometheus.CounterVec
	credentials *prometheus.CounterVec
	conns       *prometheus.GaugeVec
}

func newLimitMetrics(reg prometheus.Registerer) limitMetrics {
	l := limitMetrics{
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "limit_refusals_total",
			Help: "Calls refused with RESOURCE_EXHAUSTED by a per-key or pre-authentication limit, by limit (the ErrorInfo reason, lower case)."}, []string{"limit"}),
		credentials: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "credential_failures_total",
			Help: "Failed MXAccess credential checks (AuthenticateUser, secured and verified writes), by command kind."}, []string{"command"}),
		conns: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "connections_open",
			Help: "Connections open now, by listener (grpc, http); max_connections bounds each."}, []string{"listener"}),
	}
	reg.MustRegister(l.refusals, l.credentials, l.conns)
	return l
}

// LimitRefused counts a call refused by a hardening limit; reason is the
// refusal's ErrorInfo reason (mxgatewayv1.ReasonKeySessionLimit,
// ReasonKeyStreamLimit, ReasonCredentialThrottled, ReasonWatchLimit), and
// the label its lower-case form (key_stream_limit, ...).
func (m *Metrics) LimitRefused(reason string) {
	if m == nil {
		return
	}
	m.limits.refusals.WithLabelValues(strings.ToLower(reason)).Inc()
}

// CredentialFailed counts a failed credential check of a command kind
// (its catalogue name).
func (m *Metrics) CredentialFailed(command string) {
	if m == nil {
		return
	}
	m.limits.credentials.WithLabelValues(command).Inc()
}

// ConnectionOpened counts a connection accepted by listener ("grpc" or
// "http").
func (m *Metrics) ConnectionOpened(listener string) {
	if m == nil {
		return
	}
	m.limits.conns.WithLabelValues(listener).Inc()
}

// ConnectionClosed counts the end of a connection of listener.
func (m *Metrics) ConnectionClosed(listener string) {
	if m == nil {
		return
	}
	m.limits.conns.WithLabelValues(listener).Dec()
}
