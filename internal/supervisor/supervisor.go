package supervisor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mxgateway/mxgateway/internal/ipc"
	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/internal/protocol"
	"github.com/mxgateway/mxgateway/internal/workerclient"
)

// Options configure a Supervisor. The zero value re-executes the gateway as a
// simulator worker with the protocol's default timings.
type Options struct {
	// Executable is the worker program; default os.Executable() (the
	// gateway re-executes itself).
	Executable string
	// Args come before the arguments the supervisor appends (--session-id,
	// --endpoint, --protocol-version); default ["worker", "--backend=sim"].
	Args []string
	// Env is added to the inherited environment of every worker (the sim
	// workers' Galaxy runtime endpoint and key).
	Env []string
	// RuntimeDir holds the endpoints and the process records; default
	// os.TempDir()/mxgateway-<uid> (os.TempDir()/mxgateway on Windows, whose
	// temp directory is already per user). Each gateway run works in its
	// own subdirectory gw-<pid>.
	RuntimeDir string
	// StartupTimeout bounds a launch from process start to Ready; default
	// protocol.DefaultStartupTimeout.
	StartupTimeout time.Duration
	// HeartbeatInterval is asked of workers; default
	// protocol.DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// HeartbeatGrace; default protocol.DefaultHeartbeatGrace.
	HeartbeatGrace time.Duration
	// HeartbeatCeiling; default protocol.DefaultHeartbeatCeiling.
	HeartbeatCeiling time.Duration
	// ShutdownTimeout is not used by Launch; it is kept here so that the
	// session manager reads all worker timings from one place. Default
	// protocol.DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// MaxFrameBytes; default protocol.DefaultMaxFrameBytes.
	MaxFrameBytes int
	// EventBuffer and EventBufferBytes bound each client's queue between
	// the pipe and the session (workerclient.Options); defaults
	// workerclient.DefaultEventBuffer and DefaultEventBufferBytes.
	EventBuffer      int
	EventBufferBytes int64
	// WorkerQueueEvents and WorkerQueueBytes bound each worker's outbound
	// event queue, announced at launch (workerclient.Options); defaults
	// protocol.DefaultWorkerQueueEvents and DefaultWorkerQueueBytes.
	WorkerQueueEvents int
	WorkerQueueBytes  int64
	// Logger receives the supervisor's logs and the workers' stderr; nil
	// discards them.
	Logger *slog.Logger
	// OnStartup, when set, receives each successful launch's duration.
	OnStartup func(d time.Duration)
	// OnExit, when set, is called once per worker process when it has been
	// reaped: its pid, exit code (-1 when killed by a signal) and whether
	// the supervisor killed it.
	OnExit func(pid int, code int, killed bool)
}

