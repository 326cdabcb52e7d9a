package shared

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/subject"
	"github.com/mxgateway/mxgateway/client"
)

// DefaultURL is the embedded NATS server's default address.
const DefaultURL = "nats://" + subject.DefaultAddr

// Options configure Dial.
type Options struct {
	// URL is the NATS server (default DefaultURL).
	URL string
	// APIKey is the mxgateway API key; empty for a gateway with auth=none.
	APIKey string
	// Galaxy is the gateway's nats_galaxy (default subject.DefaultGalaxy).
	Galaxy string
	// Consumer is this consumer's stable id (letters, digits, - and _); a
	// reconnecting consumer that keeps it renews its leases instead of
	// adding new ones. Default: random.
	Consumer string
	// Lease is the lease asked for (0: the gateway's nats_lease). Leases
	// are renewed at half their granted length.
	Lease time.Duration
	// Deadband (optional) tells the gateway this consumer needs no numeric
	// change smaller than it; AtLeastEvery (optional, at least 100ms) asks
	// for the last value again when nothing changed for that long. The
	// gateway applies the finest filter among a reference's consumers.
	Deadband     float64
	AtLeastEvery time.Duration
	// CAFile pins the gateway's certificate for a TLS listener (tls://).
	CAFile string
	// Options are extra nats.go options.
	Options []nats.Option
}

// Value is one value of a shared reference: the same typed value and
// quality as the gRPC API's DataChange, with the per-subject sequence.
type Value struct {
	Reference   string
	Value       client.Value
	Quality     client.Quality
	SourceTime  time.Time // the value's time in the Galaxy, UTC
	Sequence    uint64    // per subject; a jump means values were conflated or missed
	GatewayTime time.Time // when the gateway published it
	Statuses    client.Statuses
	// Last is true for the last known value delivered from the lease reply
	// (the key-value bucket) rather than live.
	Last bool
}

func valueOf(v *mxgatewayv1.SharedValue, last bool) Value {
	return Value{
		Reference: v.GetReference(), Value: client.ValueFromProto(v.GetValue()), Quality: client.QualityFromProto(v.GetQuality()),
		SourceTime: tsOrZero(v.GetSourceTime()), Sequence: v.GetSequence(), GatewayTime: tsOrZero(v.GetGatewayTime()),
		Statuses: v.GetStatuses(), Last: last,
	}
}

// Error is a lease or write the gateway refused: Reason is one of the
// mxgatewayv1.Reason... constants. errors.Is matches the package sentinels
// (client.ErrPermissionDenied, client.ErrUnauthenticated, client.ErrResourceExhausted, ...).
type Error struct {
	Reference string
	Reason    string
	Message   string
}

// Error implements error.
func (e *Error) Error() string {
	ref := ""
	if e.Reference != "" {
		ref = " " + e.Reference
	}
	return fmt.Sprintf("client: shared%s refused (%s): %s", ref, e.Reason, e.Message)
}

// Is matches the package sentinels by reason.
func (e *Error) Is(target error) bool {
	return target != nil && client.SentinelOf(e.Reason) == target
}

// Client is a NATS connection for shared subscriptions and writes. It is
// safe for concurrent use; Close releases every lease.
type Client struct {
	nc       *nats.Conn
	subj     subject.Subjects
	keyID    string
	apiKey   string
	consumer string
	lease    time.Duration
	deadband float64
	every    time.Duration

	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
}

// keyIDOf returns the public id of an API key (mxgw_<id>_<secret>).
func keyIDOf(key string) (string, error) {
	id, ok := strings.CutPrefix(key, "mxgw_")
	if ok {
		id, _, ok = strings.Cut(id, "_")
	}
	if !ok || id == "" {
		return "", fmt.Errorf("%w: not an mxgateway API key", client.ErrUnauthenticated)
	}
	return id, nil
}

