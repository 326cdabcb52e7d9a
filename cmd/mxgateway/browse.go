package main

import (
	"context"
	"log/slog"
	"strings"

	"github.com/mxgateway/mxgateway/internal/galaxy/browse"
	galaxyclient "github.com/mxgateway/mxgateway/internal/galaxy/client"
	"github.com/mxgateway/mxgateway/internal/galaxy/wire"
)

// startBrowse returns the store the Galaxy service answers from and, when
// the gateway has a simulated Galaxy (workerEnv names its runtime), the
// watcher that keeps it at the runtime's model; stop is nil without one.
func startBrowse(ctx context.Context, workerEnv []string, log *slog.Logger) (st *browse.Store, stop func(), err error) {
	st = new(browse.Store)
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
