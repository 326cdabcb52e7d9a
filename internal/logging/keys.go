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
	KeyAddr        = "addr"      // a listen or peer address
	KeyReason      = "reason"    // a bounded reason (also the metrics label)
	KeyExitCode    = "exit_code" // a process exit code
	KeyCheck       = "check"     // a readiness check name
	KeyLine        = "line"      // an unparsed worker output line
)
