package e2e

import (
	"errors"
	"fmt"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	sdk "github.com/mxgateway/mxgateway/client"
	"github.com/mxgateway/mxgateway/internal/testutil"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// providerStates lists the feed's provider messages.
func (l *feedLog) providerStates() []*mxgatewayv1.AlarmProviderStatus {
	var out []*mxgatewayv1.AlarmProviderStatus
	for _, m := range l.snapshot() {
		if p := m.GetProvider(); p != nil {
			out = append(out, p)
		}
	}
	return out
}

// TestAlarmsNativeProvider: with --alarm-provider=native the monitor runs
// provider (b), the native alarm consumer, in its gateway-internal
// session's worker (the simulator's consumer here, the COM one in the
// windows/386 worker): the feed names the provider, records carry the
// consumer's GUID and are not degraded, an acknowledgement goes to the
// consumer by GUID, a re-raise is a new instance (the old one refused as
// stale), a return ends the alarm, after the worker is killed the provider
// comes back with the same state, and a secured acknowledgement has its
// credentials checked.
func TestAlarmsNativeProvider(t *testing.T) {
	t.Parallel()
	g := harness.Start(t, "--alarms=on", "--alarm-provider=native")
	ctx := harness.Context(t, 2*time.Minute)
	c := sdkDial(t, ctx, g, g.AdminKey)
	al := c.Alarms()
	waitReady(t, ctx, al)
	tank := &mxgatewayv1.AlarmFilter{ReferencePrefixes: []string{"tank1.highlevel"}}
	feed := watchAlarms(t, al, tank)
	testutil.Eventually(t, step, func() error {
		ps := feed.providerStates()
		if len(ps) == 0 {
			return errors.New("no provider message yet")
		}
		if p := ps[len(ps)-1]; p.GetProvider() != mxgatewayv1.AlarmProvider_ALARM_PROVIDER_NATIVE || !p.GetHealthy() {
			return fmt.Errorf("provider %v", p)
		}
		return nil
	})
	s, err := c.OpenSession(ctx, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	const ref = "Tank1.HighLevel"

	write(t, ctx, s, ref, true)
	r1 := feed.waitTransition(t, ref, 1, kRaise, sUnackAlm)
	if a := r1.GetAlarm(); a.GetDegraded() || a.GetAlarmId() == "" || a.GetInstance() == 0 || a.GetArea() != "TankFarm" {
		t.Fatalf("raised alarm %v", a)
	}

	// Acknowledged through the consumer, by GUID.
	if _, err := al.Acknowledge(ctx, ref, sdk.Instance(r1.GetAlarm().GetInstance()), sdk.Comment("native ack")); err != nil {
		t.Fatal(err)
	}
	if tr := feed.waitTransition(t, ref, 2, kAck, sAckAlm); tr.GetAlarm().GetAckComment() != "native ack" || tr.GetAlarm().GetAlarmId() != r1.GetAlarm().GetAlarmId() {
		t.Fatalf("ack transition %v", tr)
	}

	// Returned and acknowledged: it ends.
	write(t, ctx, s, ref, false)
	feed.waitTransition(t, ref, 3, kReturn, mxgatewayv1.AlarmState_ALARM_STATE_ACK_RTN)
	feed.waitTransition(t, ref, 4, kRemoved, mxgatewayv1.AlarmState_ALARM_STATE_ACK_RTN)

	// Raised again: a new GUID, a new instance; the first is stale.
	write(t, ctx, s, ref, true)
	r2 := feed.waitTransition(t, ref, 5, kRaise, sUnackAlm)
	if r2.GetAlarm().GetInstance() == r1.GetAlarm().GetInstance() || r2.GetAlarm().GetAlarmId() == r1.GetAlarm().GetAlarmId() {
		t.Fatalf("re-raise kept instance %d / id %s", r2.GetAlarm().GetInstance(), r2.GetAlarm().GetAlarmId())
	}
	_, err = al.Acknowledge(ctx, ref, sdk.Instance(r1.GetAlarm().GetInstance()), sdk.Comment("too late"))
	wantReason(t, err, sdk.ErrAlarmInstanceStale, mxgatewayv1.ReasonAlarmInstanceStale)

	// The consumer's worker dies: the provider reports it, comes back
	// (native again) and rebuilds the same state without a transition.
	before := len(feed.providerStates())
	killMonitorWorker(t, ctx, g)
	testutil.Eventually(t, 60*time.Second, func() error {
		ps := feed.providerStates()[before:]
		down := false
		for _, p := range ps {
			switch {
			case !p.GetHealthy():
				down = true
			case down && p.GetProvider() == mxgatewayv1.AlarmProvider_ALARM_PROVIDER_NATIVE:
				return nil
			}
		}
		return fmt.Errorf("provider messages since the kill: %v", ps)
	})
	after, err := al.List(ctx, tank)
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Alarms) != 1 || after.Alarms[0].GetInstance() != r2.GetAlarm().GetInstance() || after.Alarms[0].GetState() != sUnackAlm {
		t.Fatalf("after the restart %v", after.Alarms)
	}
	if n := len(feed.transitions(ref)); n != 5 {
		t.Fatalf("%d transitions, want 5 (none from the restart): %v", n, feed.transitions(ref))
	}
	// Secured: the consumer checks no password, so the gateway does; a
	// wrong one is refused, the right one acknowledges as the Galaxy user.
	_, err = al.Acknowledge(ctx, ref, sdk.AckAs("operator", "wrong"))
	wantReason(t, err, sdk.ErrAckRefused, mxgatewayv1.ReasonAlarmAckRefused)
	if _, err := al.Acknowledge(ctx, ref, sdk.Instance(r2.GetAlarm().GetInstance()), sdk.AckAs("operator", "operator1"), sdk.Comment("secured")); err != nil {
		t.Fatal(err)
	}
	if tr := feed.waitTransition(t, ref, 6, kAck, sAckAlm); tr.GetAlarm().GetAckOperator() != "operator" || tr.GetAlarm().GetAckComment() != "secured" {
		t.Fatalf("secured ack %v", tr.GetAlarm())
	}
}
