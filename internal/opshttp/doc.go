// Package opshttp is the gateway's HTTP side listener: /metrics (the
// Prometheus registry), /healthz (the process is alive) and /readyz (every
// readiness check passed on its latest run). Checks run in the background
// at an interval and /readyz answers from the cached results, so a probe
// never starts a worker or touches the key store itself.
package opshttp
