//go:build wine

package wine

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/client"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

// TestCOMSessionMirrorsSimulator is the end-to-end run of the COM path: a
// session of the Windows gateway under Wine whose windows/386 worker drives
// the stand-in LMXProxy server (--worker-backend mxaccess), through the Go
// SDK over TCP loopback. The same scenario then runs against a simulator
// session with the same Galaxy, and the two traces (every reply and every
// event, normalised) must be equal: the stand-in behaves like the
// simulator, and the COM path delivers what the simulator delivers.
// Finally the COM session is closed and the stand-in's own trace must show
// the MXAccess teardown order.
func TestCOMSessionMirrorsSimulator(t *testing.T) {
	com := startGateway(t, gwOptions{backend: "mxaccess"})
	simGW := startGateway(t, gwOptions{backend: "sim"})

	comRun := runScenario(t, com, "mxaccess")
	simRun := runScenario(t, simGW, "sim")
	if d := firstDifference(comRun.trace, simRun.trace); d != "" {
		t.Errorf("the COM session and the simulator session differ:\n%s\nCOM trace:\n%s", d, strings.Join(comRun.trace, "\n"))
	}
	if len(comRun.trace) < 100 {
		t.Errorf("the trace has %d lines: the scenario did not run through", len(comRun.trace))
	}

	// Teardown in MXAccess order, as the stand-in saw it.
	if err := comRun.session.Close(); err != nil {
		t.Fatalf("close session: %v", err)
	}
	if err := simRun.session.Close(); err != nil {
		t.Fatalf("close sim session: %v", err)
	}
	checkTeardown(t, com, comRun)
	found := false
	for _, l := range com.traceLines(t) {
		found = found || slices.Contains(l, comRun.intToFloat)
	}
	if !found {
		t.Errorf("the stand-in never received %q: the write was not typed from the attribute", comRun.intToFloat)
	}
	com.stop(t)
	simGW.stop(t)
}

// scenarioRun is what runScenario leaves for the checks after it.
type scenarioRun struct {
	session *client.Session
	trace   []string
	h       int32
	live    map[int32]bool // item handles still added
	advised map[int32]bool // item handles still advised
	marker  int32          // the item added last, after which only teardown runs
	// intToFloat is the stand-in's trace line of the integer written to a
	// float attribute.
	intToFloat string
}

