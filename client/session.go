package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// Session is one gateway session: one isolated worker driving MXAccess or
// the simulator. It is safe for concurrent use. Close ends it on the gateway.
//
// The raw MXAccess methods are on MX(); the methods on Session are
// conveniences that share one lazily created registration (ServerHandle).
type Session struct {
	c    *Client
	name string

	idMu sync.Mutex // guards id and info, which change when a recovering session recovers
	id   string
	info *mxgatewayv1.OpenSessionResponse

	// rec is the journal of a Recovering session; nil otherwise.
	rec *recovery

	// life ends when the session is closed; it stops Events iterators and
	// the tracker. Holding a context here is for the session's own
	// background work only.
	life     context.Context
	stopLife context.CancelFunc

	closeOnce sync.Once
	closeErr  error

	regMu sync.Mutex // serialises the lazy Register
	hLMX  int32

	// itemsMu serialises the conveniences that add or remove items
	// (Subscribe, Unsubscribe, WriteValue's first use of a reference). It is
	// held across the SubscribeBulk/UnsubscribeBulk call on purpose: these
	// are rare control operations, and holding it keeps the item table and
	// the gateway in step.
	itemsMu sync.Mutex
	items   map[string]*item

	trackerMu sync.Mutex
	tracker   *tracker
}

// item is a reference added and advised by the conveniences.
type item struct {
	ref     string
	handle  int32
	writeMu sync.Mutex // keeps "queue completion waiter + send Write" atomic per item
}

func newSession(c *Client, name string, info *mxgatewayv1.OpenSessionResponse) *Session {
	life, stop := context.WithCancel(context.Background())
	return &Session{c: c, id: info.GetSessionId(), name: name, info: info, life: life, stopLife: stop,
		items: map[string]*item{}}
}

// ID returns the opaque session id. A Recovering session's id changes when
// it recovers.
func (s *Session) ID() string {
	s.idMu.Lock()
	defer s.idMu.Unlock()
	return s.id
}

// Info returns what OpenSession reported: lease expiry, backend, protocol
// versions and worker pid. It is empty for an attached session.
func (s *Session) Info() *mxgatewayv1.OpenSessionResponse {
	s.idMu.Lock()
	defer s.idMu.Unlock()
	return s.info
}

func (s *Session) setID(id string, info *mxgatewayv1.OpenSessionResponse) {
	s.idMu.Lock()
	s.id, s.info = id, info
	s.idMu.Unlock()
}

// Recovering reports whether the session was opened with Recovering.
func (s *Session) Recovering() bool { return s.rec != nil }

// MX returns the raw MXAccess surface of the session.
func (s *Session) MX() *MX { return &MX{s: s} }

func (s *Session) checkOpen() error {
	if s.life.Err() != nil {
		return ErrClosed
	}
	return nil
}

func (s *Session) invoke(ctx context.Context, cmd *mxgatewayv1.Command) (*mxgatewayv1.Reply, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	ctx, cancel := s.c.callCtx(ctx)
	defer cancel()
	if s.rec == nil {
		return s.invokeOn(ctx, s.ID(), cmd)
	}
	for retried := false; ; retried = true {
		// A recovery in progress finishes first: the handles are being
		// renumbered and the journal replayed.
		s.rec.run.Lock()
		id := s.ID()
		real := s.rec.toReal(cmd)
		s.rec.run.Unlock()
		reply, err := s.invokeOn(ctx, id, real)
		if err == nil {
			s.rec.run.Lock()
			defer s.rec.run.Unlock()
			if s.ID() != id {
				// The session was lost and recreated while the command ran:
				// it took effect on the old one only, and the replay did not
				// know it.
				return nil, fmt.Errorf("%w (%s ran on the old session %s)", ErrSessionRecreated, commandName(cmd), id)
			}
			return s.rec.record(cmd, reply), nil
		}
		if !sessionGone(err) || retried {
			return nil, err
		}
		if _, rerr := s.recoverFrom(ctx, id, err); rerr != nil {
			return nil, err
		}
		if !IsSessionNotFound(err) {
			// The command may have run before the session failed: its
			// outcome is unknown, so it is not sent again.
			return nil, err
		}
	}
}

