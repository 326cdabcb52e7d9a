package client

import (
	"context"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
)

// Admin is the remote key administration of a gateway (service
// mxgateway.v1.Admin). Every method needs an API key with scope admin. Get it
// from Client.Admin.
type Admin struct {
	c  *Client
	ac mxgatewayv1grpc.AdminClient
}

// Admin returns the key administration client on the connection.
func (c *Client) Admin() *Admin {
	return &Admin{c: c, ac: mxgatewayv1grpc.NewAdminClient(c.conn)}
}

// NewAPIKey describes a key to create.
type NewAPIKey struct {
	// Name is the display name (required).
	Name string
	// Scopes are the granted scopes (at least one): session:open,
	// session:close, invoke:read, invoke:write, invoke:secure, events:read,
	// admin.
	Scopes []string
	// AllowRead restricts the references the key may add, subscribe and
	// read ("*" and "?" wildcards, case-insensitive); empty allows all.
	AllowRead []string
	// AllowWrite restricts the references the key may write; empty allows
	// all.
	AllowWrite []string
}

// CreateAPIKey creates a key and returns it with the full key string
// ("mxgw_<id>_<secret>"), which the gateway shows only this once.
func (a *Admin) CreateAPIKey(ctx context.Context, k NewAPIKey) (*mxgatewayv1.ApiKeyInfo, string, error) {
	if err := a.c.checkOpen(); err != nil {
		return nil, "", err
	}
	ctx, cancel := a.c.callCtx(ctx)
	defer cancel()
	resp, err := a.ac.CreateApiKey(ctx, &mxgatewayv1.CreateApiKeyRequest{
		Name: k.Name, Scopes: k.Scopes, AllowRead: k.AllowRead, AllowWrite: k.AllowWrite})
	if err != nil {
		return nil, "", fromRPC(ctx, err)
	}
	return resp.GetKey(), resp.GetRawKey(), nil
}

// ListAPIKeys lists every key, revoked ones included, without secrets.
func (a *Admin) ListAPIKeys(ctx context.Context) ([]*mxgatewayv1.ApiKeyInfo, error) {
	if err := a.c.checkOpen(); err != nil {
		return nil, err
	}
	ctx, cancel := a.c.callCtx(ctx)
	defer cancel()
	resp, err := a.ac.ListApiKeys(ctx, &mxgatewayv1.ListApiKeysRequest{})
	if err != nil {
		return nil, fromRPC(ctx, err)
	}
	return resp.GetKeys(), nil
}

// RevokeAPIKey revokes a key at once; alreadyRevoked reports a key that was
// revoked before (the call changed nothing).
func (a *Admin) RevokeAPIKey(ctx context.Context, id string) (key *mxgatewayv1.ApiKeyInfo, alreadyRevoked bool, err error) {
	if err := a.c.checkOpen(); err != nil {
		return nil, false, err
	}
	ctx, cancel := a.c.callCtx(ctx)
	defer cancel()
	resp, err := a.ac.RevokeApiKey(ctx, &mxgatewayv1.RevokeApiKeyRequest{Id: id})
	if err != nil {
		return nil, false, fromRPC(ctx, err)
	}
	return resp.GetKey(), resp.GetAlreadyRevoked(), nil
}

// RotateAPIKey replaces a key with a new one (new id and secret, same name,
// scopes and constraints), revoking the old one, and returns the new full
// key string, shown only this once.
func (a *Admin) RotateAPIKey(ctx context.Context, id string) (*mxgatewayv1.ApiKeyInfo, string, error) {
	if err := a.c.checkOpen(); err != nil {
		return nil, "", err
	}
	ctx, cancel := a.c.callCtx(ctx)
	defer cancel()
	resp, err := a.ac.RotateApiKey(ctx, &mxgatewayv1.RotateApiKeyRequest{Id: id})
	if err != nil {
		return nil, "", fromRPC(ctx, err)
	}
	return resp.GetKey(), resp.GetRawKey(), nil
}

// ListAuditEvents reads the audit log (see ListAuditEventsRequest for the
// selection rules).
func (a *Admin) ListAuditEvents(ctx context.Context, req *mxgatewayv1.ListAuditEventsRequest) ([]*mxgatewayv1.AuditEvent, error) {
	if err := a.c.checkOpen(); err != nil {
		return nil, err
	}
	ctx, cancel := a.c.callCtx(ctx)
	defer cancel()
	resp, err := a.ac.ListAuditEvents(ctx, req)
	if err != nil {
		return nil, fromRPC(ctx, err)
	}
	return resp.GetEvents(), nil
}