func (o *Options) setDefaults() error {
	if o.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("supervisor: find own executable: %w", err)
		}
		o.Executable = exe
	}
	if o.Args == nil {
		o.Args = []string{"worker", "--backend=sim"}
	}
	if o.RuntimeDir == "" {
		name := "mxgateway"
		if runtime.GOOS != "windows" {
			name += "-" + strconv.Itoa(os.Getuid())
		}
		o.RuntimeDir = filepath.Join(os.TempDir(), name)
	}
	if o.StartupTimeout <= 0 {
		o.StartupTimeout = protocol.DefaultStartupTimeout
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = protocol.DefaultHeartbeatInterval
	}
	if o.HeartbeatGrace <= 0 {
		o.HeartbeatGrace = protocol.DefaultHeartbeatGrace
	}
	if o.HeartbeatCeiling <= 0 {
		o.HeartbeatCeiling = protocol.DefaultHeartbeatCeiling
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = protocol.DefaultShutdownTimeout
	}
	if o.MaxFrameBytes <= 0 {
		o.MaxFrameBytes = protocol.DefaultMaxFrameBytes
	}
	if o.EventBuffer <= 0 {
		o.EventBuffer = workerclient.DefaultEventBuffer
	}
	if o.EventBufferBytes <= 0 {
		o.EventBufferBytes = workerclient.DefaultEventBufferBytes
	}
	if o.WorkerQueueEvents <= 0 {
		o.WorkerQueueEvents = protocol.DefaultWorkerQueueEvents
	}
	if o.WorkerQueueBytes <= 0 {
		o.WorkerQueueBytes = protocol.DefaultWorkerQueueBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Supervisor launches and supervises worker processes. Its methods are safe
// for concurrent use.
type Supervisor struct {
	opts   Options
	log    *slog.Logger
	runDir string // RuntimeDir/gw-<pid>

	// Lock order: mu → process.mu → the osProcess's own mutex. mu is held
	// across a process start (so Close cannot miss a process being born)
	// and the run directory's creation, never across a wait.
	mu       sync.Mutex
	plat     *platform // created on first use
	workers  map[int]*process
	closed   bool
	waiters  sync.WaitGroup // one per process
	initDone bool
}

// process is one launched worker. Until its connection is accepted the
// supervisor watches it; from then on it is the workerclient.Process of the
// client that owns its life.
type process struct {
	pid     int
	cmd     *exec.Cmd
	os      osProcess
	stderr  *stderrLog
	exited  chan struct{} // closed after the process is reaped
	started time.Time

	mu     sync.Mutex
	killed bool
	state  *os.ProcessState
}

// New validates opts and returns a Supervisor. It starts nothing: the
// per-run directory and the platform spawner are created by the first
// Launch.
func New(opts Options) (*Supervisor, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	if !filepath.IsAbs(opts.RuntimeDir) {
		abs, err := filepath.Abs(opts.RuntimeDir)
		if err != nil {
			return nil, fmt.Errorf("supervisor: runtime dir: %w", err)
		}
		opts.RuntimeDir = abs
	}
	return &Supervisor{
		opts:    opts,
		log:     opts.Logger.With(logging.KeyComponent, "supervisor"),
		runDir:  filepath.Join(opts.RuntimeDir, runDirName(os.Getpid())),
		workers: make(map[int]*process),
	}, nil
}

// ensureInit creates the run directory and the platform spawner once.
// s.mu must be held.
func (s *Supervisor) ensureInit() error {
	if s.initDone {
		return nil
	}
	if err := os.MkdirAll(s.opts.RuntimeDir, 0o700); err != nil {
		return fmt.Errorf("supervisor: create runtime dir: %w", err)
	}
	// A directory with our pid can only be a leftover of an earlier process
	// that had the same pid: we have not created it yet.
	if _, err := os.Lstat(s.runDir); err == nil {
		if err := s.cleanRunDir(s.runDir); err != nil {
			return err
		}
	}
	if err := os.Mkdir(s.runDir, 0o700); err != nil {
		return fmt.Errorf("supervisor: create run dir: %w", err)
	}
	if err := writeRecord(filepath.Join(s.runDir, gatewayRecord), os.Getpid(), ""); err != nil {
		_ = os.RemoveAll(s.runDir)
		return err
	}
	plat, err := newPlatform()
	if err != nil {
		_ = os.RemoveAll(s.runDir)
		return err
	}
	s.plat = plat
	s.initDone = true
	return nil
}

// Launch starts a worker for sessionID and returns its client in state
// Ready. On any failure the process (and its group or job) is killed, the
// endpoint removed, and the error wraps ErrStartTimeout, ErrPeerMismatch,
// ErrWorkerExited, ErrClosed or the workerclient handshake error.
func (s *Supervisor) Launch(ctx context.Context, sessionID string) (*workerclient.Client, error) {
	began := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.opts.StartupTimeout)
	defer cancel()
	log := s.log.With(logging.KeySession, sessionID)

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if err := s.ensureInit(); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	s.mu.Unlock()

	nonce := make([]byte, protocol.NonceBytes)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("supervisor: nonce: %w", err)
	}
	ln, err := ipc.Listen(s.runDir, sessionID)
	if err != nil {
		return nil, fmt.Errorf("supervisor: endpoint: %w", err)
	}
	defer ln.Close() // exactly one connection is accepted; the socket goes at once

	p, err := s.start(sessionID, ln.Endpoint(), nonce, log)
	if err != nil {
		return nil, err
	}
	log = log.With(logging.KeyWorkerPID, p.pid)
	fail := func(err error) (*workerclient.Client, error) {
		p.kill()
		ln.Close()
		// SIGKILL or TerminateJobObject ends it promptly; wait so that no
		// process outlives a failed launch.
		<-p.exited
		log.Warn("supervisor: launch failed", logging.KeyErr, err)
		return nil, err
	}

	conn, err := s.accept(ctx, ln, p)
	if err != nil {
		return fail(s.launchError(ctx, p, "connect", err))
	}
	ln.Close()
	peer, err := ipc.PeerPID(conn)
	if err != nil {
		conn.Close()
		return fail(fmt.Errorf("%w: %v", ErrPeerMismatch, err))
	}
	if peer != p.pid {
		conn.Close()
		return fail(fmt.Errorf("%w: peer pid %d, launched pid %d", ErrPeerMismatch, peer, p.pid))
	}

	client, err := workerclient.New(conn, sessionID, nonce, workerclient.Options{
		HeartbeatInterval: s.opts.HeartbeatInterval,
		HeartbeatGrace:    s.opts.HeartbeatGrace,
		HeartbeatCeiling:  s.opts.HeartbeatCeiling,
		EventBuffer:       s.opts.EventBuffer,
		EventBufferBytes:  s.opts.EventBufferBytes,
		WorkerQueueEvents: s.opts.WorkerQueueEvents,
		WorkerQueueBytes:  s.opts.WorkerQueueBytes,
		MaxFrameBytes:     s.opts.MaxFrameBytes,
		Logger:            s.opts.Logger,
		Process:           p,
	})
	if err != nil {
		conn.Close()
		return fail(err)
	}
	if err := client.Start(ctx); err != nil {
		// The client owns the process now: its end comes after the exit.
		<-client.Done()
		return fail(s.handshakeError(ctx, p, client.End(), err))
	}
	d := time.Since(began)
	if s.opts.OnStartup != nil {
		s.opts.OnStartup(d)
	}
	log.Info("supervisor: worker ready", "startup", d.String())
	return client, nil
}

