package main

import (
	"log/slog"
	"sync"

	"github.com/mxgateway/mxgateway/internal/alarms"
	"github.com/mxgateway/mxgateway/internal/config"
	"github.com/mxgateway/mxgateway/internal/galaxy/browse"
	"github.com/mxgateway/mxgateway/internal/session"
)

// startAlarms starts the gateway's alarm monitor when the alarms key is
// on: one gateway-internal session watching the alarms browse lists,
// refreshed on deploy. It returns nil and a no-op when off; stop is
// idempotent.
func startAlarms(cfg *config.Config, sessions *session.Manager, st *browse.Store, log *slog.Logger) (*alarms.Monitor, func(), error) {
	if cfg.Alarms != config.AlarmsOn {
		return nil, func() {}, nil
	}
	mon, err := alarms.New(alarms.Options{
		WatchList: browseWatchList(st),
		Providers: alarmProviders(cfg, sessions),
		Logger:    log.With("component", "alarms"),
	})
	if err != nil {
		return nil, nil, err
	}
	var once sync.Once
	return mon, func() { once.Do(mon.Close) }, nil
}

// browseWatchList is the monitor's watch list: the alarm-bearing
// attributes of the browse snapshot in force.
func browseWatchList(st *browse.Store) alarms.WatchList {
	return func() ([]alarms.Source, uint64, bool) {
		s := st.Load()
		if s == nil {
			return nil, 0, false
		}
		list := s.AlarmSources()
		out := make([]alarms.Source, len(list))
		for i, a := range list {
			out[i] = alarms.Source{Reference: a.Reference, Object: a.Object, Name: a.Attribute, Area: a.Area,
				LimitKind: a.LimitKind, Analog: a.Analog, Limit: a.Limit}
		}
		return out, s.Sequence(), true
	}
}
