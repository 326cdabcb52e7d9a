package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/mxgateway/mxgateway/internal/config"
	"github.com/mxgateway/mxgateway/internal/galaxy/browse"
	galaxyclient "github.com/mxgateway/mxgateway/internal/galaxy/client"
	"github.com/mxgateway/mxgateway/internal/galaxy/repository"
	"github.com/mxgateway/mxgateway/internal/galaxy/wire"
)

// repositoryStartBudget bounds the first Galaxy Repository read at
// start; past it the gateway serves (the snapshot file, or nothing) and
// the source keeps polling.
const repositoryStartBudget = 30 * time.Second

// startBrowse returns the store the Galaxy service answers from and what
// keeps it current: the Galaxy Repository source when galaxy_repository
// is set, else, when the gateway has a simulated Galaxy (workerEnv names
// its runtime), the watcher of the runtime's model; stop is nil without
// either.
func startBrowse(ctx context.Context, cfg *config.Config, workerEnv []string, log *slog.Logger) (st *browse.Store, stop func(), err error) {
	st = new(browse.Store)
	if cfg.GalaxyRepository != "" {
		db, err := repository.OpenDB(cfg.GalaxyRepository)
		if err != nil {
			return nil, nil, err
		}
		opts := repository.Options{DB: db, Store: st, Poll: cfg.GalaxyPoll, Log: log.With("component", "browse")}
		if cfg.GalaxySnapshot == config.GalaxySnapshotOn {
			opts.SnapshotPath = filepath.Join(cfg.DataDir, browse.SnapshotFileName)
		}
		ctx, cancel := context.WithTimeout(ctx, repositoryStartBudget)
		defer cancel()
		return st, repository.Start(ctx, opts).Close, nil
	}
	var dir string
	var key []byte
	for _, kv := range workerEnv {
		if v, ok := strings.CutPrefix(kv, wire.EnvDir+"="); ok {
			dir = v
		}
		if v, ok := strings.CutPrefix(kv, wire.EnvKey+"="); ok {
			if key, err = wire.ParseKey(v); err != nil {
				return nil, nil, err
			}
		}
	}
	if dir == "" {
		return st, nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, galaxyclient.DialTimeout)
	defer cancel()
	w, err := browse.WatchRuntime(ctx, dir, key, st, log.With("component", "browse"))
	if err != nil {
		return nil, nil, err
	}
	return st, w.Close, nil
}
