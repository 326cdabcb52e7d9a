package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/mxgateway/mxgateway/internal/config"
)

const configUsage = `usage: mxgateway config <print|validate> [flags]

  print [--json] [flags]   show every key's effective value and its source
                           (default, file, env or flag); secrets are masked
  validate [flags]         check the configuration; list every problem and
                           exit 1 when there is one

The flags are those of 'mxgateway serve':
`

func runConfig(args []string) int {
	return configCommand(args, os.Stdout, os.Stderr, os.Getenv)
}

// configCommand runs `mxgateway config` with its output and environment
// passed in, so that tests can drive it.
func configCommand(args []string, stdout, stderr io.Writer, env func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, configUsage)
		config.Usage(stderr)
		return 2
	}
	switch args[0] {
	case "print":
		rest, asJSON := takeJSONFlag(args[1:])
		cfg, src, ok := loadForCommand("config print", rest, stdout, stderr, env)
		if cfg == nil {
			return ok
		}
		if err := config.Print(stdout, cfg, src, asJSON); err != nil {
			fmt.Fprintln(stderr, "mxgateway config print:", err)
			return 1
		}
		if ok != 0 {
			return ok
		}
		if err := cfg.Validate(); err != nil {
			fmt.Fprintln(stderr, "mxgateway config print: the configuration is not valid:")
			printProblems(stderr, err)
			return 1
		}
		return 0
	case "validate":
		cfg, _, code := loadForCommand("config validate", args[1:], stdout, stderr, env)
		if cfg == nil {
			return code
		}
		problems := flattenErrors(cfg.Validate())
		problems = append(problems, hostProblems(cfg, problemKeys(problems))...)
		if cfg.WorkerExe != "" {
			if err := config.CheckWorkerExecutable(cfg.WorkerExe, cfg.WorkerBackend); err != nil {
				problems = append(problems, &config.FieldError{Key: "worker_exe", Msg: err.Error()})
			}
		}
		if code == 0 && len(problems) == 0 {
			fmt.Fprintln(stdout, "configuration is valid")
			return 0
		}
		if code == 0 {
			fmt.Fprintln(stderr, "mxgateway config validate: the configuration is not valid:")
		}
		printProblems(stderr, errors.Join(problems...))
		return 1
	case "help", "-h", "--help":
		fmt.Fprint(stdout, configUsage)
		config.Usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "mxgateway config: unknown command %q\n\n%s", args[0], configUsage)
		return 2
	}
}

// loadForCommand loads the configuration for a config subcommand. It
// returns a nil config with the exit code when there is nothing more to
// do (help, or a flag error); else the config, its sources, and 1 when
// values in the file or environment did not parse (already printed).
func loadForCommand(name string, args []string, stdout, stderr io.Writer, env func(string) string) (*config.Config, *config.Sources, int) {
	cfg, src, err := config.Load(args, env)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, configUsage)
		config.Usage(stdout)
		return nil, nil, 0
	case cfg == nil:
		fmt.Fprintf(stderr, "mxgateway %s: %v\n", name, err)
		return nil, nil, 2
	case err != nil:
		fmt.Fprintf(stderr, "mxgateway %s: the configuration is not valid:\n", name)
		printProblems(stderr, err)
		return cfg, src, 1
	}
	return cfg, src, 0
}

// loadServeConfig loads and validates the configuration of `mxgateway
// serve` (flags in args, the process environment through env). On -h it
// prints the flags and returns exit code 0 with a nil config; on any
// problem it prints every problem to stderr and returns a nil config with
// exit code 2. The worker executable is checked too (exe is the path the
// supervisor will run: cfg.WorkerExe, or this executable for sim).
func loadServeConfig(args []string, stdout, stderr io.Writer, env func(string) string) (*config.Config, int) {
	cfg, _, err := config.Load(args, env)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintln(stdout, "usage: mxgateway serve [flags]")
		config.Usage(stdout)
		return nil, 0
	case cfg == nil:
		fmt.Fprintf(stderr, "mxgateway serve: %v\n", err)
		return nil, 2
	}
	problems := flattenErrors(err)
	problems = append(problems, flattenErrors(cfg.Validate())...)
	problems = append(problems, hostProblems(cfg, problemKeys(problems))...)
	if len(problems) == 0 {
		exe := cfg.WorkerExe
		if exe == "" {
			exe, err = os.Executable()
		}
		if err == nil {
			err = config.CheckWorkerExecutable(exe, cfg.WorkerBackend)
		}
		if err != nil {
			problems = append(problems, &config.FieldError{Key: "worker_exe", Msg: err.Error()})
		}
	}
	if len(problems) > 0 {
		fmt.Fprintln(stderr, "mxgateway serve: the configuration is not valid:")
		printProblems(stderr, errors.Join(problems...))
		return nil, 2
	}
	return cfg, 0
}

// takeJSONFlag removes --json (or -json, --json=true|false) from args.
func takeJSONFlag(args []string) ([]string, bool) {
	var rest []string
	asJSON := false
	for _, a := range args {
		switch a {
		case "--json", "-json", "--json=true", "-json=true":
			asJSON = true
		case "--json=false", "-json=false":
			asJSON = false
		default:
			rest = append(rest, a)
		}
	}
	return rest, asJSON
}

// printProblems writes each problem of a (joined) error on its own line.
func printProblems(w io.Writer, err error) {
	for _, e := range flattenErrors(err) {
		fmt.Fprintf(w, "  - %v\n", e)
	}
}

func flattenErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flattenErrors(e)...)
		}
		return out
	}
	if err == nil {
		return nil
	}
	return []error{err}
}
