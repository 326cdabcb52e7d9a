package supervisor

// osProcess is the platform part of one worker process. The waiter calls
// awaitExit, then exec.Cmd.Wait, then release; kill may be called at any
// time from any goroutine.
type osProcess interface {
	// awaitExit blocks until the process has exited. Where the platform
	// allows it, the process is not reaped yet, so its pid (and process
	// group) cannot be reused while kill may still signal it.
	awaitExit()
	// kill kills the process with its process group or job and reports
	// whether the process was still running. It never signals a pid that
	// may already belong to someone else.
	kill() (bool, error)
	// release frees what the platform holds for the process after it was
	// reaped.
	release()
}
