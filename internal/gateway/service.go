package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/internal/metrics"
	"github.com/mxgateway/mxgateway/internal/protocol"
	"github.com/mxgateway/mxgateway/internal/session"
)

// APIVersion is the public API version reported by OpenSession.
const APIVersion = 1

// Service implements mxgatewayv1grpc.GatewayServer on a session.Manager. It
// validates every request before anything reaches a worker and maps every
// error through toStatus.
type Service struct {
	mxgatewayv1grpc.UnimplementedGatewayServer

	sessions *session.Manager
	log      *slog.Logger
	maxBulk  int
	identity func(ctx context.Context) string
	access   func(ctx context.Context, sessionID, ownerKeyID string) error
	visible  func(ctx context.Context, ownerKeyID string) bool
	// constraints applies reference constraints; nil checks nothing.
	constraints Constraints
	metrics     *metrics.Metrics
	// writeTimeout bounds one event stream send.
	writeTimeout time.Duration
	// credentials throttles failed MXAccess credential checks; nil none.
	credentials Credentials
	// quotaExempt says whether the caller is above the per-key quota.
	quotaExempt func(ctx context.Context) bool

	// stopping is cancelled when the server shuts down: streams end and
	// new sessions are refused.
	stopping context.Context
}

var _ mxgatewayv1grpc.GatewayServer = (*Service)(nil)

func (sv *Service) refusing() bool { return sv.stopping.Err() != nil }

