package main

import (
	"context"
	"fmt"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/backend/sim"
	"github.com/mxgateway/mxgateway/internal/config"
	"github.com/mxgateway/mxgateway/internal/opshttp"
	"github.com/mxgateway/mxgateway/internal/session"
)

// watchdogReference resolves data_watchdog_reference: auto is the demo
// Galaxy's clock when the simulator runs its built-in model (no sim_model,
// sim_plant or external sim_galaxy), and no watchdog otherwise (a custom
// model or a real node has no known ticking attribute); off is none.
func watchdogReference(c *config.Config) string {
	switch c.DataWatchdogReference {
	case config.WatchdogOff:
		return ""
	case config.WatchdogAuto:
		if c.WorkerBackend == config.BackendSim && c.SimModel == "" && c.SimPlant == 0 && c.SimGalaxy == "" {
			return sim.DemoWatchdogReference
		}
		return ""
	}
	return c.DataWatchdogReference
}

// watchdogOptions are the session manager's data watchdog settings.
func watchdogOptions(c *config.Config) session.WatchdogOptions {
	return session.WatchdogOptions{
		Reference:  watchdogReference(c),
		StaleAfter: c.DataWatchdogStaleAfter,
		FailAfter:  c.DataWatchdogFailAfter,
	}
}

// dataHealthCheck is the data_watchdog readiness check: the gateway is not
// ready while an open session's data is FAILED (its MXAccess connection
// delivers nothing, whatever its calls answer).
func dataHealthCheck(sessions *session.Manager) opshttp.Check {
	return opshttp.Check{Name: "data_watchdog", Func: func(context.Context) error {
		counts := sessions.DataHealthCounts()
		if n := counts[mxgatewayv1.DataHealth_DATA_HEALTH_FAILED]; n > 0 {
			return fmt.Errorf("%d of %d sessions receive no data (watchdog reference %q unchanged for data_watchdog_fail_after)",
				n, sessions.Len(), sessions.Options().Watchdog.Reference)
		}
		return nil
	}}
}
