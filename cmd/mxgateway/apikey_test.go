package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/mxgateway/mxgateway/internal/auth"
	"github.com/mxgateway/mxgateway/internal/store"
)

func runKey(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = apikeyMain(context.Background(), append(args, "--data-dir", dir), &o, &e)
	return o.String(), e.String(), code
}

func authenticate(t *testing.T, dir, raw string) (*auth.Principal, error) {
	t.Helper()
	m, closeStore, err := openManager(context.Background(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	return m.Authenticate(context.Background(), raw)
}

func TestAPIKeyCommands(t *testing.T) {
	dir := t.TempDir()

	// create (text): stdout is exactly the key.
	out, errOut, code := runKey(t, dir, "create", "--name", "reader", "--scopes", "session:open,invoke:read",
		"--allow-read", "Tank1.*", "--allow-read", "Tank2.*,Tank3.PV")
	if code != 0 {
		t.Fatalf("create: %d %s", code, errOut)
	}
	key := strings.TrimSpace(out)
	if _, err := auth.ParseKey(key); err != nil {
		t.Fatalf("create printed %q: %v", out, err)
	}
	p, err := authenticate(t, dir, key)
	if err != nil || !p.Has(auth.ScopeInvokeRead) || p.Has(auth.ScopeInvokeWrite) || !p.AllowRead("tank3.pv") || p.AllowRead("Tank4.PV") {
		t.Fatalf("created key: %+v %v", p, err)
	}
	secret := key[len(auth.KeyPrefix)+auth.KeyIDLen+1:]

	// create (json).
	out, _, code = runKey(t, dir, "create", "--json", "--name", "writer", "--scopes", "invoke:write")
	var created struct {
		ID, Key string
		Scopes  []string
	}
	if code != 0 || json.Unmarshal([]byte(out), &created) != nil || created.Key == "" || created.ID == "" {
		t.Fatalf("create --json: %d %q", code, out)
	}

	// list never shows secrets.
	for _, args := range [][]string{{"list"}, {"list", "--json"}, {"audit"}, {"audit", "--json"}} {
		out, errOut, code := runKey(t, dir, args...)
		if code != 0 {
			t.Fatalf("%v: %d %s", args, code, errOut)
		}
		if strings.Contains(out+errOut, secret) || strings.Contains(out+errOut, created.Key[len(auth.KeyPrefix)+auth.KeyIDLen+1:]) {
			t.Fatalf("%v shows a secret", args)
		}
		if !strings.Contains(out, created.ID) {
			t.Fatalf("%v does not show key %s:\n%s", args, created.ID, out)
		}
	}

	// rotate (id after or before flags): old fails, new works.
	out, _, code = runKey(t, dir, "rotate", created.ID, "--json")
	if code != 0 {
		t.Fatalf("rotate: %d", code)
	}
	var rot map[string]any
	_ = json.Unmarshal([]byte(out), &rot)
	newKey, _ := rot["key"].(string)
	if rot["rotated_from"] != created.ID || newKey == "" {
		t.Fatalf("rotate --json: %s", out)
	}
	if _, err := authenticate(t, dir, created.Key); !errors.Is(err, auth.ErrKeyRevoked) {
		t.Fatalf("old key after rotate: %v", err)
	}
	if _, err := authenticate(t, dir, newKey); err != nil {
		t.Fatalf("new key: %v", err)
	}

	// revoke, twice.
	id := rot["id"].(string)
	if _, errOut, code := runKey(t, dir, "revoke", id); code != 0 {
		t.Fatalf("revoke: %s", errOut)
	}
	out, _, code = runKey(t, dir, "revoke", "--json", id)
	if code != 0 || !strings.Contains(out, `"already_revoked": true`) {
		t.Fatalf("second revoke: %d %s", code, out)
	}
	if _, err := authenticate(t, dir, newKey); !errors.Is(err, auth.ErrKeyRevoked) {
		t.Fatalf("revoked key: %v", err)
	}
}

func TestAPIKeyErrors(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"create", "--name", "x"},                     // no scopes
		{"create", "--scopes", "admin"},               // no name
		{"create", "--name", "x", "--scopes", "root"}, // unknown scope
		{"revoke", "aaaaaaaaaaaaaaaa"},                // unknown id
		{"rotate", "aaaaaaaaaaaaaaaa"},                // unknown id
		{"revoke"},                                    // no id
		{"list", "extra"},                             // stray argument
		{"frobnicate"},                                // unknown command
		{"create", "--name", "x", "--scopes", "admin", "--allow-write", `a\`}, // bad pattern
	} {
		if _, _, code := runKey(t, dir, args...); code == 0 {
			t.Errorf("%v succeeded", args)
		}
	}
	st, err := store.OpenInDir(context.Background(), dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, _ := st.CountKeys(context.Background(), false); n != 0 {
		t.Fatalf("%d keys created by failing commands", n)
	}
}
