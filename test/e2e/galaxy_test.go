package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// valueOf matches an OnDataChange of (hlmx, h) carrying the double v.
func valueOf(hlmx, h int32, v float64) func(*mxgatewayv1.Event) bool {
	return func(ev *mxgatewayv1.Event) bool {
		dc := ev.GetDataChange()
		return dataChangeOf(hlmx, h)(ev) && dc.GetValue().GetDoubleValue() == v && dc.GetQuality().GetRaw() == 192
	}
}

// qualityOf matches an OnDataChange of (hlmx, h) with quality q.
func qualityOf(hlmx, h int32, q uint32) func(*mxgatewayv1.Event) bool {
	return func(ev *mxgatewayv1.Event) bool {
		return dataChangeOf(hlmx, h)(ev) && ev.GetDataChange().GetQuality().GetRaw() == q
	}
}

// TestGalaxySharedAcrossSessions: a value written by one session is what
// another session's advise reports; each session keeps its own handle
// space; closing one session leaves the Galaxy and the others untouched.
func TestGalaxySharedAcrossSessions(t *testing.T) {
	t.Parallel()
	g := harness.Start(t)
	c := g.Client()
	a, b := openSession(t, c, "hmi"), openSession(t, c, "historian")
	// Each session's first registration gets the same handle (2: the data
	// watchdog's registration is 1 in each).
	if a.register() != b.register() {
		t.Fatalf("server handles %d and %d, want the same in each session", a.hlmx, b.hlmx)
	}
	// b's handle 1 is another item: handles are per session.
	if h := b.addItem("Tank1.Material"); h != 1 {
		t.Fatalf("b's first item handle %d", h)
	}
	bs := b.streamEvents(&mxgatewayv1.StreamEventsRequest{})
	hb := b.subscribe("TIC101.SP")
	if hb != 2 {
		t.Fatalf("b's TIC101.SP handle %d, want 2", hb)
	}
	bs.waitFor("b's initial value", dataChangeOf(b.hlmx, hb))
	as := a.streamEvents(&mxgatewayv1.StreamEventsRequest{})
	ha := a.subscribe("TIC101.SP")
	if ha != 1 {
		t.Fatalf("a's TIC101.SP handle %d, want 1", ha)
	}
	as.waitFor("a's initial value", dataChangeOf(a.hlmx, ha))
	a.write(ha, doubleValue(77.5))
	bs.waitFor("a's write seen by b", valueOf(b.hlmx, hb, 77.5))

	// Teardown of a leaves b and the Galaxy as they are.
	as.stop()
	a.close()
	b.write(hb, doubleValue(12.25))
	bs.waitFor("b's own write", valueOf(b.hlmx, hb, 12.25))
	c3 := openSession(t, c, "late")
	c3.register()
	cs := c3.streamEvents(&mxgatewayv1.StreamEventsRequest{})
	h3 := c3.subscribe("TIC101.SP")
	cs.waitFor("a later session's first value is the Galaxy's", valueOf(c3.hlmx, h3, 12.25))
}

// startRuntime runs `mxgateway galaxy --listen DIR` by hand and returns
// DIR; the runtime is stopped at cleanup.
func startRuntime(t *testing.T, args ...string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "e2e-galaxy-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cmd := exec.Command(harness.Binary(t), append([]string{"galaxy", "--listen=" + dir}, args...)...)
	out := &harness.Buffer{}
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("runtime stderr:\n%s", out.String())
		}
	})
	eventually(t, "the runtime serves", func() error { return galaxyAdmin(t, dir, "status") })
	return dir
}

