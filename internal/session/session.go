package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/itemtable"
	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/internal/protocol"
)

// Session is one client session: its worker, its lease, its command budget
// and its event distributor. A Session is created by Manager.Open; all of
// its methods are safe for concurrent use.
type Session struct {
	m          *Manager
	id         string
	clientName string
	ownerKeyID string
	openedAt   time.Time
	w          Worker
	pid        int
	backend    *mxgatewayv1.BackendInfo
	log        *slog.Logger

	pumpDone chan struct{} // closed when the pump returned
	wdDone   chan struct{} // closed when the watchdog loop returned (nil without one)
	closed   chan struct{} // closed when a close finished
	// noWait is closed when the session starts closing or faults: the pump
	// stops waiting for room in subscriber queues.
	noWait     chan struct{}
	noWaitOnce sync.Once

	mu           sync.Mutex
	state        mxgatewayv1.SessionState
	fault        *FaultError
	closing      bool // a close has started
	final        mxgatewayv1.SessionState
	lastActivity time.Time
	lastDetach   time.Time
	pending      int
	completed    uint64
	ring         *ring
	lastSeq      uint64 // the last sequence given to a client-visible event
	workerSeq    uint64 // the last sequence the worker sent
	subs         map[*Subscription]struct{}
	// subList is subs as a slice, for the loops run per event (ranging a
	// map costs more than the offer). It is replaced, never changed in
	// place, so a loop over it may detach the subscriber it is at.
	subList       []*Subscription
	ended         error // the pump's terminal error, for late subscribers
	slowConsumers uint64
	wd            watchdog

	writes writeLedger // writes awaiting OnWriteComplete (securedwrites.go)
}

// Info is a snapshot of a session for listings.
type Info struct {
	ID                string
	ClientName        string
	OwnerKeyID        string
	State             mxgatewayv1.SessionState
	WorkerPID         int
	OpenedAt          time.Time
	LeaseExpiresAt    time.Time
	Subscribers       int
	LastSequence      uint64
	CommandsCompleted uint64
	CommandsPending   int
	FaultReason       string
	SlowConsumers     uint64
	Backend           *mxgatewayv1.BackendInfo
	// DataHealth is the data watchdog's classification (DISABLED without
	// one), DataHealthReason why it is not HEALTHY, DataLastChange when
	// the watchdog reference last changed with good quality (zero before).
	DataHealth       mxgatewayv1.DataHealth
	DataHealthReason string
	DataLastChange   time.Time
}

// CloseResult reports how a close ended.
type CloseResult struct {
	// AlreadyClosed is true when another call closed the session.
	AlreadyClosed bool
	// State is the final state: CLOSED, or FAULTED when the worker had
	// failed before the close.
	State mxgatewayv1.SessionState
	// Warnings are the worker's teardown warnings.
	Warnings []string
}

func newSession(m *Manager, id string, req OpenRequest, w Worker) *Session {
	now := m.opts.Now()
	return &Session{
		m:            m,
		id:           id,
		clientName:   req.ClientName,
		ownerKeyID:   req.OwnerKeyID,
		openedAt:     now,
		w:            w,
		pid:          w.PID(),
		backend:      w.Backend(),
		log:          m.log.With(logging.KeySession, id, logging.KeyWorkerPID, w.PID()),
		pumpDone:     make(chan struct{}),
		closed:       make(chan struct{}),
		noWait:       make(chan struct{}),
		state:        mxgatewayv1.SessionState_SESSION_STATE_READY,
		lastActivity: now,
		ring:         newRing(m.opts.ReplaySize, m.opts.ReplayBytes),
		subs:         make(map[*Subscription]struct{}),
		wd:           watchdog{health: mxgatewayv1.DataHealth_DATA_HEALTH_DISABLED},
	}
}

// ItemRef returns the reference the item handle item of the registration
// serverHandle names in this session's item table (the gateway's mirror of
// the worker's, see Worker.Items); ok is false for handles it does not
// know (never added, or removed since). Reference constraints on writes
// use it, since writes name items by handle.
func (s *Session) ItemRef(serverHandle, item int32) (ref string, ok bool) {
	return s.w.Items().Ref(serverHandle, item)
}

