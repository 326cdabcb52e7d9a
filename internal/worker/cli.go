package worker

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strings"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

// DefaultProgID is the ProgID of the MXAccess COM class.
const DefaultProgID = "LMXProxy.LMXProxyServer"

// Flags is the worker command line shared by mxworker and `mxgateway worker`.
type Flags struct {
	SessionID       string // --session-id
	Endpoint        string // --endpoint
	ProtocolVersion uint32 // --protocol-version
	Backend         string // --backend: "sim" or "mxaccess"
	SimModel        string // --sim-model: model file; empty = built-in demo Galaxy
	SimProfile      string // --sim-profile: "default" or "test"
	SimSeed         int64  // --sim-seed
	ProgID          string // --prog-id
	LogLevel        string // --log-level: debug, info, warn, error
	LogFormat       string // --log-format: json or text
	MaxProcs        int    // --max-procs: GOMAXPROCS; 0 is DefaultMaxProcs of the backend
}

// DefaultMaxProcs is the worker's GOMAXPROCS when --max-procs is 0: two
// (at most the host's CPUs) for every backend but mxaccess, whose
// GOMAXPROCS stays Go's default (0 here: left alone).
//
// A simulator worker is a pipeline of a few goroutines (pipe reader,
// command loop, the simulator's STA goroutine, pipe writer): with two Ps
// the writer sends a batch's first events while the STA still makes the
// rest (with one, an event at 100,000 events/s waited about 1 ms more for
// its batch). More Ps than that add nothing it can use, only threads that
// spin looking for work each time a goroutine is readied: CPU taken from
// the gateway and the other sessions on a host of many cores and many
// workers. The MXAccess worker keeps Go's default: its STA goroutine
// blocks in COM calls and message waits, and its P count is left to the
// deployment.
func DefaultMaxProcs(backend string) int {
	if backend == backendMXAccess {
		return 0
	}
	return min(2, runtime.NumCPU())
}

// backendMXAccess is the --backend value of the MXAccess COM backend.
const backendMXAccess = "mxaccess"

// ParseFlags parses the worker command line. backends lists the accepted
// --backend values. Usage and errors are written to out; -h yields
// flag.ErrHelp.
func ParseFlags(prog string, args []string, backends []string, out io.Writer) (Flags, error) {
	var f Flags
	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&f.SessionID, "session-id", "", "the session this worker serves (required)")
	fs.StringVar(&f.Endpoint, "endpoint", "", "the gateway's endpoint: Unix socket path or named pipe name (required)")
	version := fs.Uint("protocol-version", uint(protocol.Version), "the gateway-worker protocol version the gateway speaks")
	fs.StringVar(&f.Backend, "backend", "sim", "backend to drive: "+strings.Join(backends, " or "))
	fs.StringVar(&f.SimModel, "sim-model", "", "simulator Galaxy model file (default: the built-in demo Galaxy)")
	fs.StringVar(&f.SimProfile, "sim-profile", "default", "simulator timing profile: default or test")
	fs.Int64Var(&f.SimSeed, "sim-seed", 1, "simulator random seed")
	fs.StringVar(&f.ProgID, "prog-id", DefaultProgID, "ProgID of the MXAccess COM class")
	fs.StringVar(&f.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&f.LogFormat, "log-format", "json", "log format on stderr: json or text")
	fs.IntVar(&f.MaxProcs, "max-procs", 0, "GOMAXPROCS of the worker (0: 2 at most, or Go's default with --backend mxaccess)")
	fs.Usage = func() {
		fmt.Fprintf(out, "usage: %s --session-id ID --endpoint EP [flags]\n\n"+
			"Launched by the gateway, which writes the one-time nonce on stdin.\n\n", prog)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("worker: unexpected arguments: %s", strings.Join(fs.Args(), " ")))
	}
	if f.SessionID == "" {
		errs = append(errs, errors.New("worker: --session-id is required"))
	}
	if f.Endpoint == "" {
		errs = append(errs, errors.New("worker: --endpoint is required"))
	}
	if *version == 0 || *version > 1<<31 {
		errs = append(errs, fmt.Errorf("worker: --protocol-version %d is out of range", *version))
	}
	f.ProtocolVersion = uint32(*version)
	if !contains(backends, f.Backend) {
		errs = append(errs, fmt.Errorf("worker: --backend %q is not one of %s", f.Backend, strings.Join(backends, ", ")))
	}
	if f.SimProfile != "default" && f.SimProfile != "test" {
		errs = append(errs, fmt.Errorf("worker: --sim-profile %q is not default or test", f.SimProfile))
	}
	if _, err := parseLevel(f.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if f.MaxProcs < 0 || f.MaxProcs > protocol.MaxWorkerProcs {
		errs = append(errs, fmt.Errorf("worker: --max-procs %d is out of range [0, %d]", f.MaxProcs, protocol.MaxWorkerProcs))
	}
	if f.LogFormat != "json" && f.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("worker: --log-format %q is not json or text", f.LogFormat))
	}
	return f, errors.Join(errs...)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// parseLevel accepts exactly the levels NewLogger (logging.New) does.
