package alarms

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/protocol"
	"github.com/mxgateway/mxgateway/internal/session"
)

// ClientName is the gateway-internal alarm session's client name, as
// session listings show it.
const ClientName = "gateway:alarm-monitor"

// openSession opens one of the monitor's sessions in m: an ordinary
// session (a worker) owned by the gateway, listed as ClientName.
func openSession(ctx context.Context, m *session.Manager) (*session.Session, error) {
	return m.Open(ctx, session.OpenRequest{ClientName: ClientName, QuotaExempt: true})
}

// closeSession closes one of them, within a bound of its own.
func closeSession(m *session.Manager, s *session.Session) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = m.CloseSession(ctx, s.ID())
}

// SessionOpener opens the subtag provider's sessions in m.
func SessionOpener(m *session.Manager) Opener {
	return func(ctx context.Context) (Session, error) {
		s, err := openSession(ctx, m)
		if err != nil {
			return nil, err
		}
		sub, err := s.Subscribe(session.SubscribeRequest{LiveOnly: true})
		if err != nil {
			closeSession(m, s)
			return nil, err
		}
		return &managed{m: m, s: s, sub: sub}, nil
	}
}

type managed struct {
	m   *session.Manager
	s   *session.Session
	sub *session.Subscription
}

func (x *managed) Invoke(ctx context.Context, cmd *mxgatewayv1.Command) (*mxgatewayv1.Reply, error) {
	return x.s.Invoke(ctx, cmd, 0)
}

// eventBatch bounds one Events call.
const eventBatch = 4096

// Events decodes only the data changes and write completions (the
// monitor's session sees nothing else it needs).
func (x *managed) Events(ctx context.Context) ([]*mxgatewayv1.Event, error) {
	ev, err := x.sub.Next(ctx)
	if err != nil {
		return nil, err
	}
	batch := x.sub.Drain(append(make([]*protocol.Event, 0, 64), ev), eventBatch-1)
	out := make([]*mxgatewayv1.Event, 0, len(batch))
	for _, e := range batch {
		if e.IsDataChange() || e.IsWriteComplete() {
			out = append(out, e.Msg())
		}
	}
	return out, nil
}

func (x *managed) Close() {
	x.sub.Close()
	closeSession(x.m, x.s)
}

// NativeConsumers is the native provider's consumer factory: each consumer
// is a gateway-internal session whose worker's backend has the native
// alarm consumer (the COM consumer in the windows/386 worker with real
// MXAccess, the simulator's own elsewhere). The consumer's calls travel
// as gateway-internal AlarmConsumerRequests on that session; no public
// command reaches them. A worker without a consumer fails the open with
// ErrUnavailable, and the monitor fails over.
func NativeConsumers(m *session.Manager) ConsumerFactory {
	return func(ctx context.Context, query string) (Consumer, error) {
		s, err := openSession(ctx, m)
		if err != nil {
			return nil, err
		}
		c := &workerConsumer{m: m, s: s}
		if !s.HasAlarmConsumer() {
			closeSession(c.m, c.s)
			return nil, fmt.Errorf("%w: the worker (%s) has no native alarm consumer", ErrUnavailable, s.Backend().GetKind())
		}
		if err := c.call(ctx, "open", &workerv1.AlarmConsumerRequest{Op: &workerv1.AlarmConsumerRequest_Open{
			Open: &workerv1.AlarmConsumerOpen{Query: query}}}, nil); err != nil {
			closeSession(c.m, c.s)
			return nil, err
		}
		return c, nil
	}
}

// ConsumerError is the native consumer's refusal of a call.
type ConsumerError struct {
	Op      string // open, poll, ack, close
	Status  mxgatewayv1.GatewayStatusCode
	HRESULT int32
	Message string
}

func (e *ConsumerError) Error() string {
	return fmt.Sprintf("alarms: native consumer %s: %s (HRESULT 0x%08X): %s", e.Op, e.Status, uint32(e.HRESULT), e.Message)
}

type workerConsumer struct {
	m *session.Manager
	s *session.Session

	mu     sync.Mutex
	server int32 // the registration AuthenticateUser runs on, once made
}

// errNotAuthenticated: the Galaxy did not accept the credentials.
var errNotAuthenticated = errors.New("alarms: the Galaxy user was not authenticated")

// Authenticate runs AuthenticateUser on a registration of the consumer's
// session, made on first use.
func (c *workerConsumer) Authenticate(ctx context.Context, cred Credentials) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.server == 0 {
		rep, err := c.s.Invoke(ctx, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{
			ClientName: ClientName}}}, 0)
		if err != nil {
			return err
		}
		if c.server = rep.GetRegister().GetServerHandle(); c.server == 0 {
			return fmt.Errorf("alarms: Register for the native consumer's credentials failed: HRESULT 0x%08X", uint32(rep.GetHresult()))
		}
	}
	rep, err := c.s.Invoke(ctx, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AuthenticateUser{AuthenticateUser: &mxgatewayv1.AuthenticateUserCommand{
		ServerHandle: c.server, UserName: cred.User, Password: cred.Password}}}, 0)
	if err != nil {
		return err
	}
	if rep.GetUserId().GetUserId() == 0 {
		return fmt.Errorf("%w: %q", errNotAuthenticated, cred.User)
	}
	return nil
}

// call makes one request; a reply that is not OK is a *ConsumerError.
func (c *workerConsumer) call(ctx context.Context, op string, req *workerv1.AlarmConsumerRequest, rep **workerv1.AlarmConsumerReply) error {
	r, err := c.s.AlarmConsumer(ctx, req, 0)
	if err != nil {
		return fmt.Errorf("alarms: native consumer %s: %w", op, err)
	}
	if r.GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK {
		return &ConsumerError{Op: op, Status: r.GetStatus(), HRESULT: r.GetHresult(), Message: r.GetMessage()}
	}
	if rep != nil {
		*rep = r
	}
	return nil
}

func (c *workerConsumer) CurrentXML(ctx context.Context) (string, error) {
	var r *workerv1.AlarmConsumerReply
	if err := c.call(ctx, "poll", &workerv1.AlarmConsumerRequest{Op: &workerv1.AlarmConsumerRequest_Poll{Poll: &workerv1.AlarmConsumerPoll{}}}, &r); err != nil {
		return "", err
	}
	return r.GetDocument(), nil
}

func (c *workerConsumer) Ack(ctx context.Context, guid, comment string, operator *Credentials) error {
	user := ""
	if operator != nil {
		user = operator.User
	}
	return c.call(ctx, "ack", &workerv1.AlarmConsumerRequest{Op: &workerv1.AlarmConsumerRequest_Ack{
		Ack: &workerv1.AlarmConsumerAck{Guid: guid, Comment: comment, User: user}}}, nil)
}

// Close releases the consumer, then the session (its worker tears the
// consumer down anyway).
func (c *workerConsumer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.call(ctx, "close", &workerv1.AlarmConsumerRequest{Op: &workerv1.AlarmConsumerRequest_Close{Close: &workerv1.AlarmConsumerClose{}}}, nil)
	closeSession(c.m, c.s)
}