// lookup finds a session the caller may use and renews its lease. A
// session that faulted and left the table answers its owner
// SESSION_FAULTED with the fault; anybody else, and every caller of a
// closed one, gets the answer of an unknown id.
func (sv *Service) lookup(ctx context.Context, id string) (*session.Session, error) {
	s, err := sv.sessions.Get(id)
	if errors.Is(err, session.ErrNotFound) {
		if ts, ok := sv.sessions.Tombstone(id); ok && ts.State == mxgatewayv1.SessionState_SESSION_STATE_FAULTED && sv.mayUse(ctx, id, ts.OwnerKeyID) {
			return nil, fmt.Errorf("%w: %s", session.ErrFaulted, ts.FaultReason)
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	if sv.access != nil {
		if err := sv.access(ctx, s.ID(), s.OwnerKeyID()); err != nil {
			return nil, err
		}
	}
	s.Touch()
	return s, nil
}

// mayUse reports, without recording a denial, whether the caller may use
// a session owned by ownerKeyID.
func (sv *Service) mayUse(ctx context.Context, id, ownerKeyID string) bool {
	switch {
	case sv.visible != nil:
		return sv.visible(ctx, ownerKeyID)
	case sv.access != nil:
		return sv.access(ctx, id, ownerKeyID) == nil
	}
	return true
}

// OpenSession launches a worker and returns the new session.
func (sv *Service) OpenSession(ctx context.Context, req *mxgatewayv1.OpenSessionRequest) (*mxgatewayv1.OpenSessionResponse, error) {
	const method = "OpenSession"
	v := &validator{}
	v.text("client_name", req.GetClientName(), maxNameLen)
	if err := v.err(); err != nil {
		return nil, toStatus(sv.log, method, err)
	}
	if sv.refusing() {
		return nil, toStatus(sv.log, method, ErrShuttingDown)
	}
	owner := ""
	if sv.identity != nil {
		owner = sv.identity(ctx)
	}
	exempt := sv.quotaExempt != nil && sv.quotaExempt(ctx)
	s, err := sv.sessions.Open(ctx, session.OpenRequest{ClientName: req.GetClientName(), OwnerKeyID: owner, QuotaExempt: exempt})
	if errors.Is(err, session.ErrKeyLimit) {
		sv.metrics.LimitRefused(mxgatewayv1.ReasonKeySessionLimit)
	}
	if err != nil {
		return nil, toStatus(sv.log, method, err)
	}
	return &mxgatewayv1.OpenSessionResponse{
		SessionId:             s.ID(),
		LeaseExpiresAt:        timestamppb.New(s.LeaseExpiresAt()),
		Backend:               s.Backend(),
		ApiVersion:            APIVersion,
		WorkerProtocolVersion: protocol.Version,
		WorkerPid:             int32(s.WorkerPID()),
	}, nil
}

// CloseSession closes a session; closing a closed session reports
// already_closed.
func (sv *Service) CloseSession(ctx context.Context, req *mxgatewayv1.CloseSessionRequest) (*mxgatewayv1.CloseSessionResponse, error) {
	const method = "CloseSession"
	v := &validator{}
	v.sessionID("session_id", req.GetSessionId())
	if err := v.err(); err != nil {
		return nil, toStatus(sv.log, method, err)
	}
	id := req.GetSessionId()
	if _, err := sv.sessions.Get(id); errors.Is(err, session.ErrNotFound) {
		// Maybe recently closed: the manager remembers those, and tells
		// only callers that may use the session (to anybody else a closed
		// id is an unknown id).
		if ts, ok := sv.sessions.Tombstone(id); ok && sv.mayUse(ctx, id, ts.OwnerKeyID) {
			return &mxgatewayv1.CloseSessionResponse{AlreadyClosed: true, State: ts.State}, nil
		}
		return nil, toStatus(sv.log, method, session.ErrNotFound)
	}
	s, err := sv.lookup(ctx, id)
	if err != nil {
		return nil, toStatus(sv.log, method, err)
	}
	// The teardown is bounded by the manager's CloseTimeout; a client that
	// hangs up must not turn a graceful close into a kill.
	res := s.Close(context.WithoutCancel(ctx))
	return &mxgatewayv1.CloseSessionResponse{
		AlreadyClosed:    res.AlreadyClosed,
		State:            res.State,
		TeardownWarnings: res.Warnings,
	}, nil
}

// Invoke validates the command and runs it on the session's worker, with
// the caller's reference constraints applied: denied bulk entries are left
// out, and a guarded write carries the item guard the worker re-checks.
// MXAccess refusals are replies, never errors.
func (sv *Service) Invoke(ctx context.Context, req *mxgatewayv1.InvokeRequest) (*mxgatewayv1.InvokeResponse, error) {
	const method = "Invoke"
	denials, err := validateInvoke(req, sv.maxBulk)
	if err != nil {
		return nil, toStatus(sv.log, method, err)
	}
	s, err := sv.lookup(ctx, req.GetSessionId())
	if err != nil {
		return nil, toStatus(sv.log, method, err)
	}
	cmd := req.GetCommand()
	timeout := time.Duration(req.GetTimeoutMs()) * time.Millisecond
	var guard *workerv1.ItemGuard
	if sv.constraints != nil {
		dec, err := sv.constraints.CheckCommand(ctx, s.ID(), cmd, s.ItemRef)
		if err != nil {
			return nil, toStatus(sv.log, method, err)
		}
		for i, d := range dec.Denials {
			if denials == nil {
				denials = make(map[int]*mxgatewayv1.EntryDenial)
			}
			if denials[i] == nil {
				denials[i] = d
			}
		}
		guard = wireGuard(dec)
	}
	if sv.credentials != nil {
		if err := sv.credentials.CheckCredentials(ctx, s.ID(), cmd); err != nil {
			return nil, err
		}
	}
	reply, err := sv.run(ctx, s, cmd, denials, guard, timeout)
	if errors.Is(err, session.ErrPendingLimit) {
		sv.metrics.LimitRefused(mxgatewayv1.ReasonPendingLimit)
	}
	if sv.credentials != nil && slices.Contains(s.Items().Registrations(), cmd.GetAuthenticateUser().GetServerHandle()) {
		// Only an AuthenticateUser of a live registration checked a
		// password (a bad handle is no guess); secured writes learn their
		// verdict later, in OnWriteComplete.
		sv.credentials.CredentialsChecked(ctx, s.ID(), cmd, reply)
	}
	if err != nil {
		return nil, toStatus(sv.log, method, err)
	}
	if reply == nil {
		return nil, toStatus(sv.log, method, errors.New("gateway: worker returned no reply"))
	}
	return &mxgatewayv1.InvokeResponse{Reply: reply}, nil
}

// StreamEvents attaches a subscriber and sends events until the session
// ends, the subscriber falls behind, the client leaves or the server shuts
// down. This goroutine is the stream's only sender.
func (sv *Service) StreamEvents(req *mxgatewayv1.StreamEventsRequest, stream grpc.ServerStreamingServer[mxgatewayv1.StreamEventsResponse]) error {
	const method = "StreamEvents"
	v := &validator{}
	v.sessionID("session_id", req.GetSessionId())
	filter := v.eventFilter(req.GetFilter())
	maxBatch, maxDelay := v.batching(req)
	if err := v.err(); err != nil {
		return toStatus(sv.log, method, err)
	}
	if sv.refusing() {
		return toStatus(sv.log, method, ErrShuttingDown)
	}
	s, err := sv.lookup(stream.Context(), req.GetSessionId())
	if err != nil {
		return toStatus(sv.log, method, err)
	}
	sub, err := s.Subscribe(session.SubscribeRequest{
		AfterSequence: req.GetAfterSequence(),
		LiveOnly:      req.GetLiveOnly(),
		Conflate:      req.GetConflate(),
	})
	if err != nil {
		return toStatus(sv.log, method, err)
	}
	defer sub.Close()
	// Headers tell the client the subscription is registered: every event
	// from now on reaches it (useful with live_only).
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	stop := context.AfterFunc(sv.stopping, cancel)
	defer stop()
	// The non-parity filter (deadbands, minimum interval) of this
	// subscriber only; nil sends every event.
	// Every send is bounded by the write timeout: a client that stopped
	// reading ends its stream instead of holding the session.
	watch := newSendWatch()
	out := &filteredSender{stream: watchedStream{stream, watch}, filter: session.NewFilter(filter), sent: func(ev *protocol.Event) {
		if sv.metrics != nil {
			var latency time.Duration
			if !ev.GatewayTime.IsZero() {
				latency = max(0, time.Since(ev.GatewayTime))
			}
			sv.metrics.EventSent(ev.Family, latency)
		}
	}, maxBatch: maxBatch, maxDelay: maxDelay}
	sendFailed := func(err error) error {
		if errors.Is(err, errSendAbandoned) {
			return err // the handler already answered and counted it
		}
		if errors.Is(err, ErrWriteDeadline) {
			sv.metrics.StreamDisconnect(DisconnectWriteDeadline)
			sv.log.Warn("event stream ended: the client stopped reading", slog.String(logging.KeySession, s.ID()), slog.Duration("write_timeout", sv.writeTimeout))
			return toStatus(sv.log, method, err)
		}
		if ctx.Err() != nil && stream.Context().Err() == nil && sv.refusing() {
			sv.metrics.StreamDisconnect(DisconnectShutdown)
			return toStatus(sv.log, method, ErrShuttingDown)
		}
		if cause := context.Cause(stream.Context()); cause != nil && cause != stream.Context().Err() {
			if _, ok := status.FromError(cause); ok {
				sv.metrics.StreamDisconnect(DisconnectRevoked)
				return cause
			}
		}
		sv.metrics.StreamDisconnect(DisconnectClient)
		return err
	}
	// The loop sends on a goroutine of its own while this one bounds each
	// send by the write timeout; the loop never outlives the handler except
	// inside a send the handler gave up on, and then sends nothing more.
	done := make(chan error, 1)
	go func() { done <- sv.sendLoop(ctx, method, stream.Context(), out, sub, sendFailed) }()
	err = watch.wait(ctx, done, sv.writeTimeout, sendFailed)
	watch.abandon()
	return err
}

// sendLoop is StreamEvents' loop: next event, filter, batch, send.
func (sv *Service) sendLoop(ctx context.Context, method string, streamCtx context.Context, out *filteredSender,
	sub *session.Subscription, sendFailed func(error) error) error {
	for {
		ev, sendErr, err := out.next(ctx, sub)
		if sendErr != nil {
			return sendFailed(sendErr)
		}
		if err == nil && ev == nil {
			continue // held events were due and sent
		}
		if err != nil {
			switch {
			case errors.Is(err, session.ErrClosed):
				sv.metrics.StreamDisconnect(DisconnectSessionClosed)
				return nil // the session was closed: the stream is complete
			case sv.refusing() && ctx.Err() != nil:
				sv.metrics.StreamDisconnect(DisconnectShutdown)
				return toStatus(sv.log, method, ErrShuttingDown)
			case streamCtx.Err() != nil:
				// An interceptor that ends the stream with a status as the
				// cause (a revoked key) decides the answer.
				if cause := context.Cause(streamCtx); cause != streamCtx.Err() {
					if _, ok := status.FromError(cause); ok {
						sv.metrics.StreamDisconnect(DisconnectRevoked)
						return cause
					}
				}
				sv.metrics.StreamDisconnect(DisconnectClient)
				return status.FromContextError(streamCtx.Err()).Err()
			case errors.Is(err, session.ErrSlowConsumer):
				sv.metrics.StreamDisconnect(DisconnectSlowConsumer)
			default:
				sv.metrics.StreamDisconnect(DisconnectSessionFaulted)
			}
			return toStatus(sv.log, method, err)
		}
		err = out.offer(ev, out.now())
		if err == nil {
			err = out.fill(ctx, sub) // batching: what else is queued
		}
		if err != nil {
			return sendFailed(err)
		}
	}
}

// Reasons of the stream_disconnects_total metric.
const (
	DisconnectClient         = "client"          // the client left or its connection broke
	DisconnectSessionClosed  = "session_closed"  // the session was closed: a normal end
	DisconnectSessionFaulted = "session_faulted" // the session faulted (worker exit, heartbeat, ...)
	DisconnectSlowConsumer   = "slow_consumer"   // this subscriber fell behind (disconnect-subscriber)
	DisconnectShutdown       = "shutdown"        // the gateway is shutting down
)

// Reasons of the stream_disconnects_total metric added by the hardening
// limits.
const (
	DisconnectRevoked       = "key_revoked"    // the caller's API key was revoked
	DisconnectWriteDeadline = "write_deadline" // a send stayed blocked past stream_write_timeout
)

// ListSessions lists the sessions the caller may see, oldest first.
func (sv *Service) ListSessions(ctx context.Context, _ *mxgatewayv1.ListSessionsRequest) (*mxgatewayv1.ListSessionsResponse, error) {
	infos := sv.sessions.List()
	slices.SortFunc(infos, func(a, b session.Info) int {
		if c := a.OpenedAt.Compare(b.OpenedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	resp := &mxgatewayv1.ListSessionsResponse{Sessions: make([]*mxgatewayv1.SessionInfo, 0, len(infos))}
	for _, in := range infos {
		switch {
		case sv.visible != nil:
			if !sv.visible(ctx, in.OwnerKeyID) {
				continue
			}
		case sv.access != nil:
			if sv.access(ctx, in.ID, in.OwnerKeyID) != nil {
				continue
			}
		}
		resp.Sessions = append(resp.Sessions, sessionInfo(in))
	}
	return resp, nil
}

func sessionInfo(in session.Info) *mxgatewayv1.SessionInfo {
	return &mxgatewayv1.SessionInfo{
		SessionId:         in.ID,
		State:             in.State,
		WorkerPid:         int32(in.WorkerPID),
		ClientName:        in.ClientName,
		OwnerKeyId:        in.OwnerKeyID,
		OpenedAt:          timestamppb.New(in.OpenedAt),
		LeaseExpiresAt:    timestamppb.New(in.LeaseExpiresAt),
		Subscribers:       uint32(in.Subscribers),
		LastSequence:      in.LastSequence,
		CommandsCompleted: in.CommandsCompleted,
		CommandsPending:   uint32(in.CommandsPending),
		FaultReason:       in.FaultReason,
		Backend:           in.Backend,
		DataHealth:        in.DataHealth,
		DataHealthReason:  in.DataHealthReason,
		DataLastChange:    optTime(in.DataLastChange),
	}
}

// optTime is t as a timestamp, nil for the zero time.
func optTime(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
