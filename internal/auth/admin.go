package auth

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/internal/store"
)

// AdminServer implements the mxgateway.v1.Admin service on a Manager. The
// Guard's interceptors enforce scope admin; the actor in the audit log is
// the calling key.
type AdminServer struct {
	mxgatewayv1grpc.UnimplementedAdminServer
	m      *Manager
	status func(method string, err error) error
}

// NewAdminServer returns the Admin service for m.
func NewAdminServer(m *Manager) *AdminServer { return &AdminServer{m: m} }

// WithStatus makes every failure of an Admin call a status built by f (the
// gateway's one status table, which logs what it cannot map) instead of
// the built-in mapping. It returns s.
func (s *AdminServer) WithStatus(f func(method string, err error) error) *AdminServer {
	s.status = f
	return s
}

var _ mxgatewayv1grpc.AdminServer = (*AdminServer)(nil)

func actorOf(ctx context.Context) Actor {
	a := Actor{RemoteAddr: remoteAddr(ctx)}
	if p, ok := FromContext(ctx); ok {
		a.KeyID = p.KeyID
	}
	return a
}

// adminErr maps lifecycle errors to gRPC statuses. Anything else (a store
// failure) is INTERNAL for the client, with its details only in the log.
func (s *AdminServer) adminErr(method string, err error) error {
	if s.status != nil {
		return s.status(method, err)
	}
	switch {
	case errors.Is(err, ErrInvalidSpec):
		return statusWithInfo(codes.InvalidArgument, mxgatewayv1.ReasonInvalidRequest, err.Error(), nil).Err()
	case errors.Is(err, ErrKeyNotFound):
		return statusWithInfo(codes.NotFound, ReasonAPIKeyNotFound, "no API key with that id", nil).Err()
	}
	s.m.log.Error("admin: internal error", slog.String(logging.KeyMethod, method), slog.Any(logging.KeyErr, err))
	return statusWithInfo(codes.Internal, mxgatewayv1.ReasonInternal, "internal error (details in the gateway log)", nil).Err()
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// KeyInfo converts a stored key to its public description (no secret).
func KeyInfo(k store.Key) *mxgatewayv1.ApiKeyInfo {
	return &mxgatewayv1.ApiKeyInfo{
		Id:          k.ID,
		Name:        k.Name,
		Scopes:      k.Scopes,
		AllowRead:   k.AllowRead,
		AllowWrite:  k.AllowWrite,
		CreatedAt:   ts(k.CreatedAt),
		LastUsedAt:  ts(k.LastUsedAt),
		RevokedAt:   ts(k.RevokedAt),
		RotatedFrom: k.RotatedFrom,
	}
}

// CreateApiKey creates a key and returns it once.
func (s *AdminServer) CreateApiKey(ctx context.Context, req *mxgatewayv1.CreateApiKeyRequest) (*mxgatewayv1.CreateApiKeyResponse, error) {
	scopes := make([]Scope, len(req.GetScopes()))
	for i, sc := range req.GetScopes() {
		scopes[i] = Scope(sc)
	}
	raw, k, err := s.m.CreateKey(ctx, KeySpec{
		Name:        req.GetName(),
		Scopes:      scopes,
		Constraints: Constraints{AllowRead: req.GetAllowRead(), AllowWrite: req.GetAllowWrite()},
	}, actorOf(ctx))
	if err != nil {
		return nil, s.adminErr("CreateApiKey", err)
	}
	return &mxgatewayv1.CreateApiKeyResponse{Key: KeyInfo(k), RawKey: raw.Reveal()}, nil
}

// ListApiKeys lists every key without secrets.
func (s *AdminServer) ListApiKeys(ctx context.Context, _ *mxgatewayv1.ListApiKeysRequest) (*mxgatewayv1.ListApiKeysResponse, error) {
	keys, err := s.m.ListKeys(ctx)
	if err != nil {
		return nil, s.adminErr("ListApiKeys", err)
	}
	resp := &mxgatewayv1.ListApiKeysResponse{Keys: make([]*mxgatewayv1.ApiKeyInfo, 0, len(keys))}
	for _, k := range keys {
		resp.Keys = append(resp.Keys, KeyInfo(k))
	}
	return resp, nil
}

// RevokeApiKey revokes a key; revoking a revoked key reports
// already_revoked.
func (s *AdminServer) RevokeApiKey(ctx context.Context, req *mxgatewayv1.RevokeApiKeyRequest) (*mxgatewayv1.RevokeApiKeyResponse, error) {
	k, err := s.m.RevokeKey(ctx, req.GetId(), actorOf(ctx))
	if errors.Is(err, ErrAlreadyRevoked) {
		return &mxgatewayv1.RevokeApiKeyResponse{Key: KeyInfo(k), AlreadyRevoked: true}, nil
	}
	if err != nil {
		return nil, s.adminErr("RevokeApiKey", err)
	}
	return &mxgatewayv1.RevokeApiKeyResponse{Key: KeyInfo(k)}, nil
}

// RotateApiKey replaces a key and returns the new one once.
func (s *AdminServer) RotateApiKey(ctx context.Context, req *mxgatewayv1.RotateApiKeyRequest) (*mxgatewayv1.RotateApiKeyResponse, error) {
	raw, k, err := s.m.RotateKey(ctx, req.GetId(), actorOf(ctx))
	if errors.Is(err, ErrAlreadyRevoked) {
		return nil, statusWithInfo(codes.FailedPrecondition, mxgatewayv1.ReasonInvalidRequest, "the key is revoked; create a new one", nil).Err()
	}
	if err != nil {
		return nil, s.adminErr("RotateApiKey", err)
	}
	return &mxgatewayv1.RotateApiKeyResponse{Key: KeyInfo(k), RawKey: raw.Reveal()}, nil
}

// ListAuditEvents reads the audit log.
func (s *AdminServer) ListAuditEvents(ctx context.Context, req *mxgatewayv1.ListAuditEventsRequest) (*mxgatewayv1.ListAuditEventsResponse, error) {
	evs, err := s.m.ListAudit(ctx, store.AuditFilter{
		AfterSeq:   req.GetAfterSeq(),
		Limit:      int(min(req.GetLimit(), store.MaxAuditLimit)),
		ActorKeyID: req.GetActorKeyId(),
		Action:     req.GetAction(),
	})
	if err != nil {
		return nil, s.adminErr("ListAuditEvents", err)
	}
	resp := &mxgatewayv1.ListAuditEventsResponse{Events: make([]*mxgatewayv1.AuditEvent, 0, len(evs))}
	for _, e := range evs {
		resp.Events = append(resp.Events, &mxgatewayv1.AuditEvent{
			Seq: e.Seq, Time: ts(e.Time), ActorKeyId: e.ActorKeyID, Action: e.Action,
			Target: e.Target, Outcome: e.Outcome, Detail: e.Detail, RemoteAddr: e.RemoteAddr,
		})
	}
	return resp, nil
}
