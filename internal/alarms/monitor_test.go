package alarms

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

const wait = 10 * time.Second

// scripted is a Provider whose observations the test sends.
type scripted struct {
	kind  mxgatewayv1.AlarmProvider
	obs   chan []Observation
	fail  chan error // a value ends the current Run with it
	runs  chan struct{}
	mu    sync.Mutex
	acks  []Ack
	probe error
}

func newScripted(kind mxgatewayv1.AlarmProvider) *scripted {
	return &scripted{kind: kind, obs: make(chan []Observation), fail: make(chan error, 8), runs: make(chan struct{}, 64)}
}

// send hands obs to the running provider and returns once the monitor
// applied them (the empty batch after them is taken only then).
func (p *scripted) send(obs ...Observation) {
	p.obs <- obs
	p.obs <- nil
}

func (p *scripted) Kind() mxgatewayv1.AlarmProvider { return p.kind }

func (p *scripted) Run(ctx context.Context, srcs []Source, sink Sink) error {
	p.runs <- struct{}{}
	sink.Ready("scripted")
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-p.fail:
			return err
		case o := <-p.obs:
			if len(o) > 0 {
				sink.Observe(o)
			}
		}
	}
}

func (p *scripted) Acknowledge(ctx context.Context, a Ack) (*mxgatewayv1.MxStatus, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.acks = append(p.acks, a)
	return &mxgatewayv1.MxStatus{Success: true}, nil
}

func (p *scripted) Probe(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.probe
}

var srcs = []Source{
	{Reference: "Tank1.HighLevel", Object: "Tank1", Name: "HighLevel", Area: "TankFarm"},
	{Reference: "Pump1.Fault", Object: "Pump1", Name: "Fault", Area: "Utilities"},
}

func start(t *testing.T, opts Options, ps ...Provider) *Monitor {
	t.Helper()
	if opts.WatchList == nil {
		opts.WatchList = func() ([]Source, uint64, bool) { return srcs, 1, true }
	}
	opts.Providers = ps
	opts.Refresh = cmpDur(opts.Refresh, 10*time.Millisecond)
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	testutil.Eventually(t, wait, func() error {
		if !m.Status().GetHealthy() {
			return errors.New("not healthy yet")
		}
		return nil
	})
	return m
}

func cmpDur(a, b time.Duration) time.Duration {
	if a != 0 {
		return a
	}
	return b
}

// next reads one feed message with a deadline.
func next(t *testing.T, f *Feed) *mxgatewayv1.StreamAlarmsResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	m, err := f.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// nextTransition skips provider messages.
func nextTransition(t *testing.T, f *Feed) *mxgatewayv1.AlarmTransition {
	t.Helper()
	for {
		m := next(t, f)
		if tr := m.GetTransition(); tr != nil {
			return tr
		}
	}
}

func want(t *testing.T, tr *mxgatewayv1.AlarmTransition, ref string, k mxgatewayv1.AlarmTransitionKind, s mxgatewayv1.AlarmState) {
	t.Helper()
	if tr.GetAlarm().GetReference() != ref || tr.GetKind() != k || tr.GetAlarm().GetState() != s {
		t.Fatalf("transition %s %s → %s, want %s %s → %s", tr.GetAlarm().GetReference(), tr.GetKind(), tr.GetAlarm().GetState(), ref, k, s)
	}
}

func normal(ref string) Observation { return Observation{Reference: ref, Acked: true, Priority: 500} }