func (s *Session) invokeOn(ctx context.Context, id string, cmd *mxgatewayv1.Command) (*mxgatewayv1.Reply, error) {
	resp, err := s.c.gw.Invoke(ctx, &mxgatewayv1.InvokeRequest{SessionId: id, Command: cmd})
	if err != nil {
		return nil, fromRPC(ctx, err)
	}
	if resp.GetReply() == nil {
		return nil, errors.New("client: gateway sent an empty reply")
	}
	return resp.GetReply(), nil
}

// Close stops the session's background work and Events iterators, then
// closes the session on the gateway (MXAccess teardown order). It is safe to
// call more than once; later calls return the first result.
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		s.stopBackground()
		if s.rec != nil {
			// A recovery under way sees the Session closed and stops; wait
			// for it so that the session it may have opened is the one
			// closed here.
			s.rec.run.Lock()
			s.rec.run.Unlock()
		}
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		_, err := s.c.gw.CloseSession(ctx, &mxgatewayv1.CloseSessionRequest{SessionId: s.ID()})
		if err != nil {
			err = fromRPC(ctx, err)
			if IsSessionNotFound(err) {
				err = nil // already gone: Close is idempotent
			}
		}
		s.closeErr = err
		s.c.forget(s)
	})
	return s.closeErr
}

// detach stops local work without closing the gateway session.
func (s *Session) detach() {
	s.closeOnce.Do(func() {
		s.stopBackground()
		s.c.forget(s)
	})
}

func (s *Session) stopBackground() {
	s.stopLife()
	s.trackerMu.Lock()
	t := s.tracker
	s.trackerMu.Unlock()
	if t != nil {
		t.stop()
	}
}

// ServerHandle returns the registration handle (hLMX) the conveniences use,
// registering on first use as "mxgateway-go/<session name>".
func (s *Session) ServerHandle(ctx context.Context) (int32, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	s.regMu.Lock()
	defer s.regMu.Unlock()
	if s.hLMX != 0 {
		return s.hLMX, nil
	}
	name := "mxgateway-go"
	if s.name != "" {
		name += "/" + s.name
	}
	h, err := s.MX().Register(ctx, name)
	if err != nil {
		return 0, err
	}
	s.hLMX = h
	return h, nil
}

// Read returns the current value of each reference with ReadBulk: the cached
// value of an item this session has advised, otherwise a transient
// add/advise/first value/unadvise/remove that leaves the session unchanged.
// One bad reference never fails the call; check each result's Err and
// Quality.
func (s *Session) Read(ctx context.Context, refs ...string) ([]ReadResult, error) {
	h, err := s.ServerHandle(ctx)
	if err != nil {
		return nil, err
	}
	return s.MX().ReadBulk(ctx, h, refs, 0)
}