// Items is the session's item table: the gateway's mirror of the worker's.
func (s *Session) Items() *itemtable.Table { return s.w.Items() }

// QueuedEvents is the number of events waiting in this session's subscriber
// queues (replay backlog included).
func (s *Session) QueuedEvents() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for sub := range s.subs {
		n += sub.queued()
	}
	return n
}

// SubscriberInfo describes one attached event subscriber.
type SubscriberInfo struct {
	// Queued is how many events wait in its queue (replay backlog
	// included): how far it lags behind the session's last sequence.
	Queued int
	// Conflated counts the events its conflation replaced.
	Conflated uint64
}

// Subscribers returns a snapshot of the attached subscribers.
func (s *Session) Subscribers() []SubscriberInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SubscriberInfo, 0, len(s.subs))
	for sub := range s.subs {
		out = append(out, SubscriberInfo{Queued: sub.queued(), Conflated: sub.Conflated()})
	}
	return out
}

// ID is the session id.
func (s *Session) ID() string { return s.id }

// ClientName is the name the client gave at open.
func (s *Session) ClientName() string { return s.clientName }

// OwnerKeyID is the id of the API key that opened the session ("" without
// authentication).
func (s *Session) OwnerKeyID() string { return s.ownerKeyID }

// WorkerPID is the worker's process id.
func (s *Session) WorkerPID() int { return s.pid }

// Backend describes what the worker drives.
func (s *Session) Backend() *mxgatewayv1.BackendInfo { return s.backend }

// State is the current state.
func (s *Session) State() mxgatewayv1.SessionState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Touch renews the lease.
func (s *Session) Touch() {
	now := s.m.opts.Now()
	s.mu.Lock()
	s.lastActivity = now
	s.mu.Unlock()
}

// LeaseExpiresAt is when the session expires unless renewed. While a
// subscriber is attached the lease keeps moving forward.
func (s *Session) LeaseExpiresAt() time.Time {
	now := s.m.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expiresAtLocked(now)
}

func (s *Session) expiresAtLocked(now time.Time) time.Time {
	if len(s.subs) > 0 || s.pending > 0 { // a stream or a running command holds it
		return now.Add(s.m.opts.Lease)
	}
	exp := s.lastActivity.Add(s.m.opts.Lease)
	if !s.lastDetach.IsZero() {
		if d := s.lastDetach.Add(s.m.opts.DetachGrace); d.After(exp) {
			exp = d
		}
	}
	return exp
}

// expired reports whether the lease ran out (never while a close runs, a
// subscriber is attached or a command is in flight, see leaseHeld).
func (s *Session) expired(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.closing && len(s.subs) == 0 && s.pending == 0 && !now.Before(s.expiresAtLocked(now))
}

// Info returns a snapshot of the session.
func (s *Session) Info() Info {
	now := s.m.opts.Now()
	unanswered := s.w.Unanswered()
	s.mu.Lock()
	defer s.mu.Unlock()
	info := Info{
		ID:                s.id,
		ClientName:        s.clientName,
		OwnerKeyID:        s.ownerKeyID,
		State:             s.state,
		WorkerPID:         s.pid,
		OpenedAt:          s.openedAt,
		LeaseExpiresAt:    s.expiresAtLocked(now),
		Subscribers:       len(s.subs),
		LastSequence:      s.lastSeq,
		CommandsCompleted: s.completed,
		CommandsPending:   s.pending + unanswered,
		SlowConsumers:     s.slowConsumers,
		Backend:           s.backend,
		DataHealth:        s.wd.health,
		DataHealthReason:  s.wd.reason,
		DataLastChange:    s.wd.lastChange,
	}
	if s.fault != nil {
		info.FaultReason = s.fault.Reason
	}
	return info
}

// usableLocked says why the session cannot take a command or a subscriber.
func (s *Session) usableLocked() error {
	switch {
	case s.state == mxgatewayv1.SessionState_SESSION_STATE_FAULTED:
		return fmt.Errorf("%w: %s", ErrFaulted, s.fault.Reason)
	case s.closing:
		return ErrClosed
	case s.state != mxgatewayv1.SessionState_SESSION_STATE_READY:
		return ErrNotReady
	}
	return nil
}

