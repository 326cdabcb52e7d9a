package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/client"
	"github.com/mxgateway/mxgateway/internal/config"
	"google.golang.org/grpc/codes"
)

// Exit codes.
const (
	exitOK       = 0 // success
	exitFailed   = 1 // MXAccess said no: bad status, failed write, bad read entry
	exitUsage    = 2 // bad command line
	exitGateway  = 3 // the gateway could not be reached, or refused the key
	defaultAddr  = "127.0.0.1:5000"
	adminKeyFile = "admin.key"
)

// env reads the environment; tests pass a map.
type env func(string) string

// cli carries one invocation's streams and environment.
type cli struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	env    env
	// keySource says where the API key of the last dial came from, for
	// error messages ("" when no key was given).
	keySource string
}

type command struct {
	name    string
	summary string
	usage   string // argument synopsis
	help    string // long help with examples
	run     func(ctx context.Context, c *cli, args []string) int
}

func commands() []*command {
	return []*command{
		healthCmd(), sessionsCmd(), readCmd(), writeCmd(), subscribeCmd(), apikeyCmd(), browseCmd(), treeCmd(), alarmsCmd(), ackCmd(), benchCmd(), versionCmd(),
	}
}

const topUsage = `mxctl is the command line client of mxgateway.

Usage:
  mxctl [connection flags] <command> [flags] [arguments]

Commands:
%s
Connection (every command that talks to the gateway):
  --addr ADDR       gateway address (env MXGATEWAY_ADDR, default 127.0.0.1:5000)
  --api-key KEY     API key mxgw_<id>_<secret> (env MXGATEWAY_API_KEY; on a
                    loopback address the local first-run admin key is used when
                    none is given)
  --ca-file PATH    verify the gateway's TLS certificate against PATH (env
                    MXGATEWAY_CA_FILE); implies --tls
  --tls             use TLS with the system roots
  --insecure        use plaintext (loopback addresses only)
  --timeout D       per-call timeout (default 30s)

Exit codes: 0 success, 1 MXAccess refused (bad status or quality, failing or
denied read entry), 2 usage, 3 gateway unreachable, key refused or scope
missing.

Examples:
  mxctl read TIC101.PV Tank1.Material Line1.Counts[]
  mxctl write TIC101.SP 42.5
  mxctl subscribe TIC101.PV Tank2.Level --duration 5s
  mxctl --addr 127.0.0.1:5000 --timeout 10s health

Run "mxctl help <command>" for a command's flags and examples.
`

func printTopUsage(w io.Writer) {
	var b strings.Builder
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, topUsage, b.String())
}

// run is the whole CLI, testable in-process: it returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, env: getenv}
	globals, args, err := leadingFlags(args)
	if err != nil {
		fmt.Fprintf(stderr, "mxctl: %v (run \"mxctl help\")\n", err)
		return exitUsage
	}
	if len(args) == 0 {
		printTopUsage(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "--help", "-help":
		printTopUsage(stdout)
		return exitOK
	case "help":
		if len(args) == 1 {
			printTopUsage(stdout)
			return exitOK
		}
		for _, cmd := range commands() {
			if cmd.name == args[1] {
				return cmd.run(ctx, c, []string{"--help"})
			}
		}
		fmt.Fprintf(stderr, "mxctl: unknown command %q (run \"mxctl help\")\n", args[1])
		return exitUsage
	case "--version":
		name = "version"
	}
	for _, cmd := range commands() {
		if cmd.name == name {
			// Connection flags before the command are the command's own:
			// every command parses flags anywhere among its arguments.
			return cmd.run(ctx, c, append(globals, args[1:]...))
		}
	}
	fmt.Fprintf(stderr, "mxctl: unknown command %q (run \"mxctl help\")\n", name)
	return exitUsage
}

// leadingFlags splits off the connection flags given before the command
// ("mxctl --api-key K read X"). Only connection flags may come first; the
// help and version flags are left for run.
func leadingFlags(args []string) (globals, rest []string, err error) {
	probe := flag.NewFlagSet("mxctl", flag.ContinueOnError)
	probe.SetOutput(io.Discard)
	var f connFlags
	f.register(probe)
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") || len(a) < 2 {
			return globals, args[i:], nil
		}
		switch a {
		case "-h", "-help", "--help", "--version":
			return globals, args[i:], nil
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if probe.Lookup(name) == nil {
			return nil, nil, fmt.Errorf("unknown flag %s before the command (only connection flags go there)", a)
		}
		globals = append(globals, a)
		if !hasValue && takesValue(probe, a) {
			if i+1 >= len(args) {
				return nil, nil, fmt.Errorf("flag %s needs a value", a)
			}
			i++
			globals = append(globals, args[i])
		}
	}
	return globals, nil, nil
}

