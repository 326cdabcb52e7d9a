package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// BenchmarkFlowStorm1M is the storm acceptance scenario of flow control: a
// burst of 1,000,000 OnDataChange events through the real gateway and
// worker to one fast reader, with the default bounds. It fails unless every
// event arrives, in order, with the session still READY; it reports the
// delivery rate and the peak RSS of the worker and the gateway (Linux).
//
//	go test -run='^$' -bench=FlowStorm1M -benchtime=1x ./test/e2e/
func BenchmarkFlowStorm1M(b *testing.B) {
	const n = 1_000_000
	g := harness.Start(b)
	c := g.Client()
	for range b.N {
		open, err := c.OpenSession(harness.Context(b, step), &mxgatewayv1.OpenSessionRequest{ClientName: "storm"})
		if err != nil {
			b.Fatal(err)
		}
		id := open.GetSessionId()
		invoke := func(cmd *mxgatewayv1.Command) *mxgatewayv1.Reply {
			resp, err := c.Invoke(harness.Context(b, step), &mxgatewayv1.InvokeRequest{SessionId: id, Command: cmd})
			if err != nil {
				b.Fatal(err)
			}
			return resp.GetReply()
		}
		ctx, cancel := context.WithCancel(context.Background())
		st, err := c.StreamEvents(ctx, &mxgatewayv1.StreamEventsRequest{SessionId: id, LiveOnly: true})
		if err == nil {
			_, err = st.Header()
		}
		if err != nil {
			b.Fatal(err)
		}
		hlmx := invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{ClientName: "storm"}}}).GetRegister().GetServerHandle()
		sub := func(ref string) int32 {
			bulk := invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_SubscribeBulk{SubscribeBulk: &mxgatewayv1.SubscribeBulkCommand{
				ServerHandle: hlmx, ItemDefinitions: []string{ref}}}})
			return bulk.GetBulk().GetEntries()[0].GetItemHandle()
		}
		value := sub("Sim.StormValue")
		recv := func() *mxgatewayv1.Event {
			resp, err := st.Recv()
			if err != nil {
				b.Fatalf("stream: %v (%v)", err, status.Code(err) == codes.ResourceExhausted)
			}
			return resp.GetEvent()
		}
		var first int32
		for {
			ev := recv()
			if dc := ev.GetDataChange(); dc.GetItemHandle() == value {
				first = dc.GetValue().GetInt32Value()
				break
			}
		}
		trigger := sub("Sim.Storm")
		b.ResetTimer()
		start := time.Now()
		invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Write{Write: &mxgatewayv1.WriteCommand{
			ServerHandle: hlmx, ItemHandle: trigger, Value: intValue(n)}}})
		want, got := first+1, 0
		var last uint64
		for got < n {
			ev := recv()
			if last != 0 && ev.GetSequence() != last+1 {
				b.Fatalf("sequence %d after %d", ev.GetSequence(), last)
			}
			last = ev.GetSequence()
			dc := ev.GetDataChange()
			if dc.GetItemHandle() != value {
				continue
			}
			if v := dc.GetValue().GetInt32Value(); v != want {
				b.Fatalf("storm value %d, want %d: lost or reordered", v, want)
			}
			want++
			got++
		}
		elapsed := time.Since(start)
		b.StopTimer()
		list, err := c.ListSessions(harness.Context(b, step), &mxgatewayv1.ListSessionsRequest{})
		if err != nil {
			b.Fatal(err)
		}
		for _, in := range list.GetSessions() {
			if in.GetSessionId() == id && in.GetState() != mxgatewayv1.SessionState_SESSION_STATE_READY {
				b.Fatalf("session %v (%s), want READY", in.GetState(), in.GetFaultReason())
			}
		}
		b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
		if rss := peakRSS(int(open.GetWorkerPid())); rss > 0 {
			b.ReportMetric(float64(rss)/(1<<20), "worker-peak-MiB")
		}
		if rss := peakRSS(g.PID()); rss > 0 {
			b.ReportMetric(float64(rss)/(1<<20), "gateway-peak-MiB")
		}
		cancel()
		if _, err := c.CloseSession(harness.Context(b, step), &mxgatewayv1.CloseSessionRequest{SessionId: id}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// peakRSS is a process's peak resident set in bytes (VmHWM), 0 where
// /proc is not available.
func peakRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