// Invoke runs cmd on the worker without an item guard (a caller without
// reference constraints, such as a gateway-owned session). See
// InvokeGuarded.
func (s *Session) Invoke(ctx context.Context, cmd *mxgatewayv1.Command, timeout time.Duration) (*mxgatewayv1.Reply, error) {
	return s.InvokeGuarded(ctx, cmd, nil, timeout)
}

// InvokeGuarded runs cmd on the worker with the item guard guard (nil for
// none). A timeout of 0 uses the manager's default. It fails fast with
// ErrPendingLimit when the session already has MaxPendingCommands commands
// in flight, counting those whose callers stopped waiting but that the
// worker still runs. MXAccess refusals come back as replies; errors are
// gateway failures (the worker's own errors pass through unchanged).
func (s *Session) InvokeGuarded(ctx context.Context, cmd *mxgatewayv1.Command, guard *workerv1.ItemGuard, timeout time.Duration) (*mxgatewayv1.Reply, error) {
	opts := &s.m.opts
	now := opts.Now()
	unanswered := s.w.Unanswered()
	kind := catalog.Of(cmd)
	writes := writesOf(ctx, kind, cmd) // the writes the ledger will track
	s.mu.Lock()
	if err := s.usableLocked(); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if s.wd.server != 0 && kind.ServerHandle(cmd) == s.wd.server {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: server handle %d is the data watchdog's registration", ErrReservedHandle, s.wd.server)
	}
	if err := s.pendingRoomLocked(unanswered); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if err := s.writes.begin(writes, opts.MaxSecuredWrites); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	s.pending++
	s.lastActivity = now
	s.mu.Unlock()

	if timeout <= 0 {
		timeout = opts.CommandTimeout
	}
	if h := opts.Hooks.CommandStarted; h != nil {
		h(kind)
	}
	start := time.Now()
	reply, err := s.w.Invoke(ctx, cmd, guard, timeout)
	elapsed := time.Since(start)
	s.reportRefusals(s.writes.end(writes, kind, cmd, reply, err, s.itemAlive))

	s.mu.Lock()
	s.pending--
	s.completed++
	s.lastActivity = opts.Now()
	s.mu.Unlock()
	if h := opts.Hooks.CommandDone; h != nil {
		h(kind, elapsed, reply, err)
	}
	return reply, err
}

// pendingRoomLocked refuses a request when the session already has
// MaxPendingCommands in flight, counting those whose callers stopped
// waiting (unanswered) but that the worker still runs. s.mu is held.
func (s *Session) pendingRoomLocked(unanswered int) error {
	if n := s.pending + unanswered; n >= s.m.opts.MaxPendingCommands {
		return fmt.Errorf("%w: %d in flight (%d of them no longer awaited)", ErrPendingLimit, n, unanswered)
	}
	return nil
}

// Subscribe attaches an event subscriber. The replay snapshot and the live
// registration happen under one lock, so the subscriber sees every event
// after req.AfterSequence exactly once. When the replay ring no longer
// reaches back that far, the first event is a gateway-generated replay-gap
// marker.
func (s *Session) Subscribe(req SubscribeRequest) (*Subscription, error) {
	opts := &s.m.opts
	now := opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(); err != nil {
		return nil, err
	}
	if s.ended != nil {
		return nil, s.ended
	}
	if len(s.subs) >= opts.MaxSubscribers {
		return nil, fmt.Errorf("%w: %d attached", ErrSubscriberLimit, opts.MaxSubscribers)
	}
	var replay []*protocol.Event
	if !req.LiveOnly {
		if req.AfterSequence > s.lastSeq {
			return nil, fmt.Errorf("%w: asked for events after %d, last is %d", ErrAfterSequence, req.AfterSequence, s.lastSeq)
		}
		s.ring.trimBefore(now.Add(-opts.ReplayAge))
		firstAvail := s.lastSeq + 1
		if seq, ok := s.ring.firstSeq(); ok {
			firstAvail = seq
		}
		held := s.ring.since(req.AfterSequence)
		if req.AfterSequence+1 < firstAvail {
			replay = make([]*protocol.Event, 0, 1+len(held))
			replay = append(replay, s.gapMarker(req.AfterSequence, firstAvail, now))
		}
		replay = append(replay, held...)
	}
	sub := newSubscription(s, replay, opts.SubscriberQueue, opts.SubscriberQueueBytes, req.Conflate)
	s.addSubLocked(sub)
	s.lastActivity = now
	return sub, nil
}

