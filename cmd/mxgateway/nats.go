package main

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/mxgateway/mxgateway/internal/alarms"
	"github.com/mxgateway/mxgateway/internal/auth"
	"github.com/mxgateway/mxgateway/internal/config"
	"github.com/mxgateway/mxgateway/internal/galaxy/browse"
	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/internal/natsbus"
	"github.com/mxgateway/mxgateway/internal/session"
	"github.com/mxgateway/mxgateway/internal/store"
)

// probeNATS fails with a listenError when the embedded NATS server's
// addresses are taken, before the gateway creates or starts anything (port
// 0 is always free).
func probeNATS(cfg *config.Config) error {
	if cfg.NATS.Mode != config.NATSEmbedded {
		return nil
	}
	for _, a := range []struct{ what, addr, flag string }{
		{"NATS", cfg.NATS.Listen, "nats-listen"}, {"NATS leaf nodes", cfg.NATS.LeafListen, "nats-leaf-listen"},
	} {
		if a.addr == "" || strings.HasSuffix(a.addr, ":0") {
			continue
		}
		l, err := net.Listen("tcp", a.addr)
		if err != nil {
			return &listenError{what: a.what, addr: a.addr, flag: a.flag, err: err}
		}
		l.Close()
	}
	return nil
}

// startNATS starts shared subscriptions on NATS (docs/nats.md); nil when
// nats_mode is off.
func startNATS(ctx context.Context, cfg *config.Config, sessions *session.Manager, mgr *auth.Manager, st *store.Store,
	guard *auth.Guard, mode auth.Mode, tlsConf *tls.Config, log *slog.Logger) (*natsbus.Bus, error) {
	n := &cfg.NATS
	if n.Mode == config.NATSOff {
		return nil, nil
	}
	return natsbus.Start(ctx, natsbus.Options{
		Mode:            string(n.Mode),
		Listen:          n.Listen,
		StoreDir:        filepath.Join(cfg.DataDir, "nats"),
		TLS:             tlsConf,
		LeafListen:      n.LeafListen,
		LeafRemotes:     n.LeafRemotes,
		URL:             n.URL,
		CredsFile:       n.CredsFile,
		Galaxy:          n.Galaxy,
		JSON:            n.Payload == config.NATSPayloadJSON,
		Lease:           n.Lease,
		LeaseMax:        n.LeaseMax,
		MaxReferences:   n.MaxReferences,
		MaxLeasesPerKey: n.MaxLeasesPerKey,
		AuthNone:        mode == auth.ModeNone,
		Authenticator:   mgr,
		KeyActive: func(ctx context.Context, id string) error {
			k, err := st.GetKey(ctx, id)
			if err != nil {
				return err
			}
			if k.Revoked() {
				return auth.ErrKeyRevoked
			}
			return nil
		},
		WatchRevocation: mgr.WatchRevocation,
		Denied:          guard.Deny,
		Sessions:        sessions,
		Logger:          log,
	})
}

// alarmFeeds opens feeds of every alarm of mon for the bus (docs/nats.md).
func alarmFeeds(mon *alarms.Monitor) func(after uint64) (natsbus.AlarmFeed, error) {
	return func(after uint64) (natsbus.AlarmFeed, error) {
		f, err := mon.Subscribe(nil, after, nil)
		if err != nil {
			return nil, err
		}
		return f, nil
	}
}

// deployPoll is how often publishDeploys looks for the first Galaxy model.
const deployPoll = time.Second

// publishDeploys publishes every deploy of the Galaxy model in st on the
// bus (docs/nats.md) until ctx ends.
func publishDeploys(ctx context.Context, st *browse.Store, bus *natsbus.Bus, log *slog.Logger) {
	var w *browse.Watch
	for {
		var err error
		if w, err = st.Watch(); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(deployPoll):
		}
	}
	defer w.Close()
	var seen uint64
	for first := true; ; first = false {
		c, err := w.Next(ctx)
		if err != nil {
			return
		}
		seq := c.Info.GetDeploySequence()
		if !first && seq != seen {
			if err := bus.PublishDeploy(seq); err != nil {
				log.Warn("nats: deploy event not published", slog.Any(logging.KeyErr, err))
			}
		}
		seen = seq
	}
}