func parseLevel(s string) (slog.Level, error) {
	l, err := logging.ParseLevel(s)
	if err != nil {
		return 0, fmt.Errorf("worker: --log-level %q is not debug, info, warn or error", s)
	}
	return l, nil
}

// NewLogger returns the worker's logger: redacting slog lines on w (stderr)
// from logging.New; format "" means JSON, the worker's default.
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	if format == "" {
		format = logging.FormatJSON
	}
	return logging.New(w, level, format)
}

// BackendFactory builds the backend a command line asks for. exit is how the
// backend may end the process (the simulator's crash fault): it flushes what
// the worker has queued, then exits.
type BackendFactory func(f Flags, logger *slog.Logger, exit func(code int)) (backend.Backend, error)

// MainOptions wires Main to a binary.
type MainOptions struct {
	// Prog names the binary in usage and logs.
	Prog string
	// Stdin carries the nonce; Stderr receives usage and logs.
	Stdin  io.Reader
	Stderr io.Writer
	// Dial connects to the endpoint (ipc.Dial).
	Dial DialFunc
	// Backends maps each accepted --backend value to its factory.
	Backends map[string]BackendFactory
	// Exit ends the process when the backend asks; nil means os.Exit.
	Exit func(code int)
}

func (o MainOptions) exit() func(int) {
	if o.Exit != nil {
		return o.Exit
	}
	return os.Exit
}

// Main parses args, builds the backend and runs the worker; it returns the
// process exit code. It is the whole worker process: it also makes the
// process ignore SIGINT (a Ctrl+C at the gateway's console reaches the whole
// process group; the gateway decides the shutdown order, not the terminal). A backend that cannot be built is reported to the
// gateway as a BACKEND_INIT fault after the handshake (exit code
// protocol.ExitBackendInit), so the gateway can show the reason (a model
// file error, mxaccess on the wrong platform).
func Main(ctx context.Context, args []string, opts MainOptions) int {
	names := make([]string, 0, len(opts.Backends))
	for name := range opts.Backends {
		names = append(names, name)
	}
	sort.Strings(names)
	f, err := ParseFlags(opts.Prog, args, names, opts.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return protocol.ExitOK
	}
	if err != nil {
		fmt.Fprintf(opts.Stderr, "%s: %v\n", opts.Prog, err)
		return protocol.ExitBadArguments
	}
	logger, err := NewLogger(opts.Stderr, f.LogLevel, f.LogFormat)
	if err != nil {
		fmt.Fprintf(opts.Stderr, "%s: %v\n", opts.Prog, err)
		return protocol.ExitBadArguments
	}
	procs := f.MaxProcs
	if procs == 0 {
		procs = DefaultMaxProcs(f.Backend)
	}
	if procs > 0 {
		runtime.GOMAXPROCS(procs)
	}
	signal.Ignore(os.Interrupt)
	// The start-up (the backend with its model, the handshake) runs without
	// collections; Run restores the collector once the worker is ready.
	collectAgain := func() {}
	if f.Backend != backendMXAccess {
		collectAgain = relaxStartupGC()
	}
	defer collectAgain()
	logger = logger.With(logging.KeyComponent, opts.Prog, logging.KeyWorkerPID, os.Getpid())
	exiter := NewExiter(opts.exit())
	be, err := opts.Backends[f.Backend](f, logger, exiter.Exit)
	if err != nil {
		be = failedBackend{err: err}
	}
	logger.Info("worker: starting", logging.KeySession, f.SessionID, "backend", f.Backend, "protocol_version", f.ProtocolVersion,
		"max_procs", runtime.GOMAXPROCS(0))
	return Run(ctx, Config{
		SessionID:       f.SessionID,
		Endpoint:        f.Endpoint,
		ProtocolVersion: f.ProtocolVersion,
		Nonce:           opts.Stdin,
		Backend:         be,
		Dial:            opts.Dial,
		Logger:          logger,
		Exiter:          exiter,
		ready:           collectAgain,
	})
}

// failedBackend stands in for a backend that could not be built: its Open
// reports why, and nothing else is ever called.
type failedBackend struct {
	backend.Backend
	err error
}

func (f failedBackend) Open(context.Context, backend.Sink) (*mxgatewayv1.BackendInfo, error) {
	return nil, f.err
}

func (f failedBackend) Close() []string { return nil }