func (s *Session) gapMarker(after, firstAvail uint64, now time.Time) *protocol.Event {
	msg := &mxgatewayv1.Event{
		SessionId:        s.id,
		Sequence:         firstAvail,
		Family:           mxgatewayv1.EventFamily_EVENT_FAMILY_REPLAY_GAP,
		GatewayTime:      timestamppb.New(now),
		GatewayGenerated: true,
		Body: &mxgatewayv1.Event_ReplayGap{ReplayGap: &mxgatewayv1.ReplayGap{
			RequestedAfterSequence: after,
			FirstAvailableSequence: firstAvail,
			Reason: fmt.Sprintf("replay ring no longer holds events %d to %d (it keeps %d events or %d bytes for at most %v)",
				after+1, firstAvail-1, s.m.opts.ReplaySize, s.m.opts.ReplayBytes, s.m.opts.ReplayAge),
		}},
	}
	return protocol.EventOf(msg, proto.Size(msg))
}

// addSubLocked attaches sub.
func (s *Session) addSubLocked(sub *Subscription) {
	s.subs[sub] = struct{}{}
	s.subList = append(slices.Clip(s.subList), sub)
}

// removeSubLocked detaches sub; a loop over the old subList goes on
// unchanged.
func (s *Session) removeSubLocked(sub *Subscription) {
	delete(s.subs, sub)
	s.subList = slices.DeleteFunc(slices.Clone(s.subList), func(x *Subscription) bool { return x == sub })
}

// detach removes sub; the detach grace starts when the last one leaves.
func (s *Session) detach(sub *Subscription) {
	now := s.m.opts.Now()
	s.mu.Lock()
	if _, ok := s.subs[sub]; ok {
		s.removeSubLocked(sub)
		if len(s.subs) == 0 {
			s.lastDetach = now
		}
	}
	s.mu.Unlock()
	sub.mu.Lock()
	sub.closed = true
	sub.replay, sub.q, sub.head, sub.live, sub.bytes = nil, nil, 0, 0, 0
	sub.mu.Unlock()
	signal(sub.room)
}

// pump is the session's one event goroutine: it takes the worker's events
// until the worker reaches a terminal state, then records how it ended.
// While a subscriber's queue is full it waits (and so, upstream, does the
// worker pipe): see deliver.
func (s *Session) pump() {
	defer close(s.pumpDone)
	var batch []*protocol.Event
	for {
		var ok bool
		batch, ok = s.w.NextEvents(batch[:0])
		more := true
		for i := range batch {
			if more {
				if batch[i].IsWriteComplete() {
					s.observeWriteComplete(batch[i].Decode())
				}
				more = s.deliver(batch[i], batch[i].Bytes)
			}
			batch[i] = nil
		}
		if !ok || !more {
			break
		}
	}
	<-s.w.Done()
	s.workerEnded(s.w.Err())
}

// stopWaiting releases a pump waiting for a subscriber (close or fault).
func (s *Session) stopWaiting() { s.noWaitOnce.Do(func() { close(s.noWait) }) }