// start builds the command, starts the process through the platform
// spawner, hands it the nonce and starts its waiter.
func (s *Supervisor) start(sessionID, endpoint string, nonce []byte, log *slog.Logger) (*process, error) {
	args := append(append([]string(nil), s.opts.Args...),
		"--session-id="+sessionID,
		"--endpoint="+endpoint,
		"--protocol-version="+strconv.FormatUint(uint64(protocol.Version), 10),
	)
	cmd := exec.Command(s.opts.Executable, args...)
	if len(s.opts.Env) > 0 {
		cmd.Env = append(os.Environ(), s.opts.Env...)
	}
	errLog := newStderrLog(log.With("worker_stderr", true))
	// Until the pid is known, lines carry the session id only.
	cmd.Stderr = errLog
	// Stdout is never a protocol channel; nil discards it.
	// Bound how long Wait waits for stderr after the exit, should a
	// grandchild keep the pipe open.
	cmd.WaitDelay = 2 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("supervisor: stdin pipe: %w", err)
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	// Starting under mu keeps Close from missing a process that is being
	// born; a start takes a few milliseconds.
	osp, err := s.plat.start(cmd)
	if err != nil {
		s.mu.Unlock()
		errLog.setLogger(log.With("worker_stderr", true))
		return nil, fmt.Errorf("supervisor: start %s: %w", s.opts.Executable, err)
	}
	p := &process{
		pid:     cmd.Process.Pid,
		cmd:     cmd,
		os:      osp,
		stderr:  errLog,
		exited:  make(chan struct{}),
		started: time.Now(),
	}
	s.workers[p.pid] = p
	s.waiters.Add(1)
	s.mu.Unlock()
	errLog.setLogger(log.With(logging.KeyWorkerPID, p.pid, "worker_stderr", true))

	if err := writeRecord(filepath.Join(s.runDir, workerRecordName(p.pid)), p.pid, sessionID); err != nil {
		log.Warn("supervisor: cannot record worker pid", logging.KeyErr, err)
	}
	go s.wait(p, log)

	// The nonce goes on stdin only: argv and the environment show up in
	// process listings and are inherited by children.
	_, werr := io.WriteString(stdin, hex.EncodeToString(nonce)+"\n")
	cerr := stdin.Close()
	if err := errors.Join(werr, cerr); err != nil {
		p.kill()
		<-p.exited
		return nil, s.exitError(p, fmt.Errorf("write nonce: %w", err))
	}
	log.Debug("supervisor: worker started", logging.KeyWorkerPID, p.pid)
	return p, nil
}

// wait is the process's waiter: it reaps the process, reports the exit and
// removes the process's records.
func (s *Supervisor) wait(p *process, log *slog.Logger) {
	defer s.waiters.Done()
	p.os.awaitExit()
	_ = p.cmd.Wait()
	p.os.release()
	p.stderr.flush()

	p.mu.Lock()
	p.state = p.cmd.ProcessState
	killed := p.killed
	p.mu.Unlock()
	code := -1
	if p.state != nil {
		code = p.state.ExitCode()
	}

	s.mu.Lock()
	delete(s.workers, p.pid)
	s.mu.Unlock()
	if err := os.Remove(filepath.Join(s.runDir, workerRecordName(p.pid))); err != nil && !os.IsNotExist(err) {
		log.Warn("supervisor: cannot remove worker record", logging.KeyErr, err)
	}
	// The exit is logged before it is announced: whoever waited for it (a
	// closed session, the readiness probe) logs after it, never before.
	log.Info("supervisor: worker exited", logging.KeyWorkerPID, p.pid, "status", p.status(), "killed", killed)
	close(p.exited)
	if s.opts.OnExit != nil {
		s.opts.OnExit(p.pid, code, killed)
	}
}

// PID implements workerclient.Process.
func (p *process) PID() int { return p.pid }

// Exited implements workerclient.Process: closed once reaped, after the
// exit was logged.
func (p *process) Exited() <-chan struct{} { return p.exited }

// Exit implements workerclient.Process.
func (p *process) Exit() workerclient.Exit {
	p.mu.Lock()
	defer p.mu.Unlock()
	x := workerclient.Exit{Code: -1, Status: "running", Killed: p.killed}
	if p.state != nil {
		x.Code, x.Status = p.state.ExitCode(), p.state.String()
	}
	return x
}

