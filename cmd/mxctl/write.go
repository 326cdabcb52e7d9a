package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mxgateway/mxgateway/client"
	"golang.org/x/term"
)

func writeCmd() *command {
	cmd := &command{name: "write", summary: "write a value and wait for OnWriteComplete", usage: "REF VALUE [--type T] [--timestamp T] [--user U] [--secured [--verifier V]] [--json]",
		help: `Writes VALUE to REF the way a careful MXAccess client does: adds and
advises the item, waits for its first value (to learn the attribute's data
type), writes, and waits for the matching OnWriteComplete. VALUE is parsed
for the attribute's type in the invariant culture: true/false, 42, 21.5,
2025-11-26T08:30:00Z, 1m30s, and arrays as [1,2,3]. Exits 1 on any bad
status (E_INVALIDARG, security refusal, timeout, ...).

--type forces a data type (MxInteger, double, string, ...). --timestamp
(RFC 3339 or "now") writes with Write2/WriteSecured2. --user authenticates a
Galaxy user and writes as that user; --secured uses WriteSecured, with
--verifier for VerifiedWrite attributes. Passwords are never taken from the
command line: they come from MXCTL_PASSWORD and MXCTL_VERIFIER_PASSWORD, or
are prompted for without echo on a terminal, or read one per line from
standard input.

Examples:
  mxctl write TIC101.SP 42.5
  mxctl write TIC101.Mode Manual
  mxctl write Line1.Counts[] '[1,2,3,4,5,6,7,8]'
  mxctl write TIC101.SP 40 --timestamp 2025-11-26T08:00:00Z
  MXCTL_PASSWORD=... mxctl write Pump1.StartCmd true --secured --user operator
  mxctl write Valve1.Cmd 2 --secured --user operator --verifier supervisor`}
	cmd.run = func(ctx context.Context, c *cli, args []string) int {
		var conn connFlags
		fs := c.flagSet(cmd, &conn)
		typ := fs.String("type", "", "data type to convert VALUE to (default: the attribute's own)")
		tsFlag := fs.String("timestamp", "", `value timestamp, RFC 3339 or "now" (uses Write2)`)
		user := fs.String("user", "", "Galaxy user to authenticate and write as")
		secured := fs.Bool("secured", false, "use WriteSecured (needs --user)")
		verifier := fs.String("verifier", "", "verifying Galaxy user for VerifiedWrite (with --secured)")
		asJSON := fs.Bool("json", false, "print the outcome as JSON")
		supervisory := fs.Bool("supervisory", false, "advise with AdviseSupervisory")
		pos, code, ok := c.parse(cmd, fs, args)
		if !ok {
			return code
		}
		if len(pos) != 2 {
			return c.fail(cmd.name, "", usageError("give a reference and a value, for example: mxctl write TIC101.SP 42.5"))
		}
		ref, text := pos[0], pos[1]
		if *secured && *user == "" {
			return c.fail(cmd.name, "", usageError("--secured needs --user"))
		}
		if *verifier != "" && !*secured {
			return c.fail(cmd.name, "", usageError("--verifier needs --secured"))
		}
		var opts []client.WriteOption
		var value any = client.Text(text)
		if *typ != "" {
			dt, err := client.ParseDataType(*typ)
			if err != nil {
				return c.fail(cmd.name, "", usageError(strings.TrimPrefix(err.Error(), "client: ")))
			}
			v, err := client.ParseValue(dt, text)
			if err != nil {
				return c.fail(cmd.name, "", err)
			}
			value = v
			opts = append(opts, client.WithDataType(dt))
		}
		if *tsFlag != "" {
			ts := time.Now()
			if *tsFlag != "now" {
				var err error
				if ts, err = time.Parse(time.RFC3339Nano, *tsFlag); err != nil {
					return c.fail(cmd.name, "", usageError(fmt.Sprintf("--timestamp %q is not RFC 3339 (2026-11-26T08:00:00Z) or \"now\"", *tsFlag)))
				}
			}
			opts = append(opts, client.At(ts))
		}
		if *supervisory {
			opts = append(opts, client.Supervisory())
		}
		// Ask for passwords before connecting, so a prompt never races a timeout.
		var pw, vpw string
		lines := newLineReader(c.stdin)
		if *user != "" {
			var err error
			if pw, err = c.password("MXCTL_PASSWORD", "Password for "+*user+": ", lines); err != nil {
				return c.fail(cmd.name, "", err)
			}
		}
		if *verifier != "" {
			var err error
			if vpw, err = c.password("MXCTL_VERIFIER_PASSWORD", "Password for verifier "+*verifier+": ", lines); err != nil {
				return c.fail(cmd.name, "", err)
			}
		}
		cl, addr, err := c.dial(ctx, &conn)
		if err != nil {
			return c.fail(cmd.name, addr, err)
		}
		defer cl.Close()
		s, err := cl.OpenSession(ctx, "mxctl write")
		if err != nil {
			return c.fail(cmd.name, addr, err)
		}
		if *user != "" {
			uid, err := s.Authenticate(ctx, *user, pw)
			if err != nil {
				return c.fail(cmd.name, addr, err)
			}
			vid := uid
			if *verifier != "" {
				if vid, err = s.Authenticate(ctx, *verifier, vpw); err != nil {
					return c.fail(cmd.name, addr, err)
				}
			}
			if *secured {
				opts = append(opts, client.Secured(uid, vid))
			} else {
				opts = append(opts, client.AsUser(uid))
			}
		}
		st, err := s.WriteValue(ctx, ref, value, opts...)
		if *asJSON {
			out := map[string]any{"reference": ref, "value": text, "ok": err == nil, "statuses": statusList(st)}
			if err != nil {
				out["error"] = errText(err)
			}
			writeJSON(c.stdout, out)
		}
		if err != nil {
			var me *client.MxAccessError
			if *asJSON && errors.As(err, &me) {
				return exitFailed
			}
			return c.fail(cmd.name, addr, err)
		}
		if !*asJSON {
			fmt.Fprintf(c.stdout, "%s = %s: write complete\n", ref, text)
		}
		return exitOK
	}
	return cmd
}

func statusList(st client.Statuses) []string {
	out := []string{}
	for _, s := range st {
		out = append(out, client.StatusString(s))
	}
	return out
}

// lineReader hands out lines of a non-terminal stdin, one per password.
type lineReader struct {
	r *bufio.Reader
}

func newLineReader(r io.Reader) *lineReader {
	if r == nil {
		return &lineReader{}
	}
	return &lineReader{r: bufio.NewReader(r)}
}

// password returns a password from the environment variable, else a prompt
// without echo on a terminal, else the next line of standard input. It is
// never taken from argv and never printed.
func (c *cli) password(envName, prompt string, lines *lineReader) (string, error) {
	if pw := c.env(envName); pw != "" {
		return pw, nil
	}
	if f, ok := c.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(c.stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		return string(b), nil
	}
	if lines.r != nil {
		line, err := lines.r.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if err == nil || (errors.Is(err, io.EOF) && line != "") {
			return line, nil
		}
	}
	return "", usageError(fmt.Sprintf("a password is needed: set %s, or run on a terminal to be prompted", envName))
}
