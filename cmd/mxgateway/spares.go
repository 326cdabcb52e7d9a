package main

import (
	"context"
	"log/slog"

	"github.com/mxgateway/mxgateway/internal/config"
	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/internal/session"
	"github.com/mxgateway/mxgateway/internal/supervisor"
	"github.com/mxgateway/mxgateway/internal/workerclient"
	"github.com/mxgateway/mxgateway/internal/workerpool"
)

// newSparePool keeps spare_workers workers started and handshaken for the
// next sessions (docs/sessions.md). A spare counts in the worker metrics
// only once a session takes it.
func newSparePool(cfg *config.Config, sup *supervisor.Supervisor, log *slog.Logger) (*workerpool.Pool[*workerclient.Client], error) {
	return workerpool.New(workerpool.Options[*workerclient.Client]{
		Size: cfg.EffectiveSpareWorkers(),
		Launch: func(ctx context.Context, id string) (*workerclient.Client, error) {
			return sup.Launch(ctx, id)
		},
		NewID:  session.NewID,
		Logger: log.With(logging.KeyComponent, "workerpool"),
	})
}

// acquireFrom hands sessions the pool's workers.
func acquireFrom(pool *workerpool.Pool[*workerclient.Client], tracker *workerTracker) session.AcquireFunc {
	return func(ctx context.Context) (string, session.Worker, error) {
		s, err := pool.Get(ctx)
		if err != nil {
			return "", nil, err // never a typed nil in the interface
		}
		tracker.adopt(s.Worker, s.Startup)
		return s.ID, s.Worker, nil
	}
}