// runScenario drives one session through every MXAccess operation and
// asserts on each result; it returns the normalised trace.
func runScenario(t *testing.T, g *gateway, backend string) *scenarioRun {
	t.Helper()
	c := g.client(t)
	s, err := c.OpenSession(stepCtx(t), "wine-scenario")
	if err != nil {
		t.Fatalf("%s: open session: %v", backend, err)
	}
	info := s.Info().GetBackend()
	if info.GetKind() != backend {
		t.Fatalf("session backend %q, want %q", info.GetKind(), backend)
	}
	if backend == "mxaccess" {
		if info.GetSimulated() || info.GetProgId() != "LMXProxy.LMXProxyServer" ||
			info.GetClsid() != "{C30B52F5-2CB5-4760-AF0A-3A344A7EB5DC}" || info.GetInterfaceLevel() != 5 ||
			info.GetDllPath() != lmxDir+`\LmxProxy.dll` {
			t.Fatalf("COM backend info: %v", info)
		}
	}
	rec := record(t, s)
	mx := s.MX()
	run := &scenarioRun{session: s, live: map[int32]bool{}, advised: map[int32]bool{}}
	logf := func(format string, args ...any) { run.trace = append(run.trace, fmt.Sprintf(format, args...)) }
	ok := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %s: %v", backend, what, err)
		}
	}
	add := func(h int32, ref string) int32 {
		t.Helper()
		hi, err := mx.AddItem(stepCtx(t), h, ref)
		ok("AddItem "+ref, err)
		run.live[hi] = true
		logf("AddItem(%s) -> %d", ref, hi)
		return hi
	}
	advise := func(h, hi int32, supervisory bool) *client.DataChange {
		t.Helper()
		if supervisory {
			ok("AdviseSupervisory", mx.AdviseSupervisory(stepCtx(t), h, hi))
		} else {
			ok("Advise", mx.Advise(stepCtx(t), h, hi))
		}
		run.advised[hi] = true
		return rec.next(t, fmt.Sprintf("first OnDataChange of %d", hi), dataChangeOf(h, hi)).DataChange()
	}
	// write writes and waits for the completion; it returns its error.
	write := func(h, hi int32, v client.Value, user int32) error {
		t.Helper()
		ok(fmt.Sprintf("Write %d", hi), mx.Write(stepCtx(t), h, hi, v, user))
		return rec.next(t, fmt.Sprintf("OnWriteComplete of %d", hi), writeCompleteOf(h, hi)).WriteComplete().Err()
	}
	wantValue := func(what string, got, want client.Value) {
		t.Helper()
		if !got.Equal(want) {
			t.Errorf("%s: %s = %v, want %v", backend, what, prototext.Format(got.Proto()), prototext.Format(want.Proto()))
		}
	}
	statusesOK := func(what string, st client.Statuses) {
		t.Helper()
		if !st.OK() || len(st) == 0 {
			t.Errorf("%s: %s statuses %v", backend, what, st)
		}
	}
	isSecurity := func(err error) bool {
		var me *client.MxAccessError
		return errors.As(err, &me) && me.IsSecurityError()
	}

	h, err := mx.Register(stepCtx(t), "wine-scenario")
	ok("Register", err)
	run.h = h
	logf("Register -> %d", h)

	// Every data type and array: bulk add and advise, the first values
	// through the sink and the pump, a bulk write of new values and their
	// echo, and a bulk read from the cache.
	type typed struct {
		ref   string
		write client.Value
	}
	at := func(s string) time.Time {
		ts, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	types := []typed{
		{"Types.Bool", client.MustValue(false)},
		{"Types.Int", client.MustValue(int32(-7))},
		{"Types.Float", client.MustValue(float32(-2.75))},
		{"Types.Double", client.MustValue(6.02214076e23)},
		{"Types.String", client.MustValue("Ünïcødé ✓ and \"quotes\"")},
		{"Types.Time", client.MustValue(at("2024-02-29T23:59:58.765Z"))},
		{"Types.Bools[]", client.MustValue([]bool{false, true, false})},
		{"Types.Ints[]", client.MustValue([]int32{-2147483648, 0, 7, 8})},
		{"Types.Floats[]", client.MustValue([]float32{1, 2.5, -0.125})},
		{"Types.Doubles[]", client.MustValue([]float64{3.14159, -1e-10})},
		{"Types.Strings[]", client.MustValue([]string{"x", "", "ä\tb"})},
		{"Types.Times[]", client.MustValue([]time.Time{at("1970-01-01T00:00:00Z"), at("2038-01-19T03:14:07.999Z")})},
	}
	refs := make([]string, len(types))
	for i, ty := range types {
		refs[i] = ty.ref
	}
	added, err := mx.AddItemBulk(stepCtx(t), h, refs)
	ok("AddItemBulk", err)
	handles := make([]int32, len(added))
	for i, e := range added {
		ok("AddItemBulk "+e.ItemDefinition, e.Err())
		handles[i] = e.ItemHandle
		run.live[e.ItemHandle] = true
		logf("AddItemBulk %s -> %d", e.ItemDefinition, e.ItemHandle)
	}
	advised, err := mx.AdviseBulk(stepCtx(t), h, handles, false)
	ok("AdviseBulk", err)
	for i, e := range advised {
		ok("AdviseBulk "+refs[i], e.Err())
		run.advised[handles[i]] = true
	}
	for i, ty := range types {
		dc := rec.next(t, "first value of "+ty.ref, dataChangeOf(h, handles[i])).DataChange()
		ok("first value of "+ty.ref, dc.Err())
		if !dc.Quality.IsGood() {
			t.Errorf("%s: %s quality %d", backend, ty.ref, dc.Quality)
		}
		wantValue("first value of "+ty.ref, dc.Value, client.ValueFromProto(initialValue(t, ty.ref)))
	}
	entries := make([]client.WriteEntry, len(types))
	for i, ty := range types {
		entries[i] = client.WriteEntry{ItemHandle: handles[i], Value: ty.write}
	}
	written, err := mx.WriteBulk(stepCtx(t), h, entries)
	ok("WriteBulk", err)
	for i, e := range written {
		ok("WriteBulk "+refs[i], e.Err())
	}
	for i, ty := range types {
		ok("OnWriteComplete of "+ty.ref, rec.next(t, "OnWriteComplete of "+ty.ref, writeCompleteOf(h, handles[i])).WriteComplete().Err())
		dc := rec.next(t, "echo of "+ty.ref, dataChangeOf(h, handles[i])).DataChange()
		wantValue("echo of "+ty.ref, dc.Value, ty.write)
	}
	read, err := mx.ReadBulk(stepCtx(t), h, refs, 0)
	ok("ReadBulk", err)
	for i, r := range read {
		ok("ReadBulk "+refs[i], r.Err())
		if !r.WasCached {
			t.Errorf("%s: ReadBulk %s not from the cache", backend, refs[i])
		}
		wantValue("ReadBulk "+refs[i], r.Value, types[i].write)
		logf("ReadBulk %s cached=%v", refs[i], r.WasCached)
	}
	// A write typed by the attribute, not by the client's value: an integer
	// to a float attribute goes out as VT_R4 (the stand-in's trace shows
	// the VARIANT type it received).
	ok("int to float", write(h, handles[2], client.MustValue(int32(3)), 0))
	wantValue("int to float echo", rec.next(t, "int to float echo", dataChangeOf(h, handles[2])).DataChange().Value, client.MustValue(float32(3)))
	run.intToFloat = fmt.Sprintf("call Write(%d, %d, vt=0x0004, user=0)", h, handles[2])
	// A transient read of an item the session does not have.
	read, err = mx.ReadBulk(stepCtx(t), h, []string{"Secure.ReadOnly"}, 0)
	ok("ReadBulk Secure.ReadOnly", err)
	wantValue("ReadBulk Secure.ReadOnly", read[0].Value, client.MustValue(7.5))
	logf("ReadBulk Secure.ReadOnly cached=%v", read[0].WasCached)

	// References that do not resolve: a handle, then a failure status on
	// the first OnDataChange (detail 1003 for an array without []).
	for _, bad := range []struct {
		ref      string
		category mxgatewayv1.MxStatusCategory
		detail   int32
	}{
		{"Nowhere.Nothing", mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_CONFIGURATION_ERROR, 0},
		{"Types.Ints", mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_COMMUNICATION_ERROR, 1003},
	} {
		hi := add(h, bad.ref)
		dc := advise(h, hi, false)
		var me *client.MxAccessError
		if err := dc.Err(); !errors.As(err, &me) || me.Category() != bad.category || me.Detail() != bad.detail || !dc.Quality.IsBad() {
			t.Errorf("%s: %s: first value %v (quality %d), want %v detail %d", backend, bad.ref, err, dc.Quality, bad.category, bad.detail)
		}
	}

	// Synchronous refusals: a write before Advise, an unknown handle.
	early := add(h, "Types.Int")
	var me *client.MxAccessError
	if err := mx.Write(stepCtx(t), h, early, client.MustValue(int32(1)), 0); !errors.As(err, &me) || !me.IsInvalidArg() {
		t.Fatalf("%s: Write before Advise = %v, want E_INVALIDARG", backend, err)
	}
	logf("Write before Advise -> 0x%08X", uint32(me.HRESULT))
	if backend == "mxaccess" && !strings.Contains(me.Message, "item not advised (via DISP_E_EXCEPTION)") {
		// The stand-in's IErrorInfo text, through ITypeInfo::Invoke's
		// EXCEPINFO (docs/windows.md checklist: HRESULTs).
		t.Errorf("Write before Advise message %q, want the component's EXCEPINFO text", me.Message)
	}
	if err := mx.RemoveItem(stepCtx(t), h, 9999); !errors.As(err, &me) || !me.IsInvalidArg() {
		t.Errorf("%s: RemoveItem of an unknown handle = %v, want E_INVALIDARG", backend, err)
	}
	ok("RemoveItem", mx.RemoveItem(stepCtx(t), h, early))
	delete(run.live, early)
	// The handle is reused (lowest freed first).
	reused := add(h, "Types.Int")
	if reused != early {
		t.Errorf("%s: AddItem after RemoveItem got %d, want the freed %d", backend, reused, early)
	}

	// Write2: the value's time comes back as written (VT_DATE in the
	// host's zone both ways; the suite runs in a +05:45 zone).
	ts := at("2024-01-02T03:04:05.678Z")
	w2 := handles[3] // Types.Double
	ok("Write2", mx.Write2(stepCtx(t), h, w2, client.MustValue(9.5), ts, 0))
	ok("Write2 completion", rec.next(t, "Write2 completion", writeCompleteOf(h, w2)).WriteComplete().Err())
	dc := rec.next(t, "Write2 echo", dataChangeOf(h, w2)).DataChange()
	wantValue("Write2 echo", dc.Value, client.MustValue(9.5))
	if !dc.Timestamp.Equal(ts) {
		t.Errorf("%s: Write2 timestamp came back as %s, want %s", backend, dc.Timestamp.Format(time.RFC3339Nano), ts.Format(time.RFC3339Nano))
	}

	// Security (Galaxy security on): classifications, users, supervisory
	// connections, secured and verified writes. Refusals arrive in
	// OnWriteComplete.
	ro := add(h, "Secure.ReadOnly")
	advise(h, ro, false)
	if err := write(h, ro, client.MustValue(1.0), 0); !isSecurity(err) {
		t.Errorf("%s: write to a ViewOnly attribute: %v, want a security error", backend, err)
	}
	op := add(h, "Secure.Operate")
	advise(h, op, false)
	if err := write(h, op, client.MustValue(int32(4)), 0); !isSecurity(err) {
		t.Errorf("%s: Operate write without a user: %v, want a security error", backend, err)
	}
	uid, err := mx.AuthenticateUser(stepCtx(t), h, "operator", "operator1")
	ok("AuthenticateUser", err)
	bad, err := mx.AuthenticateUser(stepCtx(t), h, "operator", "wrong")
	ok("AuthenticateUser (bad password)", err)
	if uid <= 0 || bad != 0 {
		t.Errorf("%s: AuthenticateUser ids %d and %d, want > 0 and 0", backend, uid, bad)
	}
	logf("AuthenticateUser -> %d, bad password -> %d", uid, bad)
	ok("Operate write as operator", write(h, op, client.MustValue(int32(5)), uid))
	wantValue("Operate echo", rec.next(t, "Operate echo", dataChangeOf(h, op)).DataChange().Value, client.MustValue(int32(5)))
	sup := add(h, "Secure.Operate")
	advise(h, sup, true)
	ok("supervisory write", write(h, sup, client.MustValue(int32(6)), 0))
	sec := add(h, "Secure.Secured")
	advise(h, sec, false)
	if err := write(h, sec, client.MustValue(int32(9)), uid); !isSecurity(err) {
		t.Errorf("%s: plain write to a SecuredWrite attribute: %v, want a security error", backend, err)
	}
	ok("WriteSecured", mx.WriteSecured(stepCtx(t), h, sec, uid, uid, client.MustValue(int32(10))))
	ok("WriteSecured completion", rec.next(t, "WriteSecured completion", writeCompleteOf(h, sec)).WriteComplete().Err())
	wantValue("WriteSecured echo", rec.next(t, "WriteSecured echo", dataChangeOf(h, sec)).DataChange().Value, client.MustValue(int32(10)))
	ver := add(h, "Secure.Verified")
	advise(h, ver, false)
	ok("WriteSecured (one user)", mx.WriteSecured(stepCtx(t), h, ver, uid, uid, client.MustValue(int32(11))))
	if err := rec.next(t, "verified write completion", writeCompleteOf(h, ver)).WriteComplete().Err(); !isSecurity(err) {
		t.Errorf("%s: verified write without a second user: %v, want a security error", backend, err)
	}
	vid, err := mx.ArchestrAUserToId(stepCtx(t), h, `PLANT\supervisor`)
	ok("ArchestrAUserToId", err)
	if vid <= 0 || vid == uid {
		t.Errorf("%s: ArchestrAUserToId = %d", backend, vid)
	}
	logf("ArchestrAUserToId -> %d", vid)
	ok("WriteSecured (verified)", mx.WriteSecured(stepCtx(t), h, ver, uid, vid, client.MustValue(int32(12))))
	ok("verified write completion", rec.next(t, "verified write completion", writeCompleteOf(h, ver)).WriteComplete().Err())
	ts2 := at("2023-07-08T09:10:11.012Z")
	ok("WriteSecured2", mx.WriteSecured2(stepCtx(t), h, sec, uid, uid, client.MustValue(int32(13)), ts2))
	ok("WriteSecured2 completion", rec.next(t, "WriteSecured2 completion", writeCompleteOf(h, sec)).WriteComplete().Err())
	if dc := rec.next(t, "WriteSecured2 echo", dataChangeOf(h, sec)).DataChange(); !dc.Timestamp.Equal(ts2) {
		t.Errorf("%s: WriteSecured2 timestamp %s, want %s", backend, dc.Timestamp, ts2)
	}

	// Suspend and Activate: OperationComplete for each; a change while
	// suspended arrives once, on Activate.
	si := add(h, "Types.Int")
	advise(h, si, false)
	ok("Suspend", mx.Suspend(stepCtx(t), h, si))
	statusesOK("OperationComplete of Suspend", rec.next(t, "OperationComplete of Suspend", operationCompleteOf(h, si)).OperationComplete().Statuses)
	ok("write while suspended", write(h, handles[1], client.MustValue(int32(-8)), 0))
	rec.next(t, "echo on the advised item", dataChangeOf(h, handles[1]))
	ok("Activate", mx.Activate(stepCtx(t), h, si))
	wantValue("value on Activate", rec.next(t, "value on Activate", dataChangeOf(h, si)).DataChange().Value, client.MustValue(int32(-8)))
	statusesOK("OperationComplete of Activate", rec.next(t, "OperationComplete of Activate", operationCompleteOf(h, si)).OperationComplete().Statuses)

	// Buffered items: every change of the interval, in order.
	ok("SetBufferedUpdateInterval", mx.SetBufferedUpdateInterval(stepCtx(t), h, 300*time.Millisecond))
	bi, err := mx.AddBufferedItem(stepCtx(t), h, "Types.Float")
	ok("AddBufferedItem", err)
	run.live[bi] = true
	logf("AddBufferedItem -> %d", bi)
	ok("Advise buffered", mx.Advise(stepCtx(t), h, bi))
	run.advised[bi] = true
	var samples []client.Sample
	for len(samples) < 1 {
		samples = append(samples, rec.next(t, "first OnBufferedDataChange", bufferedOf(h, bi)).BufferedDataChange().Samples...)
	}
	wantValue("first buffered sample", samples[0].Value, client.MustValue(float32(3)))
	for _, f := range []float32{10.5, 11.5, 12.5} {
		ok("write for the buffered item", write(h, handles[2], client.MustValue(f), 0))
	}
	for len(samples) < 4 {
		b := rec.next(t, "OnBufferedDataChange", bufferedOf(h, bi)).BufferedDataChange()
		statusesOK("OnBufferedDataChange", b.Statuses)
		samples = append(samples, b.Samples...)
	}
	var got []string
	for _, s := range samples {
		got = append(got, fmt.Sprintf("%v/%d", s.Value, s.Quality))
		if time.Since(s.Timestamp) > time.Hour || time.Until(s.Timestamp) > time.Minute {
			t.Errorf("%s: buffered sample time %s is not now (zone handling?)", backend, s.Timestamp)
		}
	}
	logf("buffered samples %s", strings.Join(got, " "))

	// Unsubscribe two items in bulk; the rest stays advised for the
	// teardown at Close.
	unsub, err := mx.UnsubscribeBulk(stepCtx(t), h, handles[:2])
	ok("UnsubscribeBulk", err)
	for i, e := range unsub {
		ok(fmt.Sprintf("UnsubscribeBulk %d", handles[i]), e.Err())
		delete(run.live, handles[i])
		delete(run.advised, handles[i])
	}
	run.marker = add(h, "Marker.BeforeClose")

	// The events, normalised: timestamps and the gateway's own numbering
	// removed; buffered events are merged above (their split into intervals
	// depends on timing).
	for _, ev := range rec.all() {
		if ev.BufferedDataChange() != nil {
			continue
		}
		run.trace = append(run.trace, normaliseEvent(ev))
	}
	if err := rec.streamErr(); err != nil {
		t.Errorf("%s: event stream: %v", backend, err)
	}
	return run
}

