package e2e

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/client"
	"github.com/mxgateway/mxgateway/internal/testutil"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { harness.Main(m) }

// leakCheck fails the test if goroutines started during it outlive it. Call
// it first, so that its cleanup runs after the harness stopped the gateway.
func leakCheck(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

func dial(t *testing.T, ctx context.Context, g *harness.Gateway, addr string, opts ...client.Option) *client.Client {
	t.Helper()
	if addr == "" {
		addr = g.GRPCAddr
	}
	if g.AdminKey == "" {
		t.Fatal("the gateway wrote no first-run admin key")
	}
	opts = append([]client.Option{client.WithAPIKey(g.AdminKey),
		client.WithEventBackoff(client.Backoff{Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond, Factor: 2})}, opts...)
	c, err := client.Dial(ctx, addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func open(t *testing.T, ctx context.Context, c *client.Client) *client.Session {
	t.Helper()
	s, err := c.OpenSession(ctx, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// eventLog collects a session's events in a goroutine it owns.
type eventLog struct {
	mu     sync.Mutex
	events []client.Event
	err    error
	cancel context.CancelFunc
	done   chan struct{}
}

func watchEvents(t *testing.T, s *client.Session, opts ...client.EventsOption) *eventLog {
	ctx, cancel := context.WithCancel(context.Background())
	l := &eventLog{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for ev, err := range s.Events(ctx, opts...) {
			l.mu.Lock()
			if err != nil {
				l.err = err
			} else {
				l.events = append(l.events, ev)
			}
			l.mu.Unlock()
		}
	}()
	t.Cleanup(l.stop)
	return l
}

func (l *eventLog) stop() { l.cancel(); <-l.done }

func (l *eventLog) snapshot() ([]client.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]client.Event(nil), l.events...), l.err
}

// mark returns the number of events seen so far.
func (l *eventLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

// waitFor polls until pred matches an event, returning it.
func (l *eventLog) waitFor(t *testing.T, what string, pred func(client.Event) bool) client.Event {
	t.Helper()
	return l.waitForFrom(t, 0, what, pred)
}

// waitForFrom is waitFor over the events after the first from ones (item
// handles are reused after RemoveItem, so older events may match).
func (l *eventLog) waitForFrom(t *testing.T, from int, what string, pred func(client.Event) bool) client.Event {
	t.Helper()
	var found client.Event
	testutil.Eventually(t, 20*time.Second, func() error {
		evs, err := l.snapshot()
		for _, ev := range evs[from:] {
			if pred(ev) {
				found = ev
				return nil
			}
		}
		if err != nil {
			return fmt.Errorf("events ended: %w", err)
		}
		return fmt.Errorf("no %s among %d events", what, len(evs))
	})
	return found
}

func dataChangeOf(h int32) func(client.Event) bool {
	return func(ev client.Event) bool { d := ev.DataChange(); return d != nil && d.ItemHandle == h }
}

func writeCompleteOf(h int32) func(client.Event) bool {
	return func(ev client.Event) bool {
		w := ev.WriteComplete()
		return w != nil && w.ItemHandle == h && !w.Statuses.Pending()
	}
}

// acceptUnsupported passes nil and "not supported on this host".
func acceptUnsupported(t *testing.T, method string, err error) {
	t.Helper()
	var me *client.MxAccessError
	if err != nil && !(errors.As(err, &me) && me.IsNotSupported()) {
		t.Fatalf("%s: %v", method, err)
	}
}

// TestRawMethods runs every raw MXAccess method and bulk form on a real
// session and checks its observable effect.
func TestRawMethods(t *testing.T) {
	leakCheck(t)
	g := harness.Start(t)
	ctx := harness.Context(t, 60*time.Second)
	c := dial(t, ctx, g, "")
	s := open(t, ctx, c)
	mx := s.MX()
	log := watchEvents(t, s)

	h, err := mx.Register(ctx, "e2e-raw")
	if err != nil || h <= 0 {
		t.Fatalf("Register: %d %v", h, err)
	}
	sp, err := mx.AddItem(ctx, h, "TIC101.SP")
	if err != nil || sp <= 0 {
		t.Fatalf("AddItem: %d %v", sp, err)
	}
	// Write before Advise is refused synchronously (MXAccess rule 7).
	var me *client.MxAccessError
	if err := mx.Write(ctx, h, sp, client.MustValue(1.0), 0); !errors.As(err, &me) || !me.IsInvalidArg() {
		t.Fatalf("Write before Advise: %v", err)
	}
	if err := mx.Advise(ctx, h, sp); err != nil {
		t.Fatal("Advise:", err)
	}
	first := log.waitFor(t, "first value of SP", dataChangeOf(sp)).DataChange()
	if v, err := first.Value.AsFloat64(); err != nil || v != 65 || !first.Quality.IsGood() {
		t.Fatalf("first value %v %v %v", first.Value, first.Quality, err)
	}
	if err := mx.Write(ctx, h, sp, client.MustValue(70.5), 0); err != nil {
		t.Fatal("Write:", err)
	}
	wc := log.waitFor(t, "write completion", writeCompleteOf(sp)).WriteComplete()
	if !wc.Statuses.OK() {
		t.Fatalf("write completion %v", wc.Err())
	}
	log.waitFor(t, "70.5", func(ev client.Event) bool {
		d := ev.DataChange()
		return d != nil && d.ItemHandle == sp && d.Value.Equal(client.MustValue(70.5))
	})
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	if err := mx.Write2(ctx, h, sp, client.MustValue(71.0), ts, 0); err != nil {
		t.Fatal("Write2:", err)
	}
	log.waitFor(t, "71 at ts", func(ev client.Event) bool {
		d := ev.DataChange()
		return d != nil && d.ItemHandle == sp && d.Value.Equal(client.MustValue(71.0)) && d.Timestamp.Equal(ts)
	})

	// Users and secured writes.
	uid, err := mx.AuthenticateUser(ctx, h, "operator", "operator1")
	if err != nil || uid == 0 {
		t.Fatalf("AuthenticateUser: %d %v", uid, err)
	}
	vid, err := mx.AuthenticateUser(ctx, h, "supervisor", "supervisor1")
	if err != nil || vid == 0 {
		t.Fatalf("AuthenticateUser verifier: %d %v", vid, err)
	}
	if bad, err := mx.AuthenticateUser(ctx, h, "operator", "wrong"); err == nil && bad != 0 {
		t.Fatalf("bad password gave user id %d", bad)
	}
	aid, err := mx.ArchestrAUserToId(ctx, h, "operator")
	acceptUnsupported(t, "ArchestrAUserToId", err)
	_ = aid
	if err := mx.WriteSecured(ctx, h, sp, uid, uid, client.MustValue(72.0)); err != nil {
		t.Fatal("WriteSecured:", err)
	}
	if err := mx.WriteSecured2(ctx, h, sp, uid, vid, client.MustValue(73.0), ts.Add(time.Second)); err != nil {
		t.Fatal("WriteSecured2:", err)
	}
	log.waitFor(t, "73", func(ev client.Event) bool {
		d := ev.DataChange()
		return d != nil && d.ItemHandle == sp && d.Value.Equal(client.MustValue(73.0))
	})

	// AddItem2, AdviseSupervisory, Suspend, Activate.
	mode, err := mx.AddItem2(ctx, h, "TIC101.Mode", "")
	acceptUnsupported(t, "AddItem2", err)
	if err == nil {
		if err := mx.AdviseSupervisory(ctx, h, mode); err != nil {
			acceptUnsupported(t, "AdviseSupervisory", err)
		} else {
			log.waitFor(t, "Mode first value", dataChangeOf(mode))
		}
		acceptUnsupported(t, "Suspend", mx.Suspend(ctx, h, mode))
		acceptUnsupported(t, "Activate", mx.Activate(ctx, h, mode))
		if err := mx.UnAdvise(ctx, h, mode); err != nil {
			t.Fatal("UnAdvise:", err)
		}
		if err := mx.RemoveItem(ctx, h, mode); err != nil {
			t.Fatal("RemoveItem:", err)
		}
	}

	// Buffered items.
	acceptUnsupported(t, "SetBufferedUpdateInterval", mx.SetBufferedUpdateInterval(ctx, h, 100*time.Millisecond))
	if _, err := mx.AddBufferedItem(ctx, h, "Tank2.Level"); err != nil {
		acceptUnsupported(t, "AddBufferedItem", err)
	}
	if err := mx.SetBufferedUpdateInterval(ctx, h, 1500*time.Microsecond); err == nil {
		t.Fatal("sub-millisecond interval accepted")
	}

	// Bulk forms.
	refs := []string{"Tank1.Volume", "Pump1.StartCount", "Nope.Missing"}
	added, err := mx.AddItemBulk(ctx, h, refs)
	if err != nil || len(added) != 3 {
		t.Fatalf("AddItemBulk: %v %v", added, err)
	}
	hs := []int32{added[0].ItemHandle, added[1].ItemHandle, added[2].ItemHandle}
	for i, e := range added {
		if e.Err() != nil || e.ItemHandle <= 0 { // an unknown reference still gets a handle
			t.Fatalf("AddItemBulk[%d]: %+v", i, e)
		}
	}
	adv, err := mx.AdviseBulk(ctx, h, hs, false)
	if err != nil || len(adv) != 3 || adv[0].Err() != nil {
		t.Fatalf("AdviseBulk: %v %v", adv, err)
	}
	bad := log.waitFor(t, "failure of the unknown reference", dataChangeOf(hs[2])).DataChange()
	if !errors.As(bad.Err(), &me) || !me.IsConfigurationError() {
		t.Fatalf("unknown reference: %v", bad.Err())
	}
	log.waitFor(t, "StartCount", dataChangeOf(hs[1]))
	wb, err := mx.WriteBulk(ctx, h, []client.WriteEntry{{ItemHandle: hs[1], Value: client.MustValue(18)}, {ItemHandle: 9999, Value: client.MustValue(1)}})
	if err != nil || len(wb) != 2 || wb[0].Err() != nil || wb[1].Err() == nil {
		t.Fatalf("WriteBulk: %+v %v", wb, err)
	}
	w2, err := mx.Write2Bulk(ctx, h, []client.Write2Entry{{ItemHandle: hs[1], Value: client.MustValue(19), Timestamp: ts}})
	if err != nil || w2[0].Err() != nil {
		t.Fatalf("Write2Bulk: %+v %v", w2, err)
	}
	ws, err := mx.WriteSecuredBulk(ctx, h, []client.WriteSecuredEntry{{ItemHandle: hs[1], CurrentUserID: uid, VerifierUserID: uid, Value: client.MustValue(20)}})
	if err != nil || ws[0].Err() != nil {
		t.Fatalf("WriteSecuredBulk: %+v %v", ws, err)
	}
	ws2, err := mx.WriteSecured2Bulk(ctx, h, []client.WriteSecured2Entry{{ItemHandle: hs[1], CurrentUserID: uid, VerifierUserID: vid, Value: client.MustValue(21), Timestamp: ts}})
	if err != nil || ws2[0].Err() != nil {
		t.Fatalf("WriteSecured2Bulk: %+v %v", ws2, err)
	}
	log.waitFor(t, "StartCount 21", func(ev client.Event) bool {
		d := ev.DataChange()
		return d != nil && d.ItemHandle == hs[1] && d.Value.Equal(client.MustValue(21))
	})
	rb, err := mx.ReadBulk(ctx, h, []string{"Tank1.Volume", "Line1.Counts[]"}, 5*time.Second)
	if err != nil || len(rb) != 2 || rb[0].Err() != nil || rb[1].Err() != nil {
		t.Fatalf("ReadBulk: %+v %v", rb, err)
	}
	if v, _ := rb[0].Value.AsFloat64(); v != 12500 {
		t.Fatalf("Tank1.Volume = %v", rb[0].Value)
	}
	ua, err := mx.UnAdviseBulk(ctx, h, hs)
	if err != nil || ua[0].Err() != nil {
		t.Fatalf("UnAdviseBulk: %+v %v", ua, err)
	}
	rm, err := mx.RemoveItemBulk(ctx, h, hs)
	if err != nil || rm[0].Err() != nil {
		t.Fatalf("RemoveItemBulk: %+v %v", rm, err)
	}
	from := log.mark()
	sub, err := mx.SubscribeBulk(ctx, h, []string{"Tank1.Material"}, true)
	if err != nil || sub[0].Err() != nil {
		t.Fatalf("SubscribeBulk: %+v %v", sub, err)
	}
	mat := log.waitForFrom(t, from, "Material", dataChangeOf(sub[0].ItemHandle)).DataChange()
	if s, _ := mat.Value.AsString(); s != "Ethanol" {
		t.Fatalf("Material = %v", mat.Value)
	}
	uns, err := mx.UnsubscribeBulk(ctx, h, []int32{sub[0].ItemHandle})
	if err != nil || uns[0].Err() != nil {
		t.Fatalf("UnsubscribeBulk: %+v %v", uns, err)
	}
	if err := mx.UnAdvise(ctx, h, sp); err != nil {
		t.Fatal("UnAdvise:", err)
	}
	if err := mx.RemoveItem(ctx, h, sp); err != nil {
		t.Fatal("RemoveItem:", err)
	}
	if err := mx.Unregister(ctx, h); err != nil {
		t.Fatal("Unregister:", err)
	}
	if _, err := mx.AddItem(ctx, h, "TIC101.SP"); !errors.As(err, &me) {
		t.Fatalf("AddItem on a dead registration: %v", err)
	}
	// Every event so far was contiguous.
	evs, err := log.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range evs {
		if ev.Sequence() != uint64(i+1) {
			t.Fatalf("event %d has sequence %d", i, ev.Sequence())
		}
	}
}

// TestValueTypes reads every MxDataType, scalar and array, from the demo
// Galaxy and converts it to Go; then writes each writable type back.
func TestValueTypes(t *testing.T) {
	leakCheck(t)
	g := harness.Start(t)
	ctx := harness.Context(t, 60*time.Second)
	c := dial(t, ctx, g, "")
	s := open(t, ctx, c)
	at := func(v string) time.Time { tm, _ := time.Parse(time.RFC3339, v); return tm }
	cases := []struct {
		ref  string
		dt   mxgatewayv1.MxDataType
		want any
		get  func(client.Value) (any, error)
	}{
		{"Tank1.HighLevel", mxgatewayv1.MxDataType_MX_DATA_TYPE_BOOLEAN, false, func(v client.Value) (any, error) { return v.AsBool() }},
		{"Pump1.StartCount", mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER, 17, func(v client.Value) (any, error) { return v.AsInt() }},
		{"Tank1.Volume", mxgatewayv1.MxDataType_MX_DATA_TYPE_FLOAT, float32(12500), func(v client.Value) (any, error) { return v.AsFloat32() }},
		{"TIC101.HiLimit", mxgatewayv1.MxDataType_MX_DATA_TYPE_DOUBLE, 90.0, func(v client.Value) (any, error) { return v.AsFloat64() }},
		{"Tank1.Material", mxgatewayv1.MxDataType_MX_DATA_TYPE_STRING, "Ethanol", func(v client.Value) (any, error) { return v.AsString() }},
		{"Tank1.LastCleaned", mxgatewayv1.MxDataType_MX_DATA_TYPE_TIME, at("2025-01-15T06:30:00Z"), func(v client.Value) (any, error) { return v.AsTime() }},
		{"Valve1.TravelTime", mxgatewayv1.MxDataType_MX_DATA_TYPE_ELAPSED_TIME, 4500 * time.Millisecond, func(v client.Value) (any, error) { return v.AsDuration() }},
		{"Tank1.Inlet", mxgatewayv1.MxDataType_MX_DATA_TYPE_REFERENCE, "Valve1", func(v client.Value) (any, error) { return v.AsString() }},
		{"Pump1.Status", mxgatewayv1.MxDataType_MX_DATA_TYPE_STATUS, int32(0), func(v client.Value) (any, error) { return v.AsInt32() }},
		{"TIC101.SP.Type", mxgatewayv1.MxDataType_MX_DATA_TYPE_DATA_TYPE_ENUM, int32(4), func(v client.Value) (any, error) { return v.AsInt32() }},
		{"TIC101.SP.SecurityClassification", mxgatewayv1.MxDataType_MX_DATA_TYPE_SECURITY_CLASSIFICATION_ENUM, int32(1), func(v client.Value) (any, error) { return v.AsInt32() }},
		{"TIC101.SP.Quality", mxgatewayv1.MxDataType_MX_DATA_TYPE_DATA_QUALITY, int32(192), func(v client.Value) (any, error) { return v.AsInt32() }},
		{"TIC101.Mode", mxgatewayv1.MxDataType_MX_DATA_TYPE_QUALIFIED_ENUM, "Auto", func(v client.Value) (any, error) { return v.AsString() }},
		{"Line1.Operator", mxgatewayv1.MxDataType_MX_DATA_TYPE_INTERNATIONALIZED_STRING, "Jürgen Müller", func(v client.Value) (any, error) { return v.AsString() }},
		{"Line1.Notes", mxgatewayv1.MxDataType_MX_DATA_TYPE_BIG_STRING, "Line 1 fills 330 ml and 500 ml bottles. Changeovers take about 20 minutes; clean in place every 72 hours.", func(v client.Value) (any, error) { return v.AsString() }},
		{"Line1.Flags[]", mxgatewayv1.MxDataType_MX_DATA_TYPE_BOOLEAN, []bool{true, false, true, false}, func(v client.Value) (any, error) { return v.AsBools() }},
		{"Line1.Counts[]", mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER, []int{1200, 980, 0, 15, 7, 0, 3, 1}, func(v client.Value) (any, error) { return v.AsInts() }},
		{"Line1.Speeds[]", mxgatewayv1.MxDataType_MX_DATA_TYPE_FLOAT, []float32{120, 118.5, 0, 95}, func(v client.Value) (any, error) { return v.AsFloat32s() }},
		{"Line1.Setpoints[]", mxgatewayv1.MxDataType_MX_DATA_TYPE_DOUBLE, []float64{1.5, 2.25, 3.125}, func(v client.Value) (any, error) { return v.AsFloat64s() }},
		{"Line1.Recipe[]", mxgatewayv1.MxDataType_MX_DATA_TYPE_STRING, []string{"Cola 330ml", "Cola 500ml", "Lemon 330ml", "Water 500ml", ""}, func(v client.Value) (any, error) { return v.AsStrings() }},
		{"Line1.ShiftStarts[]", mxgatewayv1.MxDataType_MX_DATA_TYPE_TIME, []time.Time{at("2025-06-01T06:00:00Z"), at("2025-06-01T14:00:00Z"), at("2025-06-01T22:00:00Z")}, func(v client.Value) (any, error) { return v.AsTimes() }},
		{"Line1.CycleTimes[]", mxgatewayv1.MxDataType_MX_DATA_TYPE_ELAPSED_TIME, []time.Duration{500 * time.Millisecond, 750 * time.Millisecond, 1250 * time.Millisecond}, func(v client.Value) (any, error) { return v.AsDurations() }},
	}
	refs := make([]string, len(cases))
	for i, tc := range cases {
		refs[i] = tc.ref
	}
	res, err := s.Read(ctx, refs...)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range cases {
		r := res[i]
		if err := r.Err(); err != nil {
			t.Errorf("%s: %v", tc.ref, err)
			continue
		}
		if r.Value.DataType() != tc.dt || r.Value.IsArray() != strings.HasSuffix(tc.ref, "[]") {
			t.Errorf("%s: type %s array=%v, want %s", tc.ref, client.DataTypeName(r.Value.DataType()), r.Value.IsArray(), client.DataTypeName(tc.dt))
		}
		got, err := tc.get(r.Value)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %#v (%v), want %#v", tc.ref, got, err, tc.want)
		}
	}

	// Write each writable type with WriteValue and read it back (cached, as
	// WriteValue left the item advised).
	writes := []struct {
		ref string
		in  any
	}{
		{"Tank1.HighLevel", true},
		{"Pump1.StartCount", 42},
		{"Tank1.Volume", 12.25},     // a float64 converts to the MxFloat attribute
		{"TIC101.HiLimit", 95},      // an int converts to MxDouble
		{"Tank1.Material", "Water"}, // string
		{"TIC101.Mode", "Manual"},   // qualified enum as string
		{"Tank1.LastCleaned", at("2026-02-03T04:05:06Z")},
		{"Valve1.TravelTime", 2 * time.Second},
		{"Line1.Counts[]", []int{1, 2, 3, 4, 5, 6, 7, 8}},
		{"Line1.Recipe[]", []string{"a", "b", "c", "d", "e"}},
		{"Line1.Flags[]", []bool{false, false, true, true}},
		{"Line1.Setpoints[]", client.Text("[4, 5.5, 6]")},
	}
	for _, w := range writes {
		if _, err := s.WriteValue(ctx, w.ref, w.in); err != nil {
			t.Errorf("WriteValue %s: %v", w.ref, err)
			continue
		}
		// The simulator sends OnWriteComplete before the OnDataChange that
		// echoes the write (writeEchoOrder completionFirst, as MXAccess
		// usually does), so the cache may hold the old value for an instant
		// after WriteValue returns: poll until the echo is in it.
		testutil.Eventually(t, 10*time.Second, func() error {
			r, err := s.Read(ctx, w.ref)
			if err != nil {
				return err
			}
			if err := r[0].Err(); err != nil {
				return err
			}
			want, err := client.ConvertValue(r[0].Value.DataType(), w.in)
			if err != nil {
				return err
			}
			if !r[0].WasCached || !reflect.DeepEqual(r[0].Value.Interface(), want.Interface()) {
				return fmt.Errorf("%s read back %v (cached %v), want %v", w.ref, r[0].Value, r[0].WasCached, want)
			}
			return nil
		})
	}
}

// TestErrorTyping checks that each kind of failure arrives as the right type.
func TestErrorTyping(t *testing.T) {
	leakCheck(t)
	g := harness.Start(t)
	ctx := harness.Context(t, 60*time.Second)
	c := dial(t, ctx, g, "")
	s := open(t, ctx, c)

	// An unknown session is a GatewayError with reason SESSION_NOT_FOUND.
	ghost, err := c.AttachSession("no-such-session")
	if err != nil {
		t.Fatal(err)
	}
	_, err = ghost.Read(ctx, "TIC101.PV")
	var ge *client.GatewayError
	if !errors.As(err, &ge) || !client.IsSessionNotFound(err) || ge.Reason != mxgatewayv1.ReasonSessionNotFound {
		t.Fatalf("unknown session: %#v", err)
	}
	for _, err := range ghost.Events(ctx) {
		if !client.IsSessionNotFound(err) {
			t.Fatalf("events of an unknown session: %v", err)
		}
	}
	_ = ghost.Close()

	// A bad reference: configuration error on the read entry.
	res, err := s.Read(ctx, "Nope.Missing", "Line1.Counts")
	if err != nil {
		t.Fatal(err)
	}
	var me *client.MxAccessError
	if !errors.As(res[0].Err(), &me) || !me.IsConfigurationError() || res[0].Quality.IsGood() {
		t.Fatalf("bad reference: %v", res[0].Err())
	}
	if !errors.As(res[1].Err(), &me) || me.Detail() != 1003 {
		t.Fatalf("array without []: %v", res[1].Err())
	}
	// A ViewOnly attribute refuses the write in OnWriteComplete.
	if _, err := s.WriteValue(ctx, "TIC101.PV", 1.0); !errors.As(err, &me) || !me.IsSecurityError() || me.Method != "OnWriteComplete" {
		t.Fatalf("write to ViewOnly: %v", err)
	}
	// A forced type the attribute refuses: E_INVALIDARG, synchronously.
	_, err = s.WriteValue(ctx, "Tank1.Material", true, client.WithDataType(mxgatewayv1.MxDataType_MX_DATA_TYPE_BOOLEAN))
	if !errors.As(err, &me) || !me.IsInvalidArg() {
		t.Fatalf("forced wrong type: %v", err)
	}
	// A bad password.
	if _, err := s.Authenticate(ctx, "operator", "wrong"); err == nil {
		t.Fatal("bad password accepted")
	}
	// A closed session.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(ctx, "TIC101.PV"); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	// Keys and scopes: auth_test.go.
}

// TestEventsResumeAcrossSeveredConnection cuts the TCP connection under a
// running Events iterator while the session keeps producing events, and
// checks that every event arrives exactly once, in order.
func TestEventsResumeAcrossSeveredConnection(t *testing.T) {
	leakCheck(t)
	g := harness.Start(t)
	ctx := harness.Context(t, 60*time.Second)
	p := startProxy(t, g.GRPCAddr)
	viaProxy := dial(t, ctx, g, p.addr())
	direct := dial(t, ctx, g, "")
	s := open(t, ctx, viaProxy)
	log := watchEvents(t, s)
	w, err := direct.AttachSession(s.ID())
	if err != nil {
		t.Fatal(err)
	}
	h, err := w.ServerHandle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := w.MX().SubscribeBulk(ctx, h, []string{"Pump1.StartCount"}, false)
	if err != nil || sub[0].Err() != nil {
		t.Fatal(err, sub)
	}
	item := sub[0].ItemHandle
	log.waitFor(t, "first value", dataChangeOf(item))
	// Each write adds a completion and a data change.
	const rounds = 3
	const perRound = 10
	n := int32(100)
	for round := range rounds {
		for range perRound {
			n++
			if err := w.MX().Write(ctx, h, item, client.MustValue(n), 0); err != nil {
				t.Fatal(err)
			}
		}
		if round < rounds-1 {
			before := p.carried()
			if cut := p.sever(); cut == 0 {
				t.Fatal("proxy carried no connection")
			}
			// The next round severs the connection the client makes to
			// resume; wait for it rather than race gRPC's reconnect.
			testutil.Eventually(t, 30*time.Second, func() error {
				if p.carried() == before {
					return errors.New("the client has not reconnected through the proxy yet")
				}
				return nil
			})
		}
	}
	final := n
	log.waitFor(t, "the last value", func(ev client.Event) bool {
		d := ev.DataChange()
		return d != nil && d.ItemHandle == item && d.Value.Equal(client.MustValue(final))
	})
	evs, err := log.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	values := 0
	for i, ev := range evs {
		if ev.Gap() != nil {
			t.Fatalf("unexpected replay gap at %d", i)
		}
		if ev.Sequence() != uint64(i+1) {
			t.Fatalf("event %d has sequence %d (gap or duplicate)", i, ev.Sequence())
		}
		if d := ev.DataChange(); d != nil && d.ItemHandle == item {
			values++
		}
	}
	if values != 1+rounds*perRound {
		t.Fatalf("saw %d values, want %d", values, 1+rounds*perRound)
	}
	_ = w.Close()
}

// TestReplayGapAfterLongOutage resumes from a sequence the ring no longer
// holds and expects the typed gap marker first.
func TestReplayGapAfterLongOutage(t *testing.T) {
	leakCheck(t)
	g := harness.Start(t, "--replay-size=16")
	ctx := harness.Context(t, 60*time.Second)
	c := dial(t, ctx, g, "")
	s := open(t, ctx, c)
	if _, err := s.Subscribe(ctx, "Pump1.StartCount"); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if _, err := s.WriteValue(ctx, "Pump1.StartCount", i); err != nil {
			t.Fatal(err)
		}
	}
	for ev, err := range s.Events(ctx, client.AfterSequence(1)) {
		if err != nil {
			t.Fatal(err)
		}
		g := ev.Gap()
		if g == nil || g.RequestedAfter != 1 || g.FirstAvailable <= 2 || ev.Sequence() != g.FirstAvailable {
			t.Fatalf("first element %v, want a gap marker", ev)
		}
		break
	}
}

// TestConcurrentUse hammers one client from many goroutines (run with -race).
func TestConcurrentUse(t *testing.T) {
	leakCheck(t)
	g := harness.Start(t)
	ctx := harness.Context(t, 90*time.Second)
	c := dial(t, ctx, g, "")
	s1 := open(t, ctx, c)
	s2 := open(t, ctx, c)
	log := watchEvents(t, s1)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 8 {
		wg.Go(func() {
			s := []*client.Session{s1, s2}[i%2]
			ref := []string{"TIC101.SP", "Pump1.StartCount", "Tank1.Material", "Line1.BatchId"}[i%4]
			for j := range 5 {
				var v any = float64(i*10 + j)
				switch ref {
				case "Pump1.StartCount":
					v = i*10 + j
				case "Tank1.Material", "Line1.BatchId":
					v = fmt.Sprintf("v%d-%d", i, j)
				}
				if _, err := s.WriteValue(ctx, ref, v); err != nil {
					errs <- fmt.Errorf("%s: %w", ref, err)
					return
				}
				if _, err := s.Read(ctx, ref, "Tank1.Volume"); err != nil {
					errs <- err
					return
				}
				if _, err := s.Subscribe(ctx, "TIC101.PV"); err != nil {
					errs <- err
					return
				}
			}
			if _, err := c.ListSessions(ctx); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	evs, err := log.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range evs {
		if ev.Sequence() != uint64(i+1) {
			t.Fatalf("event %d has sequence %d", i, ev.Sequence())
		}
	}
}

// TestEventsStopWhenSessionClosedElsewhere: another client closes the
// session; the iterator ends with a permanent error instead of retrying.
func TestEventsStopWhenSessionClosedElsewhere(t *testing.T) {
	leakCheck(t)
	g := harness.Start(t)
	ctx := harness.Context(t, 60*time.Second)
	c := dial(t, ctx, g, "")
	other := dial(t, ctx, g, "")
	s := open(t, ctx, c)
	log := watchEvents(t, s)
	if _, err := s.Subscribe(ctx, "Tank1.Material"); err != nil {
		t.Fatal(err)
	}
	log.waitFor(t, "a value", func(ev client.Event) bool { return ev.DataChange() != nil })
	o, _ := other.AttachSession(s.ID())
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, func() error {
		_, err := log.snapshot()
		if err == nil {
			return errors.New("iterator still running")
		}
		var ge *client.GatewayError
		if !errors.As(err, &ge) || !ge.Permanent() {
			return fmt.Errorf("ended with a non-permanent error: %w", err)
		}
		return nil
	})
}
