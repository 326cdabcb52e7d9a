//go:build windows

package winsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"
)

// How long Start and Stop wait for the service to reach its new state.
const (
	startWait = time.Minute
	stopWait  = 3 * time.Minute
)

// IsWindowsService reports whether the process runs under the Windows
// service control manager.
func IsWindowsService() (bool, error) {
	return isWindowsService()
}

// Install registers a service that runs exePath with args (for example
// "serve", "--config", `C:\ProgramData\mxgateway\mxgateway.yaml`), starts
// automatically (delayed) as LocalSystem, and is restarted by the SCM
// after a failure. It also registers name as an event log source. Change
// the account in the Services console when MXAccess needs another one.
func Install(name, exePath string, args []string) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("winsvc: connect to the service manager: %w", err)
	}
	defer m.Disconnect()
	if s, err := m.OpenService(name); err == nil {
		s.Close()
		return fmt.Errorf("winsvc: service %s already exists", name)
	}
	s, err := m.CreateService(name, exePath, mgr.Config{
		DisplayName:      DisplayName,
		Description:      Description,
		StartType:        mgr.StartAutomatic,
		DelayedAutoStart: true,
	}, args...)
	if err != nil {
		return fmt.Errorf("winsvc: create service %s: %w", name, err)
	}
	defer s.Close()
	recovery := []mgr.RecoveryAction{
		{Type: mgr.ServiceRestart, Delay: 5 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 30 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 2 * time.Minute},
	}
	if err := s.SetRecoveryActions(recovery, uint32((24 * time.Hour).Seconds())); err != nil {
		_ = s.Delete()
		return fmt.Errorf("winsvc: set recovery actions: %w", err)
	}
	if err := s.SetRecoveryActionsOnNonCrashFailures(true); err != nil {
		_ = s.Delete()
		return fmt.Errorf("winsvc: set recovery on failures: %w", err)
	}
	if err := eventlog.InstallAsEventCreate(name, eventlog.Error|eventlog.Warning|eventlog.Info); err != nil {
		_ = s.Delete()
		return fmt.Errorf("winsvc: register event log source: %w", err)
	}
	return nil
}

// Uninstall removes the service and its event log source. A running
// service is removed once it stops.
func Uninstall(name string) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("winsvc: connect to the service manager: %w", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(name)
	if err != nil {
		return fmt.Errorf("winsvc: open service %s: %w", name, err)
	}
	defer s.Close()
	if err := s.Delete(); err != nil {
		return fmt.Errorf("winsvc: delete service %s: %w", name, err)
	}
	if err := eventlog.Remove(name); err != nil {
		return fmt.Errorf("winsvc: remove event log source: %w", err)
	}
	return nil
}

// Start starts the service and waits until it runs, or reports that it
// stopped again (its reason is in the event log).
func Start(name string) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("winsvc: connect to the service manager: %w", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(name)
	if err != nil {
		return fmt.Errorf("winsvc: open service %s: %w", name, err)
	}
	defer s.Close()
	if err := s.Start(); err != nil {
		return fmt.Errorf("winsvc: start service %s: %w", name, err)
	}
	deadline := time.Now().Add(startWait)
	for {
		st, err := s.Query()
		if err != nil {
			return fmt.Errorf("winsvc: query service %s: %w", name, err)
		}
		switch st.State {
		case svc.Running:
			return nil
		case svc.Stopped:
			return fmt.Errorf("winsvc: service %s stopped while starting (exit code %d); see the event log", name, st.ServiceSpecificExitCode)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("winsvc: service %s did not reach running within %v", name, startWait)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// Stop asks the service to stop and waits until it has.
func Stop(name string) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("winsvc: connect to the service manager: %w", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(name)
	if err != nil {
		return fmt.Errorf("winsvc: open service %s: %w", name, err)
	}
	defer s.Close()
	st, err := s.Control(svc.Stop)
	if err != nil {
		if errors.Is(err, windows.ERROR_SERVICE_NOT_ACTIVE) {
			return nil
		}
		return fmt.Errorf("winsvc: stop service %s: %w", name, err)
	}
	deadline := time.Now().Add(stopWait)
	for st.State != svc.Stopped {
		if time.Now().After(deadline) {
			return fmt.Errorf("winsvc: service %s did not stop within %v", name, stopWait)
		}
		time.Sleep(300 * time.Millisecond)
		if st, err = s.Query(); err != nil {
			return fmt.Errorf("winsvc: query service %s: %w", name, err)
		}
	}
	return nil
}

// Run runs the process as the service name under the SCM (for a service
// in its own process the SCM ignores name and starts the one it launched;
// NameFromContext tells run which that is): run gets a context that is
// cancelled on Stop or Shutdown, the SCM sees StartPending,
// Running and StopPending (with progress while run shuts down), and the
// service stops when run returns. A non-nil error from run becomes
// service-specific exit code 1 (so the SCM's recovery actions restart the
// service) and is returned.
func Run(name string, run func(ctx context.Context) error) error {
	h := &handler{run: run}
	if err := svc.Run(name, h); err != nil {
		return fmt.Errorf("winsvc: run service %s: %w", name, err)
	}
	return h.err
}

type handler struct {
	run func(ctx context.Context) error
	err error
}

// Execute adapts the SCM's requests and status channel to control.
func (h *handler) Execute(args []string, r <-chan svc.ChangeRequest, s chan<- svc.Status) (bool, uint32) {
	reqs := make(chan request)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case c := <-r:
				req := reqOther
				switch c.Cmd {
				case svc.Interrogate:
					req = reqInterrogate
				case svc.Stop:
					req = reqStop
				case svc.Shutdown:
					req = reqShutdown
				}
				select {
				case reqs <- req:
				case <-stop:
					return
				}
			}
		}
	})

	var checkpoint uint32
	report := func(st state) {
		switch st {
		case stateStartPending:
			s <- svc.Status{State: svc.StartPending, WaitHint: 30000}
		case stateRunning:
			s <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
		case stateStopPending:
			checkpoint++
			s <- svc.Status{State: svc.StopPending, CheckPoint: checkpoint, WaitHint: uint32(3 * StopProgressInterval / time.Millisecond)}
		}
	}
	base := context.Background()
	if len(args) > 0 {
		base = withName(base, args[0]) // the SCM passes the service name first
	}
	err := control(base, h.run, reqs, report, StopProgressInterval)
	close(stop)
	wg.Wait()
	h.err = err
	if err != nil {
		return true, 1
	}
	return false, 0
}

// OpenEventLog opens the event log under source (registered by Install)
// for records at or above level.
func OpenEventLog(source string, level slog.Leveler) (*EventLog, error) {
	l, err := eventlog.Open(source)
	if err != nil {
		return nil, fmt.Errorf("winsvc: open event log %s: %w", source, err)
	}
	return newEventLog(l, level, l.Close), nil
}
