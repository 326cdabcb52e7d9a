package gateway

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/alarms"
)

// TestAlarmErrorsMap: every error of the alarm monitor has its code and
// reason in the one error table.
func TestAlarmErrorsMap(t *testing.T) {
	for _, c := range []struct {
		err    error
		code   codes.Code
		reason string
	}{
		{alarms.ErrInvalid, codes.InvalidArgument, mxgatewayv1.ReasonInvalidRequest},
		{alarms.ErrNotFound, codes.NotFound, mxgatewayv1.ReasonAlarmNotFound},
		{alarms.ErrStaleInstance, codes.FailedPrecondition, mxgatewayv1.ReasonAlarmInstanceStale},
		{alarms.ErrUnavailable, codes.Unavailable, mxgatewayv1.ReasonAlarmsUnavailable},
		{alarms.ErrFeedBehind, codes.ResourceExhausted, mxgatewayv1.ReasonAlarmFeedBehind},
		{alarms.ErrFeedLimit, codes.ResourceExhausted, mxgatewayv1.ReasonSubscriberLimit},
		{alarms.ErrAckRefused, codes.PermissionDenied, mxgatewayv1.ReasonAlarmAckRefused},
		{alarms.ErrClosed, codes.Unavailable, mxgatewayv1.ReasonShuttingDown},
		{errAckForbidden, codes.PermissionDenied, mxgatewayv1.ReasonReferenceForbidden},
	} {
		err := toStatus(discard, "test", fmt.Errorf("wrapped: %w", c.err))
		if status.Code(err) != c.code || reasonOf(t, err) != c.reason {
			t.Errorf("%v: %v (%s), want %v (%s)", c.err, status.Code(err), reasonOf(t, err), c.code, c.reason)
		}
	}
}

// TestAlarmsServiceWithoutMonitor: a gateway without --alarms on answers
// UNAVAILABLE, ALARMS_UNAVAILABLE.
func TestAlarmsServiceWithoutMonitor(t *testing.T) {
	a := NewAlarmsService(nil, nil)
	_, err := a.ListActiveAlarms(context.Background(), &mxgatewayv1.ListActiveAlarmsRequest{})
	if status.Code(err) != codes.Unavailable || reasonOf(t, err) != mxgatewayv1.ReasonAlarmsUnavailable {
		t.Fatalf("list: %v", err)
	}
	_, err = a.AcknowledgeAlarm(context.Background(), &mxgatewayv1.AcknowledgeAlarmRequest{Reference: "A.B"})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("ack: %v", err)
	}
}