// TestStateMachine: the four states and the transitions between them.
func TestStateMachine(t *testing.T) {
	p := newScripted(mxgatewayv1.AlarmProvider_ALARM_PROVIDER_SUBTAG)
	m := start(t, Options{}, p)
	p.send(normal("Tank1.HighLevel"), normal("Pump1.Fault"))
	f, err := m.Subscribe(nil, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if next(t, f).GetProvider() == nil || next(t, f).GetSnapshotComplete().GetCount() != 0 {
		t.Fatal("want the provider, then an empty snapshot")
	}
	const ref = "Tank1.HighLevel"
	raise := Observation{Reference: ref, InAlarm: true, Instance: 10, Priority: 50}
	p.send(raise)
	tr := nextTransition(t, f)
	want(t, tr, ref, kindRaise, stUnackAlm)
	if tr.GetAlarm().GetSeverity() != 1000 || tr.GetAlarm().GetArea() != "TankFarm" || tr.GetAlarm().GetAlarmId() == "" {
		t.Fatalf("raised %v", tr.GetAlarm())
	}
	acked := raise
	acked.Acked = true
	p.send(acked)
	want(t, nextTransition(t, f), ref, kindAck, stAckAlm)
	ret := acked
	ret.InAlarm = false
	p.send(ret)
	want(t, nextTransition(t, f), ref, kindReturn, stAckRtn)
	want(t, nextTransition(t, f), ref, kindRemoved, stAckRtn)
	// A raise, a return without an ack, a retrigger.
	r2 := Observation{Reference: ref, InAlarm: true, Instance: 20}
	p.send(r2)
	want(t, nextTransition(t, f), ref, kindRaise, stUnackAlm)
	r2.InAlarm = false
	p.send(r2)
	want(t, nextTransition(t, f), ref, kindReturn, stUnackRtn)
	r3 := Observation{Reference: ref, InAlarm: true, Instance: 30}
	p.send(r3)
	tr = nextTransition(t, f)
	want(t, tr, ref, kindRetrigger, stUnackAlm)
	if tr.GetPrevious() != stUnackRtn || tr.GetAlarm().GetInstance() != 30 {
		t.Fatalf("retrigger %v", tr)
	}
	r3.Mode = mxgatewayv1.AlarmMode_ALARM_MODE_SILENCED
	p.send(r3)
	want(t, nextTransition(t, f), ref, mxgatewayv1.AlarmTransitionKind_ALARM_TRANSITION_KIND_MODE_CHANGE, stUnackAlm)
	// An unchanged view or a value change is no transition.
	r3.Value = &mxgatewayv1.MxValue{Kind: &mxgatewayv1.MxValue_DoubleValue{DoubleValue: 3}}
	p.send(r3, r3)
	list, _, seq, err := m.List(nil, 0, "", nil)
	if err != nil || len(list) != 1 || list[0].GetValue().GetDoubleValue() != 3 || seq != m.Sequence() {
		t.Fatalf("list %v seq %d (monitor %d) %v", list, seq, m.Sequence(), err)
	}
	// Stale instance, unknown alarm, bad comment, then a good ack.
	ctx := context.Background()
	if _, err := m.Acknowledge(ctx, AckRequest{Reference: ref, Instance: 20}); !errors.Is(err, ErrStaleInstance) {
		t.Fatalf("stale ack: %v", err)
	}
	if _, err := m.Acknowledge(ctx, AckRequest{Reference: "Nope.X"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	if _, err := m.Acknowledge(ctx, AckRequest{Reference: ref, Comment: strings.Repeat("é", AckCommentMax+1)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("long comment: %v", err)
	}
	if _, err := m.Acknowledge(ctx, AckRequest{Reference: ref, Verifier: &Credentials{User: "v"}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("verifier alone: %v", err)
	}
	if _, err := m.Acknowledge(ctx, AckRequest{Reference: ref, Instance: 30, Comment: strings.Repeat("é", AckCommentMax),
		Operator: &Credentials{User: "operator", Password: "pw"}}); err != nil {
		t.Fatal(err)
	}
	r3.Acked = true
	p.send(r3)
	tr = nextTransition(t, f)
	want(t, tr, ref, kindAck, stAckAlm)
	if tr.GetAlarm().GetAckOperator() != "operator" {
		t.Fatalf("ack operator %q", tr.GetAlarm().GetAckOperator())
	}
	p.mu.Lock()
	if len(p.acks) != 1 || p.acks[0].Operator.User != "operator" {
		t.Fatalf("provider acks %v", p.acks)
	}
	p.mu.Unlock()
}

const (
	kindRaise     = mxgatewayv1.AlarmTransitionKind_ALARM_TRANSITION_KIND_RAISE
	kindAck       = mxgatewayv1.AlarmTransitionKind_ALARM_TRANSITION_KIND_ACKNOWLEDGE
	kindReturn    = mxgatewayv1.AlarmTransitionKind_ALARM_TRANSITION_KIND_RETURN
	kindRetrigger = mxgatewayv1.AlarmTransitionKind_ALARM_TRANSITION_KIND_RETRIGGER
	kindRemoved   = mxgatewayv1.AlarmTransitionKind_ALARM_TRANSITION_KIND_REMOVED
	stUnackAlm    = mxgatewayv1.AlarmState_ALARM_STATE_UNACK_ALM
	stAckAlm      = mxgatewayv1.AlarmState_ALARM_STATE_ACK_ALM
	stUnackRtn    = mxgatewayv1.AlarmState_ALARM_STATE_UNACK_RTN
	stAckRtn      = mxgatewayv1.AlarmState_ALARM_STATE_ACK_RTN
)

// toggle raises or returns ref (instance i).
func toggle(p *scripted, ref string, i int) {
	p.send(Observation{Reference: ref, InAlarm: i%2 == 1, Instance: uint64((i + 1) / 2)})
}

// TestResumeAndGap: a resume gets exactly what followed; one from before
// the ring gets a gap first; a resume beyond the last sequence is refused.
func TestResumeAndGap(t *testing.T) {
	p := newScripted(mxgatewayv1.AlarmProvider_ALARM_PROVIDER_SUBTAG)
	m := start(t, Options{RingSize: 4}, p)
	p.send(normal("Tank1.HighLevel"))
	for i := 1; i <= 9; i++ {
		toggle(p, "Tank1.HighLevel", i)
	}
	testutil.Eventually(t, wait, func() error {
		if l, _, _, _ := m.List(nil, 0, "", nil); len(l) != 1 || l[0].GetState() != stUnackAlm {
			return fmt.Errorf("list %v", l)
		}
		return nil
	})
	last := m.Sequence()
	f, err := m.Subscribe(nil, last-1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := next(t, f); got.GetSequence() != last {
		t.Fatalf("resume after %d: %v", last-1, got)
	}
	f.Close()
	g, err := m.Subscribe(nil, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	gap := next(t, g).GetGap()
	if gap == nil || gap.GetRequestedAfterSequence() != 1 || gap.GetFirstAvailableSequence() != last-3 {
		t.Fatalf("gap %v (last %d)", gap, last)
	}
	for s := last - 3; s <= last; s++ {
		if got := next(t, g).GetSequence(); got != s {
			t.Fatalf("after the gap: %d, want %d", got, s)
		}
	}
	if _, err := m.Subscribe(nil, last+1, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("resume beyond the end: %v", err)
	}
}

// TestFeedBehind: a feed that fills its queue ends; the others go on.
func TestFeedBehind(t *testing.T) {
	p := newScripted(mxgatewayv1.AlarmProvider_ALARM_PROVIDER_SUBTAG)
	m := start(t, Options{FeedQueue: 2}, p)
	p.send(normal("Tank1.HighLevel"))
	slow, err := m.Subscribe(nil, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	for i := 1; i <= 3; i++ {
		toggle(p, "Tank1.HighLevel", i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var err2 error
	for err2 == nil {
		_, err2 = slow.Next(ctx)
	}
	if !errors.Is(err2, ErrFeedBehind) {
		t.Fatalf("slow feed: %v", err2)
	}
}

// TestFilters: each filter field, and validation.
func TestFilters(t *testing.T) {
	a := &mxgatewayv1.Alarm{Reference: "Tank1.Level.Hi", Area: "TankFarm", Priority: 300, State: stUnackAlm, Description: "Level high"}
	for _, c := range []struct {
		f    *mxgatewayv1.AlarmFilter
		pass bool
	}{
		{nil, true},
		{&mxgatewayv1.AlarmFilter{AreaPrefixes: []string{"tank"}}, true},
		{&mxgatewayv1.AlarmFilter{AreaPrefixes: []string{"util"}}, false},
		{&mxgatewayv1.AlarmFilter{ReferencePrefixes: []string{"pump", "TANK1."}}, true},
		{&mxgatewayv1.AlarmFilter{MinPriority: 301}, false},
		{&mxgatewayv1.AlarmFilter{MinPriority: 1, MaxPriority: 300}, true},
		{&mxgatewayv1.AlarmFilter{States: []mxgatewayv1.AlarmState{stAckAlm}}, false},
		{&mxgatewayv1.AlarmFilter{Text: "HIGH"}, true},
		{&mxgatewayv1.AlarmFilter{Text: "low"}, false},
	} {
		f, err := ParseFilter(c.f)
		if err != nil {
			t.Fatal(err)
		}
		if f.match(a, mxgatewayv1.AlarmState_ALARM_STATE_UNSPECIFIED) != c.pass {
			t.Errorf("%v: pass %v", c.f, !c.pass)
		}
	}
	f, _ := ParseFilter(&mxgatewayv1.AlarmFilter{States: []mxgatewayv1.AlarmState{stAckAlm}})
	if !f.match(a, stAckAlm) {
		t.Error("a transition out of a selected state must pass")
	}
	for _, bad := range []*mxgatewayv1.AlarmFilter{
		{MinPriority: 1000}, {MinPriority: 10, MaxPriority: 5}, {States: []mxgatewayv1.AlarmState{9}},
		{Text: strings.Repeat("x", MaxFilterText+1)}, {AreaPrefixes: make([]string, MaxFilterEntries+1)},
	} {
		if _, err := ParseFilter(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%v: %v, want ErrInvalid", bad, err)
		}
	}
}

// TestListPages: pages by reference, a token resumes after the last.
func TestListPages(t *testing.T) {
	p := newScripted(mxgatewayv1.AlarmProvider_ALARM_PROVIDER_SUBTAG)
	m := start(t, Options{}, p)
	p.send(Observation{Reference: "Tank1.HighLevel", InAlarm: true, Instance: 1}, Observation{Reference: "Pump1.Fault", InAlarm: true, Instance: 1})
	var got []string
	token := ""
	testutil.Eventually(t, wait, func() error {
		l, _, _, _ := m.List(nil, 0, "", nil)
		if len(l) != 2 {
			return fmt.Errorf("%d active", len(l))
		}
		return nil
	})
	for {
		l, nextToken, _, err := m.List(nil, 1, token, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range l {
			got = append(got, a.GetReference())
		}
		if token = nextToken; token == "" {
			break
		}
	}
	if strings.Join(got, ",") != "Pump1.Fault,Tank1.HighLevel" {
		t.Fatalf("pages %v", got)
	}
	if _, _, _, err := m.List(nil, 0, "!!", nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad token: %v", err)
	}
	// Read constraints hide what the key may not read.
	l, _, _, _ := m.List(nil, 0, "", func(ref string) bool { return strings.HasPrefix(ref, "Tank") })
	if len(l) != 1 || l[0].GetReference() != "Tank1.HighLevel" {
		t.Fatalf("constrained list %v", l)
	}
}

// TestFailover: after the failure threshold the standby runs; clean
// probes of the primary fail back; the feed reports each provider.
func TestFailover(t *testing.T) {
	primary := newScripted(mxgatewayv1.AlarmProvider_ALARM_PROVIDER_NATIVE)
	standby := newScripted(mxgatewayv1.AlarmProvider_ALARM_PROVIDER_SUBTAG)
	primary.probe = errors.New("still down")
	m := start(t, Options{Failover: FailoverOptions{FailureThreshold: 2, StableProbes: 2, ProbeInterval: 10 * time.Millisecond}}, primary, standby)
	f, err := m.Subscribe(nil, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for range 2 {
		primary.fail <- errors.New("COM failure")
		<-primary.runs
	}
	testutil.Eventually(t, wait, func() error {
		if s := m.Status(); s.GetProvider() != mxgatewayv1.AlarmProvider_ALARM_PROVIDER_SUBTAG || !s.GetHealthy() {
			return fmt.Errorf("status %v", s)
		}
		return nil
	})
	primary.mu.Lock()
	primary.probe = nil
	primary.mu.Unlock()
	testutil.Eventually(t, wait, func() error {
		if s := m.Status(); s.GetProvider() != mxgatewayv1.AlarmProvider_ALARM_PROVIDER_NATIVE || !s.GetHealthy() {
			return fmt.Errorf("status %v", s)
		}
		return nil
	})
	seen := map[mxgatewayv1.AlarmProvider]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for {
		msg, err := f.Next(ctx)
		if err != nil {
			break
		}
		if pr := msg.GetProvider(); pr != nil && pr.GetHealthy() {
			seen[pr.GetProvider()] = true
		}
	}
	if !seen[mxgatewayv1.AlarmProvider_ALARM_PROVIDER_SUBTAG] || !seen[mxgatewayv1.AlarmProvider_ALARM_PROVIDER_NATIVE] {
		t.Fatalf("provider messages %v", seen)
	}
}

// TestDeployRemoves: an active alarm a deploy removes is REMOVED.
func TestDeployRemoves(t *testing.T) {
	p := newScripted(mxgatewayv1.AlarmProvider_ALARM_PROVIDER_SUBTAG)
	var mu sync.Mutex
	list, seq := srcs, uint64(1)
	m := start(t, Options{WatchList: func() ([]Source, uint64, bool) {
		mu.Lock()
		defer mu.Unlock()
		return list, seq, true
	}}, p)
	p.send(Observation{Reference: "Pump1.Fault", InAlarm: true, Instance: 1})
	f, err := m.Subscribe(nil, m.Sequence(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mu.Lock()
	list, seq = srcs[:1], 2
	mu.Unlock()
	want(t, nextTransition(t, f), "Pump1.Fault", kindRemoved, stAckRtn)
}

// TestSeverityTableInDocs: docs/alarms.md shows SeverityBands.
func TestSeverityTableInDocs(t *testing.T) {
	doc, err := os.ReadFile("../../docs/alarms.md")
	if err != nil {
		t.Fatal(err)
	}
	lo := uint32(1)
	for _, b := range SeverityBands {
		row := fmt.Sprintf("| %d–%d | %d | %s |", lo, b.MaxPriority, b.Severity, b.Label)
		if !regexp.MustCompile(regexp.QuoteMeta(row)).Match(doc) {
			t.Errorf("docs/alarms.md lacks the row %q", row)
		}
		lo = b.MaxPriority + 1
	}
	for p, s := range map[uint32]uint32{0: 1000, 1: 1000, 500: 750, 501: 500, 999: 100, 5000: 100} {
		if Severity(p) != s {
			t.Errorf("Severity(%d) = %d, want %d", p, Severity(p), s)
		}
	}
}