// connFlags are the connection settings shared by every command.
type connFlags struct {
	addr     string
	apiKey   string
	caFile   string
	useTLS   bool
	insecure bool
	timeout  time.Duration
}

func (f *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "addr", "", "gateway address (env MXGATEWAY_ADDR, default "+defaultAddr+")")
	fs.StringVar(&f.apiKey, "api-key", "", "API key (env MXGATEWAY_API_KEY)")
	fs.StringVar(&f.caFile, "ca-file", "", "CA certificate file for TLS (env MXGATEWAY_CA_FILE)")
	fs.BoolVar(&f.useTLS, "tls", false, "use TLS with the system roots")
	fs.BoolVar(&f.insecure, "insecure", false, "use plaintext (loopback only)")
	fs.DurationVar(&f.timeout, "timeout", client.DefaultTimeout, "per-call timeout")
}

// flagSet builds a command's flag set; usage goes to stdout for --help.
func (c *cli) flagSet(cmd *command, conn *connFlags) *flag.FlagSet {
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if conn != nil {
		conn.register(fs)
	}
	return fs
}

func (c *cli) printHelp(cmd *command, fs *flag.FlagSet) {
	fmt.Fprintf(c.stdout, "Usage: mxctl %s %s\n\n%s\n", cmd.name, cmd.usage, strings.TrimSpace(cmd.help))
	fmt.Fprintln(c.stdout, "\nFlags (-flag and --flag both work, before or after the arguments):")
	fs.SetOutput(c.stdout)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// parse parses flags interspersed with arguments ("read A --json B") and
// returns the positional arguments. A lone "--" ends the flags; a negative
// number is an argument, not a flag, unless it is the value of a flag. It
// returns ok=false after printing help or a usage error, with the exit code.
func (c *cli) parse(cmd *command, fs *flag.FlagSet, args []string) (pos []string, code int, ok bool) {
	// Hide negative numbers that are arguments from the flag package, which
	// would take "-5" for a flag.
	const neg = "\x00neg:"
	hidden := make([]string, len(args))
	copy(hidden, args)
	for i, a := range hidden {
		if a == "--" {
			break
		}
		if looksNegativeNumber(a) && !(i > 0 && takesValue(fs, args[i-1])) {
			hidden[i] = neg + a
		}
	}
	args = hidden
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				c.printHelp(cmd, fs)
				return nil, exitOK, false
			}
			fmt.Fprintf(c.stderr, "mxctl %s: %v (run \"mxctl help %s\")\n", cmd.name, err, cmd.name)
			return nil, exitUsage, false
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if len(rest) == 0 || (consumed > 0 && args[consumed-1] == "--") {
			for _, r := range rest {
				pos = append(pos, strings.TrimPrefix(r, neg))
			}
			return pos, 0, true
		}
		pos = append(pos, strings.TrimPrefix(rest[0], neg))
		args = rest[1:]
	}
}

// takesValue reports whether arg is a flag that consumes the next argument.
func takesValue(fs *flag.FlagSet, arg string) bool {
	if !strings.HasPrefix(arg, "-") || strings.Contains(arg, "=") {
		return false
	}
	f := fs.Lookup(strings.TrimLeft(arg, "-"))
	if f == nil {
		return false
	}
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return false
	}
	return true
}

func looksNegativeNumber(s string) bool {
	if len(s) < 2 || s[0] != '-' {
		return false
	}
	c := s[1]
	return (c >= '0' && c <= '9') || c == '.'
}

// dial connects with the resolved connection settings.
func (c *cli) dial(ctx context.Context, f *connFlags) (*client.Client, string, error) {
	addr := firstNonEmpty(f.addr, c.env("MXGATEWAY_ADDR"), defaultAddr)
	key, source := c.apiKey(f, addr)
	c.keySource = source
	opts := []client.Option{client.WithAPIKey(key), client.WithTimeout(f.timeout), client.WithUserAgent("mxctl")}
	ca := firstNonEmpty(f.caFile, c.env("MXGATEWAY_CA_FILE"))
	switch {
	case f.insecure && (f.useTLS || f.caFile != ""):
		return nil, addr, usageError("--insecure conflicts with --tls and --ca-file")
	case f.insecure:
		opts = append(opts, client.WithInsecure())
	case ca != "":
		opts = append(opts, client.WithCAFile(ca))
	case f.useTLS:
		opts = append(opts, client.WithTLS())
	}
	dctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	cl, err := client.Dial(dctx, addr, opts...)
	var ge *client.GatewayError
	if err != nil && !errors.As(err, &ge) && !errors.Is(err, client.ErrInsecureRemote) && !errors.Is(err, context.Canceled) {
		// Refused before connecting: an unreadable CA file, a malformed
		// address, a bad option value.
		err = usageError(strings.TrimPrefix(err.Error(), "client: "))
	}
	return cl, addr, err
}

