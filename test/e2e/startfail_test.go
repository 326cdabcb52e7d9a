package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// TestStartFailureDoesNotLeakWorkerOutput runs the gateway with a worker
// that writes paths and log lines to stderr and exits: OpenSession fails
// with UNAVAILABLE, reason WORKER_START_FAILED and a short message that
// carries none of the worker's output (the gateway log has it).
func TestStartFailureDoesNotLeakWorkerOutput(t *testing.T) {
	t.Parallel()
	const marker = "/srv/hidden/secret-model.yaml"
	exe := filepath.Join(t.TempDir(), "broken-worker")
	script := "#!/bin/sh\necho 'level=ERROR msg=\"cannot read " + marker + "\"' >&2\nexit 3\n"
	if err := os.WriteFile(exe, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	g := harness.Start(t, "--worker-exe="+exe)
	_, err := g.Client().OpenSession(harness.Context(t, step), &mxgatewayv1.OpenSessionRequest{ClientName: "broken"})
	wantCode(t, err, codes.Unavailable, mxgatewayv1.ReasonWorkerStartFailed)
	if msg := status.Convert(err).Message(); strings.Contains(msg, marker) || strings.Contains(msg, "stderr") || len(msg) > 120 {
		t.Fatalf("OpenSession error message carries the worker's output: %q", msg)
	}
}
