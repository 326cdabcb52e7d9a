package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// stuckSubscriber opens a session with a stream on a connection with
// minimal HTTP/2 windows that never reads, and storms enough events to
// block the gateway's sends to it. It returns the session and the stream.
func stuckSubscriber(t *testing.T, g *harness.Gateway) (*client, grpc.ServerStreamingClient[mxgatewayv1.StreamEventsResponse]) {
	t.Helper()
	s := openSession(t, g.Client(), "stuck")
	fast := s.streamEvents(&mxgatewayv1.StreamEventsRequest{Conflate: true})
	conn := g.Dial(t, g.AdminKey, grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	stuck := &client{t: t, c: mxgatewayv1grpc.NewGatewayClient(conn), id: s.id}
	st, _ := stuck.rawStream(&mxgatewayv1.StreamEventsRequest{})
	s.register()
	h, final := storm(t, s, fast, 8000, false) // below the subscriber queue: only the sends block
	fast.waitFor("the storm's last value", func(ev *mxgatewayv1.Event) bool {
		return dataChangeOf(s.hlmx, h)(ev) && ev.GetDataChange().GetValue().GetInt32Value() == final
	})
	fast.stop()
	return s, st
}

// TestHardeningStuckSubscriberWriteDeadline: a subscriber that stops
// reading loses its stream after stream_write_timeout; the session stays
// READY and is no longer held by it.
func TestHardeningStuckSubscriberWriteDeadline(t *testing.T) {
	t.Parallel()
	g := harness.Start(t, "--stream-write-timeout=1s")
	s, st := stuckSubscriber(t, g)
	eventually(t, "the stuck stream to end", func() error {
		if n := s.info().GetSubscribers(); n != 0 {
			return fmt.Errorf("%d subscribers", n)
		}
		return nil
	})
	if state := s.info().GetState(); state != mxgatewayv1.SessionState_SESSION_STATE_READY {
		t.Fatalf("session %v, want READY", state)
	}
	_, err := drain(t, st)
	wantCode(t, err, codes.ResourceExhausted, mxgatewayv1.ReasonSlowConsumer)
	if scrape(t, g)[`mxgateway_stream_disconnects_total{reason="write_deadline"}`] != 1 {
		t.Error("stream_disconnects_total{reason=write_deadline} did not count the stream")
	}
	s.close()
}

// logRecords returns the msg of every JSON log record on the gateway's
// stderr.
func logRecords(g *harness.Gateway) []string {
	var msgs []string
	sc := bufio.NewScanner(strings.NewReader(g.Stderr.String()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var rec struct{ Msg string }
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg != "" {
			msgs = append(msgs, rec.Msg)
		}
	}
	return msgs
}

// TestHardeningStuckClientShutdown: on SIGTERM a client that stopped
// reading (with no write timeout to save it) costs the drain only part of
// shutdown_grace: every session still gets its MXAccess teardown instead
// of a kill, and the gateway exits 0.
func TestHardeningStuckClientShutdown(t *testing.T) {
	t.Parallel()
	g := harness.Start(t, "--stream-write-timeout=1h", "--shutdown-grace=6s")
	stuckSubscriber(t, g)
	other := openSession(t, g.Client(), "bystander")
	other.register()
	other.subscribe("Tank1.Level")
	if err := g.Stop(); err != nil {
		t.Fatalf("gateway exit: %v", err)
	}
	closed := 0
	for _, msg := range logRecords(g) {
		switch msg {
		case "graceful worker shutdown failed, killing":
			t.Errorf("a session was killed instead of torn down")
		case "session closed":
			closed++
		}
	}
	if closed != 2 {
		t.Errorf("%d sessions closed, want 2", closed)
	}
}
