package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	sdk "github.com/mxgateway/mxgateway/client"
	"github.com/mxgateway/mxgateway/internal/alarms"
	"github.com/mxgateway/mxgateway/internal/testutil"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// The alarm tests run the real gateway with --alarms=on: its monitor owns
// one gateway-internal session (a real sim worker) watching the Galaxy
// runtime's alarms; the tests drive alarms by writing values through the
// SDK and watch them through client.Alarms.

const (
	kRaise     = mxgatewayv1.AlarmTransitionKind_ALARM_TRANSITION_KIND_RAISE
	kAck       = mxgatewayv1.AlarmTransitionKind_ALARM_TRANSITION_KIND_ACKNOWLEDGE
	kReturn    = mxgatewayv1.AlarmTransitionKind_ALARM_TRANSITION_KIND_RETURN
	kRetrigger = mxgatewayv1.AlarmTransitionKind_ALARM_TRANSITION_KIND_RETRIGGER
	kRemoved   = mxgatewayv1.AlarmTransitionKind_ALARM_TRANSITION_KIND_REMOVED
	sUnackAlm  = mxgatewayv1.AlarmState_ALARM_STATE_UNACK_ALM
	sAckAlm    = mxgatewayv1.AlarmState_ALARM_STATE_ACK_ALM
	sUnackRtn  = mxgatewayv1.AlarmState_ALARM_STATE_UNACK_RTN
)

