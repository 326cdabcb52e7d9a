// Package client is a sim worker's link to the simulated Galaxy runtime
// (internal/galaxy/runtime): it connects and authenticates, builds the
// model the runtime serves, keeps the runtime told of the attributes the
// session advises (its interest set), feeds the runtime's changes of them
// to the session's simulator, sends the session's accepted writes back in
// batches, and when the runtime goes away marks every value bad and
// reconnects until it is back, so the session survives a runtime restart.
package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/mxgateway/mxgateway/api/mxgateway/galaxy/v1"
	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/backend/sim"
	"github.com/mxgateway/mxgateway/internal/galaxy/wire"
	"github.com/mxgateway/mxgateway/internal/ipc"
)

// DialTimeout bounds a worker's first connection to the runtime, the
// model and the snapshot included.
const DialTimeout = 30 * time.Second

// MaxQueuedWrites bounds the writes a session holds for the runtime.
const MaxQueuedWrites = 1 << 16

// ErrRefused is returned when the runtime refuses the Hello.
var ErrRefused = errors.New("galaxy: runtime refused the connection")

// Options configure a client.
type Options struct {
	// Dir is the runtime directory (endpoint and key).
	Dir string
	// Key is the credential; nil reads it from Dir's key file at every
	// connection.
	Key []byte
	// Name names the client in the runtime's logs.
	Name string
	// Logger; nil discards.
	Logger *slog.Logger
}

// Session is a connected session link. It implements sim.Galaxy.
type Session struct {
	opts Options
	log  *slog.Logger

	model    *sim.Model
	snapshot []sim.Change

	mu            sync.Mutex
	wc            *wire.Conn
	nc            net.Conn
	seq           uint64
	writes        []*galaxyv1.ValueChange
	b             *sim.Backend
	closed        bool
	wake          chan struct{}
	done          chan struct{}
	wg            sync.WaitGroup
	firstSettings *galaxyv1.Settings
	ownFirstBind  time.Duration // the session's own first-bind knob

	// The interest set (sim.InterestGalaxy): the runtime sends only the
	// changes of the attributes the session's items advise.
	filtered bool             // the runtime filters this session (Welcome.filtered)
	all      bool             // the set went past its bounds: every change, for good
	want     wire.InterestSet // what the session follows
	pending  map[string]bool  // changes of want not sent on this connection: true add, false remove
	sendAll  bool             // an Interest.all not sent yet
	nextID   uint64           // the last Interest number handed out
	sentID   uint64           // the last number the runtime has (sent, or in a Hello)
	live     bool             // wc is the connection pending changes go to
}

var _ sim.InterestGalaxy = (*Session)(nil)

// Dial connects, reads the model and the snapshot, and returns a session
// link ready for Attach.
func Dial(ctx context.Context, opts Options) (*Session, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Session{opts: opts, log: opts.Logger, wake: make(chan struct{}, 1), done: make(chan struct{})}
	nc, wc, w, snap, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	s.model, err = wire.BuildModel(w.GetModel())
	if err != nil {
		nc.Close()
		return nil, err
	}
	s.nc, s.wc, s.seq, s.snapshot = nc, wc, w.GetDeploySequence(), snap
	s.filtered, s.live = w.GetFiltered(), true
	return s, nil
}

