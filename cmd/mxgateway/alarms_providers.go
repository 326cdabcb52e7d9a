package main

import (
	"github.com/mxgateway/mxgateway/internal/alarms"
	"github.com/mxgateway/mxgateway/internal/session"
)

// alarmProviders lists the monitor's providers in order of preference:
// the subtag provider over a gateway-internal session.
func alarmProviders(sessions *session.Manager) []alarms.Provider {
	return []alarms.Provider{alarms.NewSubtag(alarms.SessionOpener(sessions))}
}
