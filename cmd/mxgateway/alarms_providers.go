package main

import (
	"github.com/mxgateway/mxgateway/internal/alarms"
	"github.com/mxgateway/mxgateway/internal/config"
	"github.com/mxgateway/mxgateway/internal/session"
)

// alarmProviders lists the monitor's providers in order of preference:
// with real MXAccess on a build that has the native alarm consumer
// (windows/386), the consumer first and the subtag provider as its
// standby; otherwise the subtag provider over a gateway-internal session.
func alarmProviders(cfg *config.Config, sessions *session.Manager) []alarms.Provider {
	subtag := alarms.NewSubtag(alarms.SessionOpener(sessions))
	if f := alarms.NativeConsumers(); f != nil && cfg.WorkerBackend == config.BackendMXAccess {
		return []alarms.Provider{alarms.NewNative(f, "", 0), subtag}
	}
	return []alarms.Provider{subtag}
}
