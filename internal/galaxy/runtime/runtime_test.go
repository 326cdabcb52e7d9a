package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxgateway/mxgateway/api/mxgateway/galaxy/v1"
	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/galaxy/client"
	"github.com/mxgateway/mxgateway/internal/galaxy/runtime"
	"github.com/mxgateway/mxgateway/internal/galaxy/wire"
	"github.com/mxgateway/mxgateway/internal/ipc"
	"github.com/mxgateway/mxgateway/internal/testutil"

	"github.com/mxgateway/mxgateway/internal/backend/sim"
)

func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

const waitFor = 10 * time.Second

const model = `
galaxy: RtGalaxy
objects:
  - tag: Plat
    template: $WinPlatform
    attributes:
      - {name: ScanState, type: MxBoolean, value: true}
  - tag: Eng
    template: $AppEngine
    hostedBy: Plat
    attributes:
      - {name: ScanState, type: MxBoolean, value: true}
  - tag: Tank
    hostedBy: Eng
    attributes:
      - {name: Level, type: MxDouble, value: 10}
      - {name: Name, type: MxString, value: T1}
  - tag: Gone
    hostedBy: Eng
    attributes:
      - {name: PV, type: MxInteger, value: 1}
`

// rig is one runtime serving a private directory.
type rig struct {
	t      *testing.T
	dir    string
	key    []byte
	rt     *runtime.Runtime
	ln     ipc.Listener
	wg     sync.WaitGroup
	cancel context.CancelFunc
}

func shortDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "rt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func startRig(t *testing.T, dir string, key []byte, src string) *rig {
	t.Helper()
	if key == nil {
		var err error
		if key, err = runtime.WriteKey(dir); err != nil {
			t.Fatal(err)
		}
	}
	rt, err := runtime.New(runtime.Options{Model: &galaxyv1.Model{Source: &galaxyv1.Model_Yaml{Yaml: []byte(src)}}, Credential: key})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := ipc.ListenNamed(dir, wire.EndpointName)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &rig{t: t, dir: dir, key: key, rt: rt, ln: ln, cancel: cancel}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		_ = rt.Serve(ctx, ln)
	}()
	t.Cleanup(r.stop)
	return r
}

func (r *rig) stop() {
	r.cancel()
	r.wg.Wait()
	r.rt.Close()
}

// recorder collects a session's events.
type recorder struct {
	mu  sync.Mutex
	evs []*mxgatewayv1.Event
}

func (r *recorder) Event(ev *mxgatewayv1.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

// waitData waits for an OnDataChange of item hi matching ok.
func (r *recorder) waitData(t *testing.T, what string, hi int32, ok func(*mxgatewayv1.OnDataChange) bool) *mxgatewayv1.OnDataChange {
	t.Helper()
	var got *mxgatewayv1.OnDataChange
	testutil.Eventually(t, waitFor, func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		for i, ev := range r.evs {
			if dc := ev.GetDataChange(); dc != nil && dc.GetItemHandle() == hi && ok(dc) {
				got = dc
				r.evs = append(r.evs[:0:0], r.evs[i+1:]...) // later events stay for the next wait
				return nil
			}
		}
		return fmt.Errorf("no %s", what)
	})
	return got
}

// session is a worker's simulator attached to the runtime.
type session struct {
	b   backend.Backend
	rec *recorder
	h   int32
}

