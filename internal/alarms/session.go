package alarms

import (
	"context"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/protocol"
	"github.com/mxgateway/mxgateway/internal/session"
)

// ClientName is the gateway-internal alarm session's client name, as
// session listings show it.
const ClientName = "gateway:alarm-monitor"

// SessionOpener opens the monitor's sessions in m: ordinary sessions (a
// worker each) owned by the gateway, listed as ClientName.
func SessionOpener(m *session.Manager) Opener {
	return func(ctx context.Context) (Session, error) {
		s, err := m.Open(ctx, session.OpenRequest{ClientName: ClientName, QuotaExempt: true})
		if err != nil {
			return nil, err
		}
		sub, err := s.Subscribe(session.SubscribeRequest{LiveOnly: true})
		if err != nil {
			_, _ = m.CloseSession(context.Background(), s.ID())
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = x.m.CloseSession(ctx, x.s.ID())
}