// Dial connects to the gateway's NATS server with an API key.
func Dial(ctx context.Context, o Options) (*Client, error) {
	if o.URL == "" {
		o.URL = DefaultURL
	}
	if o.Galaxy == "" {
		o.Galaxy = subject.DefaultGalaxy
	}
	subj, err := subject.NewSubjects(o.Galaxy)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	keyID := "anonymous"
	if o.APIKey != "" {
		if keyID, err = keyIDOf(o.APIKey); err != nil {
			return nil, err
		}
	}
	if o.Consumer == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		o.Consumer = "c" + hex.EncodeToString(b)
	}
	opts := []nats.Option{nats.Name("mxgateway client " + o.Consumer), nats.CustomInboxPrefix(subject.Inbox(keyID))}
	if o.APIKey != "" {
		opts = append(opts, nats.Token(o.APIKey))
	}
	if o.CAFile != "" {
		opts = append(opts, nats.RootCAs(o.CAFile))
	}
	opts = append(opts, o.Options...)
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(o.URL, opts...)
		done <- result{nc, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, ctx.Err()
	}
	if r.err != nil {
		if errors.Is(r.err, nats.ErrAuthorization) || strings.Contains(strings.ToLower(r.err.Error()), "authorization") {
			return nil, fmt.Errorf("%w: NATS refused the API key: %v", client.ErrUnauthenticated, r.err)
		}
		return nil, fmt.Errorf("%w: NATS: %v", client.ErrUnavailable, r.err)
	}
	return &Client{nc: r.nc, subj: subj, keyID: keyID, apiKey: o.APIKey, consumer: o.Consumer, lease: o.Lease, deadband: o.Deadband, every: o.AtLeastEvery,
		subs: map[*Subscription]struct{}{}}, nil
}

// Conn is the underlying NATS connection.
func (s *Client) Conn() *nats.Conn { return s.nc }

// Subject is the subject the values of ref are published on.
func (s *Client) Subject(ref string) (string, error) { return s.subj.Tag(ref) }

func (s *Client) request(ctx context.Context, subj string, req, reply proto.Message) error {
	data, err := proto.Marshal(req)
	if err != nil {
		return err
	}
	msg := nats.NewMsg(subj)
	msg.Data = data
	if s.apiKey != "" {
		msg.Header.Set("Authorization", "Bearer "+s.apiKey)
	}
	resp, err := s.nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return fmt.Errorf("%w: no gateway answers on %s", client.ErrUnavailable, subj)
		}
		if errors.Is(err, nats.ErrPermissionViolation) {
			return &Error{Reason: mxgatewayv1.ReasonPermissionDenied, Message: err.Error()}
		}
		return fmt.Errorf("client: shared request: %w", err)
	}
	if err := proto.Unmarshal(resp.Data, reply); err != nil {
		return fmt.Errorf("client: shared reply: %w", err)
	}
	return nil
}

// lease sends one lease request and returns the reply.
func (s *Client) leaseReq(ctx context.Context, refs []string, release bool) (*mxgatewayv1.SharedLeaseReply, error) {
	req := &mxgatewayv1.SharedLeaseRequest{Consumer: s.consumer, References: refs, Release: release, Deadband: s.deadband}
	if s.every > 0 {
		req.AtLeastEvery = durationpb.New(s.every)
	}
	if s.lease > 0 {
		req.Ttl = durationpb.New(s.lease)
	}
	reply := &mxgatewayv1.SharedLeaseReply{}
	if err := s.request(ctx, s.subj.Subscribe(s.keyID), req, reply); err != nil {
		return nil, err
	}
	if reply.GetReason() != "" {
		return nil, &Error{Reason: reply.GetReason(), Message: reply.GetMessage()}
	}
	return reply, nil
}

// Subscription is one Subscribe call's interest. Close it to release
// its leases.
type Subscription struct {
	s     *Client
	refs  []string
	subs  []*nats.Subscription
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	err   error
	fn    func(Value)
	fnMu  sync.Mutex
	last  map[string]uint64 // reference → last sequence delivered
	drops uint64
}

