//go:build windows && 386

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/windows"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/backend/mxaccess"
	"github.com/mxgateway/mxgateway/internal/buildinfo"
	"github.com/mxgateway/mxgateway/internal/protocol"
	"github.com/mxgateway/mxgateway/internal/variant"
)

// envTimestampZone selects how VT_DATE timestamps from MXAccess are read:
// "local" (default while unverified) or "utc". See docs/windows.md.
const envTimestampZone = "MXWORKER_TIMESTAMP_ZONE"

// defaultMemoryLimit is the soft Go heap limit when GOMEMLIMIT is unset. A
// 32-bit worker shares at most 4 GiB of address space (2 GiB without
// large-address awareness) with LmxProxy.dll and its dependencies; the Go
// heap should stay well below that and below the job's memory cap.
const defaultMemoryLimit = 1 << 30

var hardenOnce sync.Once

// hardenProcess prepares the process for an in-process COM server
// (MXACCESS.md §8.1): no error dialogs that would hang a headless worker,
// and a Go memory limit below the job's limit.
func hardenProcess(logger *slog.Logger) {
	hardenOnce.Do(func() {
		windows.SetErrorMode(windows.SEM_FAILCRITICALERRORS | windows.SEM_NOGPFAULTERRORBOX)
		if os.Getenv("GOMEMLIMIT") == "" {
			debug.SetMemoryLimit(defaultMemoryLimit)
		}
		logger.Debug("process hardened", "memory_limit", debug.SetMemoryLimit(-1))
	})
}

// newMXAccessBackend builds the real MXAccess backend (windows/386 only).
// The worker calls Open, which creates the COM object on its own STA.
func newMXAccessBackend(progID string, logger *slog.Logger) (backend.Backend, error) {
	hardenProcess(logger)
	b, err := mxaccess.New(mxaccess.OpenCOM, mxaccess.Options{
		ProgID:        progID,
		Logger:        logger,
		TimestampZone: os.Getenv(envTimestampZone),
		WorkerVersion: buildinfo.Get().Version,
	})
	if err != nil {
		return nil, err // not a typed nil inside the interface
	}
	return b, nil
}

