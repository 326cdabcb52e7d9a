package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/mxgateway/mxgateway/test/e2e/harness"
	"go.uber.org/goleak"
)

// oneLineErrors: a command that failed for a usage or gateway reason says so
// in exactly one line on standard error, without Go internals.
func oneLineErrors(t *testing.T, r result) {
	t.Helper()
	if r.code != exitUsage && r.code != exitGateway {
		return
	}
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "mxctl") || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("exit %d: stderr is not one \"mxctl...\" line:\n%s", r.code, r.stderr)
	}
	for _, bad := range []string{"goroutine ", "panic", "*client.", "rpc error:", "client: "} {
		if strings.Contains(r.stderr, bad) {
			t.Errorf("exit %d: stderr shows %q:\n%s", r.code, bad, r.stderr)
		}
	}
}

// rawKey checks that stdout is exactly one full API key line and returns the
// key, its id and its secret.
func rawKey(t *testing.T, r result) (key, id, secret string) {
	t.Helper()
	if r.code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	key = strings.TrimSuffix(r.stdout, "\n")
	m := keyIDRE.FindStringSubmatch(key)
	if m == nil || strings.Contains(key, "\n") {
		t.Fatalf("stdout is not one full API key line:\n%s", r.stdout)
	}
	if strings.Contains(r.stderr, m[2]) {
		t.Fatalf("the secret is printed twice (stderr too):\n%s", r.stderr)
	}
	return key, m[1], m[2]
}

