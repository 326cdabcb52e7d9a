package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"

	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/internal/config"
	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/internal/metrics"
	"github.com/mxgateway/mxgateway/internal/natsbus"
	"github.com/mxgateway/mxgateway/internal/opshttp"
	"github.com/mxgateway/mxgateway/internal/protocol"
	"github.com/mxgateway/mxgateway/internal/tlsutil"
	"github.com/mxgateway/mxgateway/internal/ui"
	"github.com/mxgateway/mxgateway/internal/workerclient"
)

// dashboardWorkers is the Workers page's view of the worker tracker and
// the spare pool.
type dashboardWorkers struct {
	t      *workerTracker
	spares func() int
}

func (d dashboardWorkers) Workers() []ui.WorkerInfo {
	d.t.mu.Lock()
	defer d.t.mu.Unlock()
	out := make([]ui.WorkerInfo, 0, len(d.t.live))
	for pid, c := range d.t.live {
		wi := ui.WorkerInfo{PID: pid}
		if cl, ok := c.(*workerclient.Client); ok {
			wi.State, wi.LastHeartbeat, wi.Backend = cl.State().String(), cl.LastHeartbeat(), cl.Backend().GetKind()
		}
		out = append(out, wi)
	}
	return out
}

func (d dashboardWorkers) Spares() int { return d.spares() }

// Kill ends a session worker as the gateway's decision (its session
// faults, like any worker that dies).
func (d dashboardWorkers) Kill(pid int) bool {
	d.t.mu.Lock()
	c := d.t.live[pid]
	d.t.mu.Unlock()
	cl, ok := c.(*workerclient.Client)
	if !ok {
		return false
	}
	cl.Kill(protocol.KillGateway)
	return true
}

// dashboardAlarms is the Alarms page's service: none while the alarm
// monitor is off.
func dashboardAlarms(cfg *config.Config, svc mxgatewayv1grpc.AlarmsServer) mxgatewayv1grpc.AlarmsServer {
	if cfg.Alarms != config.AlarmsOn {
		return nil
	}
	return svc
}

// dashboardHealth reads the ops server's cached readiness.
func dashboardHealth(ops **opshttp.Server) func() ui.Health {
	return func() ui.Health {
		o := *ops
		if o == nil {
			return ui.Health{}
		}
		h := ui.Health{Ready: o.Ready()}
		for _, st := range o.Statuses() {
			c := ui.Check{Name: st.Name}
			if st.Err != nil {
				c.Err = logging.RedactString(st.Err.Error())
			}
			h.Checks = append(h.Checks, c)
		}
		return h
	}
}

// dashboardNATS is the overview's NATS summary of bus (nil when the
// gateway runs without NATS).
func dashboardNATS(cfg *config.Config, bus *natsbus.Bus) func() ui.NATSSummary {
	if bus == nil {
		return nil
	}
	return func() ui.NATSSummary {
		n := ui.NATSSummary{Mode: string(cfg.NATS.Mode), Addr: bus.Addr(), Shared: bus.Advised()}
		if ns := bus.Server(); ns != nil {
			n.Clients, n.SlowConsumers = ns.NumClients(), ns.NumSlowConsumers()
			if v, err := ns.Varz(nil); err == nil {
				n.InMsgs, n.OutMsgs = v.InMsgs, v.OutMsgs
			}
		}
		return n
	}
}

// dashboardListener serves the dashboard on dashboard_listen, with TLS
// when dashboard_tls says so.
type dashboardListener struct {
	srv *http.Server
	ln  net.Listener
	url string
}

// listenDashboard binds dashboard_listen (nil when it is not set).
func listenDashboard(cfg *config.Config, h http.Handler, m *metrics.Metrics, log *slog.Logger) (*dashboardListener, error) {
	if cfg.Dashboard != config.On || cfg.DashboardListen == "" {
		return nil, nil
	}
	var tc *tls.Config
	switch cfg.DashboardTLS {
	case config.TLSFiles:
		cert, err := tlsutil.LoadKeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("dashboard: %w", err)
		}
		tc = tlsutil.ServerConfig(cert)
	case config.TLSSelfSigned:
		res, err := tlsutil.EnsureSelfSigned(tlsutil.SelfSignedConfig{Dir: cfg.DataDir, ExtraNames: cfg.TLSExtraNames})
		if err != nil {
			return nil, fmt.Errorf("dashboard: %w", err)
		}
		tc = tlsutil.ServerConfig(res.Certificate)
	}
	ln, err := net.Listen("tcp", cfg.DashboardListen)
	if err != nil {
		return nil, &listenError{what: "the dashboard", addr: cfg.DashboardListen, flag: "dashboard-listen", err: err}
	}
	ln = limitListener(ln, cfg.MaxConnections, m, "dashboard")
	scheme := "http"
	if tc != nil {
		tc.NextProtos = []string{"h2", "http/1.1"}
		ln = tls.NewListener(ln, tc)
		scheme = "https"
	}
	mux := http.NewServeMux()
	mux.Handle("/ui/", h)
	mux.Handle("/ui", h)
	mux.Handle("GET /{$}", http.RedirectHandler(ui.Prefix, http.StatusSeeOther))
	srv := opshttp.NewHTTPServer(mux, log)
	return &dashboardListener{srv: srv, ln: ln, url: scheme + "://" + ln.Addr().String() + ui.Prefix}, nil
}

func (d *dashboardListener) serve() error {
	if err := d.srv.Serve(d.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("dashboard: %w", err)
	}
	return nil
}

func (d *dashboardListener) shutdown(ctx context.Context) {
	if err := d.srv.Shutdown(ctx); err != nil {
		_ = d.srv.Close()
	}
}

// printDashboard says where the dashboard is.
func printDashboard(w io.Writer, log *slog.Logger, url string) {
	log.Info("dashboard", slog.String("url", url))
	fmt.Fprintf(w, "mxgateway: dashboard on %s\n", url)
}