// Subscribe adds and advises each reference with one SubscribeBulk on the
// session's registration (registering once, lazily). References already
// subscribed through Subscribe or WriteValue are not added twice; their
// entry repeats the existing handle. Values then arrive on Events as
// OnDataChange for the returned item handles. One bad reference never fails
// the call; check each entry's Err.
func (s *Session) Subscribe(ctx context.Context, refs ...string) ([]BulkEntry, error) {
	h, err := s.ServerHandle(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.ensureTracker(ctx, h); err != nil {
		return nil, err
	}
	s.itemsMu.Lock()
	defer s.itemsMu.Unlock()
	var fresh []string
	seen := map[string]bool{}
	for _, ref := range refs {
		if _, ok := s.items[ref]; !ok && !seen[ref] {
			seen[ref] = true
			fresh = append(fresh, ref)
		}
	}
	got := map[string]BulkEntry{}
	if len(fresh) > 0 {
		entries, err := s.MX().SubscribeBulk(ctx, h, fresh, false)
		if err != nil {
			return nil, err
		}
		for k, e := range entries {
			e.ItemDefinition = fresh[k]
			got[fresh[k]] = e
			if e.Err() == nil {
				s.items[fresh[k]] = &item{ref: fresh[k], handle: e.ItemHandle}
			}
		}
	}
	out := make([]BulkEntry, len(refs))
	for i, ref := range refs {
		if e, ok := got[ref]; ok {
			out[i] = e
			continue
		}
		out[i] = BulkEntry{ItemDefinition: ref, ItemHandle: s.items[ref].handle, Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK}
	}
	return out, nil
}

// Unsubscribe unadvises and removes references added by Subscribe or
// WriteValue (UnsubscribeBulk). Unknown references get an entry with
// ErrNotSubscribed.
func (s *Session) Unsubscribe(ctx context.Context, refs ...string) ([]BulkEntry, error) {
	h, err := s.ServerHandle(ctx)
	if err != nil {
		return nil, err
	}
	s.itemsMu.Lock()
	defer s.itemsMu.Unlock()
	out := make([]BulkEntry, len(refs))
	var handles []int32
	var idx []int
	for i, ref := range refs {
		it, ok := s.items[ref]
		if !ok {
			out[i] = BulkEntry{ItemDefinition: ref, err: fmt.Errorf("%w: %s", ErrNotSubscribed, ref)}
			continue
		}
		handles = append(handles, it.handle)
		idx = append(idx, i)
	}
	if len(handles) == 0 {
		return out, nil
	}
	entries, err := s.MX().UnsubscribeBulk(ctx, h, handles)
	if err != nil {
		return nil, err
	}
	t := s.currentTracker()
	for k, e := range entries {
		ref := refs[idx[k]]
		e.ItemDefinition = ref
		out[idx[k]] = e
		// The handle is gone either way (or unusable): forget everything
		// keyed by it, since MXAccess reuses handle values.
		delete(s.items, ref)
		if t != nil {
			t.forget(e.ItemHandle)
		}
	}
	return out, nil
}

// Authenticate runs AuthenticateUser on the session's registration and
// returns the user id for WriteValue's Secured option. A zero id (MXAccess's
// other way of saying no) becomes ErrAuthenticationFailed.
func (s *Session) Authenticate(ctx context.Context, user, password string) (int32, error) {
	h, err := s.ServerHandle(ctx)
	if err != nil {
		return 0, err
	}
	id, err := s.MX().AuthenticateUser(ctx, h, user, password)
	if err != nil {
		return 0, err
	}
	if id == 0 {
		return 0, fmt.Errorf("%w for user %q", ErrAuthenticationFailed, user)
	}
	return id, nil
}

// WriteOption changes how WriteValue writes.
type WriteOption func(*writeOptions)

type writeOptions struct {
	ts                time.Time
	secured           bool
	current, verifier int32
	user              int32
	dataType          mxgatewayv1.MxDataType
	forceType         bool
	supervisory       bool
}

// At writes with Write2 (or WriteSecured2), applying ts as the value's time.
func At(ts time.Time) WriteOption { return func(o *writeOptions) { o.ts = ts } }

// AsUser writes as a Galaxy user id from Authenticate (Write's userId).
func AsUser(userID int32) WriteOption { return func(o *writeOptions) { o.user = userID } }

// Secured writes with WriteSecured (or WriteSecured2 with At): current and
// verifier are user ids from Authenticate; pass the same id twice for a
// single-user secured write.
func Secured(current, verifier int32) WriteOption {
	return func(o *writeOptions) { o.secured, o.current, o.verifier = true, current, verifier }
}

// WithDataType converts the value to dt instead of the attribute's type as
// seen in its first value.
func WithDataType(dt mxgatewayv1.MxDataType) WriteOption {
	return func(o *writeOptions) { o.dataType, o.forceType = dt, true }
}

// Supervisory advises the item with AdviseSupervisory when WriteValue has to
// add it (writes attributed to the application rather than a Galaxy user).
func Supervisory() WriteOption { return func(o *writeOptions) { o.supervisory = true } }

// WriteValue writes x to ref the way a careful MXAccess client does: it adds
// and advises the item if this session's conveniences have not yet, waits
// for the item's first OnDataChange (so the value is converted to the
// attribute's own type, and a bad reference fails here), sends the write and
// waits for the matching OnWriteComplete (FIFO per item handle). It returns
// the final completion's statuses, and an *MxAccessError when the write was
// refused, synchronously (for example E_INVALIDARG) or in the completion
// (for example MxCategorySecurityError).
//
// x is any value ConvertValue accepts, including Text to be parsed for the
// attribute's type. Without a deadline on ctx, the waits are bounded by
// WithWriteTimeout; no completion in time is a failure (Timeout() is true),
// never a success.
//
// Completions are matched per item in order, so do not mix WriteValue with
// raw writes to the same item handle.
func (s *Session) WriteValue(ctx context.Context, ref string, x any, opts ...WriteOption) (Statuses, error) {
	var wo writeOptions
	for _, o := range opts {
		o(&wo)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.c.opts.writeTimeout)
		defer cancel()
	}
	h, err := s.ServerHandle(ctx)
	if err != nil {
		return nil, err
	}
	t, err := s.ensureTracker(ctx, h)
	if err != nil {
		return nil, err
	}
	it, err := s.ensureItem(ctx, h, ref, wo.supervisory)
	if err != nil {
		return nil, err
	}
	first, err := t.firstValue(ctx, it.handle)
	if err != nil {
		return nil, s.waitErr(ctx, "OnDataChange", ref, err)
	}
	if err := first.Err(); err != nil {
		var me *MxAccessError
		if errors.As(err, &me) {
			me.Reference = ref
		}
		return nil, err
	}
	dt := first.Value.DataType()
	if wo.forceType {
		dt = wo.dataType
	} else if dt == mxgatewayv1.MxDataType_MX_DATA_TYPE_NO_DATA {
		dt = mxgatewayv1.MxDataType_MX_DATA_TYPE_UNKNOWN
	}
	v, err := ConvertValue(dt, x)
	if err != nil {
		return nil, err
	}

	it.writeMu.Lock()
	w := t.expectWrite(it.handle)
	m := s.MX()
	switch {
	case wo.secured && !wo.ts.IsZero():
		err = m.WriteSecured2(ctx, h, it.handle, wo.current, wo.verifier, v, wo.ts)
	case wo.secured:
		err = m.WriteSecured(ctx, h, it.handle, wo.current, wo.verifier, v)
	case !wo.ts.IsZero():
		err = m.Write2(ctx, h, it.handle, v, wo.ts, wo.user)
	default:
		err = m.Write(ctx, h, it.handle, v, wo.user)
	}
	if err != nil {
		// Refused synchronously: no completion will come for it. A
		// transport failure leaves it unknown, so the waiter stays queued to
		// absorb a late completion.
		var me *MxAccessError
		if errors.As(err, &me) {
			t.cancelWrite(it.handle, w)
			me.Reference = ref
		} else {
			t.abandonWrite(w)
		}
		it.writeMu.Unlock()
		return nil, err
	}
	it.writeMu.Unlock()
	st, err := t.waitWrite(ctx, w)
	if err != nil {
		return nil, s.waitErr(ctx, "OnWriteComplete", ref, err)
	}
	if !st.OK() {
		return st, &MxAccessError{Method: "OnWriteComplete", Reference: ref, Statuses: st}
	}
	return st, nil
}