// Subscribe declares interest in refs and calls fn (from one goroutine, in
// order per reference) with each reference's last known value, then with
// every new one. References the gateway refuses are returned as
// *Error entries in the error (errors.Join); the others are held.
// Subscribe fails only when no reference is held.
func (s *Client) Subscribe(ctx context.Context, refs []string, fn func(Value)) (*Subscription, error) {
	if len(refs) == 0 {
		return nil, fmt.Errorf("%w: no references", client.ErrInvalidRequest)
	}
	sub := &Subscription{s: s, refs: refs, stop: make(chan struct{}), done: make(chan struct{}), fn: fn, last: map[string]uint64{}}
	// Subscribe before the lease: the first value after the gateway's
	// advise is not missed.
	for _, r := range refs {
		subj, err := s.subj.Tag(r)
		if err != nil {
			sub.unsubscribe()
			return nil, fmt.Errorf("%w: %v", client.ErrInvalidRequest, err)
		}
		ns, err := s.nc.Subscribe(subj, sub.onMsg)
		if err != nil {
			sub.unsubscribe()
			return nil, fmt.Errorf("client: subscribe %s: %w", subj, err)
		}
		sub.subs = append(sub.subs, ns)
	}
	if err := s.nc.FlushWithContext(ctx); err != nil {
		sub.unsubscribe()
		return nil, fmt.Errorf("client: %w", err)
	}
	if err := s.nc.LastError(); err != nil && errors.Is(err, nats.ErrPermissionViolation) {
		sub.unsubscribe()
		return nil, &Error{Reason: mxgatewayv1.ReasonPermissionDenied, Message: err.Error()}
	}
	reply, err := s.leaseReq(ctx, refs, false)
	if err != nil {
		sub.unsubscribe()
		return nil, err
	}
	var errs []error
	held := 0
	for _, e := range reply.GetEntries() {
		if e.GetReason() != "" {
			errs = append(errs, &Error{Reference: e.GetReference(), Reason: e.GetReason(), Message: e.GetMessage()})
			continue
		}
		held++
		if e.GetLast() != nil {
			sub.deliver(valueOf(e.GetLast(), true))
		}
	}
	if held == 0 {
		sub.unsubscribe()
		return nil, errors.Join(errs...)
	}
	s.mu.Lock()
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	ttl := reply.GetTtl().AsDuration()
	go sub.renew(max(ttl/2, 100*time.Millisecond))
	return sub, errors.Join(errs...)
}

// deliver calls fn unless v is older than what was delivered.
func (sub *Subscription) deliver(v Value) {
	sub.fnMu.Lock()
	defer sub.fnMu.Unlock()
	if seq, ok := sub.last[v.Reference]; ok && v.Sequence <= seq && v.Sequence != 0 {
		return
	}
	sub.last[v.Reference] = v.Sequence
	sub.fn(v)
}

func (sub *Subscription) onMsg(m *nats.Msg) {
	v := &mxgatewayv1.SharedValue{}
	var err error
	if len(m.Data) > 0 && m.Data[0] == '{' {
		err = protojson.Unmarshal(m.Data, v)
	} else {
		err = proto.Unmarshal(m.Data, v)
	}
	if err != nil {
		return
	}
	sub.deliver(valueOf(v, false))
}

// renew keeps the leases alive until Close.
func (sub *Subscription) renew(every time.Duration) {
	defer close(sub.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-sub.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), every)
			_, err := sub.s.leaseReq(ctx, sub.refs, false)
			cancel()
			sub.mu.Lock()
			sub.err = err
			sub.mu.Unlock()
		}
	}
}

// Err is the last renewal's failure, or nil.
func (sub *Subscription) Err() error {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.err
}

func (sub *Subscription) unsubscribe() {
	for _, ns := range sub.subs {
		_ = ns.Unsubscribe()
	}
}

// Close stops delivery and releases the leases.
func (sub *Subscription) Close() error {
	var err error
	sub.once.Do(func() {
		sub.unsubscribe()
		if sub.done != nil {
			close(sub.stop)
			<-sub.done
		}
		sub.s.mu.Lock()
		delete(sub.s.subs, sub)
		sub.s.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = sub.s.leaseReq(ctx, sub.refs, true)
	})
	return err
}

// Write writes v to ref through the gateway (request/reply on the write
// subject). An MXAccess refusal is an *MxAccessError, a gateway refusal a
// *Error.
func (s *Client) Write(ctx context.Context, ref string, v client.Value) (*mxgatewayv1.Reply, error) {
	subj, err := s.subj.Write(s.keyID, ref)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", client.ErrInvalidRequest, err)
	}
	reply := &mxgatewayv1.SharedWriteReply{}
	if err := s.request(ctx, subj, &mxgatewayv1.SharedWriteRequest{Value: v.Proto()}, reply); err != nil {
		var se *Error
		if errors.As(err, &se) {
			se.Reference = ref
		}
		return nil, err
	}
	if reply.GetReason() != "" {
		return nil, &Error{Reference: ref, Reason: reply.GetReason(), Message: reply.GetMessage()}
	}
	r := reply.GetReply()
	if r.GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK {
		return r, &client.MxAccessError{Method: "Write", Reference: ref, Status: r.GetStatus(), HRESULT: r.GetHresult(), Statuses: r.GetStatuses(), Message: r.GetMessage()}
	}
	return r, nil
}

// Close releases every subscription's leases and closes the connection.
func (s *Client) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	subs := make([]*Subscription, 0, len(s.subs))
	for sub := range s.subs {
		subs = append(subs, sub)
	}
	s.mu.Unlock()
	for _, sub := range subs {
		_ = sub.Close()
	}
	s.nc.Close()
	return nil
}

func tsOrZero(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime().UTC()
}
