// Package logging sets up log/slog for every mxgateway binary: text or JSON
// output, the shared attribute keys, and redaction of secrets.
package logging

// Shared attribute keys. Every package logs with these names so that logs
// can be filtered the same way everywhere.
const (
	KeySession     = "session"
	KeyWorkerPID   = "worker_pid"
	KeyCorrelation = "correlation"
	KeyCommand     = "command"
	KeyMethod      = "method"
	KeyKeyID       = "key_id"
	KeyErr         = "err"
	KeyComponent   = "component"
)