// initialValue is the model's initial value of ref (Obj.Attr or Obj.Attr[]).
func initialValue(t *testing.T, ref string) *mxgatewayv1.MxValue {
	t.Helper()
	tag, attr, _ := strings.Cut(strings.TrimSuffix(ref, "[]"), ".")
	o := suite.model.Object(tag)
	if o == nil {
		t.Fatalf("no object %s in the model", tag)
	}
	for _, a := range o.Attributes {
		if a.Name == attr {
			return a.Initial
		}
	}
	t.Fatalf("no attribute %s in the model", ref)
	return nil
}

// normaliseEvent renders an event without what legitimately differs
// between two sessions: sequence numbers, session ids and every time.
func normaliseEvent(ev client.Event) string {
	c := proto.Clone(ev.Proto()).(*mxgatewayv1.Event)
	c.Sequence, c.SessionId, c.WorkerTime, c.GatewayTime = 0, "", nil, nil
	if dc := c.GetDataChange(); dc != nil {
		dc.Timestamp = nil
	}
	return "event " + strings.Join(strings.Fields(prototext.Format(c)), " ")
}

// firstDifference describes the first line where a and b differ, with
// context, or returns "".
func firstDifference(a, b []string) string {
	n := max(len(a), len(b))
	for i := 0; i < n; i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			from := max(0, i-3)
			var out strings.Builder
			for j := from; j < i; j++ {
				fmt.Fprintf(&out, "   %s\n", a[j])
			}
			fmt.Fprintf(&out, "line %d:\n - COM: %s\n + sim: %s\n", i, x, y)
			return out.String()
		}
	}
	return ""
}

