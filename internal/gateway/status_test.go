package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/session"
	"github.com/mxgateway/mxgateway/internal/workerclient"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// reasonOf returns the ErrorInfo reason of a status error, checking the
// domain.
func reasonOf(t testing.TB, err error) string {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("%v is not a status", err)
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			if info.GetDomain() != mxgatewayv1.ErrorDomain {
				t.Fatalf("ErrorInfo domain %q", info.GetDomain())
			}
			return info.GetReason()
		}
	}
	return ""
}

func TestToStatusTable(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("step: %w", err) }
	cases := []struct {
		name   string
		err    error
		code   codes.Code
		reason string
		quota  bool
	}{
		{"not found", session.ErrNotFound, codes.NotFound, mxgatewayv1.ReasonSessionNotFound, false},
		{"faulted", fmt.Errorf("%w: boom", session.ErrFaulted), codes.FailedPrecondition, mxgatewayv1.ReasonSessionFaulted, false},
		{"not ready", session.ErrNotReady, codes.FailedPrecondition, mxgatewayv1.ReasonSessionNotReady, false},
		{"closed", session.ErrClosed, codes.FailedPrecondition, mxgatewayv1.ReasonSessionClosed, false},
		{"session limit", wrap(session.ErrLimit), codes.ResourceExhausted, mxgatewayv1.ReasonSessionLimit, true},
		{"pending limit", session.ErrPendingLimit, codes.ResourceExhausted, mxgatewayv1.ReasonPendingLimit, true},
		{"subscriber limit", session.ErrSubscriberLimit, codes.ResourceExhausted, mxgatewayv1.ReasonSubscriberLimit, true},
		{"slow consumer", session.ErrSlowConsumer, codes.ResourceExhausted, mxgatewayv1.ReasonSlowConsumer, true},
		{"key session limit", wrap(session.ErrKeyLimit), codes.ResourceExhausted, mxgatewayv1.ReasonKeySessionLimit, true},
		{"write deadline", wrap(ErrWriteDeadline), codes.ResourceExhausted, mxgatewayv1.ReasonSlowConsumer, true},
		{"manager shutting down", session.ErrShuttingDown, codes.Unavailable, mxgatewayv1.ReasonShuttingDown, false},
		{"server shutting down", ErrShuttingDown, codes.Unavailable, mxgatewayv1.ReasonShuttingDown, false},
		{"start failed", fmt.Errorf("%w: %w", session.ErrStartFailed, errors.New("exec: not found")), codes.Unavailable, mxgatewayv1.ReasonWorkerStartFailed, false},
		{"after sequence", session.ErrAfterSequence, codes.InvalidArgument, mxgatewayv1.ReasonInvalidRequest, false},
		{"oversized command frame", fmt.Errorf("%w: write not sent: %w", workerclient.ErrCommandTooLarge, errors.New("frame: oversized")), codes.ResourceExhausted, mxgatewayv1.ReasonInvalidRequest, false},
		{"refused by the item guard", &workerclient.GuardError{Denial: &mxgatewayv1.EntryDenial{Message: "no"}}, codes.PermissionDenied, mxgatewayv1.ReasonReferenceForbidden, false},
		{"command timeout", wrap(workerclient.ErrCommandTimeout), codes.DeadlineExceeded, mxgatewayv1.ReasonCommandTimeout, false},
		{"worker gone", wrap(workerclient.ErrWorkerGone), codes.Unavailable, mxgatewayv1.ReasonWorkerExited, false},
		{"killed", workerclient.ErrKilled, codes.Unavailable, mxgatewayv1.ReasonWorkerExited, false},
		{"worker closed", workerclient.ErrClosed, codes.Unavailable, mxgatewayv1.ReasonSessionClosed, false},
		{"worker not ready", workerclient.ErrNotReady, codes.FailedPrecondition, mxgatewayv1.ReasonSessionNotReady, false},
		{"fault: heartbeat", &session.FaultError{Reason: "hb", Cause: wrap(workerclient.ErrHeartbeatExpired)}, codes.Unavailable, mxgatewayv1.ReasonHeartbeatExpired, false},
		{"fault: exit", &session.FaultError{Reason: "exit", Cause: wrap(workerclient.ErrWorkerGone)}, codes.Unavailable, mxgatewayv1.ReasonWorkerExited, false},
		{"fault: slow consumer", &session.FaultError{Reason: "slow", Cause: wrap(session.ErrSlowConsumer)}, codes.ResourceExhausted, mxgatewayv1.ReasonSlowConsumer, true},
		{"fault: unknown cause", &session.FaultError{Reason: "x", Cause: errors.New("x")}, codes.Unavailable, mxgatewayv1.ReasonWorkerExited, false},
		{"deadline", context.DeadlineExceeded, codes.DeadlineExceeded, mxgatewayv1.ReasonCommandTimeout, false},
		{"canceled", context.Canceled, codes.Canceled, "", false},
		{"unknown", errors.New("secret detail /etc/passwd"), codes.Internal, mxgatewayv1.ReasonInternal, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := toStatus(discard, "M", tc.err)
			st, _ := status.FromError(err)
			if st.Code() != tc.code {
				t.Fatalf("code %v, want %v", st.Code(), tc.code)
			}
			if got := reasonOf(t, err); got != tc.reason {
				t.Fatalf("reason %q, want %q", got, tc.reason)
			}
			hasQuota := false
			for _, d := range st.Details() {
				if _, ok := d.(*errdetails.QuotaFailure); ok {
					hasQuota = true
				}
			}
			if hasQuota != tc.quota {
				t.Fatalf("QuotaFailure present=%v, want %v", hasQuota, tc.quota)
			}
			if tc.code == codes.Internal && strings.Contains(st.Message(), "secret") {
				t.Fatalf("INTERNAL leaks details: %q", st.Message())
			}
		})
	}
}

func TestToStatusPassesStatusesThrough(t *testing.T) {
	in := status.Error(codes.PermissionDenied, "not yours")
	if out := toStatus(discard, "M", in); out != in {
		t.Fatalf("status rewritten: %v", out)
	}
	if toStatus(discard, "M", nil) != nil {
		t.Fatal("nil error became a status")
	}
}

// TestStartFailureHidesWorkerOutput: a worker that could not start answers
// the client with a reason and a short message; its stderr (paths, log
// lines) goes to the gateway log only.
func TestStartFailureHidesWorkerOutput(t *testing.T) {
	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(&logged, nil))
	cause := errors.New("supervisor: worker exited during start-up: exit status 3; last stderr: open /srv/secret/model.yaml: permission denied | panic: x")
	err := toStatus(log, "/mxgateway.v1.Gateway/OpenSession", fmt.Errorf("%w: %w", session.ErrStartFailed, cause))
	st, _ := status.FromError(err)
	if st.Code() != codes.Unavailable || reasonOf(t, err) != mxgatewayv1.ReasonWorkerStartFailed {
		t.Fatalf("status %v, want UNAVAILABLE WORKER_START_FAILED", err)
	}
	if strings.Contains(st.Message(), "stderr") || strings.Contains(st.Message(), "/srv/secret") {
		t.Fatalf("client-visible message carries the worker's output: %q", st.Message())
	}
	if !strings.Contains(logged.String(), "/srv/secret/model.yaml") {
		t.Fatalf("the worker's output is not in the gateway log: %q", logged.String())
	}
}
