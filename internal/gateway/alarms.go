package gateway

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/internal/alarms"
	"github.com/mxgateway/mxgateway/internal/auth"
)

// AlarmsService is the Alarms gRPC service over the gateway's alarm
// monitor. Register it with mxgatewayv1grpc.RegisterAlarmsServer. A key with
// read constraints sees only the alarms it may read and acknowledges only
// those it may write.
type AlarmsService struct {
	mxgatewayv1grpc.UnimplementedAlarmsServer
	mon *alarms.Monitor
	log *slog.Logger
}

// NewAlarmsService serves mon; nil answers UNAVAILABLE (no monitor on
// this gateway).
func NewAlarmsService(mon *alarms.Monitor, log *slog.Logger) *AlarmsService {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &AlarmsService{mon: mon, log: log}
}

// errAckForbidden: the key's constraints do not cover the alarm.
var errAckForbidden = errors.New("the key's reference constraints do not allow acknowledging this alarm")

func readAllow(ctx context.Context) func(string) bool {
	p, _ := auth.FromContext(ctx)
	if p != nil && p.HasReadConstraints() {
		return p.AllowRead
	}
	return nil
}

// StreamAlarms implements mxgatewayv1grpc.AlarmsServer.
func (a *AlarmsService) StreamAlarms(req *mxgatewayv1.StreamAlarmsRequest, stream grpc.ServerStreamingServer[mxgatewayv1.StreamAlarmsResponse]) error {
	const method = "StreamAlarms"
	if a.mon == nil {
		return toStatus(a.log, method, alarms.ErrUnavailable)
	}
	feed, err := a.mon.Subscribe(req.GetFilter(), req.GetAfterSequence(), readAllow(stream.Context()))
	if err != nil {
		return toStatus(a.log, method, err)
	}
	defer feed.Close()
	// Headers tell the client the feed is registered.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for {
		msg, err := feed.Next(stream.Context())
		if err != nil {
			return toStatus(a.log, method, err)
		}
		if err := stream.Send(msg); err != nil {
			return err
		}
	}
}

// ListActiveAlarms implements mxgatewayv1grpc.AlarmsServer.
func (a *AlarmsService) ListActiveAlarms(ctx context.Context, req *mxgatewayv1.ListActiveAlarmsRequest) (*mxgatewayv1.ListActiveAlarmsResponse, error) {
	const method = "ListActiveAlarms"
	if a.mon == nil {
		return nil, toStatus(a.log, method, alarms.ErrUnavailable)
	}
	list, next, seq, err := a.mon.List(req.GetFilter(), req.GetPageSize(), req.GetPageToken(), readAllow(ctx))
	if err != nil {
		return nil, toStatus(a.log, method, err)
	}
	return &mxgatewayv1.ListActiveAlarmsResponse{Alarms: list, NextPageToken: next, Sequence: seq}, nil
}

// AcknowledgeAlarm implements mxgatewayv1grpc.AlarmsServer. The credentials
// are never logged (the request is not either).
func (a *AlarmsService) AcknowledgeAlarm(ctx context.Context, req *mxgatewayv1.AcknowledgeAlarmRequest) (*mxgatewayv1.AcknowledgeAlarmResponse, error) {
	const method = "AcknowledgeAlarm"
	if a.mon == nil {
		return nil, toStatus(a.log, method, alarms.ErrUnavailable)
	}
	p, _ := auth.FromContext(ctx)
	if p != nil && (p.HasWriteConstraints() && !p.AllowWrite(req.GetReference()) || p.HasReadConstraints() && !p.AllowRead(req.GetReference())) {
		return nil, toStatus(a.log, method, errAckForbidden)
	}
	cred := func(c *mxgatewayv1.GalaxyCredentials) *alarms.Credentials {
		if c == nil {
			return nil
		}
		return &alarms.Credentials{User: c.GetUserName(), Password: c.GetPassword()}
	}
	by := ""
	if p != nil {
		by = p.Name
	}
	rep, err := a.mon.Acknowledge(ctx, alarms.AckRequest{Reference: req.GetReference(), Instance: req.GetInstance(),
		Comment: req.GetComment(), Operator: cred(req.GetOperator()), Verifier: cred(req.GetVerifier()), By: by})
	if err != nil {
		return nil, toStatus(a.log, method, err)
	}
	return rep, nil
}
