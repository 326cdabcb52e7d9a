package sim

import (
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
)

// TestEventsStayAsSent: an event handed to the sink is the sink's for good.
// The worker keeps the OnDataChange of every item's last event (ReadBulk's
// cache) and hands the first one of a transient read to a waiting call, so
// nothing the simulator does later (more changes of the same item, a storm,
// quality changes, writes, the runtime's batches, a status array of more
// than one entry) may change an event it sent, and no two events share a
// part. Each event is encoded as it arrives and again at the end.
func TestEventsStayAsSent(t *testing.T) {
	for _, length := range []int{1, 3} {
		t.Run(map[int]string{1: "one status", 3: "three statuses"}[length], func(t *testing.T) {
			det := proto.MarshalOptions{Deterministic: true}
			var mu sync.Mutex
			var sent [][]byte // the encoding of every event as it arrived
			e := newEnv(t, envOpt{
				knobs: func(k *Knobs) { k.StatusArrayLength = length },
				hook: func(ev *mxgatewayv1.Event) {
					b, err := det.Marshal(ev)
					if err != nil {
						t.Errorf("marshal: %v", err)
					}
					mu.Lock()
					sent = append(sent, b)
					mu.Unlock()
				},
			})
			h := e.reg()
			storm, _ := e.sub(h, "Sim.Storm")
			e.sub(h, "Sim.StormValue")
			flipMs, _ := e.sub(h, "Sim.QualityFlipMs")
			flip, _ := e.sub(h, "Sim.QualityFlip")
			i, _ := e.sub(h, "Obj.Int")
			pv, _ := e.sub(h, "Obj.PV")
			str, _ := e.sub(h, "Obj.Str")
			arr, _ := e.sub(h, "Obj.Arr[]")
			e.sub(h, "Other.PV") // turned bad and back by the quality flip
			// The runtime's generator: its changes come in Apply's batches.
			if err := e.b.Advise(h, e.add(h, "Obj.Ramp")); err != nil {
				t.Fatal(err)
			}
			e.write(h, storm, mxtypes.IntegerValue(300))
			e.write(h, flipMs, mxtypes.IntegerValue(1000))
			e.write(h, flip, mxtypes.StringValue("other"))
			for n := range 5 {
				e.write(h, i, mxtypes.IntegerValue(int32(100+n)))
				e.write(h, pv, mxtypes.DoubleValue(float64(n)+0.5))
				e.write(h, str, mxtypes.StringValue(string(rune('a'+n))))
				e.write(h, arr, buildArray(tInt, []*mxgatewayv1.MxValue{mxtypes.IntegerValue(int32(n)), mxtypes.IntegerValue(2), mxtypes.IntegerValue(3)}))
				e.advance(700 * time.Millisecond)
			}
			mu.Lock() // an event now would wait: sent and evs stay aligned
			defer mu.Unlock()
			evs := e.rec.take()
			if len(sent) < 300 || len(evs) == 0 {
				t.Fatalf("%d events recorded", len(sent))
			}
			evs = append([]*mxgatewayv1.Event(nil), evs...)
			first := len(sent) - len(evs) // sub took the first ones
			seen := map[any]int{}
			own := func(k int, p any) {
				if j, ok := seen[p]; ok {
					t.Fatalf("events %d and %d share a part %T", j, k, p)
				}
				seen[p] = k
			}
			dcs, qualities := 0, map[uint32]bool{}
			for k, ev := range evs {
				if b, _ := det.Marshal(ev); string(b) != string(sent[first+k]) {
					t.Fatalf("event %d changed after it was sent:\n now  %v\nsent  %x", k, ev, sent[first+k])
				}
				own(k, ev)
				if wt := ev.GetWorkerTime(); wt != nil {
					own(k, wt)
				}
				dc := ev.GetDataChange()
				if dc == nil {
					continue
				}
				dcs++
				qualities[dc.GetQuality().GetRaw()] = true
				own(k, dc)
				for _, p := range []any{dc.GetValue(), dc.GetQuality(), dc.GetTimestamp()} {
					own(k, p)
				}
				for _, s := range dc.GetStatuses() {
					own(k, s)
				}
				if len(dc.GetStatuses()) != length {
					t.Fatalf("event %d has %d statuses, want %d", k, len(dc.GetStatuses()), length)
				}
			}
			if dcs < 300 || len(qualities) < 2 {
				t.Fatalf("%d data changes of %d qualities, want the storm's 300 and more, and the flip's bad quality", dcs, len(qualities))
			}
		})
	}
}
