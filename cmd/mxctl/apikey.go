package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/client"
)

// listFlag collects a repeatable, comma-separable flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*l = append(*l, part)
		}
	}
	return nil
}

// deprecatedFlag is an old spelling of a list flag: it fills the same list
// and remembers that it was used, so the command can warn.
type deprecatedFlag struct {
	list *listFlag
	used *bool
}

func (d deprecatedFlag) String() string {
	if d.list == nil {
		return ""
	}
	return d.list.String()
}

func (d deprecatedFlag) Set(s string) error {
	*d.used = true
	return d.list.Set(s)
}

func apikeyCmd() *command {
	cmd := &command{name: "apikey", summary: "manage API keys remotely (needs scope admin)", usage: "create|list|revoke|rotate [flags] [ID]",
		help: `Manages the gateway's API keys over the Admin service; the key used needs
scope admin (the first-run admin key has it). The full key is printed only
by create and rotate, once: store it then. On the gateway host the offline
equivalent is "mxgateway apikey".

  create --name NAME --scopes SCOPE[,SCOPE...] [--allow-read PATTERN]... [--allow-write PATTERN]... [--json]
  list [--json]
  revoke ID [--json]
  rotate ID [--json]

list never shows secrets. rotate gives a new id and secret with the same
name, scopes and constraints, and revokes the old key at once.

Scopes: session:open, session:close, invoke:read, invoke:write, invoke:secure,
events:read, admin. Patterns use * and ? and ignore case.

Examples:
  mxctl apikey create --name grafana --scopes session:open,session:close,invoke:read,events:read --allow-read 'TIC*'
  mxctl apikey list
  mxctl apikey rotate k3x9q2mzt7vb4wda
  mxctl apikey revoke p7c2m4xkq9vbz3da`}
	cmd.run = func(ctx context.Context, c *cli, args []string) int {
		var conn connFlags
		fs := c.flagSet(cmd, &conn)
		name := fs.String("name", "", "display name of the new key (create)")
		var scopes, allowRead, allowWrite listFlag
		fs.Var(&scopes, "scopes", "scopes to grant (create; comma-separated or repeated)")
		oldScope := false
		fs.Var(deprecatedFlag{&scopes, &oldScope}, "scope", "deprecated spelling of --scopes")
		fs.Var(&allowRead, "allow-read", "reference pattern the key may read (create; repeatable)")
		fs.Var(&allowWrite, "allow-write", "reference pattern the key may write (create; repeatable)")
		asJSON := fs.Bool("json", false, "print JSON")
		pos, code, ok := c.parse(cmd, fs, args)
		if !ok {
			return code
		}
		if oldScope {
			fmt.Fprintln(c.stderr, "mxctl apikey: warning: --scope is deprecated; use --scopes (the spelling of mxgateway apikey too)")
		}
		if len(pos) == 0 {
			return c.fail(cmd.name, "", usageError("give a subcommand: create, list, revoke or rotate"))
		}
		sub := pos[0]
		wantArgs := map[string]int{"create": 0, "list": 0, "revoke": 1, "rotate": 1}
		n, known := wantArgs[sub]
		if !known {
			return c.fail(cmd.name, "", usageError(fmt.Sprintf("unknown subcommand %q: use create, list, revoke or rotate", sub)))
		}
		if len(pos)-1 != n {
			return c.fail(cmd.name, "", usageError(fmt.Sprintf("apikey %s takes %d argument(s)", sub, n)))
		}
		if sub == "create" && (*name == "" || len(scopes) == 0) {
			return c.fail(cmd.name, "", usageError("apikey create needs --name and at least one scope (--scopes)"))
		}
		cl, addr, err := c.dial(ctx, &conn)
		if err != nil {
			return c.fail(cmd.name, addr, err)
		}
		defer cl.Close()
		admin := cl.Admin()
		switch sub {
		case "create", "rotate":
			var key *mxgatewayv1.ApiKeyInfo
			var raw string
			if sub == "create" {
				key, raw, err = admin.CreateAPIKey(ctx, client.NewAPIKey{Name: *name, Scopes: scopes, AllowRead: allowRead, AllowWrite: allowWrite})
			} else {
				key, raw, err = admin.RotateAPIKey(ctx, pos[1])
			}
			if err != nil {
				return c.fail(cmd.name, addr, err)
			}
			if *asJSON {
				writeJSON(c.stdout, map[string]any{"key": keyJSON(key), "raw_key": raw})
				return exitOK
			}
			fmt.Fprintf(c.stdout, "%s\n", raw)
			fmt.Fprintf(c.stderr, "mxctl apikey: key %s (%s) with scopes %s; the line above is the full key, shown only once\n",
				key.GetId(), key.GetName(), strings.Join(key.GetScopes(), ","))
		case "revoke":
			key, already, err := admin.RevokeAPIKey(ctx, pos[1])
			if err != nil {
				return c.fail(cmd.name, addr, err)
			}
			if *asJSON {
				writeJSON(c.stdout, map[string]any{"key": keyJSON(key), "already_revoked": already})
				return exitOK
			}
			if already {
				fmt.Fprintf(c.stdout, "key %s was already revoked\n", key.GetId())
			} else {
				fmt.Fprintf(c.stdout, "key %s revoked\n", key.GetId())
			}
		case "list":
			keys, err := admin.ListAPIKeys(ctx)
			if err != nil {
				return c.fail(cmd.name, addr, err)
			}
			if *asJSON {
				out := make([]map[string]any, 0, len(keys))
				for _, k := range keys {
					out = append(out, keyJSON(k))
				}
				writeJSON(c.stdout, out)
				return exitOK
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tCREATED\tLAST USED\tREVOKED")
			for _, k := range keys {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.GetId(), k.GetName(), strings.Join(k.GetScopes(), ","),
					tsString(k.GetCreatedAt().AsTime(), k.GetCreatedAt() != nil), tsString(k.GetLastUsedAt().AsTime(), k.GetLastUsedAt() != nil),
					tsString(k.GetRevokedAt().AsTime(), k.GetRevokedAt() != nil))
			}
			tw.Flush()
		}
		return exitOK
	}
	return cmd
}

func keyJSON(k *mxgatewayv1.ApiKeyInfo) map[string]any {
	return map[string]any{
		"id": k.GetId(), "name": k.GetName(), "scopes": orEmpty(k.GetScopes()), "allow_read": orEmpty(k.GetAllowRead()),
		"allow_write":  orEmpty(k.GetAllowWrite()),
		"created_at":   tsString(k.GetCreatedAt().AsTime(), k.GetCreatedAt() != nil),
		"last_used_at": tsString(k.GetLastUsedAt().AsTime(), k.GetLastUsedAt() != nil),
		"revoked_at":   tsString(k.GetRevokedAt().AsTime(), k.GetRevokedAt() != nil),
		"rotated_from": k.GetRotatedFrom(),
	}
}

// orEmpty makes a nil list print as [] rather than null.
func orEmpty(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}