// Kill implements workerclient.Process.
func (p *process) Kill() { p.kill() }

// kill kills the process and its group or job. Safe to call at any time and
// more than once; it never signals a reaped pid.
func (p *process) kill() {
	// p.mu is held across the signal so that the waiter, which reads
	// killed under p.mu after the reap, sees it.
	p.mu.Lock()
	defer p.mu.Unlock()
	if sent, _ := p.os.kill(); sent {
		p.killed = true
	}
}

// status describes how the process ended ("exit status 3", "signal:
// killed"); "running" before that.
func (p *process) status() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == nil {
		return "running"
	}
	return p.state.String()
}

// accept waits for the worker's one connection, until ctx ends or the
// process exits. The accepting goroutine is unblocked by closing ln and
// waited for before returning.
func (s *Supervisor) accept(ctx context.Context, ln ipc.Listener, p *process) (net.Conn, error) {
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ch <- accepted{c, err}
	}()
	select {
	case a := <-ch:
		return a.c, a.err
	case <-ctx.Done():
		// The launch is given up (deadline, or a gateway shutting down
		// with a spare worker on its way): the process goes first, so that
		// it does not see its endpoint vanish or its connection reset and
		// log that as an error of its own; a pending SIGKILL (or a
		// terminated job) lets it run no further code.
		p.kill()
		ln.Close()
		if a := <-ch; a.c != nil {
			a.c.Close()
		}
		return nil, ctx.Err()
	case <-p.exited:
		ln.Close()
		if a := <-ch; a.c != nil {
			a.c.Close()
		}
		return nil, errors.New("process exited before connecting")
	}
}

// launchError turns a failed connect into the most precise error: the
// process exited (with its status and stderr), the start-up deadline
// passed, or the step's own error.
func (s *Supervisor) launchError(ctx context.Context, p *process, step string, err error) error {
	if ctx.Err() == nil { // else accept killed it: the deadline or the cancel is the cause
		select {
		case <-p.exited:
			return s.exitError(p, fmt.Errorf("%s: %w", step, err))
		default:
		}
	}
	return s.deadlineError(ctx, step, err)
}

// handshakeError is launchError for a failed handshake, from the client's
// end: a worker that exited by itself (its pipe ended first, or the exit)
// is ErrWorkerExited with its status and stderr.
func (s *Supervisor) handshakeError(ctx context.Context, p *process, end workerclient.End, err error) error {
	if end.Exit != nil && !end.Exit.Killed {
		return s.exitError(p, fmt.Errorf("handshake: %w", err))
	}
	if lines := p.stderr.lastLines(); len(lines) > 0 {
		err = fmt.Errorf("%w; last stderr: %s", err, strings.Join(lines, " | "))
	}
	return s.deadlineError(ctx, "handshake", err)
}

// deadlineError is a failed step's error: ErrStartTimeout when the
// start-up deadline passed.
func (s *Supervisor) deadlineError(ctx context.Context, step string, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s (startup timeout %v): %w", ErrStartTimeout, step, s.opts.StartupTimeout, err)
	}
	return fmt.Errorf("supervisor: %s: %w", step, err)
}

// exitError describes a worker that exited during start-up.
func (s *Supervisor) exitError(p *process, cause error) error {
	msg := p.status()
	if lines := p.stderr.lastLines(); len(lines) > 0 {
		msg += "; last stderr: " + strings.Join(lines, " | ")
	}
	return fmt.Errorf("%w: %s: %w", ErrWorkerExited, msg, cause)
}

// Close kills every worker still running, waits for them to be reaped, stops
// the spawner and removes the run directory. Clients of killed workers fault
// with workerclient.ErrWorkerGone. Close is safe to call more than once.
func (s *Supervisor) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	procs := make([]*process, 0, len(s.workers))
	for _, p := range s.workers {
		procs = append(procs, p)
	}
	plat := s.plat
	s.mu.Unlock()

	for _, p := range procs {
		p.kill()
	}
	s.waiters.Wait()
	if plat != nil {
		// Only now: on Linux the spawner's thread exiting would deliver
		// Pdeathsig to any worker it started.
		plat.close()
	}
	if len(procs) > 0 {
		s.log.Info("supervisor: killed workers on close", "count", len(procs))
	}
	if plat != nil {
		if err := os.RemoveAll(s.runDir); err != nil {
			return fmt.Errorf("supervisor: remove run dir: %w", err)
		}
	}
	return nil
}

// Running returns the pids of the workers not yet reaped.
func (s *Supervisor) Running() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	pids := make([]int, 0, len(s.workers))
	for pid := range s.workers {
		pids = append(pids, pid)
	}
	return pids
}