// checkTeardown asserts the MXAccess teardown order on the stand-in's
// trace, after the scenario's last call: UnAdvise every advised item,
// RemoveItem every item, Unregister, then the sinks are unadvised and the
// object released.
func checkTeardown(t *testing.T, g *gateway, run *scenarioRun) {
	t.Helper()
	var lines []string
	// The worker tears down after the session is closed: wait until the
	// stand-in saw the object's last release.
	testutil.Eventually(t, eventTimeout, func() error {
		lines = nil
		for _, l := range g.traceLines(t) {
			for i, line := range l {
				if strings.HasPrefix(line, fmt.Sprintf("call AddItem(%d, Marker.BeforeClose)", run.h)) {
					lines = l[i+1:]
				}
			}
		}
		if len(lines) == 0 || lines[len(lines)-1] != "object released (last reference)" {
			return fmt.Errorf("the stand-in has not released the scenario's object yet (%d lines after the marker)", len(lines))
		}
		return nil
	})
	var calls []string
	for _, l := range lines {
		if strings.HasPrefix(l, "call ") || strings.HasPrefix(l, "connection point") || strings.HasPrefix(l, "object released") {
			calls = append(calls, l)
		}
	}
	var want []string
	for _, hi := range sortedHandles(run.advised) {
		want = append(want, fmt.Sprintf("call UnAdvise(%d, %d)", run.h, hi))
	}
	for _, hi := range sortedHandles(run.live) {
		want = append(want, fmt.Sprintf("call RemoveItem(%d, %d)", run.h, hi))
	}
	want = append(want, fmt.Sprintf("call Unregister(%d)", run.h),
		"connection point _ILMXProxyServerEvents: Unadvise(1)",
		"connection point _ILMXProxyServerEvents2: Unadvise(1)",
		"object released (last reference)")
	if strings.Join(calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("teardown as the stand-in saw it:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}
}

func sortedHandles(m map[int32]bool) []int32 {
	out := make([]int32, 0, len(m))
	for h := range m {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
