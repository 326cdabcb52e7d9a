package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mxgateway/mxgateway/internal/auth"
	"github.com/mxgateway/mxgateway/internal/config"
	"github.com/mxgateway/mxgateway/internal/store"
)

const apikeyUsage = `usage: mxgateway apikey <command> [flags]

Offline administration of the API-key store (works while serve is running).

commands:
  create --name N --scopes a,b [--allow-read PATTERN]... [--allow-write PATTERN]...
  list                      list keys (never shows secrets)
  revoke ID                 revoke a key at once
  rotate ID                 replace a key: new id and secret, same name, scopes and constraints;
                            the old key stops working at once
  audit [--limit N]         show the newest audit events

flags for every command:
  --data-dir DIR            data directory (default $MXGATEWAY_DATA_DIR, else the platform state dir)
  --pepper-file FILE        pepper file (default $MXGATEWAY_PEPPER_FILE, $MXGATEWAY_PEPPER, or DIR/pepper)
  --json                    machine-readable output

scopes: session:open, session:close, invoke:read, invoke:write, invoke:secure, events:read, admin
patterns: "*" matches any run of characters, "?" one character, "\" escapes; case-insensitive.
The full key is printed once, by create and rotate, on standard output.
`

func runAPIKey(args []string) int {
	return apikeyMain(context.Background(), args, os.Stdout, os.Stderr)
}