func sdkDial(t *testing.T, ctx context.Context, g *harness.Gateway, key string) *sdk.Client {
	t.Helper()
	c, err := sdk.Dial(ctx, g.GRPCAddr, sdk.WithAPIKey(key),
		sdk.WithEventBackoff(sdk.Backoff{Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond, Factor: 2}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// feedLog collects one feed in a goroutine it owns.
type feedLog struct {
	mu     sync.Mutex
	msgs   []*mxgatewayv1.StreamAlarmsResponse
	err    error
	cancel context.CancelFunc
	done   chan struct{}
}

func watchAlarms(t *testing.T, a *sdk.Alarms, f *mxgatewayv1.AlarmFilter, opts ...sdk.FeedOption) *feedLog {
	ctx, cancel := context.WithCancel(context.Background())
	l := &feedLog{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for m, err := range a.Feed(ctx, f, opts...) {
			l.mu.Lock()
			if err != nil {
				l.err = err
			} else {
				l.msgs = append(l.msgs, m)
			}
			l.mu.Unlock()
		}
	}()
	t.Cleanup(l.stop)
	return l
}

func (l *feedLog) stop() { l.cancel(); <-l.done }

func (l *feedLog) snapshot() []*mxgatewayv1.StreamAlarmsResponse {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*mxgatewayv1.StreamAlarmsResponse(nil), l.msgs...)
}

// transitions returns the feed's transitions of ref (all when ref is "").
func (l *feedLog) transitions(ref string) []*mxgatewayv1.AlarmTransition {
	var out []*mxgatewayv1.AlarmTransition
	for _, m := range l.snapshot() {
		if tr := m.GetTransition(); tr != nil && (ref == "" || tr.GetAlarm().GetReference() == ref) {
			out = append(out, tr)
		}
	}
	return out
}

// waitTransition waits for the n-th (1-based) transition of ref and wants
// its kind and state.
func (l *feedLog) waitTransition(t *testing.T, ref string, n int, kind mxgatewayv1.AlarmTransitionKind, state mxgatewayv1.AlarmState) *mxgatewayv1.AlarmTransition {
	t.Helper()
	var got *mxgatewayv1.AlarmTransition
	testutil.Eventually(t, step, func() error {
		l.mu.Lock()
		err := l.err
		l.mu.Unlock()
		if err != nil {
			return fmt.Errorf("feed ended: %w", err)
		}
		trs := l.transitions(ref)
		if len(trs) < n {
			return fmt.Errorf("%s: %d transitions, waiting for #%d (%s)", ref, len(trs), n, kind)
		}
		got = trs[n-1]
		return nil
	})
	if got.GetKind() != kind || got.GetAlarm().GetState() != state {
		t.Fatalf("%s transition #%d: %s to %s, want %s to %s (all: %v)", ref, n, got.GetKind(), got.GetAlarm().GetState(), kind, state, l.transitions(ref))
	}
	return got
}

// waitReady waits until the monitor's provider is healthy (ListActiveAlarms
// answers).
func waitReady(t *testing.T, ctx context.Context, a *sdk.Alarms) *sdk.ActiveAlarms {
	t.Helper()
	var res *sdk.ActiveAlarms
	testutil.Eventually(t, 60*time.Second, func() error {
		var err error
		res, err = a.List(ctx, nil)
		return err
	})
	return res
}

func write(t *testing.T, ctx context.Context, s *sdk.Session, ref string, v any) {
	t.Helper()
	if _, err := s.WriteValue(ctx, ref, v); err != nil {
		t.Fatalf("write %s: %v", ref, err)
	}
}

func wantReason(t *testing.T, err error, sentinel error, reason string) {
	t.Helper()
	var ge *sdk.GatewayError
	if !errors.Is(err, sentinel) || !errors.As(err, &ge) || ge.Reason != reason {
		t.Fatalf("error %v, want %s (%v)", err, reason, sentinel)
	}
}

// TestAlarmsLifecycle: raise, acknowledge, return, retrigger, the
// stale-instance refusal and a secured acknowledgement, seen alike by two
// feeds; a third feed resumed from the middle sees the same transitions
// after that point without gap or duplicate.
func TestAlarmsLifecycle(t *testing.T) {
	t.Parallel()
	g := harness.Start(t, "--alarms=on")
	ctx := harness.Context(t, 2*time.Minute)
	c := sdkDial(t, ctx, g, g.AdminKey)
	al := c.Alarms()
	waitReady(t, ctx, al)
	valve := &mxgatewayv1.AlarmFilter{ReferencePrefixes: []string{"valve1.position."}}
	a, b := watchAlarms(t, al, valve), watchAlarms(t, al, valve)
	s, err := c.OpenSession(ctx, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	const hihi, hi = "Valve1.Position.HiHi", "Valve1.Position.Hi"

	// Raise: 97 is beyond HiHi (95) and Hi (80).
	write(t, ctx, s, "Valve1.Position", 97.0)
	r1 := a.waitTransition(t, hihi, 1, kRaise, sUnackAlm)
	b.waitTransition(t, hihi, 1, kRaise, sUnackAlm)
	hiRaise := a.waitTransition(t, hi, 1, kRaise, sUnackAlm)
	if al := r1.GetAlarm(); al.GetPriority() != 100 || al.GetSeverity() != 1000 || al.GetLimitKind() != "HiHi" ||
		al.GetLimit().GetFloatValue() != 95 || al.GetValue().GetFloatValue() != 97 || al.GetArea() != "TankFarm" || al.GetInstance() == 0 {
		t.Fatalf("raised alarm %v", al)
	}

	// Acknowledge the instance raised: every feed sees it, with the comment.
	rep, err := al.Acknowledge(ctx, hihi, sdk.Instance(r1.GetAlarm().GetInstance()), sdk.Comment("valve checked"))
	if err != nil || !rep.GetStatus().GetSuccess() {
		t.Fatalf("ack: %v %v", rep, err)
	}
	for _, f := range []*feedLog{a, b} {
		tr := f.waitTransition(t, hihi, 2, kAck, sAckAlm)
		if tr.GetAlarm().GetAckComment() != "valve checked" || tr.GetAlarm().GetAckOperator() == "" || tr.GetPrevious() != sUnackAlm {
			t.Fatalf("ack transition %v", tr)
		}
	}
	mid := a.snapshot()[len(a.snapshot())-1].GetSequence()
	resumed := watchAlarms(t, al, valve, sdk.FeedAfter(mid))

	// Return: the acknowledged HiHi ends (RETURN, then REMOVED); Hi, never
	// acknowledged, stays UNACK_RTN.
	write(t, ctx, s, "Valve1.Position", 50.0)
	a.waitTransition(t, hihi, 3, kReturn, mxgatewayv1.AlarmState_ALARM_STATE_ACK_RTN)
	a.waitTransition(t, hihi, 4, kRemoved, mxgatewayv1.AlarmState_ALARM_STATE_ACK_RTN)
	a.waitTransition(t, hi, 2, kReturn, sUnackRtn)

	// Again beyond both: HiHi is a new raise, Hi a retrigger (its previous
	// instance was never acknowledged).
	write(t, ctx, s, "Valve1.Position", 96.0)
	a.waitTransition(t, hihi, 5, kRaise, sUnackAlm)
	re := a.waitTransition(t, hi, 3, kRetrigger, sUnackAlm)
	if re.GetAlarm().GetInstance() <= hiRaise.GetAlarm().GetInstance() {
		t.Fatalf("retrigger instance %d, first %d", re.GetAlarm().GetInstance(), hiRaise.GetAlarm().GetInstance())
	}

	// The first instance of Hi is stale now.
	_, err = al.Acknowledge(ctx, hi, sdk.Instance(hiRaise.GetAlarm().GetInstance()), sdk.Comment("too late"))
	wantReason(t, err, sdk.ErrAlarmInstanceStale, mxgatewayv1.ReasonAlarmInstanceStale)

	// Secured: a wrong password is refused, the right one acknowledges as
	// the Galaxy user.
	_, err = al.Acknowledge(ctx, hi, sdk.AckAs("operator", "wrong"))
	wantReason(t, err, sdk.ErrAckRefused, mxgatewayv1.ReasonAlarmAckRefused)
	if _, err := al.Acknowledge(ctx, hi, sdk.Instance(re.GetAlarm().GetInstance()), sdk.AckAs("operator", "operator1"), sdk.Comment("secured")); err != nil {
		t.Fatal(err)
	}
	tr := a.waitTransition(t, hi, 4, kAck, sAckAlm)
	if tr.GetAlarm().GetAckOperator() != "operator" || tr.GetAlarm().GetAckComment() != "secured" {
		t.Fatalf("secured ack %v", tr.GetAlarm())
	}
	b.waitTransition(t, hi, 4, kAck, sAckAlm)
	// Bad input: an unknown alarm, an overlong comment.
	_, err = al.Acknowledge(ctx, "Valve1.Nope", sdk.Comment("x"))
	wantReason(t, err, sdk.ErrAlarmNotFound, mxgatewayv1.ReasonAlarmNotFound)
	_, err = al.Acknowledge(ctx, hi, sdk.Comment(strings.Repeat("x", 257)))
	wantReason(t, err, sdk.ErrInvalidRequest, mxgatewayv1.ReasonInvalidRequest)

	// The resumed feed has exactly a's transitions after mid, in order.
	testutil.Eventually(t, step, func() error {
		var want []uint64
		for _, m := range a.snapshot() {
			if m.GetSequence() > mid && m.GetTransition() != nil {
				want = append(want, m.GetSequence())
			}
		}
		var got []uint64
		for _, m := range resumed.snapshot() {
			if m.GetGap() != nil || m.GetSnapshot() != nil {
				return fmt.Errorf("resumed feed got %v", m)
			}
			if m.GetTransition() != nil {
				got = append(got, m.GetSequence())
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("resumed transitions %v, want %v", got, want)
		}
		return nil
	})
	// The active list agrees with the feed.
	res, err := al.List(ctx, valve)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]mxgatewayv1.AlarmState{}
	for _, x := range res.Alarms {
		states[x.GetReference()] = x.GetState()
	}
	if states[hihi] != sUnackAlm || states[hi] != sAckAlm {
		t.Fatalf("active list %v", states)
	}
}

// TestAlarmsMonitorRestart: when the monitor's worker dies, the monitor
// opens a new session and rebuilds its state from the sub-attributes: the
// same active alarms, instances and states, no transition for what did
// not change, and transitions flow again.
func TestAlarmsMonitorRestart(t *testing.T) {
	t.Parallel()
	g := harness.Start(t, "--alarms=on")
	ctx := harness.Context(t, 2*time.Minute)
	c := sdkDial(t, ctx, g, g.AdminKey)
	al := c.Alarms()
	waitReady(t, ctx, al)
	tanks := &mxgatewayv1.AlarmFilter{ReferencePrefixes: []string{"tank1.", "valve1."}}
	s, err := c.OpenSession(ctx, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	feed := watchAlarms(t, al, tanks)
	write(t, ctx, s, "Tank1.HighLevel", true)
	feed.waitTransition(t, "Tank1.HighLevel", 1, kRaise, sUnackAlm)
	before, err := al.List(ctx, tanks)
	if err != nil || len(before.Alarms) != 1 {
		t.Fatalf("before: %v %v", before, err)
	}

	killMonitorWorker(t, ctx, g)
	// The provider goes unhealthy, then healthy again on a new session.
	testutil.Eventually(t, 60*time.Second, func() error {
		down, up := false, false
		for _, m := range feed.snapshot() {
			if p := m.GetProvider(); p != nil {
				if !p.GetHealthy() {
					down = true
				} else if down {
					up = true
				}
			}
		}
		if !up {
			return errors.New("no provider recovery in the feed yet")
		}
		return nil
	})
	after, err := al.List(ctx, tanks)
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Alarms) != 1 || after.Alarms[0].GetInstance() != before.Alarms[0].GetInstance() || after.Alarms[0].GetState() != sUnackAlm {
		t.Fatalf("after the restart %v, before %v", after.Alarms, before.Alarms)
	}
	if n := len(feed.transitions("Tank1.HighLevel")); n != 1 {
		t.Fatalf("%d transitions of Tank1.HighLevel across the restart, want only the raise: %v", n, feed.transitions(""))
	}
	// Transitions flow through the new session.
	if _, err := al.Acknowledge(ctx, "Tank1.HighLevel", sdk.Comment("after restart")); err != nil {
		t.Fatal(err)
	}
	feed.waitTransition(t, "Tank1.HighLevel", 2, kAck, sAckAlm)
}

func listSessions(t *testing.T, ctx context.Context, g *harness.Gateway) []*mxgatewayv1.SessionInfo {
	t.Helper()
	r, err := g.Client().ListSessions(ctx, &mxgatewayv1.ListSessionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return r.GetSessions()
}

// TestAlarmsBurst: 1,000 alarms raised by one bulk write all reach the
// feed as raises and the active list, in order and without loss.
func TestAlarmsBurst(t *testing.T) {
	t.Parallel()
	const n = 1000
	var b strings.Builder
	b.WriteString("galaxy: Burst\nareas: [{name: Plant}]\ntemplates:\n  - name: $Alarmed\n    attributes:\n      - {name: Trip, type: MxBoolean, alarm: true}\nobjects:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {tag: Unit%04d, area: Plant, template: $Alarmed}\n", i)
	}
	model := filepath.Join(t.TempDir(), "burst.yaml")
	if err := os.WriteFile(model, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	g := harness.Start(t, "--alarms=on", "--sim-model="+model)
	ctx := harness.Context(t, 3*time.Minute)
	c := sdkDial(t, ctx, g, g.AdminKey)
	al := c.Alarms()
	waitReady(t, ctx, al)
	feed := watchAlarms(t, al, nil)
	s, err := c.OpenSession(ctx, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	mx := s.MX()
	h, err := mx.Register(ctx, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	refs := make([]string, n)
	for i := range refs {
		refs[i] = fmt.Sprintf("Unit%04d.Trip", i)
	}
	entries, err := mx.SubscribeBulk(ctx, h, refs, false)
	if err != nil {
		t.Fatal(err)
	}
	writes := make([]sdk.WriteEntry, n)
	for i, e := range entries {
		if e.Err() != nil {
			t.Fatalf("%s: %v", refs[i], e.Err())
		}
		writes[i] = sdk.WriteEntry{ItemHandle: e.ItemHandle, Value: sdk.MustValue(true)}
	}
	start := time.Now()
	if _, err := mx.WriteBulk(ctx, h, writes); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 2*time.Minute, func() error {
		raised := map[string]bool{}
		for _, tr := range feed.transitions("") {
			if tr.GetKind() != kRaise {
				return fmt.Errorf("transition %v", tr)
			}
			if raised[tr.GetAlarm().GetReference()] {
				return fmt.Errorf("%s raised twice", tr.GetAlarm().GetReference())
			}
			raised[tr.GetAlarm().GetReference()] = true
		}
		if len(raised) != n {
			return fmt.Errorf("%d of %d raises", len(raised), n)
		}
		return nil
	})
	t.Logf("%d alarms raised and fanned out in %v", n, time.Since(start))
	var last uint64
	for _, m := range feed.snapshot() {
		if m.GetTransition() != nil {
			if m.GetSequence() <= last {
				t.Fatalf("sequence %d after %d", m.GetSequence(), last)
			}
			last = m.GetSequence()
		}
	}
	res, err := al.List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Alarms) != n {
		t.Fatalf("active list: %d alarms, want %d", len(res.Alarms), n)
	}
}

// runAlarmsServe runs docs/alarms.md's "mxgateway serve --alarms off": no
// monitor session, and the Alarms service says why it cannot serve.
func runAlarmsServe(t *testing.T, c docCommand) {
	g := harness.Start(t, strings.Fields(strings.TrimPrefix(c.line, "mxgateway serve "))...)
	ctx := harness.Context(t, time.Minute)
	_, err := sdkDial(t, ctx, g, g.AdminKey).Alarms().List(ctx, nil)
	wantReason(t, err, sdk.ErrUnavailable, mxgatewayv1.ReasonAlarmsUnavailable)
	for _, si := range listSessions(t, ctx, g) {
		if si.GetClientName() == alarmMonitorClient {
			t.Fatalf("a %s session with --alarms off", alarmMonitorClient)
		}
	}
}

// alarmMonitorClient is the client name of the monitor's session.
const alarmMonitorClient = alarms.ClientName

// TestAlarmsScopesAndConstraints: a key with alarms:read only lists and
// streams but may not acknowledge; its read constraints hide the alarms it
// may not read; a key without alarms:read is refused.
func TestAlarmsScopesAndConstraints(t *testing.T) {
	t.Parallel()
	g := harness.Start(t, "--alarms=on")
	ctx := harness.Context(t, 2*time.Minute)
	admin := sdkDial(t, ctx, g, g.AdminKey)
	waitReady(t, ctx, admin.Alarms())
	s, err := admin.OpenSession(ctx, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	write(t, ctx, s, "Tank1.HighLevel", true)
	write(t, ctx, s, "Tank2.HighLevel", true)
	reader := sdkDial(t, ctx, g, g.CreateKey(t, "tank1-alarms", []string{"alarms:read"}, []string{"Tank1.*"}, nil)).Alarms()
	testutil.Eventually(t, step, func() error {
		res, err := reader.List(ctx, &mxgatewayv1.AlarmFilter{ReferencePrefixes: []string{"tank"}})
		if err != nil {
			return err
		}
		if len(res.Alarms) != 1 || res.Alarms[0].GetReference() != "Tank1.HighLevel" {
			return fmt.Errorf("the constrained key lists %v", res.Alarms)
		}
		return nil
	})
	_, err = reader.Acknowledge(ctx, "Tank1.HighLevel", sdk.Comment("no scope"))
	wantReason(t, err, sdk.ErrPermissionDenied, mxgatewayv1.ReasonPermissionDenied)
	none := sdkDial(t, ctx, g, g.CreateKey(t, "no-alarms", []string{"session:open"}, nil, nil)).Alarms()
	_, err = none.List(ctx, nil)
	wantReason(t, err, sdk.ErrPermissionDenied, mxgatewayv1.ReasonPermissionDenied)
	// A bad filter is INVALID_ARGUMENT.
	_, err = admin.Alarms().List(ctx, &mxgatewayv1.AlarmFilter{MinPriority: 1000})
	wantReason(t, err, sdk.ErrInvalidRequest, mxgatewayv1.ReasonInvalidRequest)
}

// TestAlarmsDeploy: a deploy rebuilds the watch list: an active alarm the
// new model drops is REMOVED, a new one is watched and raises.
func TestAlarmsDeploy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	model := func(name string, tags ...string) string {
		var b strings.Builder
		b.WriteString("galaxy: Dep\nobjects:\n")
		for _, tag := range tags {
			fmt.Fprintf(&b, "  - tag: %s\n    attributes:\n      - {name: Trip, type: MxBoolean, alarm: true}\n", tag)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	first, second := model("a.yaml", "Keep", "Drop"), model("b.yaml", "Keep", "Added")
	rt := startRuntime(t, "--sim-model="+first)
	g := harness.Start(t, "--sim-galaxy="+rt, "--alarms=on")
	ctx := harness.Context(t, 2*time.Minute)
	c := sdkDial(t, ctx, g, g.AdminKey)
	al := c.Alarms()
	waitReady(t, ctx, al)
	feed := watchAlarms(t, al, nil)
	s, err := c.OpenSession(ctx, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	write(t, ctx, s, "Drop.Trip", true)
	feed.waitTransition(t, "Drop.Trip", 1, kRaise, sUnackAlm)
	if err := galaxyAdmin(t, rt, "deploy", "--model="+second); err != nil {
		t.Fatal(err)
	}
	feed.waitTransition(t, "Drop.Trip", 2, kRemoved, mxgatewayv1.AlarmState_ALARM_STATE_ACK_RTN)
	testutil.Eventually(t, step, func() error {
		for _, m := range feed.snapshot() {
			if p := m.GetProvider(); p != nil && p.GetHealthy() && p.GetDeploySequence() == 2 && p.GetWatched() == 2 {
				return nil
			}
		}
		return errors.New("no healthy provider on deploy 2 watching 2 alarms yet")
	})
	s2, err := c.OpenSession(ctx, t.Name()+"-2")
	if err != nil {
		t.Fatal(err)
	}
	write(t, ctx, s2, "Added.Trip", true)
	feed.waitTransition(t, "Added.Trip", 1, kRaise, sUnackAlm)
}

// TestAlarmsAckOperator: the Galaxy stamps who acknowledged (the
// simulator's AckOperator, GALAXY.md §2.3): an AckMsg written by another
// client as a secured write reaches the feed as an ACKNOWLEDGE naming its
// Galaxy user and with its ack time; the monitor's own plain
// acknowledgement names the API key; and a monitor that lost its worker
// rebuilds the operator from the Galaxy.
func TestAlarmsAckOperator(t *testing.T) {
	t.Parallel()
	g := harness.Start(t, "--alarms=on")
	ctx := harness.Context(t, 2*time.Minute)
	c := sdkDial(t, ctx, g, g.AdminKey)
	al := c.Alarms()
	waitReady(t, ctx, al)
	tanks := &mxgatewayv1.AlarmFilter{ReferencePrefixes: []string{"tank1."}}
	feed := watchAlarms(t, al, tanks)
	s, err := c.OpenSession(ctx, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	const ref = "Tank1.HighLevel"

	// Raised, then acknowledged by a secured AckMsg write of another
	// session: the Galaxy's operator is the authenticated user.
	write(t, ctx, s, ref, true)
	feed.waitTransition(t, ref, 1, kRaise, sUnackAlm)
	uid, err := s.Authenticate(ctx, "operator", "operator1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteValue(ctx, ref+".AckMsg", "seen from the panel", sdk.Secured(uid, uid)); err != nil {
		t.Fatal(err)
	}
	tr := feed.waitTransition(t, ref, 2, kAck, sAckAlm)
	if a := tr.GetAlarm(); a.GetAckOperator() != "operator" || a.GetAckComment() != "seen from the panel" || a.GetTimeAcked() == nil ||
		a.GetTimeAcked().AsTime().Before(a.GetTimeAlarmOn().AsTime()) {
		t.Fatalf("acknowledged by another client: %v", a)
	}

	// A return and a new raise clear it; the monitor's plain
	// acknowledgement names the API key it was made with.
	write(t, ctx, s, ref, false)
	feed.waitTransition(t, ref, 3, kReturn, mxgatewayv1.AlarmState_ALARM_STATE_ACK_RTN)
	feed.waitTransition(t, ref, 4, kRemoved, mxgatewayv1.AlarmState_ALARM_STATE_ACK_RTN)
	write(t, ctx, s, ref, true)
	if a := feed.waitTransition(t, ref, 5, kRaise, sUnackAlm).GetAlarm(); a.GetAckOperator() != "" {
		t.Fatalf("a new raise names operator %q", a.GetAckOperator())
	}
	if _, err := al.Acknowledge(ctx, ref, sdk.Comment("from the gateway")); err != nil {
		t.Fatal(err)
	}
	byKey := feed.waitTransition(t, ref, 6, kAck, sAckAlm).GetAlarm().GetAckOperator()
	if byKey == "" || byKey == "operator" {
		t.Fatalf("the monitor's plain acknowledgement names %q, want the API key's name", byKey)
	}

	// A new instance acknowledged by the secured write again, then the
	// monitor's worker killed: the rebuilt state names the Galaxy user.
	write(t, ctx, s, ref, false)
	feed.waitTransition(t, ref, 8, kRemoved, mxgatewayv1.AlarmState_ALARM_STATE_ACK_RTN)
	write(t, ctx, s, ref, true)
	feed.waitTransition(t, ref, 9, kRaise, sUnackAlm)
	if _, err := s.WriteValue(ctx, ref+".AckMsg", "again", sdk.Secured(uid, uid)); err != nil {
		t.Fatal(err)
	}
	feed.waitTransition(t, ref, 10, kAck, sAckAlm)
	killMonitorWorker(t, ctx, g)
	testutil.Eventually(t, 60*time.Second, func() error {
		res, err := al.List(ctx, tanks)
		if err != nil {
			return err
		}
		if len(res.Alarms) != 1 || res.Alarms[0].GetAckOperator() != "operator" || res.Alarms[0].GetAckComment() != "again" {
			return fmt.Errorf("after the restart: %v", res.Alarms)
		}
		return nil
	})
}

// killMonitorWorker kills the worker of the monitor's session.
func killMonitorWorker(t *testing.T, ctx context.Context, g *harness.Gateway) {
	t.Helper()
	pid := 0
	for _, si := range listSessions(t, ctx, g) {
		if si.GetClientName() == alarmMonitorClient {
			pid = int(si.GetWorkerPid())
		}
	}
	if pid == 0 {
		t.Fatal("no gateway:alarm-monitor session")
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.Kill(); err != nil {
		t.Fatal(err)
	}
}
