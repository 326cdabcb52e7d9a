// Command quirks holds the minimal reproductions of the places where Wine
// behaves differently from Windows and the Wine suite works around the
// difference in its own set-up (test/wine; TestWine* in quirks_test.go).
// Each mode prints one result line; the tests assert on it.
//
//	quirks pipe-first-instance
//	    go-winio ListenPipe, no Accept, one DialPipeContext (2 s). Windows:
//	    "dial: timeout" (go-winio's TestDialListenerTimesOut). Wine 8:
//	    "dial: connected" (the client got go-winio's first instance).
//	quirks pipe-accept CLIENT.EXE [as-worker]
//	    ListenPipe, Accept, and CLIENT.EXE pipe-dial PIPE as a child, which
//	    dials and writes one frame. "accept: ok peer=PID child=PID" when
//	    Accept got the child's connection, "accept: timeout" when it did
//	    not within 3 s. With as-worker the child gets the pipe as a worker
//	    does, --endpoint=PIPE, and the suite's Wine shim claims the first
//	    instance first (shim/pipefix.c).
//	quirks spawn-orphan MARKER
//	    starts "quirks sleep MARKER" (no job) and exits: not a difference,
//	    the control for the Job Object tests (the child outlives its parent
//	    on Windows and under Wine alike, so only a job can end it).
//	quirks service-config NAME EXE
//	    creates service NAME and applies each optional setting of
//	    winsvc.Install on its own, one line each, then deletes it. Windows:
//	    all "ok". Wine 8: "delayed-auto-start: Invalid level." and
//	    "recovery-on-non-crash-failures: Invalid level." (ChangeServiceConfig2
//	    lacks SERVICE_CONFIG_DELAYED_AUTO_START_INFO and
//	    SERVICE_CONFIG_FAILURE_ACTIONS_FLAG), so `mxgateway service
//	    install` fails under Wine.
//	quirks service-install NAME EXE ARGS...
//	    winsvc.Install without the settings Wine lacks: the suite's way to
//	    register the service so that start, stop and uninstall run for real.
//	quirks removeall
//	    os.RemoveAll of a directory holding a file. Windows: "removeall:
//	    ok". Wine 8: "removeall: <error> (os.Remove: <nil>)": Wine answers
//	    NtSetInformationFile(FileDispositionInformationEx) with a status Go's
//	    Deleteat does not fall back on, while DeleteFile still works.
package main
