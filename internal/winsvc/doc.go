// Package winsvc runs the gateway as a Windows service: install, uninstall,
// start and stop it through the service control manager, run under the
// SCM with Stop and Shutdown mapped to context cancellation, and write logs
// to the Windows event log.
//
// The SCM glue (golang.org/x/sys/windows/svc, svc/mgr, svc/eventlog) lives
// in winsvc_windows.go. On other systems every operation returns
// ErrNotSupported and IsWindowsService reports false, so callers need no
// build tags. The state machine behind Run and the event log formatting are
// portable and tested everywhere.
package winsvc
