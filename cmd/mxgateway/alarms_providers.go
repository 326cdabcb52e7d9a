package main

import (
	"github.com/mxgateway/mxgateway/internal/alarms"
	"github.com/mxgateway/mxgateway/internal/config"
	"github.com/mxgateway/mxgateway/internal/session"
)

// alarmProviders lists the monitor's providers in order of preference
// (the alarm_provider key): the native alarm consumer, in a
// gateway-internal session's worker, first with the subtag provider as its
// standby, or the subtag provider alone. auto puts the native consumer
// first with real MXAccess only.
func alarmProviders(cfg *config.Config, sessions *session.Manager) []alarms.Provider {
	subtag := alarms.NewSubtag(alarms.SessionOpener(sessions))
	native := cfg.AlarmProvider == config.AlarmProviderNative ||
		cfg.AlarmProvider == config.AlarmProviderAuto && cfg.WorkerBackend == config.BackendMXAccess
	if native {
		return []alarms.Provider{alarms.NewNative(alarms.NativeConsumers(sessions), "", 0), subtag}
	}
	return []alarms.Provider{subtag}
}