func (s *Session) waitErr(ctx context.Context, method, ref string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		return &MxAccessError{Method: method, Reference: ref, Message: timeoutMessage}
	}
	return err
}

func (s *Session) ensureItem(ctx context.Context, h int32, ref string, supervisory bool) (*item, error) {
	s.itemsMu.Lock()
	defer s.itemsMu.Unlock()
	if it, ok := s.items[ref]; ok {
		return it, nil
	}
	entries, err := s.MX().SubscribeBulk(ctx, h, []string{ref}, supervisory)
	if err != nil {
		return nil, err
	}
	if err := entries[0].Err(); err != nil {
		return nil, err
	}
	it := &item{ref: ref, handle: entries[0].ItemHandle}
	s.items[ref] = it
	return it, nil
}

func (s *Session) currentTracker() *tracker {
	s.trackerMu.Lock()
	defer s.trackerMu.Unlock()
	return s.tracker
}

// ensureTracker starts the session's event tracker before the conveniences
// advise anything, so no first value or completion of theirs is missed.
func (s *Session) ensureTracker(ctx context.Context, h int32) (*tracker, error) {
	s.trackerMu.Lock()
	defer s.trackerMu.Unlock()
	if s.tracker != nil {
		return s.tracker, nil
	}
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	// Start after the events that already happened, so completions of
	// earlier raw writes are not taken for ours. When the list is not
	// available, replay from the start (still correct for handles the
	// conveniences create from now on).
	var after uint64
	if list, err := s.c.ListSessions(ctx); err == nil {
		for _, si := range list {
			if si.GetSessionId() == s.ID() {
				after = si.GetLastSequence()
			}
		}
	}
	s.tracker = startTracker(s, h, after)
	return s.tracker, nil
}

// commandName is the name of the command's kind, for messages.
func commandName(cmd *mxgatewayv1.Command) string {
	m := cmd.ProtoReflect()
	if od := m.Descriptor().Oneofs().ByName("kind"); od != nil {
		if fd := m.WhichOneof(od); fd != nil {
			return string(fd.Name())
		}
	}
	return "command"
}