// jsonKey parses the --json output of create and rotate.
func jsonKey(t *testing.T, r result) (key, id, secret string) {
	t.Helper()
	if r.code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	var out struct {
		Key struct {
			ID string `json:"id"`
		} `json:"key"`
		RawKey string `json:"raw_key"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("%v:\n%s", err, r.stdout)
	}
	m := keyIDRE.FindStringSubmatch(out.RawKey)
	if m == nil || m[1] != out.Key.ID {
		t.Fatalf("raw_key %q does not carry id %q", out.RawKey, out.Key.ID)
	}
	if strings.Count(r.stdout, m[2]) != 1 || strings.Contains(r.stderr, m[2]) {
		t.Fatalf("the secret is not printed exactly once:\n%s%s", r.stdout, r.stderr)
	}
	return out.RawKey, m[1], m[2]
}

// noSecrets fails if any of the secrets appears in the output.
func noSecrets(t *testing.T, what string, r result, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(r.stdout, s) || strings.Contains(r.stderr, s) {
			t.Fatalf("%s shows a key secret:\n%s%s", what, r.stdout, r.stderr)
		}
	}
	if keyRE.MatchString(r.stdout) || keyRE.MatchString(r.stderr) {
		t.Fatalf("%s shows a full key:\n%s%s", what, r.stdout, r.stderr)
	}
}

// maskListTable replaces the LAST USED cells of "apikey list" (a time or
// "-", depending on whether the gateway's once-a-minute flush of last-use
// times happened yet) with a token and lays the table out again. It first
// checks that the table is aligned: every cell starts at its header's
// column.
func maskListTable(t *testing.T, out string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	header := lines[0]
	names := []string{"ID", "NAME", "SCOPES", "CREATED", "LAST USED", "REVOKED"}
	starts := make([]int, len(names))
	for i, n := range names {
		starts[i] = strings.Index(header, n)
		if starts[i] < 0 || (i > 0 && starts[i] <= starts[i-1]) {
			t.Fatalf("apikey list header %q lacks %q", header, n)
		}
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, line := range lines {
		cells := make([]string, len(names))
		for i, st := range starts {
			end := len(line)
			if i+1 < len(starts) {
				end = starts[i+1]
			}
			if st > len(line) || end > len(line) || (st > 0 && line[st-1] != ' ') || line[st] == ' ' {
				t.Fatalf("apikey list is not aligned at column %q:\n%s", names[i], out)
			}
			cells[i] = strings.TrimRight(line[st:end], " ")
		}
		if line != header && (cells[4] == "-" || timeRE.MatchString(cells[4])) {
			cells[4] = "<LAST_USED>"
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
	return b.String()
}

// TestAPIKeyCommands drives "mxctl apikey" against the real gateway with the
// local first-run admin key, and uses the keys it makes with "mxctl read"
// and "mxctl write": created keys work within their scopes and constraints,
// list never shows a secret, revoked and rotated-away keys fail with one
// UNAUTHENTICATED line and exit 3.
func TestAPIKeyCommands(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	g := harness.Start(t)
	admin := map[string]string{"MXGATEWAY_ADDR": g.GRPCAddr, "MXGATEWAY_DATA_DIR": g.DataDir}
	as := func(key string) map[string]string {
		return map[string]string{"MXGATEWAY_ADDR": g.GRPCAddr, "MXGATEWAY_API_KEY": key}
	}
	adminID := keyIDRE.FindStringSubmatch(g.AdminKey)[1]
	secrets := []string{keyIDRE.FindStringSubmatch(g.AdminKey)[2]}
	// repl masks the key ids, which are random, by role.
	repl := []string{adminID, "<ID:admin>"}
	run := func(name string, env map[string]string, wantCode int, args ...string) result {
		t.Helper()
		r := invoke(t, env, "", args...)
		if r.code != wantCode {
			t.Fatalf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", name, r.code, wantCode, r.stdout, r.stderr)
		}
		oneLineErrors(t, r)
		if name != "" {
			golden(t, name, r, g.GRPCAddr, repl...)
		}
		return r
	}

	// create (text): the full key alone on stdout, details on stderr.
	reader, readerID, secret := rawKey(t, run("", admin, exitOK, "apikey", "create", "--name", "reader",
		"--scopes", "session:open,session:close", "--scopes", "invoke:read,events:read", "--allow-read", "Tank1.*", "--allow-read", "Line1.*"))
	secrets = append(secrets, secret)
	repl = append(repl, readerID, "<ID:reader>")
	// create (JSON); the golden is compared once the id is known.
	r := run("", admin, exitOK, "apikey", "create", "--name", "writer", "--scopes",
		"session:open,session:close,invoke:read,invoke:write,events:read", "--allow-write", "TIC101.SP", "--json")
	writer, writerID, secret := jsonKey(t, r)
	secrets = append(secrets, secret)
	if !strings.Contains(r.stdout, `"last_used_at":"-"`) || !strings.Contains(r.stdout, `"revoked_at":"-"`) {
		t.Fatalf("a new key is unused and not revoked: %s", r.stdout)
	}
	repl = append(repl, writerID, "<ID:writer>")
	golden(t, "apikey_create_json", r, g.GRPCAddr, repl...)
	r = run("", admin, exitOK, "apikey", "create", "--name", "noopen", "--scope", "invoke:read,events:read")
	_, noOpenID, secret := rawKey(t, r)
	secrets = append(secrets, secret)
	repl = append(repl, noOpenID, "<ID:noopen>")
	golden(t, "apikey_create", r, g.GRPCAddr, repl...)
	noOpen := strings.TrimSpace(r.stdout)

	// The new keys work, within their scopes and constraints.
	run("apikey_read_with_new_key", as(reader), exitOK, "read", "Tank1.Material", "Line1.Counts[]")
	run("read_reference_not_allowed", as(reader), exitFailed, "read", "Tank1.Material", "TIC101.PV")
	run("read_reference_not_allowed_json", as(reader), exitFailed, "read", "--json", "TIC101.PV")
	run("read_missing_scope_session_open", as(noOpen), exitGateway, "read", "Tank1.Material")
	run("write_missing_scope_invoke_write", as(reader), exitGateway, "write", "Tank1.Material", "Water")
	run("write_with_new_key", as(writer), exitOK, "write", "TIC101.SP", "41.5")
	run("write_reference_not_allowed", as(writer), exitGateway, "write", "Tank1.Material", "Water")
	run("apikey_list_not_admin", as(writer), exitGateway, "apikey", "list")
	run("apikey_create_not_admin", as(reader), exitGateway, "apikey", "create", "--name", "x", "--scopes", "admin")
	// sessions: the writer's key sees only its own sessions (none now).
	r = run("", as(writer), exitOK, "sessions", "--json")
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Fatalf("sessions of a key without open sessions: %s", r.stdout)
	}

	// list: every key, never a secret.
	r = run("", admin, exitOK, "apikey", "list")
	noSecrets(t, "apikey list", r, secrets)
	compareGolden(t, "apikey_list", mask(maskListTable(t, r.stdout), g.GRPCAddr, repl...))
	r = run("", admin, exitOK, "apikey", "list", "--json")
	noSecrets(t, "apikey list --json", r, secrets)
	golden(t, "apikey_list_json", r, g.GRPCAddr, repl...)

	// rotate (text): a new key that works; the old one fails at once.
	r = run("", admin, exitOK, "apikey", "rotate", readerID)
	reader2, reader2ID, secret := rawKey(t, r)
	secrets = append(secrets, secret)
	repl = append(repl, reader2ID, "<ID:reader-rotated>")
	golden(t, "apikey_rotate", r, g.GRPCAddr, repl...)
	run("read_rotated_key", as(reader2), exitOK, "read", "Tank1.Material")
	run("read_rotated_away_key", as(reader), exitGateway, "read", "Tank1.Material")
	run("apikey_rotate_revoked", admin, exitGateway, "apikey", "rotate", readerID)

	// rotate (JSON).
	r = run("", admin, exitOK, "apikey", "rotate", writerID, "--json")
	writer2, writer2ID, secret := jsonKey(t, r)
	secrets = append(secrets, secret)
	repl = append(repl, writer2ID, "<ID:writer-rotated>")
	golden(t, "apikey_rotate_json", r, g.GRPCAddr, repl...)
	run("", as(writer2), exitOK, "write", "TIC101.SP", "42")
	run("", as(writer), exitGateway, "write", "TIC101.SP", "42")

	// revoke: the key fails with one UNAUTHENTICATED line, exit 3.
	run("apikey_revoke", admin, exitOK, "apikey", "revoke", reader2ID)
	r = run("read_revoked_key", as(reader2), exitGateway, "read", "Tank1.Material")
	if !strings.Contains(r.stderr, "UNAUTHENTICATED") || !strings.Contains(r.stderr, "revoked") {
		t.Fatalf("revoked key: %s", r.stderr)
	}
	run("subscribe_revoked_key", as(reader2), exitGateway, "subscribe", "Tank1.Material", "--duration", "1s")
	run("apikey_revoke_again_json", admin, exitOK, "apikey", "revoke", reader2ID, "--json")
	run("apikey_revoke_json", admin, exitOK, "apikey", "revoke", writer2ID, "--json")
	run("", as(writer2), exitGateway, "write", "TIC101.SP", "43")
	run("apikey_revoke_unknown", admin, exitGateway, "apikey", "revoke", "aaaaaaaaaaaaaaaa")

	// list afterwards: revoked and rotated keys stay, marked.
	r = run("", admin, exitOK, "apikey", "list")
	noSecrets(t, "apikey list", r, secrets)
	compareGolden(t, "apikey_list_after", mask(maskListTable(t, r.stdout), g.GRPCAddr, repl...))
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	rows := 0
	for sc.Scan() {
		rows++
	}
	if rows != 1+6 {
		t.Fatalf("apikey list shows %d rows, want 6 keys:\n%s", rows-1, r.stdout)
	}
}

// TestTLSCAFile runs mxctl against a --tls=self-signed gateway: pinned with
// --ca-file or MXGATEWAY_CA_FILE it works; plaintext, the system roots and
// conflicting flags fail with one clear line.
func TestTLSCAFile(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	g := harness.Start(t, "--tls=self-signed")
	if g.CAFile == "" {
		t.Fatal("no CA file printed")
	}
	env := map[string]string{"MXGATEWAY_ADDR": g.GRPCAddr, "MXGATEWAY_DATA_DIR": g.DataDir}
	withCA := map[string]string{"MXGATEWAY_ADDR": g.GRPCAddr, "MXGATEWAY_DATA_DIR": g.DataDir, "MXGATEWAY_CA_FILE": g.CAFile}
	repl := []string{g.CAFile, "<CA_FILE>", g.DataDir, "<DATA_DIR>"}
	cases := []struct {
		name string
		env  map[string]string
		code int
		args []string
	}{
		{"tls_read_ca_file", env, exitOK, []string{"read", "--ca-file", g.CAFile, "Tank1.Material", "Line1.Counts[]"}},
		{"tls_read_ca_env", withCA, exitOK, []string{"read", "Tank1.Material", "Line1.Counts[]"}},
		{"tls_write_ca_env", withCA, exitOK, []string{"write", "TIC101.SP", "44"}},
		{"tls_health_ca_file", env, exitOK, []string{"health", "--ca-file", g.CAFile}},
		{"tls_plaintext", env, exitGateway, []string{"read", "Tank1.Material"}},
		{"tls_insecure", env, exitGateway, []string{"read", "--insecure", "Tank1.Material"}},
		{"tls_system_roots", env, exitGateway, []string{"read", "--tls", "Tank1.Material"}},
		{"tls_insecure_and_ca_file", env, exitUsage, []string{"read", "--insecure", "--ca-file", g.CAFile, "Tank1.Material"}},
		{"tls_missing_ca_file", env, exitUsage, []string{"read", "--ca-file", "/nonexistent/ca.pem", "Tank1.Material"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := invoke(t, tc.env, "", tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tc.code, r.stdout, r.stderr)
			}
			oneLineErrors(t, r)
			golden(t, tc.name, r, g.GRPCAddr, repl...)
		})
	}
}