// connect dials and reads the Welcome and the snapshot.
func (s *Session) connect(ctx context.Context) (net.Conn, *wire.Conn, *galaxyv1.Welcome, []sim.Change, error) {
	key := s.opts.Key
	if key == nil {
		// Read at every connection: a runtime restarted by hand may have
		// made a new key.
		k, err := wire.ReadKey(s.opts.Dir)
		if err != nil {
			return nil, nil, nil, nil, err
		}
		key = k
	}
	nc, err := ipc.Dial(ctx, wire.Endpoint(s.opts.Dir))
	if err != nil {
		return nil, nil, nil, nil, err
	}
	wc := wire.NewConn(nc)
	// The interest set as of now goes in the Hello: the changes not sent
	// on the old connection are in it, and the snapshot resolves them.
	s.mu.Lock()
	filtered, interest := !s.all, s.want.Refs()
	s.pending, s.sendAll, s.sentID, s.live = nil, false, s.nextID, false
	s.mu.Unlock()
	if err := wc.Write(&galaxyv1.GalaxyEnvelope{Body: &galaxyv1.GalaxyEnvelope_Hello{Hello: &galaxyv1.Hello{
		ProtocolVersion: wire.ProtocolVersion, Credential: key, ClientName: s.opts.Name, Subscribe: true,
		Filtered: filtered, Interest: interest}}}); err != nil {
		nc.Close()
		return nil, nil, nil, nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetReadDeadline(dl)
	}
	env, err := wc.Read()
	if err != nil {
		nc.Close()
		return nil, nil, nil, nil, err
	}
	w := env.GetWelcome()
	if w == nil {
		nc.Close()
		return nil, nil, nil, nil, fmt.Errorf("%w: %s", ErrRefused, env.GetAdminReply().GetError())
	}
	var snap []sim.Change
	for {
		env, err := wc.Read()
		if err != nil {
			nc.Close()
			return nil, nil, nil, nil, err
		}
		vb := env.GetValues()
		if vb == nil {
			continue // settings before the snapshot end: applied with the Welcome's
		}
		for _, v := range vb.GetChanges() {
			snap = append(snap, wire.FromProto(v))
		}
		if vb.GetSnapshotEnd() {
			break
		}
	}
	_ = nc.SetReadDeadline(time.Time{})
	s.firstSettings = w.GetSettings()
	return nc, wc, w, snap, nil
}

// Model returns the model the runtime serves.
func (s *Session) Model() *sim.Model { return s.model }

// Snapshot returns the values read at Dial, for sim.Options.Snapshot.
func (s *Session) Snapshot() []sim.Change { return s.snapshot }

// Attach starts delivering to b (the session's simulator, opened with
// this link as its Galaxy) and sending its writes.
func (s *Session) Attach(b *sim.Backend) {
	s.mu.Lock()
	s.b = b
	s.ownFirstBind = b.Knobs().FirstBindDelay
	s.mu.Unlock()
	s.applySettingsTo(s.firstSettings, b)
	s.wg.Add(2)
	go s.readLoop()
	go s.writeLoop()
}

func (s *Session) applySettingsTo(st *galaxyv1.Settings, b *sim.Backend) {
	if st == nil || b == nil {
		return
	}
	if ms := st.GetFirstBindDelayMs(); ms >= 0 {
		b.SetFirstBindDelay(time.Duration(ms) * time.Millisecond)
	} else {
		b.SetFirstBindDelay(s.ownFirstBind)
	}
}

