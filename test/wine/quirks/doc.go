// Command quirks holds the minimal reproductions of the places where Wine
// behaves differently from Windows and the Wine suite works around the
// difference in its own set-up (test/wine; TestWine* in quirks_test.go).
// Each mode prints one result line; the tests assert on it.
//
//	quirks pipe-first-instance
//	    go-winio ListenPipe, no Accept, one DialPipeContext (2 s). Windows:
//	    "dial: timeout" (go-winio's TestDialListenerTimesOut). Wine 8:
//	    "dial: connected" (the client got go-winio's first instance).
//	quirks pipe-accept CLIENT.EXE
//	    ListenPipe, Accept, and CLIENT.EXE pipe-dial --endpoint=PIPE as a
//	    child, which dials and writes one frame. "accept: ok peer=PID"
//	    when Accept got the child's connection, "accept: timeout" when it
//	    did not within 3 s. With MXG_WINE_PIPE_WORKAROUND set the Wine
//	    shim claims the first instance first (shim/pipefix.c).
//	quirks spawn-orphan MARKER
//	    starts "quirks sleep MARKER" (no job) and exits: not a difference,
//	    the control for the Job Object tests (the child outlives its parent
//	    on Windows and under Wine alike, so only a job can end it).
//	quirks removeall
//	    os.RemoveAll of a directory holding a file. Windows: "removeall:
//	    ok". Wine 8: "removeall: <error> (os.Remove: <nil>)": Wine answers
//	    NtSetInformationFile(FileDispositionInformationEx) with a status Go's
//	    Deleteat does not fall back on, while DeleteFile still works.
package main