// apiKey resolves the API key for addr and says where it came from: the
// --api-key flag, then MXGATEWAY_API_KEY, then, for a loopback address only,
// the gateway's first-run admin key file. It returns "" and "" when there is
// none.
func (c *cli) apiKey(f *connFlags, addr string) (key, source string) {
	switch {
	case f.apiKey != "":
		return f.apiKey, "--api-key"
	case c.env("MXGATEWAY_API_KEY") != "":
		return c.env("MXGATEWAY_API_KEY"), "MXGATEWAY_API_KEY"
	case client.IsLoopbackAddr(addr):
		// Only to this machine: never send the local admin key elsewhere.
		if key, path := c.localAdminKey(); key != "" {
			return key, path
		}
	}
	return "", ""
}

// localAdminKey reads the gateway's first-run admin key from its data
// directory and returns it with the file's path, or "" and "".
func (c *cli) localAdminKey() (key, path string) {
	dir := dataDir(c.env, runtime.GOOS)
	if dir == "" {
		return "", ""
	}
	path = filepath.Join(dir, adminKeyFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return "", ""
	}
	if key = strings.TrimSpace(string(b)); key == "" {
		return "", ""
	}
	return key, path
}

// dataDir is the gateway's default data directory on this machine
// (config.EnvDataDir): MXGATEWAY_DATA_DIR, else the per-OS default.
func dataDir(getenv env, goos string) string {
	return config.EnvDataDir(getenv, goos)
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

type usageError string

func (u usageError) Error() string { return string(u) }

// fail prints err on one line and returns the exit code for it.
func (c *cli) fail(cmd string, addr string, err error) int {
	msg, code := describe(addr, c.keySource, err)
	fmt.Fprintf(c.stderr, "mxctl %s: %s\n", cmd, msg)
	return code
}

// describe turns an error into one helpful line and an exit code. No stack
// traces, no Go type names. keySource is where the API key came from ("" for
// none), to say which key was refused.
func describe(addr, keySource string, err error) (string, int) {
	var ue usageError
	if errors.As(err, &ue) {
		return string(ue), exitUsage
	}
	var me *client.MxAccessError
	if errors.As(err, &me) {
		return strings.TrimPrefix(me.Error(), "client: ") + hint(me), exitFailed
	}
	var ce *client.ConversionError
	if errors.As(err, &ce) {
		return strings.TrimPrefix(ce.Error(), "client: "), exitFailed
	}
	if errors.Is(err, client.ErrAuthenticationFailed) {
		return "Galaxy user " + strings.TrimPrefix(err.Error(), "client: "), exitFailed
	}
	if errors.Is(err, client.ErrInsecureRemote) {
		return fmt.Sprintf("plaintext (--insecure) is allowed only to loopback addresses, not %s: use --tls or --ca-file", addr), exitUsage
	}
	var ge *client.GatewayError
	if errors.As(err, &ge) {
		switch {
		case strings.Contains(err.Error(), "cannot reach gateway"):
			return unreachable(addr, ge.Message), exitGateway
		case ge.Code == codes.Unauthenticated:
			return unauthenticated(keySource, ge.Message), exitGateway
		case ge.Code == codes.PermissionDenied:
			return permissionDenied(ge), exitGateway
		case ge.Code == codes.Unimplemented:
			return fmt.Sprintf("the gateway at %s does not offer this (%s)", addr, ge.Message), exitGateway
		case ge.Code == codes.Unavailable:
			return fmt.Sprintf("gateway unavailable at %s: %s", addr, lastPart(ge.Message)), exitGateway
		}
		if ge.Reason != "" {
			return fmt.Sprintf("%s (%s)", nonEmpty(ge.Message, ge.Code.String()), ge.Reason), exitGateway
		}
		return nonEmpty(ge.Message, ge.Code.String()), exitGateway
	}
	if errors.Is(err, context.Canceled) {
		return "interrupted", exitFailed
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out", exitFailed
	}
	return strings.TrimPrefix(err.Error(), "client: "), exitFailed
}

// unreachable explains a failed connection, with a hint when the cause looks
// like a TLS mismatch or an untrusted certificate.
func unreachable(addr, msg string) string {
	cause := lastPart(strings.TrimPrefix(msg, "connection error: desc = \""))
	switch {
	case strings.Contains(msg, "certificate signed by unknown authority") || strings.Contains(msg, "x509:"):
		return fmt.Sprintf("TLS to the gateway at %s failed: %s (pin the gateway's certificate with --ca-file or MXGATEWAY_CA_FILE, for example <data_dir>/tls-cert.pem)", addr, tlsCause(msg))
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return fmt.Sprintf("the gateway at %s does not speak TLS: drop --tls, --ca-file and MXGATEWAY_CA_FILE (plaintext works to loopback addresses only)", addr)
	case strings.Contains(msg, "server preface") || strings.Contains(msg, "connection reset") || strings.Contains(msg, "EOF"):
		if !strings.Contains(msg, "connection refused") {
			return fmt.Sprintf("the gateway at %s closed the connection (%s): if it uses TLS, pass --ca-file or MXGATEWAY_CA_FILE (for example <data_dir>/tls-cert.pem)", addr, cause)
		}
	}
	return fmt.Sprintf("cannot reach the gateway at %s (is \"mxgateway serve\" running?): %s", addr, cause)
}

// tlsCause keeps the x509 part of a TLS failure.
func tlsCause(msg string) string {
	msg = strings.TrimSuffix(msg, "\"")
	if i := strings.Index(msg, "x509: "); i >= 0 {
		return msg[i:]
	}
	if i := strings.Index(msg, "tls: "); i >= 0 {
		return msg[i:]
	}
	return lastPart(msg)
}

// unauthenticated explains a refused (or missing) API key.
func unauthenticated(keySource, msg string) string {
	if keySource == "" {
		return "the gateway needs an API key (UNAUTHENTICATED): set --api-key or MXGATEWAY_API_KEY (on the gateway host, mxctl uses the first-run admin key in <data_dir>/admin.key)"
	}
	return fmt.Sprintf("the gateway refused the API key from %s (UNAUTHENTICATED: %s): use a valid key with --api-key or MXGATEWAY_API_KEY",
		keySource, nonEmpty(msg, "invalid API key"))
}

// permissionDenied explains a call the key may not make.
func permissionDenied(ge *client.GatewayError) string {
	reason := nonEmpty(ge.Reason, "PERMISSION_DENIED")
	msg := nonEmpty(ge.Message, "the API key lacks the scope for this")
	switch ge.Reason {
	case mxgatewayv1.ReasonReferenceForbidden:
		return fmt.Sprintf("the API key may not use this reference (%s): %s", reason, msg)
	case mxgatewayv1.ReasonNotSessionOwner:
		return fmt.Sprintf("the session belongs to another API key (%s): %s", reason, msg)
	case mxgatewayv1.ReasonAlarmAckRefused:
		return fmt.Sprintf("the Galaxy refused the acknowledgement (%s): %s (check --user and the password)", reason, msg)
	}
	return fmt.Sprintf("the API key may not do this (%s): %s", reason, msg)
}

// hint adds a short explanation of common MXAccess refusals.
func hint(me *client.MxAccessError) string {
	switch {
	case me.Detail() == 1003:
		return " (an array attribute: add [] to the reference)"
	case me.IsConfigurationError():
		return " (unknown or malformed reference?)"
	case me.IsSecurityError():
		return " (refused by Galaxy security: see the attribute's security classification, --user and --secured)"
	case me.IsInvalidArg() && strings.HasPrefix(me.Method, "Write"):
		return " (the value's type is not acceptable for the attribute)"
	case me.IsInvalidArg() && me.Method == "AuthenticateUser":
		return " (bad user name or password)"
	case me.Timeout():
		return " (no answer from MXAccess in time)"
	}
	return ""
}

// lastPart shortens gRPC's nested transport messages to their cause, for
// example "connect: connection refused".
func lastPart(msg string) string {
	msg = strings.TrimSuffix(msg, "\"")
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.Contains(msg, "dial") {
		prev := strings.LastIndex(msg[:i], ": ")
		if prev >= 0 {
			return msg[prev+2:]
		}
		return msg[i+2:]
	}
	return msg
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
