package e2e

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// readmeCall is one grpcurl call of the README quick start.
var readmeCall = regexp.MustCompile("(?s)grpcurl -plaintext -H \"authorization: Bearer \\$KEY\" (?:-d @ )?127\\.0\\.0\\.1:5000 mxgateway\\.v1\\.Gateway/(\\w+)(?:[^\\n]*<<EOF[^\\n]*\\n(.*?)\\nEOF)?")

// TestReadmeQuickstart sends the README's grpcurl requests, in order, with
// the same JSON, and checks what the README says they do.
func TestReadmeQuickstart(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	calls := readmeCall.FindAllStringSubmatch(string(readme), -1)
	if len(calls) < 8 {
		t.Fatalf("found %d grpcurl calls in README.md", len(calls))
	}
	g := harness.Start(t)
	c := g.Client()
	ctx := harness.Context(t, step)
	checkReadmeServiceList(t, g, string(readme))

	var sid string
	var events *stream
	invokes := 0
	for _, call := range calls {
		method, body := call[1], strings.ReplaceAll(call[2], "$SID", sid)
		parse := func(m proto.Message) {
			t.Helper()
			if err := protojson.Unmarshal([]byte(body), m); err != nil {
				t.Fatalf("README %s body %s: %v", method, body, err)
			}
		}
		switch method {
		case "OpenSession":
			req := &mxgatewayv1.OpenSessionRequest{}
			parse(req)
			resp, err := c.OpenSession(ctx, req)
			if err != nil {
				t.Fatalf("OpenSession: %v", err)
			}
			sid = resp.GetSessionId()
		case "StreamEvents":
			req := &mxgatewayv1.StreamEventsRequest{}
			parse(req)
			events = openStream(t, c, req.GetSessionId(), req)
		case "Invoke":
			req := &mxgatewayv1.InvokeRequest{}
			parse(req)
			resp, err := c.Invoke(ctx, req)
			if st := resp.GetReply().GetStatus(); err != nil || (st != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK && st != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK) {
				t.Fatalf("Invoke %s: %v, %v", body, resp, err)
			}
			r := resp.GetReply()
			invokes++
			switch cmd := req.GetCommand(); {
			case cmd.GetRegister() != nil && r.GetRegister().GetServerHandle() != 1:
				t.Fatalf("Register: %v, the README promises server handle 1", r)
			case cmd.GetAddItem() != nil && r.GetItemHandle().GetItemHandle() != 1:
				t.Fatalf("AddItem: %v, the README promises item handle 1", r)
			case cmd.GetAdvise() != nil:
				events.waitFor("the first value", dataChangeOf(1, 1))
			case cmd.GetWrite() != nil:
				events.waitFor("OnWriteComplete", func(e *mxgatewayv1.Event) bool { return e.GetWriteComplete().GetItemHandle() == 1 })
				events.waitFor("72.5", func(e *mxgatewayv1.Event) bool {
					return dataChangeOf(1, 1)(e) && e.GetDataChange().GetValue().GetDoubleValue() == 72.5
				})
			case cmd.GetReadBulk() != nil:
				got := r.GetReadBulk().GetEntries()
				if len(got) != 2 || !got[0].GetWasCached() || got[0].GetValue().GetDoubleValue() != 72.5 || got[1].GetWasCached() || got[1].GetTimedOut() {
					t.Fatalf("ReadBulk: %v", got)
				}
			}
		case "ListSessions":
			resp, err := c.ListSessions(ctx, &mxgatewayv1.ListSessionsRequest{})
			if err != nil || len(resp.GetSessions()) != 1 || resp.GetSessions()[0].GetSessionId() != sid {
				t.Fatalf("ListSessions: %v, %v", resp, err)
			}
		case "CloseSession":
			req := &mxgatewayv1.CloseSessionRequest{}
			parse(req)
			resp, err := c.CloseSession(ctx, req)
			if err != nil || resp.GetState() != mxgatewayv1.SessionState_SESSION_STATE_CLOSED {
				t.Fatalf("CloseSession: %v, %v", resp, err)
			}
			if _, err := events.end(); err != nil {
				t.Fatalf("the event stream ended with %v after CloseSession", err)
			}
		default:
			t.Fatalf("README calls %s, which this test does not know", method)
		}
	}
	if invokes != 5 || sid == "" || events == nil {
		t.Fatalf("README sequence incomplete: %d invokes", invokes)
	}
}

// checkReadmeServiceList compares the README's `grpcurl list` output with
// what reflection really lists.
func checkReadmeServiceList(t *testing.T, g *harness.Gateway, readme string) {
	t.Helper()
	_, after, ok := strings.Cut(readme, "grpcurl -plaintext -H \"authorization: Bearer $KEY\" 127.0.0.1:5000 list\n```\n\n```\n")
	block, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 {
		t.Fatal("README.md: no `grpcurl ... list` output block")
	}
	want := strings.Fields(block)
	rc, err := reflectionpb.NewServerReflectionClient(g.Conn()).ServerReflectionInfo(harness.Context(t, step))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.CloseSend()
	if err := rc.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := rc.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		got = append(got, s.GetName())
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("reflection lists %q, README.md shows %q", got, want)
	}
}