// deliver checks the sequence, stores ev (size bytes) in the ring and
// offers it to every subscriber. A subscriber without room is waited for
// (flow control) as long as it makes room within SubscriberStallTimeout;
// one that does not is slow and gets the slow-consumer policy. Nothing is
// dropped: every subscriber still attached gets ev. It returns false when
// the worker ended while a subscriber was waited for: the session then
// faults with the worker's reason (its queued events are not delivered:
// the fault says where the stream ends).
func (s *Session) deliver(ev *protocol.Event, size int) (more bool) {
	opts := &s.m.opts
	var kill protocol.KillReason
	slow := 0
	var now time.Time
	checked := false
	for {
		now = opts.Now()
		s.mu.Lock()
		if s.state == mxgatewayv1.SessionState_SESSION_STATE_FAULTED {
			// The gateway faulted the session itself and is killing the
			// worker: nothing after the fault is delivered.
			s.mu.Unlock()
			s.hooks(slow, 0, "")
			return true
		}
		if !checked {
			// The worker numbers its events; the session renumbers the
			// ones its clients see, since it leaves out the watchdog's and
			// adds its own.
			want := s.workerSeq + 1
			switch ev.Sequence {
			case 0, want:
			default:
				reason := fmt.Sprintf("event sequence %d after %d", ev.Sequence, s.workerSeq)
				s.faultLocked(reason, fmt.Errorf("%w: %s", ErrSequence, reason))
				s.mu.Unlock()
				s.w.Kill(protocol.KillProtocolError)
				return true
			}
			s.workerSeq = want
			checked = true
			if taken, after := s.watchdogEventLocked(ev, now); taken {
				s.mu.Unlock()
				after()
				return true
			}
		}
		var blocked *Subscription
		if !s.closing {
			for _, sub := range s.subList {
				if !sub.hasRoom(ev, size) {
					blocked = sub
					break
				}
			}
		}
		if blocked == nil {
			break // publish with s.mu held
		}
		s.mu.Unlock()
		if blocked.waitRoom(ev, size, opts.SubscriberStallTimeout, s.noWait, s.w.Done()) {
			continue
		}
		select {
		case <-s.w.Done():
			s.hooks(slow, 0, "")
			return false
		default:
		}
		// No room within the stall timeout (or the session is ending):
		// the subscriber is slow.
		s.mu.Lock()
		if _, attached := s.subs[blocked]; attached && !blocked.hasRoom(ev, size) {
			slow++
			s.slowConsumers++
			if k := s.slowLocked(blocked, ev.Sequence, now); k != "" {
				kill = k
			}
		}
		s.mu.Unlock()
		if kill != "" {
			break
		}
	}
	if kill != "" {
		s.hooks(slow, 0, kill)
		return true
	}
	n, k := s.publishLocked(ev, size, now)
	s.mu.Unlock()
	if h := opts.Hooks.EventPublished; h != nil {
		h(ev)
	}
	s.hooks(slow+n, ev.Family, k)
	return true
}

// publishLocked gives ev (size bytes) the next sequence, stores it in the
// ring and offers it to every subscriber. The pump has waited for room
// (deliver); a subscriber still full (the session closes, or a
// gateway-generated event) gets the slow-consumer policy. It returns how
// many subscribers were too slow and, when the policy faulted the session,
// why the worker must be killed (after the lock is released: see hooks).
func (s *Session) publishLocked(ev *protocol.Event, size int, now time.Time) (slow int, kill protocol.KillReason) {
	opts := &s.m.opts
	ev.Stamp(s.id, s.lastSeq+1, now)
	s.lastSeq = ev.Sequence
	s.ring.push(ev, size, now)
	s.ring.trimBefore(now.Add(-opts.ReplayAge))
	for _, sub := range s.subList {
		if sub.offer(ev, size) {
			continue
		}
		slow++
		s.slowConsumers++
		if k := s.slowLocked(sub, ev.Sequence, now); k != "" {
			kill = k
			break
		}
	}
	return slow, kill
}

// slowLocked applies the slow-consumer policy to sub, which has no room for
// event seq. It returns the kill reason when the policy faulted the session.
func (s *Session) slowLocked(sub *Subscription, seq uint64, now time.Time) (kill protocol.KillReason) {
	opts := &s.m.opts
	// While the session closes a full subscriber is only disconnected: the
	// worker is being shut down in order.
	if opts.SlowConsumerPolicy == PolicyFaultSession && !s.closing {
		reason := fmt.Sprintf("subscriber queue (%d events, %d bytes) stayed full for %v at sequence %d",
			opts.SubscriberQueue, opts.SubscriberQueueBytes, opts.SubscriberStallTimeout, seq)
		s.faultLocked(reason, fmt.Errorf("%w: %s", ErrSlowConsumer, reason))
		return protocol.KillSlowConsumer
	}
	sub.fail(fmt.Errorf("%w: queue of %d events (%d bytes) stayed full for %v at sequence %d",
		ErrSlowConsumer, opts.SubscriberQueue, opts.SubscriberQueueBytes, opts.SubscriberStallTimeout, seq))
	s.removeSubLocked(sub)
	if len(s.subs) == 0 {
		s.lastDetach = now
	}
	return ""
}

