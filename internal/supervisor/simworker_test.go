package supervisor

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/backend/sim"
	"github.com/mxgateway/mxgateway/internal/ipc"
	"github.com/mxgateway/mxgateway/internal/worker"
	"github.com/mxgateway/mxgateway/internal/workerclient"
)

// modeSim runs the real worker (internal/worker) with the simulator, as
// `mxgateway worker --backend=sim` does.
const modeSim = "sim"

func simWorker() int {
	return worker.Main(context.Background(), os.Args[1:], worker.MainOptions{
		Prog:   "supervisor-test-worker",
		Stdin:  os.Stdin,
		Stderr: os.Stderr,
		Dial:   ipc.Dial,
		Backends: map[string]worker.BackendFactory{
			"sim": func(f worker.Flags, logger *slog.Logger, exit func(int)) (backend.Backend, error) {
				b, err := sim.New(sim.Options{Profile: "test", Seed: f.SimSeed, Exit: exit, Logger: logger})
				if err != nil {
					return nil, err
				}
				return b, nil
			},
		},
	})
}

// TestRealWorkerWithSimulator drives the real worker end to end through the
// supervisor and the worker client: launch, register, add, advise, first
// value as an event, ordered shutdown.
func TestRealWorkerWithSimulator(t *testing.T) {
	f := newFixture(t, modeSim, func(o *Options) { o.Args = []string{"--backend=sim", "--sim-profile=test"} })
	ctx := context.Background()
	c, err := f.s.Launch(ctx, "sess-sim")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Backend().GetSimulated() {
		t.Fatalf("backend %v", c.Backend())
	}
	invoke := func(cmd *mxgatewayv1.Command) *mxgatewayv1.Reply {
		t.Helper()
		r, err := c.Invoke(ctx, cmd, nil, waitFor)
		if err != nil {
			t.Fatal(err)
		}
		if r.GetHresult() != 0 {
			t.Fatalf("%v failed: %v", cmd, r)
		}
		return r
	}
	reg := invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{ClientName: "supervisor-test"}}})
	sh := reg.GetRegister().GetServerHandle()
	add := invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{ServerHandle: sh, ItemDefinition: "TIC101.SP"}}})
	ih := add.GetItemHandle().GetItemHandle()
	invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Advise{Advise: &mxgatewayv1.AdviseCommand{ServerHandle: sh, ItemHandle: ih}}})
	first := make(chan *mxgatewayv1.Event, 1)
	go func() {
		evs, _ := c.NextEvents(nil)
		if len(evs) > 0 {
			first <- evs[0].Msg()
		}
		close(first)
	}()
	select {
	case ev := <-first:
		if ev.GetSequence() != 1 || ev.GetDataChange().GetItemHandle() != ih || ev.GetGatewayTime() == nil {
			t.Fatalf("first event %v", ev)
		}
	case <-time.After(waitFor):
		t.Fatal("no first value")
	}
	sctx, cancel := context.WithTimeout(ctx, waitFor)
	defer cancel()
	if _, err := c.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if c.State() != workerclient.StateClosed {
		t.Fatalf("state %v: %v", c.State(), c.Err())
	}
	e := f.exit()
	if e.code != 0 || e.killed {
		t.Fatalf("exit %+v", e)
	}
	assertGone(t, e.pid)
	f.assertNoEndpoints()
}
