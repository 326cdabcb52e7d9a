package e2e

import (
	"errors"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/client"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// TestRecoveringSessionSurvivesGatewayRestart kills the gateway (SIGKILL) and
// starts it again on the same address: the Recovering session opens a new
// session, replays its registration, items, advises, supervisory advise and
// suspension, keeps the handles the application holds, and its event stream
// carries one Recreated marker before the fresh initial values. Commands on
// the old handles work on the new session.
func TestRecoveringSessionSurvivesGatewayRestart(t *testing.T) {
	leakCheck(t)
	g := harness.Start(t)
	ctx := harness.Context(t, 120*time.Second)
	c := dial(t, ctx, g, "")
	s, err := c.OpenSession(ctx, "recovering", client.Recovering())
	if err != nil {
		t.Fatal(err)
	}
	mx := s.MX()
	log := watchEvents(t, s)

	h, err := mx.Register(ctx, "recover-app")
	if err != nil {
		t.Fatal(err)
	}
	// A removed item makes the replay renumber: the new session hands out
	// 1, 2, 3 for what the application holds as other numbers.
	gone, err := mx.AddItem(ctx, h, "Tank1.Material")
	if err != nil {
		t.Fatal(err)
	}
	sp, err := mx.AddItem(ctx, h, "TIC101.SP")
	if err != nil {
		t.Fatal(err)
	}
	if err := mx.RemoveItem(ctx, h, gone); err != nil {
		t.Fatal(err)
	}
	level, err := mx.AddItem(ctx, h, "Tank1.Volume")
	if err != nil {
		t.Fatal(err)
	}
	counts, err := mx.AddItem(ctx, h, "Pump1.StartCount")
	if err != nil {
		t.Fatal(err)
	}
	if err := mx.Advise(ctx, h, sp); err != nil {
		t.Fatal(err)
	}
	if err := mx.AdviseSupervisory(ctx, h, level); err != nil {
		t.Fatal(err)
	}
	if err := mx.Advise(ctx, h, counts); err != nil {
		t.Fatal(err)
	}
	if err := mx.Suspend(ctx, h, counts); err != nil {
		t.Fatal(err)
	}
	held := map[int32]bool{sp: true, level: true, counts: true}
	log.waitFor(t, "first value of TIC101.SP", dataChangeOf(sp))
	log.waitFor(t, "first value of Tank1.Volume", dataChangeOf(level))
	oldID := s.ID()

	g.Kill()
	g2 := g.RestartSameAddress(t)
	if g2.GRPCAddr != g.GRPCAddr {
		t.Fatalf("restarted on %s, not %s", g2.GRPCAddr, g.GRPCAddr)
	}

	from := 0
	marker := log.waitFor(t, "the Recreated marker", func(ev client.Event) bool { return ev.Recreated() != nil })
	evs, _ := log.snapshot()
	for i, ev := range evs {
		if ev.Recreated() != nil {
			from = i + 1
			if ev != marker {
				t.Fatal("more than one Recreated marker")
			}
		}
	}
	m := marker.Recreated()
	if m.OldSessionID != oldID || m.NewSessionID == oldID || m.NewSessionID != s.ID() || len(m.Warnings) != 0 {
		t.Fatalf("marker %+v, session now %s (was %s)", m, s.ID(), oldID)
	}
	if !client.IsSessionNotFound(m.Cause) {
		t.Fatalf("marker cause %v, want SESSION_NOT_FOUND from the restarted gateway", m.Cause)
	}
	// Fresh initial values, under the application's handles, after the
	// marker; the new session's sequence starts at 1.
	first := log.waitForFrom(t, from, "TIC101.SP again", dataChangeOf(sp))
	log.waitForFrom(t, from, "Tank1.Volume again", dataChangeOf(level))
	if d := first.DataChange(); d.ServerHandle != h || d.Value.String() == "" {
		t.Fatalf("after recovery: %v", first)
	}
	evs, _ = log.snapshot()
	if evs[from].Sequence() != 1 {
		t.Fatalf("the first event after the marker has sequence %d, want 1 (a new session)", evs[from].Sequence())
	}
	for _, ev := range evs[from:] {
		if d := ev.DataChange(); d != nil && (d.ServerHandle != h || !held[d.ItemHandle]) {
			t.Fatalf("event with a handle the application does not hold: %v", ev)
		}
	}

	// The old handles work: a write on sp completes on the new session.
	mark := log.mark()
	if err := mx.Write(ctx, h, sp, client.MustValue(55.5), 0); err != nil {
		t.Fatal(err)
	}
	wc := log.waitForFrom(t, mark, "OnWriteComplete of TIC101.SP", writeCompleteOf(sp))
	if err := wc.WriteComplete().Err(); err != nil {
		t.Fatal(err)
	}
	log.waitForFrom(t, mark, "TIC101.SP = 55.5", func(ev client.Event) bool {
		d := ev.DataChange()
		return d != nil && d.ItemHandle == sp && d.Value.String() == "55.5"
	})
	// The suspended item stayed suspended: activating it works.
	if err := mx.Activate(ctx, h, counts); err != nil {
		t.Fatal(err)
	}
	// A new item never gets a number the application already holds.
	fresh, err := mx.AddItem(ctx, h, "Tank1.Level")
	if err != nil {
		t.Fatal(err)
	}
	if held[fresh] || fresh <= 0 {
		t.Fatalf("new item handle %d collides with a held one %v", fresh, held)
	}
	mark = log.mark()
	if err := mx.Advise(ctx, h, fresh); err != nil {
		t.Fatal(err)
	}
	log.waitForFrom(t, mark, "first value of the new item", dataChangeOf(fresh))
	// ReadBulk (no handles) and the conveniences work too.
	res, err := s.Read(ctx, "Tank1.Material")
	if err != nil || res[0].Err() != nil {
		t.Fatalf("Read after recovery: %v %v", err, res)
	}
	if _, err := s.WriteValue(ctx, "TIC101.SP", 56.5); err != nil {
		t.Fatalf("WriteValue after recovery: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	list, err := c.ListSessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, si := range list {
		if si.GetState() == mxgatewayv1.SessionState_SESSION_STATE_READY {
			t.Fatalf("session %s still open after Close", si.GetSessionId())
		}
	}
}

// TestRecoveringSessionAfterClose: a closed gateway session is not
// recreated behind the application's back once the Session is closed, and a
// session without Recovering ends its events with SESSION_NOT_FOUND.
func TestNonRecoveringSessionEndsOnRestart(t *testing.T) {
	leakCheck(t)
	g := harness.Start(t)
	ctx := harness.Context(t, 60*time.Second)
	c := dial(t, ctx, g, "")
	s := open(t, ctx, c)
	if _, err := s.Subscribe(ctx, "TIC101.SP"); err != nil {
		t.Fatal(err)
	}
	log := watchEvents(t, s)
	log.waitFor(t, "first value", func(ev client.Event) bool { return ev.DataChange() != nil })
	g.Kill()
	g.RestartSameAddress(t)
	<-log.done
	_, err := log.snapshot()
	if !client.IsSessionNotFound(err) {
		t.Fatalf("events ended with %v, want SESSION_NOT_FOUND", err)
	}
	var ge *client.GatewayError
	if !errors.As(err, &ge) || !ge.Permanent() {
		t.Fatalf("%v is not a permanent gateway error", err)
	}
}
