package e2e

import (
	"io"
	"net/http"
	"testing"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// TestServeSurfaces: the printed addresses work, /healthz answers, the
// gRPC health service says SERVING and reflection lists the services (what
// `grpcurl -plaintext ADDR list` shows).
func TestServeSurfaces(t *testing.T) {
	t.Parallel()
	g := harness.Start(t)
	resp, err := http.Get("http://" + g.HTTPAddr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Fatalf("/healthz = %d %q", resp.StatusCode, body)
	}
	ctx := harness.Context(t, step)
	for _, svc := range []string{"", "mxgateway.v1.Gateway"} {
		hr, err := healthpb.NewHealthClient(g.Conn()).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health %q = %v, %v", svc, hr, err)
		}
	}
	rc, err := reflectionpb.NewServerReflectionClient(g.Conn()).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	lr, err := rc.Recv()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, s := range lr.GetListServicesResponse().GetService() {
		names[s.GetName()] = true
	}
	if !names["mxgateway.v1.Gateway"] || !names["mxgateway.v1.Galaxy"] || !names["grpc.health.v1.Health"] {
		t.Fatalf("reflection lists %v", names)
	}
	rc.CloseSend()
}

// TestHappyPath walks the whole client journey on the demo Galaxy.
func TestHappyPath(t *testing.T) {
	t.Parallel()
	g := harness.Start(t)
	s := openSession(t, g.Client(), "happy")
	ev := s.streamEvents(&mxgatewayv1.StreamEventsRequest{})
	hlmx := s.register()

	// Add + advise a changing attribute: first value, then changes.
	level := s.subscribe("Tank2.Level")
	first := ev.waitFor("first value of Tank2.Level", dataChangeOf(hlmx, level))
	dc := first.GetDataChange()
	if dc.GetValue().GetIsNull() || dc.GetQuality().GetRaw() != 192 || first.GetSessionId() != s.id || first.GetSequence() == 0 {
		t.Fatalf("first value %v", first)
	}
	changed := ev.waitFor("a change of Tank2.Level", func(e *mxgatewayv1.Event) bool {
		return dataChangeOf(hlmx, level)(e) && e.GetDataChange().GetValue().GetDoubleValue() != dc.GetValue().GetDoubleValue()
	})
	if changed.GetSequence() <= first.GetSequence() {
		t.Fatalf("sequence went backwards: %d after %d", changed.GetSequence(), first.GetSequence())
	}

	// Write: OnWriteComplete, then the new value.
	sp := s.subscribe("TIC101.SP")
	ev.waitFor("first value of TIC101.SP", dataChangeOf(hlmx, sp))
	s.write(sp, doubleValue(70.5))
	ev.waitFor("OnWriteComplete of TIC101.SP", func(e *mxgatewayv1.Event) bool {
		wc := e.GetWriteComplete()
		return wc != nil && wc.GetServerHandle() == hlmx && wc.GetItemHandle() == sp
	})
	ev.waitFor("TIC101.SP = 70.5", func(e *mxgatewayv1.Event) bool {
		return dataChangeOf(hlmx, sp)(e) && e.GetDataChange().GetValue().GetDoubleValue() == 70.5
	})

	// Bulk subscribe: one result per reference, in order, each advised.
	refs := []string{"Tank1.Volume", "Tank1.Material", "Pump1.StartCount"}
	bulk := s.invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_SubscribeBulk{SubscribeBulk: &mxgatewayv1.SubscribeBulkCommand{
		ServerHandle: hlmx, ItemDefinitions: refs,
	}}}).GetBulk().GetEntries()
	if len(bulk) != len(refs) {
		t.Fatalf("SubscribeBulk: %d entries", len(bulk))
	}
	var bulkHandles []int32
	for i, e := range bulk {
		if e.GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK || e.GetItemHandle() <= 0 || e.GetItemDefinition() != refs[i] {
			t.Fatalf("SubscribeBulk entry %d: %v", i, e)
		}
		bulkHandles = append(bulkHandles, e.GetItemHandle())
		ev.waitFor("first value of "+refs[i], dataChangeOf(hlmx, e.GetItemHandle()))
	}

	// ReadBulk: the advised item answers from the cache, the other one
	// through a transient item.
	read := s.invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_ReadBulk{ReadBulk: &mxgatewayv1.ReadBulkCommand{
		ServerHandle: hlmx, ItemDefinitions: []string{"TIC101.SP", "Valve1.Position"},
	}}}).GetReadBulk().GetEntries()
	if len(read) != 2 {
		t.Fatalf("ReadBulk: %d entries", len(read))
	}
	if r := read[0]; !r.GetWasCached() || r.GetValue().GetDoubleValue() != 70.5 || r.GetTimedOut() {
		t.Fatalf("ReadBulk of the advised TIC101.SP = %v", r)
	}
	if r := read[1]; r.GetWasCached() || r.GetTimedOut() || r.GetValue().GetFloatValue() != 35 || r.GetQuality().GetRaw() != 192 {
		t.Fatalf("ReadBulk of the non-advised Valve1.Position = %v", r)
	}

	// Tear down in MXAccess order.
	s.invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_UnAdvise{UnAdvise: &mxgatewayv1.UnAdviseCommand{ServerHandle: hlmx, ItemHandle: level}}})
	s.invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_RemoveItem{RemoveItem: &mxgatewayv1.RemoveItemCommand{ServerHandle: hlmx, ItemHandle: level}}})
	unsub := s.invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_UnsubscribeBulk{UnsubscribeBulk: &mxgatewayv1.UnsubscribeBulkCommand{
		ServerHandle: hlmx, ItemHandles: bulkHandles,
	}}}).GetBulk().GetEntries()
	for i, e := range unsub {
		if e.GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK {
			t.Fatalf("UnsubscribeBulk entry %d: %v", i, e)
		}
	}
	s.invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_UnAdvise{UnAdvise: &mxgatewayv1.UnAdviseCommand{ServerHandle: hlmx, ItemHandle: sp}}})
	s.invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_RemoveItem{RemoveItem: &mxgatewayv1.RemoveItemCommand{ServerHandle: hlmx, ItemHandle: sp}}})
	s.invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Unregister{Unregister: &mxgatewayv1.UnregisterCommand{ServerHandle: hlmx}}})

	closed := s.close()
	if closed.GetAlreadyClosed() || closed.GetState() != mxgatewayv1.SessionState_SESSION_STATE_CLOSED {
		t.Fatalf("CloseSession = %v", closed)
	}
	if _, err := ev.end(); err != nil {
		t.Fatalf("stream of a closed session ended with %v, want a clean end", err)
	}
	if again := s.close(); !again.GetAlreadyClosed() {
		t.Fatalf("second CloseSession = %v", again)
	}
}
