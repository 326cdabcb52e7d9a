package client

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var fastBackoff = Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, Factor: 2}

func dialFake(t *testing.T, f *fakeGateway, opts ...Option) *Client {
	t.Helper()
	addr := f.serve(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, append([]Option{WithEventBackoff(fastBackoff)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func emitN(f *fakeGateway, n int) {
	for i := range n {
		f.emit(dataChange(7, MustValue(int32(i)).Proto()))
	}
}

// collect reads n elements from Events.
func collectEvents(t *testing.T, s *Session, n int, opts ...EventsOption) ([]Event, error) {
	t.Helper()
	var out []Event
	for ev, err := range s.Events(testCtx(t), opts...) {
		if err != nil {
			return out, err
		}
		out = append(out, ev)
		if len(out) == n {
			break
		}
	}
	return out, nil
}

func TestEventsResumeAfterDrop(t *testing.T) {
	f := newFakeGateway()
	c := dialFake(t, f)
	s, err := c.OpenSession(testCtx(t), "t")
	if err != nil {
		t.Fatal(err)
	}
	emitN(f, 10)
	f.mu.Lock()
	f.dropAfter = 4
	f.mu.Unlock()
	evs, err := collectEvents(t, s, 10)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range evs {
		if ev.Sequence() != uint64(i+1) {
			t.Fatalf("event %d has sequence %d", i, ev.Sequence())
		}
	}
	if got := f.afterSequences(); len(got) != 2 || got[0] != 0 || got[1] != 4 {
		t.Fatalf("after_sequence of the stream requests = %v, want [0 4]", got)
	}
}

// TestEventsBatchedResume: with Batch the iterator still yields one event
// at a time in sequence order, and a stream dropped after a batch resumes
// after the batch's last event, asking for batches again.
func TestEventsBatchedResume(t *testing.T) {
	f := newFakeGateway()
	c := dialFake(t, f, WithEventBatch(2, 0))
	s, err := c.OpenSession(testCtx(t), "t")
	if err != nil {
		t.Fatal(err)
	}
	emitN(f, 10)
	f.mu.Lock()
	f.dropAfter = 4
	f.mu.Unlock()
	evs, err := collectEvents(t, s, 10, Batch(3, 5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range evs {
		if ev.Sequence() != uint64(i+1) || ev.DataChange() == nil {
			t.Fatalf("event %d is %v, want data change %d", i, ev, i+1)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) != 2 || f.requests[1].GetAfterSequence() != 6 {
		t.Fatalf("stream requests %v, want two, the second after 6", f.requests)
	}
	for _, r := range f.requests {
		if r.GetMaxBatch() != 3 || r.GetMaxDelayMs() != 5 {
			t.Fatalf("request %v does not carry the Events call's batch 3 / 5 ms", r)
		}
	}
}

// TestEventsBatchedSequenceBreak: a discontinuity inside a batch ends the
// iteration with a SequenceError after the events before it.
func TestEventsBatchedSequenceBreak(t *testing.T) {
	f := newFakeGateway()
	c := dialFake(t, f)
	s, _ := c.OpenSession(testCtx(t), "t")
	emitN(f, 5)
	f.mu.Lock()
	f.skipSeq = 3
	f.mu.Unlock()
	evs, err := collectEvents(t, s, 5, Batch(10, 0))
	var se *SequenceError
	if !errors.As(err, &se) || se.Expected != 3 || se.Got != 4 {
		t.Fatalf("err = %v, want SequenceError 3/4", err)
	}
	if len(evs) != 2 {
		t.Fatalf("delivered %d events before the error, want 2", len(evs))
	}
}

func TestEventsReplayGapIsTyped(t *testing.T) {
	f := newFakeGateway()
	c := dialFake(t, f)
	s, _ := c.OpenSession(testCtx(t), "t")
	emitN(f, 8)
	f.trim(6) // sequences 1..5 are gone
	evs, err := collectEvents(t, s, 4)
	if err != nil {
		t.Fatal(err)
	}
	g := evs[0].Gap()
	if g == nil || g.FirstAvailable != 6 || g.RequestedAfter != 0 || g.Missed() != 5 {
		t.Fatalf("first element is not the gap marker: %+v %v", g, evs[0])
	}
	if evs[0].DataChange() != nil || evs[1].Gap() != nil {
		t.Fatal("gap and data change mixed up")
	}
	for i, want := range []uint64{6, 7, 8} {
		if evs[i+1].Sequence() != want {
			t.Fatalf("after the gap got %d, want %d", evs[i+1].Sequence(), want)
		}
	}
}

func TestEventsUnmarkedGapIsAnError(t *testing.T) {
	f := newFakeGateway()
	c := dialFake(t, f)
	s, _ := c.OpenSession(testCtx(t), "t")
	emitN(f, 5)
	f.mu.Lock()
	f.skipSeq = 3
	f.mu.Unlock()
	evs, err := collectEvents(t, s, 5)
	var se *SequenceError
	if !errors.As(err, &se) || se.Expected != 3 || se.Got != 4 {
		t.Fatalf("err = %v, want SequenceError 3/4", err)
	}
	if len(evs) != 2 {
		t.Fatalf("delivered %d events before the error, want 2", len(evs))
	}
}

func TestEventsConflateToleratesSkips(t *testing.T) {
	f := newFakeGateway()
	c := dialFake(t, f)
	s, _ := c.OpenSession(testCtx(t), "t")
	emitN(f, 5)
	f.mu.Lock()
	f.skipSeq = 3
	f.mu.Unlock()
	evs, err := collectEvents(t, s, 4, Conflate())
	if err != nil || len(evs) != 4 || evs[2].Sequence() != 4 {
		t.Fatalf("conflated read: %v %d", err, len(evs))
	}
}

func TestEventsStopOnPermanentError(t *testing.T) {
	f := newFakeGateway()
	c := dialFake(t, f)
	s, _ := c.OpenSession(testCtx(t), "t")
	st, _ := status.New(codes.FailedPrecondition, "faulted").WithDetails(&errdetails.ErrorInfo{Reason: mxgatewayv1.ReasonSessionFaulted})
	f.mu.Lock()
	f.streamErr = st.Err()
	f.mu.Unlock()
	_, err := collectEvents(t, s, 1)
	if !IsSessionFaulted(err) {
		t.Fatalf("err = %v, want session faulted", err)
	}
	if n := len(f.afterSequences()); n != 1 {
		t.Fatalf("retried a permanent error: %d stream calls", n)
	}
}

func TestEventsRetriesTransientThenGivesUp(t *testing.T) {
	f := newFakeGateway()
	c := dialFake(t, f, WithEventBackoff(Backoff{Initial: time.Millisecond, Max: time.Millisecond, Factor: 1, MaxAttempts: 3}))
	s, _ := c.OpenSession(testCtx(t), "t")
	f.mu.Lock()
	f.streamErr = status.Error(codes.Unavailable, "down")
	f.mu.Unlock()
	_, err := collectEvents(t, s, 1)
	if err == nil || !IsUnavailable(err) {
		t.Fatalf("err = %v", err)
	}
	if n := len(f.afterSequences()); n != 4 {
		t.Fatalf("stream attempts = %d, want 4 (1 + 3 retries)", n)
	}
}

func TestEventsEndWhenSessionCloses(t *testing.T) {
	f := newFakeGateway()
	c := dialFake(t, f)
	s, _ := c.OpenSession(testCtx(t), "t")
	emitN(f, 1)
	done := make(chan error, 1)
	first := make(chan struct{})
	go func() {
		var last error
		n := 0
		for _, err := range s.Events(context.Background()) {
			last = err
			if n++; n == 1 {
				close(first)
			}
		}
		done <- last
	}()
	<-first
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("iterator ended with %v, want nil", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Read(testCtx(t), "X.Y"); !errors.Is(err, ErrClosed) {
		t.Fatalf("call after Close: %v", err)
	}
}

func TestWriteValueWaitsForCompletion(t *testing.T) {
	f := newFakeGateway()
	c := dialFake(t, f)
	s, _ := c.OpenSession(testCtx(t), "t")
	ctx := testCtx(t)
	// An int converts to the attribute's type (MxDouble, seen in its first value).
	st, err := s.WriteValue(ctx, "TIC101.SP", 42)
	if err != nil || !st.OK() {
		t.Fatalf("WriteValue: %v %v", st, err)
	}
	f.mu.Lock()
	last := f.commands[len(f.commands)-1].GetWrite()
	f.mu.Unlock()
	if last.GetValue().GetDoubleValue() != 42 || last.GetValue().GetDataType() != mxgatewayv1.MxDataType_MX_DATA_TYPE_DOUBLE {
		t.Fatalf("sent %v", last.GetValue())
	}
	// A refusal in the completion is an *MxAccessError with the category.
	f.mu.Lock()
	f.writeStatus = []*mxgatewayv1.MxStatus{{Category: mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_SECURITY_ERROR, CategoryRaw: 6}}
	f.mu.Unlock()
	_, err = s.WriteValue(ctx, "TIC101.SP", 43.5)
	var me *MxAccessError
	if !errors.As(err, &me) || !me.IsSecurityError() || me.Method != "OnWriteComplete" || me.Reference != "TIC101.SP" {
		t.Fatalf("err = %#v", err)
	}
	f.mu.Lock()
	f.writeStatus = nil
	f.mu.Unlock()
	// A lossy conversion fails before anything is sent.
	_, err = s.WriteValue(ctx, "TIC101.SP", int64(1)<<60)
	var ce *ConversionError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want ConversionError", err)
	}
	// Forcing a type the attribute refuses gives the synchronous E_INVALIDARG.
	_, err = s.WriteValue(ctx, "TIC101.SP", 1, WithDataType(mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER))
	if !errors.As(err, &me) || !me.IsInvalidArg() {
		t.Fatalf("err = %v, want E_INVALIDARG", err)
	}
	// Text is parsed for the attribute's type.
	if _, err := s.WriteValue(ctx, "TIC101.SP", Text("7.25")); err != nil {
		t.Fatal(err)
	}
	// The item was subscribed once and reused.
	f.mu.Lock()
	subs := 0
	for _, c := range f.commands {
		if c.GetSubscribeBulk() != nil {
			subs++
		}
	}
	f.mu.Unlock()
	if subs != 1 {
		t.Fatalf("SubscribeBulk sent %d times", subs)
	}
}

func TestSubscribeUnsubscribe(t *testing.T) {
	f := newFakeGateway()
	c := dialFake(t, f)
	s, _ := c.OpenSession(testCtx(t), "t")
	ctx := testCtx(t)
	got, err := s.Subscribe(ctx, "A.PV", "B.PV", "A.PV")
	if err != nil || len(got) != 3 || got[0].ItemHandle != got[2].ItemHandle || got[0].ItemHandle == got[1].ItemHandle {
		t.Fatalf("Subscribe: %+v %v", got, err)
	}
	again, err := s.Subscribe(ctx, "B.PV")
	if err != nil || again[0].ItemHandle != got[1].ItemHandle {
		t.Fatalf("second Subscribe: %+v %v", again, err)
	}
	un, err := s.Unsubscribe(ctx, "A.PV", "C.PV")
	if err != nil || un[0].Err() != nil || !errors.Is(un[1].Err(), ErrNotSubscribed) {
		t.Fatalf("Unsubscribe: %+v %v", un, err)
	}
	f.mu.Lock()
	subs := 0
	for _, c := range f.commands {
		if sb := c.GetSubscribeBulk(); sb != nil {
			subs += len(sb.GetItemDefinitions())
		}
	}
	f.mu.Unlock()
	if subs != 2 {
		t.Fatalf("%d references sent to SubscribeBulk, want 2", subs)
	}
	// After Unsubscribe, a new Subscribe adds the reference again.
	if re, err := s.Subscribe(ctx, "A.PV"); err != nil || re[0].ItemHandle == got[0].ItemHandle {
		t.Fatalf("resubscribe: %+v %v", re, err)
	}
}

func TestConcurrentWriteValue(t *testing.T) {
	f := newFakeGateway()
	c := dialFake(t, f)
	s, _ := c.OpenSession(testCtx(t), "t")
	ctx := testCtx(t)
	errs := make(chan error, 20)
	for i := range 20 {
		go func() {
			ref := []string{"A.PV", "B.PV"}[i%2]
			_, err := s.WriteValue(ctx, ref, float64(i))
			errs <- err
		}()
	}
	for range 20 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestGatewayErrorTyping(t *testing.T) {
	mk := func(code codes.Code, reason string) error {
		st := status.New(code, "msg")
		if reason != "" {
			st, _ = st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: mxgatewayv1.ErrorDomain})
		}
		return fromRPC(context.Background(), st.Err())
	}
	cases := []struct {
		code      codes.Code
		reason    string
		want      error
		permanent bool
	}{
		{codes.NotFound, mxgatewayv1.ReasonSessionNotFound, ErrSessionNotFound, true},
		{codes.FailedPrecondition, mxgatewayv1.ReasonSessionFaulted, ErrSessionFaulted, true},
		{codes.FailedPrecondition, mxgatewayv1.ReasonSessionNotReady, ErrSessionNotReady, false},
		{codes.Unavailable, mxgatewayv1.ReasonWorkerExited, ErrSessionFaulted, true},
		{codes.Unavailable, mxgatewayv1.ReasonShuttingDown, ErrUnavailable, false},
		{codes.DeadlineExceeded, mxgatewayv1.ReasonCommandTimeout, ErrCommandTimeout, false},
		{codes.ResourceExhausted, mxgatewayv1.ReasonSlowConsumer, ErrResourceExhausted, false},
		{codes.Unauthenticated, mxgatewayv1.ReasonUnauthenticated, ErrUnauthenticated, true},
		{codes.PermissionDenied, mxgatewayv1.ReasonPermissionDenied, ErrPermissionDenied, true},
		{codes.PermissionDenied, mxgatewayv1.ReasonNotSessionOwner, ErrPermissionDenied, true},
		{codes.InvalidArgument, mxgatewayv1.ReasonInvalidRequest, ErrInvalidRequest, true},
		{codes.Unavailable, "", ErrUnavailable, false},
		{codes.Unauthenticated, "", ErrUnauthenticated, true},
	}
	for _, tc := range cases {
		t.Run(tc.code.String()+"/"+tc.reason, func(t *testing.T) {
			err := mk(tc.code, tc.reason)
			var ge *GatewayError
			if !errors.As(err, &ge) || ge.Code != tc.code || ge.Reason != tc.reason {
				t.Fatalf("got %#v", err)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("%v does not match %v", err, tc.want)
			}
			if errors.Is(err, ErrClosed) {
				t.Fatal("matches an unrelated sentinel")
			}
			if ge.Permanent() != tc.permanent {
				t.Fatalf("Permanent() = %v", ge.Permanent())
			}
			if status.Code(err) != tc.code {
				t.Fatalf("status.Code = %v", status.Code(err))
			}
			if GatewayReason(err) != tc.reason {
				t.Fatal("GatewayReason")
			}
		})
	}
	if err := fromRPC(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}

func TestMxAccessErrorHelpers(t *testing.T) {
	r := &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_MXACCESS_FAILURE, Hresult: HResultInvalidArg,
		Statuses: []*mxgatewayv1.MxStatus{{Category: mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_CONFIGURATION_ERROR, CategoryRaw: 4, Detail: 1003}}}
	err := replyErr("Write", "X.Y", r)
	var me *MxAccessError
	if !errors.As(err, &me) || !me.IsInvalidArg() || !me.IsConfigurationError() || me.Detail() != 1003 || me.IsSecurityError() {
		t.Fatalf("%#v", err)
	}
	if !strings.Contains(err.Error(), "0x80070057 E_INVALIDARG") || !strings.Contains(err.Error(), "MxCategoryConfigurationError") {
		t.Fatalf("message %q", err)
	}
	if replyErr("Write", "", &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK}) != nil {
		t.Fatal("OK reply is an error")
	}
	ns := replyErr("Suspend", "", &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_NOT_SUPPORTED})
	if !errors.As(ns, &me) || !me.IsNotSupported() {
		t.Fatal("not supported")
	}
	// Statuses: pending and warning-with-success are not failures; success
	// is tested as non-zero, never == 1.
	ok := Statuses{{Success: true, SuccessRaw: -1}, {Success: true, Category: mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_PENDING}}
	if !ok.OK() || !ok.Pending() {
		t.Fatal("ok statuses")
	}
	if (Statuses{{Category: mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_WARNING}}).OK() {
		t.Fatal("warning without success is ok")
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Factor: 2}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for n, w := range want {
		if got := b.Delay(n); got != w*time.Millisecond {
			t.Fatalf("Delay(%d) = %v, want %v", n, got, w*time.Millisecond)
		}
		for range 50 {
			j := b.jittered(n)
			if j < b.Delay(n)/2 || j > b.Delay(n) {
				t.Fatalf("jittered(%d) = %v outside [%v, %v]", n, j, b.Delay(n)/2, b.Delay(n))
			}
		}
	}
	for _, bad := range []Backoff{{}, {Initial: 1, Max: 0, Factor: 2}, {Initial: 1, Max: 2, Factor: 0.5}, {Initial: 1, Max: 2, Factor: 2, MaxAttempts: -1}} {
		if bad.validate() == nil {
			t.Fatalf("%+v validated", bad)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := (Backoff{Initial: time.Hour, Max: time.Hour, Factor: 1}).sleep(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("sleep on a cancelled context: %v", err)
	}
}

func TestDialRefusesPlaintextToRemoteHost(t *testing.T) {
	_, err := Dial(context.Background(), "192.0.2.1:5000", WithInsecure())
	if !errors.Is(err, ErrInsecureRemote) {
		t.Fatalf("err = %v", err)
	}
	for addr, want := range map[string]bool{"127.0.0.1:5000": true, "localhost:1": true, "[::1]:5": true, "127.9.9.9": true, "10.0.0.1:5000": false, "example.com": false} {
		if IsLoopbackAddr(addr) != want {
			t.Fatalf("IsLoopbackAddr(%q) != %v", addr, want)
		}
	}
}

func TestDialUnreachable(t *testing.T) {
	f := newFakeGateway()
	addr := f.serve(t)
	_ = addr
	// A port nobody listens on: take one and close it.
	ctx := testCtx(t)
	_, err := Dial(ctx, "127.0.0.1:1")
	if err == nil || !IsUnavailable(err) || !strings.Contains(err.Error(), "cannot reach gateway") {
		t.Fatalf("err = %v", err)
	}
}

func TestAPIKeyIsSent(t *testing.T) {
	f := newFakeGateway()
	c := dialFake(t, f, WithAPIKey("mxgw_abc_secret"))
	// The fake does not check keys; check the credential directly.
	md, _ := apiKeyCreds{key: "mxgw_abc_secret"}.GetRequestMetadata(context.Background())
	if md["authorization"] != "Bearer mxgw_abc_secret" {
		t.Fatalf("metadata %v", md)
	}
	if _, err := c.ListSessions(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

func TestClientCloseClosesSessions(t *testing.T) {
	f := newFakeGateway()
	c := dialFake(t, f)
	s, _ := c.OpenSession(testCtx(t), "t")
	if _, err := s.Subscribe(testCtx(t), "A.PV"); err != nil { // starts the tracker goroutine
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := c.OpenSession(context.Background(), "x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("OpenSession after Close: %v", err)
	}
	if _, err := s.Subscribe(context.Background(), "A.PV"); !errors.Is(err, ErrClosed) {
		t.Fatalf("session call after client Close: %v", err)
	}
}

// TestImportsOnlyPublicPackages keeps the SDK free of the gateway's internals
// and of heavy dependencies.
func TestImportsOnlyPublicPackages(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Skipf("go list unavailable: %v %s", err, out)
	}
	allowed := []string{
		"github.com/mxgateway/mxgateway/client",
		"github.com/mxgateway/mxgateway/api/",
		"google.golang.org/grpc", "google.golang.org/protobuf", "google.golang.org/genproto/",
		"golang.org/x/net/", "golang.org/x/sys/", "golang.org/x/text/",
		// The generated MarshalVT code of the api packages (buf.gen.yaml).
		"github.com/planetscale/vtprotobuf/",
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.Contains(pkg, "/internal/") && strings.HasPrefix(pkg, "github.com/mxgateway/") {
			t.Errorf("client imports %s", pkg)
			continue
		}
		ok := false
		for _, a := range allowed {
			if strings.HasPrefix(pkg, a) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("client depends on unexpected package %s", pkg)
		}
	}
}

// TestEventsBatchClampedToTheGatewayBounds: Batch beyond the gateway's
// bounds asks for the bounds, not for a request the gateway refuses.
func TestEventsBatchClampedToTheGatewayBounds(t *testing.T) {
	f := newFakeGateway()
	c := dialFake(t, f)
	s, _ := c.OpenSession(testCtx(t), "t")
	emitN(f, 1)
	if _, err := collectEvents(t, s, 1, Batch(10*MaxEventBatch, time.Hour)); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.requests[0]; r.GetMaxBatch() != mxgatewayv1.MaxStreamBatch || time.Duration(r.GetMaxDelayMs())*time.Millisecond != mxgatewayv1.MaxStreamBatchDelay {
		t.Fatalf("request %v, want max_batch %d and max_delay_ms %d", r, mxgatewayv1.MaxStreamBatch, mxgatewayv1.MaxStreamBatchDelay.Milliseconds())
	}
}