// Write queues an accepted write (sim.Galaxy; never blocks).
func (s *Session) Write(attr int32, v *mxgatewayv1.MxValue, ts time.Time, force bool, operator string) {
	s.mu.Lock()
	if len(s.writes) >= MaxQueuedWrites {
		// The runtime does not keep up (or is gone): drop the queue and
		// the connection; the reconnect's snapshot re-reports the values.
		s.writes = nil
		nc := s.nc
		s.mu.Unlock()
		s.log.Warn("galaxy: too many writes waiting for the runtime; resynchronising", "limit", MaxQueuedWrites)
		nc.Close()
		return
	}
	s.writes = append(s.writes, wire.ToProto(sim.Change{Attr: attr, Value: v, Time: ts, ForceTime: force, Operator: operator}))
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Interest adds ref to the interest set or removes it
// (sim.InterestGalaxy; never blocks): the change goes to the runtime with
// its number, which comes back in ValueBatch.interest_applied once the
// runtime sent the current value of what it added; the simulator hears of
// it through InterestApplied. A set that would go past its bounds
// (wire.MaxInterest, MaxInterestBytes) is given up, said in the log: the
// session then receives every change, as from a runtime that does not
// filter. Such a runtime (Welcome.filtered false) sends every value
// already, and the number is applied at once.
func (s *Session) Interest(ref string, on bool) uint64 {
	s.mu.Lock()
	s.nextID++
	id := s.nextID
	if !s.filtered {
		b := s.b
		s.mu.Unlock()
		if b != nil {
			b.InterestApplied(id)
		}
		return id
	}
	var err error
	if !s.all {
		if on {
			err = s.want.Update([]string{ref}, nil)
		} else {
			s.want.Remove(ref)
		}
		if err != nil {
			s.all, s.sendAll, s.pending, s.want = true, true, nil, wire.InterestSet{}
		} else {
			if s.pending == nil {
				s.pending = map[string]bool{}
			}
			s.pending[wire.InterestKey(ref)] = on
		}
	}
	s.mu.Unlock()
	if err != nil {
		s.log.Warn("galaxy: interest set given up; the session receives every change", "error", err)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return id
}

// takeInterest returns the Interest messages owed to the runtime on the
// live connection (mu held): the pending changes in batches of at most
// wire.MaxBatch references, the last one numbered.
func (s *Session) takeInterest() []*galaxyv1.Interest {
	if !s.live || s.sentID == s.nextID {
		return nil
	}
	var out []*galaxyv1.Interest
	cur := &galaxyv1.Interest{All: s.sendAll}
	for k, on := range s.pending {
		if len(cur.Add)+len(cur.Remove) == wire.MaxBatch {
			out = append(out, cur)
			cur = &galaxyv1.Interest{}
		}
		if on {
			cur.Add = append(cur.Add, k)
		} else {
			cur.Remove = append(cur.Remove, k)
		}
	}
	cur.Id = s.nextID
	out = append(out, cur)
	s.pending, s.sendAll, s.sentID = nil, false, s.nextID
	return out
}

// Close ends the link.
func (s *Session) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	nc := s.nc
	s.mu.Unlock()
	nc.Close()
	s.wg.Wait()
}

func (s *Session) writeLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case <-s.wake:
		}
		s.mu.Lock()
		ws, wc, seq := s.writes, s.wc, s.seq
		s.writes = nil
		interest := s.takeInterest()
		s.mu.Unlock()
		for _, in := range interest {
			// Lost with the connection, like a write: the reconnect's
			// Hello carries the whole set.
			_ = wc.Write(&galaxyv1.GalaxyEnvelope{Body: &galaxyv1.GalaxyEnvelope_Interest{Interest: in}})
		}
		for len(ws) > 0 {
			n := min(len(ws), wire.MaxBatch)
			// A failed write is lost with the connection: the reconnect's
			// snapshot re-reports what the runtime holds.
			_ = wc.Write(&galaxyv1.GalaxyEnvelope{Body: &galaxyv1.GalaxyEnvelope_Writes{Writes: &galaxyv1.WriteBatch{
				DeploySequence: seq, Writes: ws[:n]}}})
			ws = ws[n:]
		}
	}
}

func (s *Session) readLoop() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		wc, b := s.wc, s.b
		s.mu.Unlock()
		for {
			env, err := wc.Read()
			if err != nil {
				break
			}
			switch body := env.GetBody().(type) {
			case *galaxyv1.GalaxyEnvelope_Values:
				batch := make([]sim.Change, len(body.Values.GetChanges()))
				for i, v := range body.Values.GetChanges() {
					batch[i] = wire.FromProto(v)
				}
				b.Apply(batch)
				if id := body.Values.GetInterestApplied(); id != 0 {
					b.InterestApplied(id)
				}
			case *galaxyv1.GalaxyEnvelope_Settings:
				s.applySettingsTo(body.Settings, b)
			case *galaxyv1.GalaxyEnvelope_Deployed:
				s.redeploy(wc, body.Deployed, b)
			}
		}
		select {
		case <-s.done:
			return
		default:
		}
		s.log.Warn("galaxy runtime connection lost; values bad until it is back")
		b.GalaxyLost()
		if !s.reconnect(b) {
			return
		}
	}
}

