package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/mxgateway/mxgateway/api/mxgateway/galaxy/v1"
	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	"github.com/mxgateway/mxgateway/internal/galaxy/wire"
	"github.com/mxgateway/mxgateway/internal/ipc"
)

// rawSession is a session on the runtime protocol itself, to see what the
// runtime sends.
type rawSession struct {
	t    *testing.T
	nc   net.Conn
	wc   *wire.Conn
	w    *galaxyv1.Welcome
	snap []*galaxyv1.ValueChange
}

// dialRaw connects a session with a Hello of its own and reads the
// Welcome and the snapshot.
func dialRaw(t *testing.T, r *rig, hello *galaxyv1.Hello) *rawSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	nc, err := ipc.Dial(ctx, wire.Endpoint(r.dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(waitFor))
	hello.ProtocolVersion, hello.Credential, hello.Subscribe = wire.ProtocolVersion, r.key, true
	s := &rawSession{t: t, nc: nc, wc: wire.NewConn(nc)}
	if err := s.wc.Write(&galaxyv1.GalaxyEnvelope{Body: &galaxyv1.GalaxyEnvelope_Hello{Hello: hello}}); err != nil {
		t.Fatal(err)
	}
	env, err := s.wc.Read()
	if err != nil {
		t.Fatal(err)
	}
	if s.w = env.GetWelcome(); s.w == nil {
		t.Fatalf("no welcome: %v", env)
	}
	for {
		vb := s.next().GetValues()
		s.snap = append(s.snap, vb.GetChanges()...)
		if vb.GetSnapshotEnd() {
			return s
		}
	}
}

func (s *rawSession) next() *galaxyv1.GalaxyEnvelope {
	s.t.Helper()
	env, err := s.wc.Read()
	if err != nil {
		s.t.Fatal(err)
	}
	return env
}

func (s *rawSession) send(env *galaxyv1.GalaxyEnvelope) {
	s.t.Helper()
	if err := s.wc.Write(env); err != nil {
		s.t.Fatal(err)
	}
}

func (s *rawSession) interest(id uint64, add, remove []string) {
	s.t.Helper()
	s.send(&galaxyv1.GalaxyEnvelope{Body: &galaxyv1.GalaxyEnvelope_Interest{Interest: &galaxyv1.Interest{Add: add, Remove: remove, Id: id}}})
}

func (s *rawSession) write(attr int32, v *mxgatewayv1.MxValue) {
	s.t.Helper()
	s.send(&galaxyv1.GalaxyEnvelope{Body: &galaxyv1.GalaxyEnvelope_Writes{Writes: &galaxyv1.WriteBatch{
		DeploySequence: s.w.GetDeploySequence(), Writes: []*galaxyv1.ValueChange{{Attribute: attr, Value: v, TimeUnixMs: time.Now().UnixMilli()}}}}})
}

// until reads changes until stop says it is done, or an interest_applied
// of id (0: none is expected), and returns the changes read before.
func (s *rawSession) until(what string, id uint64, stop func(*galaxyv1.ValueChange) bool) []*galaxyv1.ValueChange {
	s.t.Helper()
	var seen []*galaxyv1.ValueChange
	for {
		env := s.next()
		vb := env.GetValues()
		if vb == nil {
			continue
		}
		for _, c := range vb.GetChanges() {
			if stop != nil && stop(c) {
				return seen
			}
			seen = append(seen, c)
		}
		if got := vb.GetInterestApplied(); got != 0 {
			if got != id {
				s.t.Fatalf("%s: interest_applied %d, want %d", what, got, id)
			}
			if stop == nil {
				return seen
			}
		}
	}
}

// ords returns the attributes of changes.
func ords(cs []*galaxyv1.ValueChange) []int32 {
	out := make([]int32, len(cs))
	for i, c := range cs {
		out[i] = c.GetAttribute()
	}
	return out
}

func attrOf(t *testing.T, s *rawSession, ref string) int32 {
	t.Helper()
	m, err := wire.BuildModel(s.w.GetModel())
	if err != nil {
		t.Fatal(err)
	}
	ord, ok := m.SharedAttribute(ref)
	if !ok {
		t.Fatalf("%s is not an attribute of the model", ref)
	}
	return ord
}