// hooks runs the metric hooks of one delivery (family 0: none delivered)
// and the kill a policy asked for, once the session lock is released.
func (s *Session) hooks(slow int, family mxgatewayv1.EventFamily, kill protocol.KillReason) {
	opts := &s.m.opts
	if h := opts.Hooks.EventReceived; h != nil && family != mxgatewayv1.EventFamily_EVENT_FAMILY_UNSPECIFIED {
		h(family)
	}
	if h := opts.Hooks.SlowConsumer; h != nil {
		for range slow {
			h(opts.SlowConsumerPolicy)
		}
	}
	if kill != "" {
		s.log.Warn("slow consumer: faulting session")
		s.w.Kill(kill)
	}
}

// faultLocked moves the session to FAULTED (once) and ends every
// subscription with the fault after its queued events.
func (s *Session) faultLocked(reason string, cause error) {
	if s.state == mxgatewayv1.SessionState_SESSION_STATE_FAULTED || s.closing {
		return
	}
	s.state = mxgatewayv1.SessionState_SESSION_STATE_FAULTED
	s.fault = &FaultError{Reason: reason, Cause: cause}
	s.stopWaiting()
	for sub := range s.subs {
		sub.end(s.fault)
	}
	if h := s.m.opts.Hooks.SessionFaulted; h != nil {
		h(s.id, reason, cause)
	}
	s.log.Warn("session faulted", slog.String("reason", reason))
}

// workerEnded runs once the worker is terminal and every event it sent was
// delivered.
func (s *Session) workerEnded(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closing {
		cause := err
		if cause == nil {
			cause = errors.New("session: worker stopped without being asked")
		}
		s.faultLocked(cause.Error(), cause)
	}
	end := error(ErrClosed)
	if s.fault != nil {
		end = s.fault
	}
	s.ended = end
	for sub := range s.subs {
		sub.end(end)
	}
}

// Close shuts the worker down gracefully (within the manager's CloseTimeout
// and ctx), kills it if that fails, and removes the session. It is
// idempotent: later and concurrent calls wait for the first and report
// AlreadyClosed.
func (s *Session) Close(ctx context.Context) CloseResult {
	return s.close(ctx, "closed by client")
}

func (s *Session) close(ctx context.Context, why string) CloseResult {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		select {
		case <-s.closed:
		case <-ctx.Done():
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		st := s.final
		if st == mxgatewayv1.SessionState_SESSION_STATE_UNSPECIFIED {
			st = s.state // ctx ended before the first close finished
		}
		return CloseResult{AlreadyClosed: true, State: st}
	}
	s.closing = true
	s.stopWaiting()
	faulted := s.state == mxgatewayv1.SessionState_SESSION_STATE_FAULTED
	if !faulted {
		s.state = mxgatewayv1.SessionState_SESSION_STATE_CLOSING
	}
	s.mu.Unlock()
	s.log.Info("closing session", slog.String("why", why))

	var warnings []string
	if faulted {
		select {
		case <-s.w.Done(): // already gone (the fault's own kill, or its exit)
		default:
			s.w.Kill(protocol.KillAfterFault)
		}
	} else {
		sctx, cancel := context.WithTimeout(ctx, s.m.opts.CloseTimeout)
		w, err := s.w.Shutdown(sctx)
		cancel()
		warnings = w
		if err != nil {
			s.log.Warn("graceful worker shutdown failed, killing", slog.Any(logging.KeyErr, err))
			s.w.Kill(protocol.KillShutdownTimeout)
		}
	}
	<-s.pumpDone
	if s.wdDone != nil {
		<-s.wdDone
	}

	final := mxgatewayv1.SessionState_SESSION_STATE_CLOSED
	reason := why
	s.mu.Lock()
	if faulted {
		final = mxgatewayv1.SessionState_SESSION_STATE_FAULTED
		reason = s.fault.Reason
	}
	s.state = final // a faulted session keeps saying so
	s.final = final
	s.mu.Unlock()
	s.m.remove(s, final)
	close(s.closed)
	if h := s.m.opts.Hooks.SessionClosed; h != nil {
		h(s.id, final, reason)
	}
	s.log.Info("session closed", slog.String("final", final.String()))
	return CloseResult{State: final, Warnings: warnings}
}