// listFlag collects a repeatable flag; each value may hold a comma list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// parseInterspersed parses flags that may come before or after positional
// arguments and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// keyJSON is the --json form of a key; Key is set only by create/rotate.
type keyJSON struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Scopes      []string   `json:"scopes"`
	AllowRead   []string   `json:"allow_read"`
	AllowWrite  []string   `json:"allow_write"`
	CreatedAt   time.Time  `json:"created_at"`
	LastUsedAt  *time.Time `json:"last_used_at,omitempty"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
	RotatedFrom string     `json:"rotated_from,omitempty"`
	Key         string     `json:"key,omitempty"`
}

// auditJSON is the --json form of an audit event.
type auditJSON struct {
	Seq        int64     `json:"seq"`
	Time       time.Time `json:"time"`
	ActorKeyID string    `json:"actor_key_id"`
	Action     string    `json:"action"`
	Target     string    `json:"target"`
	Outcome    string    `json:"outcome"`
	Detail     string    `json:"detail"`
	RemoteAddr string    `json:"remote_addr"`
}

func toJSON(k store.Key, raw auth.RawKey) keyJSON {
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	nz := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	return keyJSON{
		ID: k.ID, Name: k.Name, Scopes: nz(k.Scopes), AllowRead: nz(k.AllowRead), AllowWrite: nz(k.AllowWrite),
		CreatedAt: k.CreatedAt, LastUsedAt: opt(k.LastUsedAt), RevokedAt: opt(k.RevokedAt),
		RotatedFrom: k.RotatedFrom, Key: raw.Reveal(),
	}
}

func apikeyMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, apikeyUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd := args[0]
	fs := flag.NewFlagSet("mxgateway apikey "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, apikeyUsage) }
	dataDir := fs.String("data-dir", "", "data directory")
	pepperFile := fs.String("pepper-file", "", "pepper file")
	asJSON := fs.Bool("json", false, "machine-readable output")
	var (
		name                   *string
		scopes, allowR, allowW listFlag
		limit                  *int
	)
	switch cmd {
	case "create":
		name = fs.String("name", "", "display name")
		fs.Var(&scopes, "scopes", "scopes, comma-separated")
		fs.Var(&allowR, "allow-read", "reference pattern allowed for read/subscribe (repeatable)")
		fs.Var(&allowW, "allow-write", "reference pattern allowed for write (repeatable)")
	case "audit":
		limit = fs.Int("limit", 50, "events to show")
	case "list", "revoke", "rotate":
	default:
		fmt.Fprintf(stderr, "mxgateway apikey: unknown command %q\n\n%s", cmd, apikeyUsage)
		return 2
	}
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return 2
	}
	wantPos := 0
	if cmd == "revoke" || cmd == "rotate" {
		wantPos = 1
	}
	if len(pos) != wantPos {
		if wantPos == 1 {
			fmt.Fprintf(stderr, "mxgateway apikey %s: give exactly one key id\n", cmd)
		} else {
			fmt.Fprintf(stderr, "mxgateway apikey %s: unexpected argument %q\n", cmd, pos[0])
		}
		return 2
	}

	m, closeStore, err := openManager(ctx, *dataDir, *pepperFile)
	if err != nil {
		fmt.Fprintf(stderr, "mxgateway apikey: %v\n", err)
		return 1
	}
	defer closeStore()
	actor := auth.Actor{KeyID: auth.CLIActor}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "mxgateway apikey %s: %v\n", cmd, err)
		return 1
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")

	switch cmd {
	case "create":
		sc := make([]auth.Scope, len(scopes))
		for i, s := range scopes {
			sc[i] = auth.Scope(s)
		}
		raw, k, err := m.CreateKey(ctx, auth.KeySpec{Name: *name, Scopes: sc,
			Constraints: auth.Constraints{AllowRead: allowR, AllowWrite: allowW}}, actor)
		if err != nil {
			return fail(err)
		}
		return showNewKey(stdout, stderr, enc, *asJSON, "Created", k, raw)
	case "rotate":
		raw, k, err := m.RotateKey(ctx, pos[0], actor)
		if err != nil {
			return fail(err)
		}
		return showNewKey(stdout, stderr, enc, *asJSON, "Rotated "+pos[0]+" into", k, raw)
	case "revoke":
		k, err := m.RevokeKey(ctx, pos[0], actor)
		already := errors.Is(err, auth.ErrAlreadyRevoked)
		if err != nil && !already {
			return fail(err)
		}
		if *asJSON {
			_ = enc.Encode(struct {
				keyJSON
				AlreadyRevoked bool `json:"already_revoked"`
			}{toJSON(k, ""), already})
			return 0
		}
		if already {
			fmt.Fprintf(stdout, "Key %s was already revoked (%s).\n", k.ID, k.RevokedAt.Format(time.RFC3339))
		} else {
			fmt.Fprintf(stdout, "Revoked key %s (%q). It stops working at once.\n", k.ID, k.Name)
		}
		return 0
	case "list":
		keys, err := m.ListKeys(ctx)
		if err != nil {
			return fail(err)
		}
		if *asJSON {
			out := make([]keyJSON, 0, len(keys))
			for _, k := range keys {
				out = append(out, toJSON(k, ""))
			}
			_ = enc.Encode(out)
			return 0
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tCONSTRAINTS\tSTATUS\tCREATED\tLAST USED")
		for _, k := range keys {
			st := "active"
			if k.Revoked() {
				st = "revoked " + k.RevokedAt.Format(time.DateOnly)
			}
			used := "never"
			if !k.LastUsedAt.IsZero() {
				used = k.LastUsedAt.Format(time.DateTime)
			}
			cons := "-"
			if len(k.AllowRead)+len(k.AllowWrite) > 0 {
				cons = fmt.Sprintf("read:%s write:%s", orAll(k.AllowRead), orAll(k.AllowWrite))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(k.Scopes, ","), cons, st,
				k.CreatedAt.Format(time.DateTime), used)
		}
		_ = tw.Flush()
		return 0
	case "audit":
		evs, err := m.ListAudit(ctx, store.AuditFilter{Limit: *limit})
		if err != nil {
			return fail(err)
		}
		if *asJSON {
			out := make([]auditJSON, 0, len(evs))
			for _, e := range evs {
				out = append(out, auditJSON{e.Seq, e.Time, e.ActorKeyID, e.Action, e.Target, e.Outcome, e.Detail, e.RemoteAddr})
			}
			_ = enc.Encode(out)
			return 0
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tTIME\tACTOR\tACTION\tTARGET\tOUTCOME\tREMOTE\tDETAIL")
		for _, e := range evs {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Time.Format(time.DateTime), dash(e.ActorKeyID),
				e.Action, dash(e.Target), e.Outcome, dash(e.RemoteAddr), e.Detail)
		}
		_ = tw.Flush()
		return 0
	}
	return 2
}

func orAll(ps []string) string {
	if len(ps) == 0 {
		return "*"
	}
	return strings.Join(ps, ",")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// showNewKey prints a new key once: alone on stdout (so it can be captured)
// with the explanation on stderr, or as JSON on stdout.
func showNewKey(stdout, stderr io.Writer, enc *json.Encoder, asJSON bool, verb string, k store.Key, raw auth.RawKey) int {
	if asJSON {
		_ = enc.Encode(toJSON(k, raw))
		return 0
	}
	fmt.Fprintf(stderr, "%s API key %s (%q) with scopes %s.\n", verb, k.ID, k.Name, strings.Join(k.Scopes, ","))
	fmt.Fprintln(stderr, "The key follows. It is shown only now and cannot be recovered; store it safely.")
	fmt.Fprintln(stdout, raw.Reveal())
	fmt.Fprintln(stderr, `Clients send it as "authorization: Bearer <key>" (mxctl reads MXGATEWAY_API_KEY).`)
	return 0
}

// openManager opens the store and pepper of dataDir (the default data
// directory when empty).
func openManager(ctx context.Context, dataDir, pepperFile string) (*auth.Manager, func(), error) {
	if dataDir == "" {
		dataDir = config.EnvDataDir(os.Getenv, runtime.GOOS)
		if dataDir == "" {
			return nil, nil, errors.New("apikey: no default data directory (HOME is not set): pass --data-dir or set MXGATEWAY_DATA_DIR")
		}
	}
	if err := store.EnsureDataDir(dataDir); err != nil {
		return nil, nil, err
	}
	pep, err := auth.LoadPeppers(auth.PepperConfig{File: pepperFile, DataDir: dataDir})
	if err != nil {
		return nil, nil, err
	}
	st, err := store.OpenInDir(ctx, dataDir, store.Options{})
	if err != nil {
		return nil, nil, err
	}
	m, err := auth.NewManager(auth.ManagerConfig{Store: st, Peppers: pep})
	if err != nil {
		_ = st.Close()
		return nil, nil, err
	}
	return m, func() { _ = st.Close() }, nil
}