// TestInterestFilter: a filtered session receives the changes of what it
// advised and nothing else; removing an attribute stops its changes, and
// adding one sends its current value first; a session that reconnects
// (after the runtime dropped it) gets a snapshot of its interest set only.
func TestInterestFilter(t *testing.T) {
	r := startRig(t, shortDir(t), nil, model)
	writer := dialRaw(t, r, &galaxyv1.Hello{ClientName: "writer"})
	if writer.w.GetFiltered() || len(writer.snap) < 3 {
		t.Fatalf("an unfiltered session: filtered %v, %d values in its snapshot", writer.w.GetFiltered(), len(writer.snap))
	}
	level, name := attrOf(t, writer, "Tank.Level"), attrOf(t, writer, "Tank.Name")

	s := dialRaw(t, r, &galaxyv1.Hello{ClientName: "filtered", Filtered: true, Interest: []string{"tank.LEVEL", "Nope.PV"}})
	if !s.w.GetFiltered() {
		t.Fatal("the runtime does not filter")
	}
	if got := ords(s.snap); len(got) != 1 || got[0] != level {
		t.Fatalf("snapshot of attributes %v, want only Tank.Level (%d)", got, level)
	}

	// B (Tank.Name) changes, then A (Tank.Level): A's change arrives, B's
	// (made before it) never did.
	writer.write(name, mxtypes.StringValue("T2"))
	writer.write(level, mxtypes.DoubleValue(11))
	if seen := s.until("A's change", 0, func(c *galaxyv1.ValueChange) bool { return c.GetAttribute() == level }); len(seen) != 0 {
		t.Fatalf("changes of attributes %v before Tank.Level's", ords(seen))
	}

	// Unadvise A: its changes stop. Advise B: its current value comes, then
	// the interest_applied.
	s.interest(1, nil, []string{"Tank.Level"})
	if seen := s.until("remove applied", 1, nil); len(seen) != 0 {
		t.Fatalf("remove: changes of %v", ords(seen))
	}
	writer.write(level, mxtypes.DoubleValue(12))
	s.interest(2, []string{"Tank.Name"}, nil)
	seen := s.until("add applied", 2, nil)
	if len(seen) != 1 || seen[0].GetAttribute() != name || seen[0].GetValue().GetStringValue() != "T2" {
		t.Fatalf("add: changes %v, want Tank.Name's current value T2", seen)
	}
	writer.write(level, mxtypes.DoubleValue(13))
	writer.write(name, mxtypes.StringValue("T3"))
	if seen := s.until("B's change", 0, func(c *galaxyv1.ValueChange) bool { return c.GetValue().GetStringValue() == "T3" }); len(seen) != 0 {
		t.Fatalf("changes of %v after Tank.Level was removed", ords(seen))
	}

	// The session reconnects with its set: the snapshot holds it only.
	s.nc.Close()
	again := dialRaw(t, r, &galaxyv1.Hello{ClientName: "filtered", Filtered: true, Interest: []string{"Tank.Name"}})
	if got := ords(again.snap); len(got) != 1 || got[0] != name || again.snap[0].GetValue().GetStringValue() != "T3" {
		t.Fatalf("snapshot after the reconnect %v, want only Tank.Name = T3", again.snap)
	}
}

// TestInterestBounds: an interest set past wire.MaxInterest is refused
// with the precise error, at the Hello and in an Interest (which ends the
// connection).
func TestInterestBounds(t *testing.T) {
	r := startRig(t, shortDir(t), nil, model)
	refs := make([]string, wire.MaxInterest+1)
	for i := range refs {
		refs[i] = fmt.Sprintf("T%d.PV", i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	nc, err := ipc.Dial(ctx, wire.Endpoint(r.dir))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(waitFor))
	wc := wire.NewConn(nc)
	if err := wc.Write(&galaxyv1.GalaxyEnvelope{Body: &galaxyv1.GalaxyEnvelope_Hello{Hello: &galaxyv1.Hello{
		ProtocolVersion: wire.ProtocolVersion, Credential: r.key, Subscribe: true, Filtered: true, Interest: refs}}}); err != nil {
		t.Fatal(err)
	}
	env, err := wc.Read()
	want := (&wire.InterestLimitError{Refs: len(refs), Bytes: bytesOf(refs)}).Error()
	if err != nil || env.GetAdminReply().GetError() != want {
		t.Fatalf("hello over the bound: %v, %v; want the error %q", env, err, want)
	}

	s := dialRaw(t, r, &galaxyv1.Hello{Filtered: true, Interest: refs[:wire.MaxInterest]})
	s.interest(1, []string{"Tank.Level"}, nil)
	for { // the runtime drops the connection (the deadline would fail the read)
		env, err := s.wc.Read()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("the connection was not dropped")
			}
			break
		}
		if env.GetValues().GetInterestApplied() != 0 {
			t.Fatal("an Interest past the bound was applied")
		}
	}
}

func bytesOf(refs []string) int {
	n := 0
	for _, r := range refs {
		n += len(r)
	}
	return n
}

// TestInterestReadsCurrentValue: an attribute a session did not follow
// changes meanwhile; its advise (a transient read is one) starts from the
// Galaxy's value, not from the session's copy.
func TestInterestReadsCurrentValue(t *testing.T) {
	r := startRig(t, shortDir(t), nil, model)
	a, b := openSession(t, r.dir, r.key), openSession(t, r.dir, r.key)
	a.sub(t, "Tank.Level")
	hb := b.sub(t, "Tank.Name")
	if err := b.b.Write(b.h, hb, mxtypes.StringValue("T9"), 0); err != nil {
		t.Fatal(err)
	}
	b.rec.waitData(t, "b's write", hb, func(dc *mxgatewayv1.OnDataChange) bool { return dc.GetValue().GetStringValue() == "T9" })
	ha, err := a.b.AddItem(a.h, "Tank.Name")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.b.Advise(a.h, ha); err != nil {
		t.Fatal(err)
	}
	dc := a.rec.waitData(t, "the first value of Tank.Name", ha, func(*mxgatewayv1.OnDataChange) bool { return true })
	if got := dc.GetValue().GetStringValue(); got != "T9" {
		t.Fatalf("first value of an attribute advised late: %q, want the Galaxy's T9", got)
	}
}
