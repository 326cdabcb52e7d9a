package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/logging"
)

// idBytes is the entropy of a session id (128 bits from crypto/rand).
const idBytes = 16

// tombstones is how many closed session ids are remembered so that a
// repeated CloseSession reports already_closed instead of NOT_FOUND.
const tombstones = 4096

// OpenRequest describes a session to open.
type OpenRequest struct {
	// ClientName is the client's name for logs and listings.
	ClientName string
	// OwnerKeyID is the id of the API key opening the session ("" without
	// authentication); ownership checks compare against it.
	OwnerKeyID string
	// QuotaExempt opens the session whatever MaxSessionsPerKey says (an
	// admin key); the session still counts against MaxSessions and
	// against its owner's quota.
	QuotaExempt bool
}

// Manager owns every session of the gateway: it opens them (launching a
// worker each), enforces the session and pending-command limits, expires
// leases and closes everything at shutdown.
//
// New starts nothing; the lease sweeper starts with the first Open and is
// stopped by Shutdown or Close.
type Manager struct {
	opts Options
	log  *slog.Logger

	// launchCtx is cancelled by Shutdown to abort launches in progress.
	launchCtx    context.Context
	cancelLaunch context.CancelFunc

	opens   sync.WaitGroup // Open calls in progress
	closers sync.WaitGroup // lease-expiry closes in progress

	mu          sync.Mutex
	sessions    map[string]*Session
	starting    int
	startingBy  map[string]int // opening sessions by owner key
	refusing    bool
	tomb        map[string]Tombstone
	tombOrder   []string
	sweepStop   chan struct{}
	sweepDone   chan struct{}
	shutdown    chan struct{} // closed when Shutdown finished
	shutStarted bool
}

// New validates opts and returns a Manager.
func New(opts Options) (*Manager, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{
		opts:         o,
		log:          o.Logger.With(logging.KeyComponent, "session"),
		launchCtx:    ctx,
		cancelLaunch: cancel,
		sessions:     make(map[string]*Session),
		startingBy:   make(map[string]int),
		tomb:         make(map[string]Tombstone),
		shutdown:     make(chan struct{}),
	}, nil
}

// Options returns the effective options (defaults applied).
func (m *Manager) Options() Options { return m.opts }

// Open launches a worker, waits until it is ready and registers the session.
// It fails fast with ErrLimit when MaxSessions sessions are open or opening,
// and with ErrShuttingDown after StopAccepting or Shutdown. A launch failure
// is wrapped in ErrStartFailed; nothing is left behind on failure.
func (m *Manager) Open(ctx context.Context, req OpenRequest) (*Session, error) {
	m.mu.Lock()
	if m.refusing {
		m.mu.Unlock()
		return nil, ErrShuttingDown
	}
	if len(m.sessions)+m.starting >= m.opts.MaxSessions {
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: %d open or opening", ErrLimit, m.opts.MaxSessions)
	}
	if err := m.keyQuotaLocked(req); err != nil {
		m.mu.Unlock()
		return nil, err
	}
	m.starting++
	m.startingBy[req.OwnerKeyID]++
	m.opens.Add(1)
	m.startSweeperLocked()
	m.mu.Unlock()
	defer m.opens.Done()

	s, err := m.launch(ctx, req)
	if err == nil && m.watchdogEnabled() {
		s.setupWatchdog(ctx)
	}

	m.mu.Lock()
	m.starting--
	if m.startingBy[req.OwnerKeyID]--; m.startingBy[req.OwnerKeyID] <= 0 {
		delete(m.startingBy, req.OwnerKeyID)
	}
	if err == nil && m.refusing {
		err = ErrShuttingDown
	}
	if err != nil {
		m.mu.Unlock()
		if s != nil {
			s.w.Kill("session not opened")
			<-s.w.Done()
		}
		return nil, err
	}
	if m.watchdogEnabled() {
		s.wdDone = make(chan struct{})
		go s.watch()
	}
	m.sessions[s.id] = s
	go s.run()
	m.mu.Unlock()

	s.log.Info("session opened", slog.String("client", req.ClientName))
	if h := m.opts.Hooks.SessionOpened; h != nil {
		h(s.id)
	}
	return s, nil
}

// keyQuotaLocked refuses a session for req's owner when it already has
// MaxSessionsPerKey sessions open or opening. m.mu must be held.
func (m *Manager) keyQuotaLocked(req OpenRequest) error {
	limit, owner := m.opts.MaxSessionsPerKey, req.OwnerKeyID
	if limit == 0 || owner == "" || req.QuotaExempt {
		return nil
	}
	n := m.startingBy[owner]
	for _, s := range m.sessions {
		if s.ownerKeyID == owner {
			n++
		}
	}
	if n >= limit {
		return fmt.Errorf("%w: %d open or opening", ErrKeyLimit, limit)
	}
	return nil
}

// launch starts the worker; on success the returned session is not yet
// registered and its pump not started.
func (m *Manager) launch(ctx context.Context, req OpenRequest) (*Session, error) {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(m.launchCtx, cancel)
	defer stop()
	id, w, err := m.acquire(lctx)
	if err != nil {
		switch {
		case m.launchCtx.Err() != nil:
			return nil, ErrShuttingDown
		case ctx.Err() != nil:
			return nil, fmt.Errorf("session: open: %w", ctx.Err())
		}
		m.log.Warn("worker start failed", slog.String(logging.KeySession, id), slog.Any(logging.KeyErr, err))
		return nil, fmt.Errorf("%w: %w", ErrStartFailed, err)
	}
	s := newSession(m, id, req, w)
	if err := ctx.Err(); err != nil {
		// The caller gave up and will never learn the id.
		return s, fmt.Errorf("session: open: %w", err)
	}
	return s, nil
}

