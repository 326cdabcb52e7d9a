package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
)

// Errors of the Alarms service (Client.Alarms).
var (
	// ErrAlarmNotFound: the reference names no alarm the monitor watches.
	ErrAlarmNotFound = errors.New("client: alarm not found")
	// ErrAlarmInstanceStale: the alarm was raised again since the instance
	// acknowledged; look at the new instance before acknowledging it.
	ErrAlarmInstanceStale = errors.New("client: alarm raised again since that instance")
	// ErrAckRefused: the Galaxy refused the operator's credentials or the
	// acknowledgement's write.
	ErrAckRefused = errors.New("client: acknowledgement refused")
)

// Alarms is the client of the gateway's alarm monitor (service
// mxgateway.v1.Alarms, docs/alarms.md), session-less: the feed
// (scope alarms:read), the active list (alarms:read) and acknowledgement
// (alarms:ack). Get it from Client.Alarms.
type Alarms struct {
	c  *Client
	ac mxgatewayv1grpc.AlarmsClient
}

// Alarms returns the alarms client on the connection.
func (c *Client) Alarms() *Alarms {
	return &Alarms{c: c, ac: mxgatewayv1grpc.NewAlarmsClient(c.conn)}
}

// ActiveAlarms is the whole active set at one sequence.
type ActiveAlarms struct {
	Alarms []*mxgatewayv1.Alarm
	// Sequence is the monitor's sequence of the last page: a Feed with
	// FeedAfter(Sequence) continues from the list.
	Sequence uint64
}

// List returns every active alarm the filter selects (nil: all), reading
// every page.
func (a *Alarms) List(ctx context.Context, f *mxgatewayv1.AlarmFilter) (*ActiveAlarms, error) {
	if err := a.c.checkOpen(); err != nil {
		return nil, err
	}
	out := &ActiveAlarms{}
	token := ""
	for {
		cctx, cancel := a.c.callCtx(ctx)
		r, err := a.ac.ListActiveAlarms(cctx, &mxgatewayv1.ListActiveAlarmsRequest{Filter: f, PageToken: token})
		cancel()
		if err != nil {
			return nil, fromRPC(ctx, err)
		}
		out.Alarms = append(out.Alarms, r.GetAlarms()...)
		out.Sequence = r.GetSequence()
		if token = r.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

// AckOption adjusts an acknowledgement.
type AckOption func(*mxgatewayv1.AcknowledgeAlarmRequest)

// Comment sets the comment written to AckMsg (at most 256 characters).
func Comment(s string) AckOption {
	return func(r *mxgatewayv1.AcknowledgeAlarmRequest) { r.Comment = s }
}

// Instance acknowledges only that raise instance (Alarm.Instance): an
// alarm raised again since is refused with ErrAlarmInstanceStale.
func Instance(n uint64) AckOption {
	return func(r *mxgatewayv1.AcknowledgeAlarmRequest) { r.Instance = n }
}

// AckAs acknowledges as a Galaxy user (a secured acknowledgement).
func AckAs(user, password string) AckOption {
	return func(r *mxgatewayv1.AcknowledgeAlarmRequest) {
		r.Operator = &mxgatewayv1.GalaxyCredentials{UserName: user, Password: password}
	}
}

// VerifiedBy adds the verifying user of a verified acknowledgement (with
// AckAs).
func VerifiedBy(user, password string) AckOption {
	return func(r *mxgatewayv1.AcknowledgeAlarmRequest) {
		r.Verifier = &mxgatewayv1.GalaxyCredentials{UserName: user, Password: password}
	}
}

// Acknowledge acknowledges the alarm ref.
func (a *Alarms) Acknowledge(ctx context.Context, ref string, opts ...AckOption) (*mxgatewayv1.AcknowledgeAlarmResponse, error) {
	if err := a.c.checkOpen(); err != nil {
		return nil, err
	}
	req := &mxgatewayv1.AcknowledgeAlarmRequest{Reference: ref}
	for _, o := range opts {
		o(req)
	}
	ctx2, cancel := a.c.callCtx(ctx)
	defer cancel()
	r, err := a.ac.AcknowledgeAlarm(ctx2, req)
	if err != nil {
		return nil, fromRPC(ctx, err)
	}
	return r, nil
}

// FeedOption adjusts a feed.
type FeedOption func(*feedOptions)

type feedOptions struct{ after uint64 }

// FeedAfter resumes after a sequence (of an earlier feed, or of List)
// instead of starting with a snapshot.
func FeedAfter(seq uint64) FeedOption { return func(o *feedOptions) { o.after = seq } }

// Feed returns the alarm feed as a Go iterator: without FeedAfter, the
// provider's status, a snapshot of the active alarms (Snapshot messages)
// and one SnapshotComplete, then transitions and provider changes as they
// happen.
//
// It resumes by itself: when the stream drops (or the gateway ended it
// because this reader fell behind), it reconnects with the client's event
// backoff and asks for what followed the last message it delivered, so
// nothing is lost or repeated; when the gateway can no longer replay that
// far, the next message is a Gap (call List to reseed). A message whose
// sequence goes backwards ends the iteration with a *SequenceError.
//
// The iteration ends without an error when ctx ends, and with a final
// error when the failure is permanent (the key is refused, the request is
// invalid) or the backoff gave up. Breaking out of the loop closes the
// stream.
func (a *Alarms) Feed(ctx context.Context, f *mxgatewayv1.AlarmFilter, opts ...FeedOption) iter.Seq2[*mxgatewayv1.StreamAlarmsResponse, error] {
	var fo feedOptions
	for _, o := range opts {
		o(&fo)
	}
	return func(yield func(*mxgatewayv1.StreamAlarmsResponse, error) bool) {
		if err := a.c.checkOpen(); err != nil {
			yield(nil, err)
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		last := fo.after
		anchored := last > 0 // past the snapshot: every message is numbered after the last
		backoff := a.c.opts.eventBackoff
		failures := 0
		for {
			after := last
			if !anchored {
				after = 0
			}
			stream, err := a.ac.StreamAlarms(ctx, &mxgatewayv1.StreamAlarmsRequest{Filter: f, AfterSequence: after})
			for err == nil {
				var m *mxgatewayv1.StreamAlarmsResponse
				if m, err = stream.Recv(); err != nil {
					break
				}
				seq := m.GetSequence()
				switch {
				case m.GetSnapshotComplete() != nil:
					last, anchored, failures = seq, true, 0
				case anchored:
					if seq <= last {
						yield(nil, &SequenceError{Expected: last + 1, Got: seq})
						return
					}
					last, failures = seq, 0
				}
				if !yield(m, nil) {
					return
				}
			}
			if ctx.Err() != nil {
				return
			}
			var ge *GatewayError
			if !errors.Is(err, io.EOF) && errors.As(fromRPC(ctx, err), &ge) && ge.Permanent() {
				yield(nil, ge)
				return
			}
			failures++
			if backoff.MaxAttempts > 0 && failures > backoff.MaxAttempts {
				yield(nil, fmt.Errorf("client: alarms feed: giving up after %d attempts: %w", backoff.MaxAttempts, fromRPC(ctx, err)))
				return
			}
			if backoff.sleep(ctx, failures-1) != nil {
				return
			}
		}
	}
}