// redeploy reads the snapshot that follows Deployed and hands the new
// model to the simulator.
func (s *Session) redeploy(wc *wire.Conn, d *galaxyv1.Deployed, b *sim.Backend) {
	m, err := wire.BuildModel(d.GetModel())
	var snap []sim.Change
	for {
		env, rerr := wc.Read()
		if rerr != nil {
			return
		}
		vb := env.GetValues()
		if vb == nil {
			continue
		}
		for _, v := range vb.GetChanges() {
			snap = append(snap, wire.FromProto(v))
		}
		if vb.GetSnapshotEnd() {
			break
		}
	}
	if err != nil {
		s.log.Error("galaxy deploy: model refused", "error", err)
		return
	}
	s.mu.Lock()
	s.seq = d.GetDeploySequence()
	s.model = m
	s.mu.Unlock()
	b.Redeploy(m, snap)
	s.log.Info("galaxy deployed", "sequence", d.GetDeploySequence())
}

// reconnect dials until the runtime is back (or Close), then resyncs.
func (s *Session) reconnect(b *sim.Backend) bool {
	wait := 50 * time.Millisecond
	for {
		select {
		case <-s.done:
			return false
		case <-time.After(wait):
		}
		wait = min(wait*2, time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		nc, wc, w, snap, err := s.connect(ctx)
		cancel()
		if err != nil {
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return false
		}
		s.nc, s.wc = nc, wc
		changed := w.GetDeploySequence() != s.seq
		s.seq = w.GetDeploySequence()
		s.filtered, s.live = w.GetFiltered(), true
		helloID := s.sentID // what the Hello's interest set covers
		s.mu.Unlock()
		s.applySettingsTo(w.GetSettings(), b)
		if changed {
			if m, err := wire.BuildModel(w.GetModel()); err == nil {
				s.mu.Lock()
				s.model = m
				s.mu.Unlock()
				b.Redeploy(m, snap)
			}
		} else {
			b.Resync(snap)
		}
		b.InterestApplied(helloID)
		select {
		case s.wake <- struct{}{}: // what changed since the Hello
		default:
		}
		s.log.Info("galaxy runtime connection restored")
		return true
	}
}

// SimBackend builds a sim worker's backend: a session of the Galaxy
// runtime named by the environment (wire.EnvDir, wire.EnvKey) when the
// gateway set it, else a standalone simulator with its own Galaxy.
func SimBackend(ctx context.Context, opts sim.Options, name string) (backend.Backend, error) {
	dir := os.Getenv(wire.EnvDir)
	if dir == "" {
		b, err := sim.New(opts)
		if err != nil {
			return nil, err // not a typed nil inside the interface
		}
		return b, nil
	}
	var key []byte
	if k := os.Getenv(wire.EnvKey); k != "" {
		var err error
		if key, err = wire.ParseKey(k); err != nil {
			return nil, err
		}
	}
	dctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	s, err := Dial(dctx, Options{Dir: dir, Key: key, Name: name, Logger: opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("galaxy runtime at %s: %w", dir, err)
	}
	opts.Model, opts.ModelPath = s.Model(), ""
	opts.Galaxy, opts.Snapshot = s, s.Snapshot()
	b, err := sim.New(opts)
	if err != nil {
		s.Close()
		return nil, err
	}
	return &attached{Backend: b, s: s}, nil
}

// attached is a session simulator with its runtime link; Close ends both.
type attached struct {
	*sim.Backend
	s *Session
}

// Open opens the simulator, then starts the runtime's deliveries.
func (a *attached) Open(ctx context.Context, sink backend.Sink) (*mxgatewayv1.BackendInfo, error) {
	info, err := a.Backend.Open(ctx, sink)
	if err != nil {
		return nil, err
	}
	a.s.Attach(a.Backend)
	return info, nil
}

// Close closes the simulator, then the link.
func (a *attached) Close() []string {
	w := a.Backend.Close()
	a.s.Close()
	return w
}