// acquire gets a ready worker and its session id from Options.Acquire, or
// from a fresh id and Options.Launch.
func (m *Manager) acquire(ctx context.Context) (string, Worker, error) {
	if m.opts.Acquire != nil {
		return m.opts.Acquire(ctx)
	}
	id, err := NewID()
	if err != nil {
		return "", nil, err
	}
	w, err := m.opts.Launch(ctx, id)
	return id, w, err
}

// NewID returns a fresh session id: 128 bits from crypto/rand, in hex.
func NewID() (string, error) {
	b := make([]byte, idBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("session: generate id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Get returns the session with id, or ErrNotFound.
func (m *Manager) Get(id string) (*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.sessions[id]; ok {
		return s, nil
	}
	return nil, ErrNotFound
}

// List returns a snapshot of every registered session.
func (m *Manager) List() []Info {
	m.mu.Lock()
	all := make([]*Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		all = append(all, s)
	}
	m.mu.Unlock()
	out := make([]Info, 0, len(all))
	for _, s := range all {
		out = append(out, s.Info())
	}
	return out
}

// QueuedEvents is the number of events waiting in every subscriber queue of
// every session together (for the subscriber_queue_depth gauge).
func (m *Manager) QueuedEvents() int {
	m.mu.Lock()
	all := make([]*Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		all = append(all, s)
	}
	m.mu.Unlock()
	n := 0
	for _, s := range all {
		n += s.QueuedEvents()
	}
	return n
}

// Len is the number of registered sessions.
func (m *Manager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}

// CloseSession closes the session with id. Closing a recently closed
// session reports AlreadyClosed; an unknown id is ErrNotFound.
func (m *Manager) CloseSession(ctx context.Context, id string) (CloseResult, error) {
	m.mu.Lock()
	s, ok := m.sessions[id]
	if !ok {
		ts, dead := m.tomb[id]
		m.mu.Unlock()
		if dead {
			return CloseResult{AlreadyClosed: true, State: ts.State}, nil
		}
		return CloseResult{}, ErrNotFound
	}
	m.mu.Unlock()
	return s.Close(ctx), nil
}

// Tombstone is what the manager remembers of a recently closed session.
type Tombstone struct {
	// State is the final state: CLOSED, or FAULTED.
	State mxgatewayv1.SessionState
	// OwnerKeyID is the key that opened it, for ownership checks: a
	// caller that may not use the session must get the answer of an
	// unknown id.
	OwnerKeyID string
	// FaultReason is the fault of a FAULTED session.
	FaultReason string
}

// Tombstone returns what is remembered of the recently closed session id.
func (m *Manager) Tombstone(id string) (Tombstone, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ts, ok := m.tomb[id]
	return ts, ok
}

// remove unregisters a closed session and remembers its id.
func (m *Manager) remove(s *Session, final mxgatewayv1.SessionState) {
	ts := Tombstone{State: final, OwnerKeyID: s.ownerKeyID}
	s.mu.Lock()
	if s.fault != nil {
		ts.FaultReason = s.fault.Reason
	}
	s.mu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sessions[s.id] != s {
		return
	}
	delete(m.sessions, s.id)
	if len(m.tombOrder) >= tombstones {
		delete(m.tomb, m.tombOrder[0])
		m.tombOrder = m.tombOrder[1:]
	}
	m.tomb[s.id] = ts
	m.tombOrder = append(m.tombOrder, s.id)
}

// run is the session's event goroutine. When the worker ended without a
// close (the session faulted: the worker exited, missed heartbeats or was
// killed for a slow consumer) the session is closed at once: it leaves the
// table and no longer counts against MaxSessions, whatever its subscribers
// do. Its tombstone keeps the fault for the owner's later calls.
func (s *Session) run() {
	s.pump()
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if !closing {
		s.close(context.Background(), "worker ended")
	}
}

// StopAccepting makes Open fail with ErrShuttingDown from now on. Shutdown
// calls it; the gRPC server calls it earlier in its shutdown sequence.
func (m *Manager) StopAccepting() {
	m.mu.Lock()
	m.refusing = true
	m.mu.Unlock()
}

// Shutdown refuses new sessions, aborts launches in progress and closes
// every session in parallel: each gets a graceful worker shutdown within
// CloseTimeout and ctx, then is killed. It returns when every worker is gone
// and every goroutine of the manager has ended; ctx's error if its deadline
// forced kills. Later calls wait for the first.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	if m.shutStarted {
		m.mu.Unlock()
		select {
		case <-m.shutdown:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.shutStarted = true
	m.refusing = true
	all := make([]*Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		all = append(all, s)
	}
	stop, done := m.sweepStop, m.sweepDone
	m.mu.Unlock()

	m.cancelLaunch()
	if stop != nil {
		close(stop)
		<-done
	}
	if len(all) > 0 {
		m.log.Info("closing sessions", slog.Int("count", len(all)))
	}
	var wg sync.WaitGroup
	for _, s := range all {
		wg.Go(func() { s.close(ctx, "gateway shutting down") })
	}
	wg.Wait()
	m.opens.Wait()
	m.closers.Wait()
	close(m.shutdown)
	return ctx.Err()
}

// Close shuts down at once: every worker is killed without a graceful
// teardown. Safe to call twice.
func (m *Manager) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.Shutdown(ctx); err != nil && err != context.Canceled {
		return err
	}
	return nil
}