// runSelftest implements `mxworker selftest --ref Obj.Attr`: it creates the
// COM object, registers, adds and advises the reference, waits (pumping)
// for the first OnDataChange, prints everything it saw in raw form, and
// tears down in MXAccess order. It is the first thing to run on a new
// System Platform node (docs/windows.md, verification checklist).
func runSelftest(args []string) int {
	fs := flag.NewFlagSet("mxworker selftest", flag.ContinueOnError)
	ref := fs.String("ref", "", "attribute reference to read, e.g. TIC101.PV (required)")
	progID := fs.String("prog-id", mxaccess.DefaultProgID, "ProgID of the MXAccess COM class")
	zone := fs.String("timestamp-zone", envOr(envTimestampZone, mxaccess.ZoneLocal), "how VT_DATE timestamps are read: local or utc")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the first OnDataChange (first bind takes 3-8 s)")
	supervisory := fs.Bool("supervisory", false, "use AdviseSupervisory instead of Advise")
	verbose := fs.Bool("v", false, "debug logging to stderr")
	if err := fs.Parse(args); err != nil {
		return protocol.ExitBadArguments
	}
	if *ref == "" {
		fmt.Fprintln(os.Stderr, "mxworker selftest: --ref is required")
		fs.Usage()
		return protocol.ExitBadArguments
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	hardenProcess(logger)
	return selftest(os.Stdout, logger, *progID, *ref, *zone, *timeout, *supervisory)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func selftest(w io.Writer, logger *slog.Logger, progID, ref, zone string, timeout time.Duration, supervisory bool) int {
	fmt.Fprintf(w, "mxworker selftest %s\nprog-id=%s ref=%q timestamp-zone=%s host-zone=%s\n\n",
		buildinfo.Get(), progID, ref, zone, time.Local.String())
	traces := make(chan mxaccess.Trace, 256)
	b, err := mxaccess.New(mxaccess.OpenCOM, mxaccess.Options{
		ProgID:        progID,
		Logger:        logger,
		TimestampZone: zone,
		Trace: func(tr mxaccess.Trace) {
			select {
			case traces <- tr:
			default:
			}
		},
		OnFault: func(err error) { fmt.Fprintf(w, "BACKEND FAULT: %v\n", err) },
	})
	if err != nil {
		fmt.Fprintln(w, "FAIL:", err)
		return protocol.ExitBadArguments
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout+30*time.Second)
	defer cancel()
	info, err := b.Open(ctx, backend.SinkFunc(func(*mxgatewayv1.Event) {}))
	if err != nil {
		fmt.Fprintln(w, "FAIL: create object:", err)
		printHRESULT(w, err)
		return protocol.ExitBackendInit
	}
	fmt.Fprintf(w, "object: prog_id=%s clsid=%s\n  dll=%s\n  interface_level=%d typelib=%q\n\n",
		info.ProgId, info.Clsid, info.DllPath, info.InterfaceLevel, info.TypelibVersion)
	if d, ok := b.Discovery(); ok {
		d.Format(w)
		fmt.Fprintln(w)
	}

	failed := false
	step := func(name string, err error) bool {
		if err != nil {
			failed = true
			fmt.Fprintf(w, "%s: FAIL: %v\n", name, err)
			printHRESULT(w, err)
			return false
		}
		fmt.Fprintf(w, "%s: ok\n", name)
		return true
	}
	h, err := b.Register(fmt.Sprintf("mxworker-selftest-%d", os.Getpid()))
	if step(fmt.Sprintf("Register -> hLMX=%d", h), err) {
		it, err := b.AddItem(h, ref)
		if step(fmt.Sprintf("AddItem(%q) -> hItem=%d", ref, it), err) {
			method, advise := "Advise", b.Advise
			if supervisory {
				method, advise = "AdviseSupervisory", b.AdviseSupervisory
			}
			start := time.Now()
			if step(method, advise(h, it)) {
				failed = !waitFirstValue(w, traces, h, it, timeout, start) || failed
				step("UnAdvise", b.UnAdvise(h, it))
			}
			step("RemoveItem", b.RemoveItem(h, it))
		}
		step("Unregister", b.Unregister(h))
	}
	for _, warn := range b.Close() {
		fmt.Fprintln(w, "teardown warning:", warn)
	}
	fmt.Fprintln(w, "Close: done (sinks unadvised, object released, CoUninitialize)")
	if failed {
		fmt.Fprintln(w, "\nRESULT: FAIL")
		return 1
	}
	fmt.Fprintln(w, "\nRESULT: OK")
	return 0
}

func printHRESULT(w io.Writer, err error) {
	var ce *backend.CallError
	if errors.As(err, &ce) {
		fmt.Fprintf(w, "  HRESULT=0x%08X message=%q\n", uint32(ce.HRESULT), ce.Message)
	}
}

// waitFirstValue waits for the item's first OnDataChange and prints it raw.
// The STA pumps while this goroutine waits, so events are dispatched.
func waitFirstValue(w io.Writer, traces <-chan mxaccess.Trace, h, it int32, timeout time.Duration, start time.Time) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case <-deadline.C:
			fmt.Fprintf(w, "first OnDataChange: FAIL: none within %s (is the STA pumping? is the platform deployed?)\n", timeout)
			return false
		case tr := <-traces:
			printTrace(w, tr)
			dc := tr.Event.GetDataChange()
			if dc != nil && dc.ServerHandle == h && dc.ItemHandle == it {
				fmt.Fprintf(w, "first OnDataChange after %s\n", time.Since(start).Round(time.Millisecond))
				return true
			}
		}
	}
}

func printTrace(w io.Writer, tr mxaccess.Trace) {
	fmt.Fprintf(w, "\nevent %s with %d arguments:\n", tr.Name, len(tr.Args))
	for i, a := range tr.Args {
		fmt.Fprintf(w, "  arg %d: raw %-28s decoded %s\n", i, a.RawVT.String(), a.String())
		if a.Array != nil {
			h := a.Array.Header
			fmt.Fprintf(w, "         SAFEARRAY dims=%d features=0x%04X elemSize=%d bounds=%v havevartype=%s\n",
				h.Dims, h.Features, h.ElemSize, h.Bounds, h.VT)
			if len(a.Array.Raw) > 0 {
				fmt.Fprintf(w, "         record bytes: % X\n", a.Array.Raw)
			}
		}
		if a.VT == variant.VT_DATE {
			oa, _ := a.Float()
			local, _ := variant.FromOADate(oa, time.Local)
			utc, _ := variant.FromOADate(oa, time.UTC)
			fmt.Fprintf(w, "         VT_DATE %v: read as local = %s, read as UTC = %s, host clock now = %s\n",
				oa, local.Format(time.RFC3339Nano), utc.Format(time.RFC3339Nano), time.Now().UTC().Format(time.RFC3339Nano))
			if d := math.Abs(time.Since(local).Hours()); d > 0.5 {
				fmt.Fprintf(w, "         (as local it is %.1f h from now: stale value, or the zone setting is wrong)\n", d)
			}
		}
	}
	if tr.Event != nil {
		fmt.Fprintf(w, "  decoded event: %s\n", strings.TrimSpace(fmt.Sprint(tr.Event)))
	}
}