func openSession(t *testing.T, dir string, key []byte) *session {
	t.Helper()
	t.Setenv(wire.EnvDir, dir)
	t.Setenv(wire.EnvKey, fmt.Sprintf("%x", key))
	b, err := client.SimBackend(context.Background(), sim.Options{Profile: sim.ProfileTest}, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	s := &session{b: b, rec: &recorder{}}
	if _, err := b.Open(context.Background(), s.rec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if s.h, err = b.Register("test"); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *session) sub(t *testing.T, ref string) int32 {
	t.Helper()
	hi, err := s.b.AddItem(s.h, ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.b.Advise(s.h, hi); err != nil {
		t.Fatal(err)
	}
	s.rec.waitData(t, "first value of "+ref, hi, func(*mxgatewayv1.OnDataChange) bool { return true })
	return hi
}

func double(v float64) func(*mxgatewayv1.OnDataChange) bool {
	return func(dc *mxgatewayv1.OnDataChange) bool {
		return dc.GetValue().GetDoubleValue() == v && dc.GetQuality().GetRaw() == uint32(mxtypes.QualityGood)
	}
}

func quality(q uint16) func(*mxgatewayv1.OnDataChange) bool {
	return func(dc *mxgatewayv1.OnDataChange) bool { return dc.GetQuality().GetRaw() == uint32(q) }
}

// TestWriteSeenByAnotherSession: the one Galaxy, two sessions.
func TestWriteSeenByAnotherSession(t *testing.T) {
	r := startRig(t, shortDir(t), nil, model)
	a, b := openSession(t, r.dir, r.key), openSession(t, r.dir, r.key)
	ha, hb := a.sub(t, "Tank.Level"), b.sub(t, "Tank.Level")
	if err := a.b.Write(a.h, ha, mxtypes.DoubleValue(42), 0); err != nil {
		t.Fatal(err)
	}
	b.rec.waitData(t, "a's write", hb, double(42))
	// A session opened later starts from the Galaxy's value.
	c := openSession(t, r.dir, r.key)
	hc, _ := c.b.AddItem(c.h, "Tank.Level")
	_ = c.b.Advise(c.h, hc)
	c.rec.waitData(t, "the Galaxy's value", hc, double(42))
}

// TestPlatformFaults: platform down and engine off scan reach the hosted
// objects with MXAccess's quality and status; recovery re-reports them.
func TestPlatformFaults(t *testing.T) {
	r := startRig(t, shortDir(t), nil, model)
	s := openSession(t, r.dir, r.key)
	hi := s.sub(t, "Tank.Level")
	admin := func(action, target string) {
		t.Helper()
		if rep := r.rt.Admin(&galaxyv1.AdminRequest{Action: action, Target: target}); rep.GetError() != "" {
			t.Fatalf("%s %s: %s", action, target, rep.GetError())
		}
	}
	admin(runtime.ActionPlatformDown, "Plat")
	dc := s.rec.waitData(t, "platform down", hi, quality(mxtypes.QualityBadCommFailure))
	if dc.GetValue().GetDoubleValue() != 10 || dc.GetStatuses()[0].GetCategoryRaw() != int32(mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_COMMUNICATION_ERROR) {
		t.Fatalf("platform down: %v", dc)
	}
	admin(runtime.ActionPlatformUp, "Plat")
	dc = s.rec.waitData(t, "recovery", hi, double(10))
	if dc.GetStatuses()[0].GetCategoryRaw() != 0 {
		t.Fatalf("recovery status %v", dc.GetStatuses())
	}
	admin(runtime.ActionEngineOffScan, "Eng")
	s.rec.waitData(t, "off scan", hi, quality(mxtypes.QualityBadOutOfService))
	admin(runtime.ActionEngineOnScan, "Eng")
	s.rec.waitData(t, "on scan", hi, double(10))
	if rep := r.rt.Admin(&galaxyv1.AdminRequest{Action: runtime.ActionPlatformDown, Target: "Nope"}); rep.GetError() == "" {
		t.Fatal("a fault on an unknown object was accepted")
	}
}

// TestDeployRemovesAndChanges: a deploy re-resolves every item.
func TestDeployRemovesAndChanges(t *testing.T) {
	r := startRig(t, shortDir(t), nil, model)
	s := openSession(t, r.dir, r.key)
	hTank, hGone := s.sub(t, "Tank.Level"), s.sub(t, "Gone.PV")
	next := `
galaxy: RtGalaxy
objects:
  - tag: Tank
    attributes:
      - {name: Level, type: MxDouble, value: 99}
`
	rep := r.rt.Admin(&galaxyv1.AdminRequest{Action: runtime.ActionDeploy, Model: &galaxyv1.Model{Source: &galaxyv1.Model_Yaml{Yaml: []byte(next)}}})
	if rep.GetError() != "" || rep.GetDeploySequence() != 2 {
		t.Fatalf("deploy: %v", rep)
	}
	s.rec.waitData(t, "the changed attribute", hTank, double(99))
	// The removed object's item reads as an unknown reference.
	dc := s.rec.waitData(t, "the removed object", hGone, quality(0))
	if st := dc.GetStatuses(); len(st) == 0 || st[0].GetCategoryRaw() != int32(mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_CONFIGURATION_ERROR) {
		t.Fatalf("removed object: %v", dc)
	}
}

// TestBadCredentialRefused: a client without the key gets nothing.
func TestBadCredentialRefused(t *testing.T) {
	dir := shortDir(t)
	startRig(t, dir, nil, model)
	_, err := client.Dial(context.Background(), client.Options{Dir: dir, Key: make([]byte, 32)})
	if !errors.Is(err, client.ErrRefused) {
		t.Fatalf("Dial with a wrong key: %v, want ErrRefused", err)
	}
}

// TestRuntimeRestartSessionSurvives: the runtime goes away and comes back
// at the same endpoint; the session reports the failure, then the values.
func TestRuntimeRestartSessionSurvives(t *testing.T) {
	dir := shortDir(t)
	r := startRig(t, dir, nil, model)
	s := openSession(t, dir, r.key)
	hi := s.sub(t, "Tank.Level")
	if err := s.b.Write(s.h, hi, mxtypes.DoubleValue(5), 0); err != nil {
		t.Fatal(err)
	}
	s.rec.waitData(t, "own write", hi, double(5))
	r.stop()
	s.rec.waitData(t, "communication failure", hi, quality(mxtypes.QualityBadCommFailure))
	startRig(t, dir, r.key, model)
	s.rec.waitData(t, "the restarted runtime's value", hi, double(10))
	if err := s.b.Write(s.h, hi, mxtypes.DoubleValue(6), 0); err != nil {
		t.Fatal(err)
	}
	s.rec.waitData(t, "a write after the restart", hi, double(6))
}

// ---- benchmark rig (testing.B flavour of the helpers above) ----

type benchRig struct {
	rt     *runtime.Runtime
	key    []byte
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type benchSession struct {
	b     backend.Backend
	h     int32
	count atomic.Int64
	last  atomic.Int32
	seen  atomic.Bool
}

func benchDir(b *testing.B) string {
	dir, err := os.MkdirTemp("", "rtb")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func startBenchRig(b *testing.B, dir string) *benchRig {
	key, err := runtime.WriteKey(dir)
	if err != nil {
		b.Fatal(err)
	}
	rt, err := runtime.New(runtime.Options{Model: &galaxyv1.Model{Source: &galaxyv1.Model_Yaml{Yaml: []byte(benchModel)}}, Credential: key})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := ipc.ListenNamed(dir, wire.EndpointName)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &benchRig{rt: rt, key: key, cancel: cancel}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		_ = rt.Serve(ctx, ln)
	}()
	b.Cleanup(func() {
		r.cancel()
		r.wg.Wait()
		r.rt.Close()
	})
	return r
}

func openBenchSession(b *testing.B, dir string, r *benchRig) *benchSession {
	b.Setenv(wire.EnvDir, dir)
	b.Setenv(wire.EnvKey, fmt.Sprintf("%x", r.key))
	be, err := client.SimBackend(context.Background(), sim.Options{Profile: sim.ProfileTest}, "bench")
	if err != nil {
		b.Fatal(err)
	}
	s := &benchSession{b: be}
	if _, err := be.Open(context.Background(), s); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	if s.h, err = be.Register("bench"); err != nil {
		b.Fatal(err)
	}
	return s
}

// TestScriptedPlatformFault: a platformDown scripted in the model reaches
// the sessions like the admin request does.
func TestScriptedPlatformFault(t *testing.T) {
	r := startRig(t, shortDir(t), nil, model+`
faults:
  - {kind: platformDown, object: Plat, at: 0s, duration: 1h}
`)
	s := openSession(t, r.dir, r.key)
	hi, err := s.b.AddItem(s.h, "Tank.Level")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.b.Advise(s.h, hi); err != nil {
		t.Fatal(err)
	}
	s.rec.waitData(t, "the scripted platform down", hi, quality(mxtypes.QualityBadCommFailure))
}

// TestSlowFirstBind: the runtime's slow first bind sets every session's
// first-bind delay, and its end gives each session its own back.
func TestSlowFirstBind(t *testing.T) {
	r := startRig(t, shortDir(t), nil, model)
	s := openSession(t, r.dir, r.key)
	fb := s.b.(interface {
		FirstBindDelay(context.Context) (time.Duration, error)
	})
	want := func(d time.Duration) {
		t.Helper()
		testutil.Eventually(t, waitFor, func() error {
			got, err := fb.FirstBindDelay(context.Background())
			if err != nil || got != d {
				return fmt.Errorf("first bind %v (%v), want %v", got, err, d)
			}
			return nil
		})
	}
	r.rt.Admin(&galaxyv1.AdminRequest{Action: runtime.ActionSlowFirstBind, DurationMs: 5000})
	want(5 * time.Second)
	// A session that connects during the fault gets it too.
	late := openSession(t, r.dir, r.key).b.(interface {
		FirstBindDelay(context.Context) (time.Duration, error)
	})
	testutil.Eventually(t, waitFor, func() error {
		if got, _ := late.FirstBindDelay(context.Background()); got != 5*time.Second {
			return fmt.Errorf("late session's first bind %v", got)
		}
		return nil
	})
	r.rt.Admin(&galaxyv1.AdminRequest{Action: runtime.ActionSlowFirstBind, DurationMs: 0})
	want(0) // the test profile's own
}

// galaxyValue is b's own copy of the shared attribute ref, as its
// simulator holds it now.
func galaxyValue(t *testing.T, b *sim.Backend, ref string) *mxgatewayv1.MxValue {
	t.Helper()
	ord, ok := b.Model().SharedAttribute(ref)
	if !ok {
		t.Fatalf("no shared attribute %s", ref)
	}
	vals, err := b.Values(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range vals {
		if c.Attr == ord {
			return c.Value
		}
	}
	return nil
}

// TestInterestGivenUp: a session whose interest set would pass
// wire.MaxInterest gives the set up (client.Session.Interest) and from
// then on receives every change, starting with the current value of every
// attribute, as from a runtime that does not filter; what it advised
// before goes on as it did.
func TestInterestGivenUp(t *testing.T) {
	r := startRig(t, shortDir(t), nil, model)
	ctx := context.Background()
	link, err := client.Dial(ctx, client.Options{Dir: r.dir, Key: r.key, Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := sim.New(sim.Options{Profile: sim.ProfileTest, Model: link.Model(), Galaxy: link, Snapshot: link.Snapshot()})
	if err != nil {
		link.Close()
		t.Fatal(err)
	}
	a := &session{b: b, rec: &recorder{}}
	if _, err := b.Open(ctx, a.rec); err != nil {
		link.Close()
		t.Fatal(err)
	}
	link.Attach(b)
	t.Cleanup(func() { b.Close(); link.Close() })
	if a.h, err = b.Register("test"); err != nil {
		t.Fatal(err)
	}
	other := openSession(t, r.dir, r.key)
	level, ho := a.sub(t, "Tank.Level"), other.sub(t, "Tank.Name")
	str := func(s string) func(*mxgatewayv1.OnDataChange) bool {
		return func(dc *mxgatewayv1.OnDataChange) bool { return dc.GetValue().GetStringValue() == s }
	}

	// Filtered: a change of Tank.Name, which a does not advise, does not
	// reach a; a change sent after it, of what a advises, does.
	if err := other.b.Write(other.h, ho, mxtypes.StringValue("T2"), 0); err != nil {
		t.Fatal(err)
	}
	other.rec.waitData(t, "T2", ho, str("T2"))
	hl := other.sub(t, "Tank.Level")
	if err := other.b.Write(other.h, hl, mxtypes.DoubleValue(5), 0); err != nil {
		t.Fatal(err)
	}
	a.rec.waitData(t, "Level 5", level, double(5))
	if v := galaxyValue(t, b, "Tank.Name"); v.GetStringValue() != "T1" {
		t.Fatalf("filtered session holds Tank.Name %v, want its stale T1", v)
	}

	// One reference past the bound: the set is given up.
	for i := range wire.MaxInterest {
		link.Interest(fmt.Sprintf("Bogus%d.PV", i), true)
	}
	testutil.Eventually(t, waitFor, func() error {
		if v := galaxyValue(t, b, "Tank.Name"); v.GetStringValue() != "T2" {
			return fmt.Errorf("Tank.Name %v, want the current T2", v)
		}
		return nil
	})
	if err := other.b.Write(other.h, ho, mxtypes.StringValue("T3"), 0); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, waitFor, func() error {
		if v := galaxyValue(t, b, "Tank.Name"); v.GetStringValue() != "T3" {
			return fmt.Errorf("Tank.Name %v, want the change to T3", v)
		}
		return nil
	})
	if err := other.b.Write(other.h, hl, mxtypes.DoubleValue(6), 0); err != nil {
		t.Fatal(err)
	}
	a.rec.waitData(t, "Level 6", level, double(6))
}