// galaxyAdmin runs `mxgateway galaxy admin --dir DIR args...`.
func galaxyAdmin(t *testing.T, dir string, args ...string) error {
	t.Helper()
	cmd := exec.Command(harness.Binary(t), append([]string{"galaxy", "admin", "--dir=" + dir}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return &adminError{err: err, out: string(out)}
	}
	return nil
}

type adminError struct {
	err error
	out string
}

func (e *adminError) Error() string { return e.err.Error() + ": " + e.out }

// TestGalaxySharedAcrossGateways: two gateways attached to one runtime
// share its Galaxy, and a platform fault of that runtime reaches both with
// MXAccess's quality and status, then recovery re-reports the values.
func TestGalaxySharedAcrossGateways(t *testing.T) {
	t.Parallel()
	dir := startRuntime(t)
	g1 := harness.Start(t, "--sim-galaxy="+dir)
	g2 := harness.Start(t, "--sim-galaxy="+dir)
	reader, writer := openSession(t, g1.Client(), "reader"), openSession(t, g2.Client(), "writer")
	reader.register()
	writer.register()
	rs := reader.streamEvents(&mxgatewayv1.StreamEventsRequest{})
	hr := reader.subscribe("TIC101.SP")
	rs.waitFor("initial value", dataChangeOf(reader.hlmx, hr))
	hw := writer.subscribe("TIC101.SP")
	writer.write(hw, doubleValue(41.5))
	rs.waitFor("the other gateway's write", valueOf(reader.hlmx, hr, 41.5))

	if err := galaxyAdmin(t, dir, "platformDown", "DemoPlatform"); err != nil {
		t.Fatal(err)
	}
	ev := rs.waitFor("platform down", qualityOf(reader.hlmx, hr, 24))
	dc := ev.GetDataChange()
	if dc.GetValue().GetDoubleValue() != 41.5 || len(dc.GetStatuses()) == 0 ||
		dc.GetStatuses()[0].GetCategoryRaw() != int32(mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_COMMUNICATION_ERROR) {
		t.Fatalf("platform down: %v, want value kept and a communication error", dc)
	}
	if err := galaxyAdmin(t, dir, "platformUp", "DemoPlatform"); err != nil {
		t.Fatal(err)
	}
	ev = rs.waitFor("recovery", valueOf(reader.hlmx, hr, 41.5))
	if st := ev.GetDataChange().GetStatuses(); len(st) == 0 || st[0].GetCategoryRaw() != 0 {
		t.Fatalf("recovery statuses %v", st)
	}
	if err := galaxyAdmin(t, dir, "engineOffScan", "DemoEngine"); err != nil {
		t.Fatal(err)
	}
	rs.waitFor("engine off scan", qualityOf(reader.hlmx, hr, 28))
	if err := galaxyAdmin(t, dir, "engineOnScan", "DemoEngine"); err != nil {
		t.Fatal(err)
	}
	rs.waitFor("engine back on scan", valueOf(reader.hlmx, hr, 41.5))
}

// TestGalaxyRuntimeCrashSessionsSurvive: the gateway restarts its runtime
// after a crash; sessions see the communication failure, then the values
// again, and keep working.
func TestGalaxyRuntimeCrashSessionsSurvive(t *testing.T) {
	t.Parallel()
	g := harness.Start(t)
	dirs, _ := filepath.Glob(filepath.Join(g.TempDir, "mxgw-galaxy-*"))
	if len(dirs) != 1 {
		t.Fatalf("runtime directories %v, want one", dirs)
	}
	s := openSession(t, g.Client(), "survivor")
	s.register()
	st := s.streamEvents(&mxgatewayv1.StreamEventsRequest{})
	h := s.subscribe("TIC101.SP")
	st.waitFor("initial value", dataChangeOf(s.hlmx, h))
	s.write(h, doubleValue(33.5))
	st.waitFor("own write", valueOf(s.hlmx, h, 33.5))

	_ = galaxyAdmin(t, dirs[0], "crash") // the reply may be lost with the process
	st.waitFor("communication failure", qualityOf(s.hlmx, h, 24))
	// The restarted runtime starts from the model: the value is re-reported.
	st.waitFor("value after the restart", valueOf(s.hlmx, h, 65))
	s.write(h, doubleValue(34.5))
	st.waitFor("a write after the restart", valueOf(s.hlmx, h, 34.5))
}

// TestGalaxyGeneratedPlant: a gateway serving the generated plant (100,000+
// attributes) shares it between sessions like any model.
func TestGalaxyGeneratedPlant(t *testing.T) {
	t.Parallel()
	// A worker loading the plant under -race, beside the rest of the suite,
	// can take longer than the default 15 s start-up deadline; spare
	// workers would load it twice more at the same time.
	g := harness.Start(t, "--sim-plant=50", "--spare-workers=0", "--startup-timeout=2m")
	a, b := openSession(t, g.Client(), "plant-a"), openSession(t, g.Client(), "plant-b")
	a.register()
	b.register()
	bs := b.streamEvents(&mxgatewayv1.StreamEventsRequest{})
	hb := b.subscribe("Pump_050_10_10.SP")
	bs.waitFor("initial value", valueOf(b.hlmx, hb, 50))
	ha := a.subscribe("Pump_050_10_10.SP")
	a.write(ha, doubleValue(61))
	bs.waitFor("a's write", valueOf(b.hlmx, hb, 61))
	ext := b.subscribe("Pump_001_01_01.HiAlarm.Acked")
	ev := bs.waitFor("an alarm extension attribute", dataChangeOf(b.hlmx, ext))
	if dc := ev.GetDataChange(); !dc.GetValue().GetBoolValue() || dc.GetQuality().GetRaw() != 192 {
		t.Fatalf("HiAlarm.Acked = %v", dc)
	}
}

// TestGalaxyDeployReload: the runtime reloads its model file on a deploy
// request; a session's item of a removed object then reads as an unknown
// reference, an item of a changed attribute reports its new value.
func TestGalaxyDeployReload(t *testing.T) {
	t.Parallel()
	model := filepath.Join(t.TempDir(), "plant.yaml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(model, []byte("galaxy: Reload\nobjects:\n"+body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("  - {tag: Keep, attributes: [{name: PV, type: MxDouble, value: 1}]}\n" +
		"  - {tag: Drop, attributes: [{name: PV, type: MxDouble, value: 2}]}\n")
	dir := startRuntime(t, "--sim-model="+model)
	g := harness.Start(t, "--sim-galaxy="+dir)
	s := openSession(t, g.Client(), "deploy")
	s.register()
	st := s.streamEvents(&mxgatewayv1.StreamEventsRequest{})
	keep, drop := s.subscribe("Keep.PV"), s.subscribe("Drop.PV")
	st.waitFor("Keep.PV", valueOf(s.hlmx, keep, 1))
	st.waitFor("Drop.PV", valueOf(s.hlmx, drop, 2))
	write("  - {tag: Keep, attributes: [{name: PV, type: MxDouble, value: 10}]}\n")
	if err := galaxyAdmin(t, dir, "deploy"); err != nil {
		t.Fatal(err)
	}
	st.waitFor("the changed attribute", valueOf(s.hlmx, keep, 10))
	ev := st.waitFor("the removed object", qualityOf(s.hlmx, drop, 0))
	if sts := ev.GetDataChange().GetStatuses(); len(sts) == 0 ||
		sts[0].GetCategoryRaw() != int32(mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_CONFIGURATION_ERROR) {
		t.Fatalf("removed object: %v", ev.GetDataChange())
	}
}
