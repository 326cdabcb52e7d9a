package auth

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// TestAdminStoreFailureLogged: a store failure behind an Admin call is
// INTERNAL for the client, without its details, and logged with them.
func TestAdminStoreFailureLogged(t *testing.T) {
	e := newEnv(t)
	var buf bytes.Buffer
	e.mgr.log = slog.New(slog.NewTextHandler(&buf, nil))
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := NewAdminServer(e.mgr).ListApiKeys(context.Background(), &mxgatewayv1.ListApiKeysRequest{})
	st := wantCode(t, err, codes.Internal, mxgatewayv1.ReasonInternal)
	if strings.Contains(st.Message(), "closed") {
		t.Fatalf("the client sees the store's error: %q", st.Message())
	}
	if line := buf.String(); !strings.Contains(line, "admin: internal error") || !strings.Contains(line, "ListApiKeys") {
		t.Fatalf("not logged with its method: %q", line)
	}
}
