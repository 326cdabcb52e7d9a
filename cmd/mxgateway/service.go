package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/mxgateway/mxgateway/internal/config"
	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/internal/winsvc"
)

const serviceUsage = `usage: mxgateway service <install|uninstall|start|stop> [--name NAME] [serve flags]

  install [--name NAME] [serve flags]  register this executable as a service
                                       that runs 'mxgateway serve [serve flags]'
                                       (for example --config C:\ProgramData\mxgateway\mxgateway.yaml)
  uninstall [--name NAME]              remove the service
  start [--name NAME]                  start it and wait until it runs
  stop [--name NAME]                   stop it gracefully and wait

The default NAME is mxgateway. Run from an elevated prompt. Windows only.
`

func runService(args []string) int {
	return serviceCommand(args, os.Stdout, os.Stderr, runtime.GOOS)
}

// serviceCommand runs `mxgateway service` for goos, so tests can check the
// non-Windows answer and the argument handling.
func serviceCommand(args []string, stdout, stderr io.Writer, goos string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, serviceUsage)
		return 2
	}
	sub := args[0]
	switch sub {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, serviceUsage)
		return 0
	case "install", "uninstall", "start", "stop":
	default:
		fmt.Fprintf(stderr, "mxgateway service: unknown command %q\n\n%s", sub, serviceUsage)
		return 2
	}
	if goos != "windows" {
		fmt.Fprintln(stderr, "mxgateway service: windows only (on Linux, run 'mxgateway serve' under systemd; see docs/operations.md)")
		return 2
	}
	name, rest, err := takeNameFlag(args[1:])
	if err != nil {
		fmt.Fprintf(stderr, "mxgateway service %s: %v\n", sub, err)
		return 2
	}

	switch sub {
	case "install":
		// The serve flags are checked now, not when the SCM first starts
		// the service with nobody watching.
		cfg, _, err := config.Load(rest, nil)
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, serviceUsage)
			return 0
		}
		if cfg == nil {
			fmt.Fprintf(stderr, "mxgateway service install: %v\n", err)
			return 2
		}
		exe, err := os.Executable()
		if err == nil {
			exe, err = filepath.Abs(exe)
		}
		if err != nil {
			fmt.Fprintf(stderr, "mxgateway service install: find this executable: %v\n", err)
			return 1
		}
		svcArgs := append([]string{"serve"}, rest...)
		if err := winsvc.Install(name, exe, svcArgs); err != nil {
			fmt.Fprintf(stderr, "mxgateway service install: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "installed service %s: %s %s\n", name, exe, strings.Join(svcArgs, " "))
		fmt.Fprintf(stdout, "start it with: mxgateway service start --name %s\n", name)
	case "uninstall", "start", "stop":
		if len(rest) > 0 {
			fmt.Fprintf(stderr, "mxgateway service %s: unexpected argument %q\n", sub, rest[0])
			return 2
		}
		op := map[string]func(string) error{"uninstall": winsvc.Uninstall, "start": winsvc.Start, "stop": winsvc.Stop}[sub]
		if err := op(name); err != nil {
			fmt.Fprintf(stderr, "mxgateway service %s: %v\n", sub, err)
			return 1
		}
		fmt.Fprintf(stdout, "service %s: %s done\n", name, sub)
	}
	return 0
}

// takeNameFlag removes --name NAME (or --name=NAME) from args and returns
// the name (default winsvc.DefaultName) and the other arguments.
func takeNameFlag(args []string) (string, []string, error) {
	name := winsvc.DefaultName
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--name" || a == "-name":
			if i+1 >= len(args) || args[i+1] == "" {
				return "", nil, errors.New("--name needs a value")
			}
			name = args[i+1]
			i++
		case strings.HasPrefix(a, "--name=") || strings.HasPrefix(a, "-name="):
			name = a[strings.Index(a, "=")+1:]
			if name == "" {
				return "", nil, errors.New("--name needs a value")
			}
		default:
			rest = append(rest, a)
		}
	}
	if strings.ContainsAny(name, `/\ `) {
		return "", nil, fmt.Errorf("service name %q must not contain slashes or blanks", name)
	}
	return name, rest, nil
}

// runAsService runs run under the Windows service control manager when the
// process was started by it (SCM Stop and Shutdown cancel run's context,
// and winsvc.NameFromContext(ctx) gives the service name for the event
// log) and reports true; otherwise it returns false at once and the caller
// runs in the foreground. serve calls it first.
func runAsService(run func(ctx context.Context) error) (bool, error) {
	is, err := winsvc.IsWindowsService()
	if err != nil {
		return false, fmt.Errorf("serve: detect the service manager: %w", err)
	}
	if !is {
		return false, nil
	}
	return true, winsvc.Run(winsvc.DefaultName, run)
}

// openServeLog builds the gateway's logger from the configuration: to
// log_file when set (else stderr), in log_format at log_level, redacted.
// When eventSource is not empty (the service name, under the SCM),
// warnings and errors also go to the Windows event log under that source.
// The returned func flushes and closes what was opened; call it last.
func openServeLog(cfg *config.Config, stderr io.Writer, eventSource string) (*slog.Logger, func() error, error) {
	var closers []func() error
	closeAll := func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		return errors.Join(errs...)
	}
	w := stderr
	if cfg.LogFile != "" {
		f, err := logging.OpenFile(cfg.LogFile)
		if err != nil {
			return nil, nil, err
		}
		closers = append(closers, func() error { _ = f.Sync(); return f.Close() })
		w = f
	}
	h, err := logging.NewHandler(w, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		_ = closeAll()
		return nil, nil, err
	}
	if eventSource != "" {
		el, err := winsvc.OpenEventLog(eventSource, slog.LevelWarn)
		if err == nil {
			closers = append(closers, el.Close)
			h = slog.NewMultiHandler(h, el.Handler())
		} else {
			// Not fatal: the file (or stderr) log still works.
			slog.New(h).Warn("no event log; logging to the file only", logging.KeyErr, err)
		}
	}
	return slog.New(h), closeAll, nil
}
