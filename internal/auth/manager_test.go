package auth

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxgateway/mxgateway/internal/store"
)

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	raw, k := e.mustCreate(t, "reader", Constraints{AllowRead: []string{"A.*"}}, ScopeInvokeRead, ScopeSessionOpen)
	p, err := e.mgr.Authenticate(ctx, raw.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if p.KeyID != k.ID || p.Name != "reader" || !p.Has(ScopeInvokeRead) || p.Has(ScopeInvokeWrite) || !p.AllowRead("a.b") || p.AllowRead("B.c") {
		t.Fatalf("principal = %+v", p)
	}

	cred, _ := ParseKey(raw.Reveal())
	otherRaw, _, _ := validKey(t)
	other, _ := ParseKey(otherRaw.Reveal())
	wrongSecret := FormatKey(cred.ID, other.secret).Reveal()
	unknownID := FormatKey(other.ID, cred.secret).Reveal()

	_, errWrong := e.mgr.Authenticate(ctx, wrongSecret)
	_, errUnknown := e.mgr.Authenticate(ctx, unknownID)
	if !errors.Is(errWrong, ErrInvalidKey) || !errors.Is(errUnknown, ErrInvalidKey) {
		t.Fatalf("wrong secret: %v; unknown id: %v", errWrong, errUnknown)
	}
	if errWrong.Error() != errUnknown.Error() {
		t.Fatalf("unknown id and wrong secret are distinguishable: %q vs %q", errUnknown, errWrong)
	}
	if _, err := e.mgr.Authenticate(ctx, "mxgw_garbage"); !errors.Is(err, ErrMalformedKey) {
		t.Fatalf("malformed: %v", err)
	}
}

// Malformed keys never reach the database: with the store closed, a
// malformed key still fails as malformed, while a well-formed one fails with
// a store error.
func TestMalformedKeyNeedsNoDatabase(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	raw, _ := e.mustCreate(t, "k", Constraints{}, ScopeAdmin)
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.mgr.Authenticate(ctx, "mxgw_nope"); !errors.Is(err, ErrMalformedKey) {
		t.Fatalf("malformed: %v", err)
	}
	_, err := e.mgr.Authenticate(ctx, raw.Reveal())
	if err == nil || errors.Is(err, ErrMalformedKey) || errors.Is(err, ErrInvalidKey) {
		t.Fatalf("closed store: %v, want a store error", err)
	}
}

func TestRevokeAndRotate(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	raw, k := e.mustCreate(t, "svc", Constraints{AllowWrite: []string{"W.*"}}, ScopeInvokeWrite)

	newRaw, nk, err := e.mgr.RotateKey(ctx, k.ID, Actor{KeyID: CLIActor})
	if err != nil {
		t.Fatal(err)
	}
	if nk.ID == k.ID || nk.RotatedFrom != k.ID || nk.Name != "svc" || nk.AllowWrite[0] != "W.*" {
		t.Fatalf("rotated = %+v", nk)
	}
	if _, err := e.mgr.Authenticate(ctx, raw.Reveal()); !errors.Is(err, ErrKeyRevoked) {
		t.Fatalf("old key after rotate: %v", err)
	}
	p, err := e.mgr.Authenticate(ctx, newRaw.Reveal())
	if err != nil || p.KeyID != nk.ID || !p.Has(ScopeInvokeWrite) || p.AllowWrite("X.y") {
		t.Fatalf("new key: %+v, %v", p, err)
	}
	if _, _, err := e.mgr.RotateKey(ctx, k.ID, Actor{}); !errors.Is(err, ErrAlreadyRevoked) {
		t.Fatalf("rotate revoked: %v", err)
	}
	if _, err := e.mgr.RevokeKey(ctx, nk.ID, Actor{KeyID: CLIActor}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.mgr.Authenticate(ctx, newRaw.Reveal()); !errors.Is(err, ErrKeyRevoked) {
		t.Fatalf("revoked: %v", err)
	}
	if _, err := e.mgr.RevokeKey(ctx, nk.ID, Actor{}); !errors.Is(err, ErrAlreadyRevoked) {
		t.Fatalf("second revoke: %v", err)
	}
	if _, err := e.mgr.RevokeKey(ctx, "aaaaaaaaaaaaaaaa", Actor{}); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	evs, _ := e.mgr.ListAudit(ctx, store.AuditFilter{}) // newest first
	var got []string
	for _, ev := range slices.Backward(evs) {
		got = append(got, ev.Action+"/"+ev.Outcome)
	}
	want := "apikey.create/ok apikey.rotate/ok apikey.rotate/failed apikey.revoke/ok apikey.revoke/failed"
	if strings.Join(got, " ") != want {
		t.Fatalf("audit = %v\nwant    %s", got, want)
	}
}

func TestCreateValidation(t *testing.T) {
	e := newEnv(t)
	cases := []KeySpec{
		{Name: "", Scopes: []Scope{ScopeAdmin}},
		{Name: "x", Scopes: nil},
		{Name: "x", Scopes: []Scope{"root"}},
		{Name: strings.Repeat("n", MaxNameLen+1), Scopes: []Scope{ScopeAdmin}},
		{Name: "a\nb", Scopes: []Scope{ScopeAdmin}},
		{Name: "x", Scopes: []Scope{ScopeAdmin}, Constraints: Constraints{AllowRead: []string{""}}},
		{Name: "x", Scopes: []Scope{ScopeAdmin}, Constraints: Constraints{AllowWrite: []string{`a\`}}},
	}
	for i, spec := range cases {
		if _, _, err := e.mgr.CreateKey(context.Background(), spec, Actor{}); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("case %d: %v, want ErrInvalidSpec", i, err)
		}
	}
	if n, _ := e.store.CountKeys(context.Background(), false); n != 0 {
		t.Fatalf("%d keys stored by failed creates", n)
	}
}

func TestLastUsedIsRecordedOffThePath(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	raw, k := e.mustCreate(t, "k", Constraints{}, ScopeAdmin)
	if _, err := e.mgr.Authenticate(ctx, raw.Reveal()); err != nil {
		t.Fatal(err)
	}
	got, _ := e.store.GetKey(ctx, k.ID)
	if !got.LastUsedAt.IsZero() {
		t.Fatal("authentication wrote last_used_at synchronously")
	}
	if err := e.store.FlushLastUsed(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ = e.store.GetKey(ctx, k.ID)
	if !got.LastUsedAt.Equal(e.clock.t) {
		t.Fatalf("last used = %v, want %v", got.LastUsedAt, e.clock.t)
	}
}

// The database, its WAL and its shared-memory file never contain a secret,
// in any encoding we know of.
func TestDatabaseNeverContainsSecrets(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	var secrets [][]byte
	add := func(raw RawKey) {
		c, err := ParseKey(raw.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, []byte(raw.Reveal()), []byte(raw.Reveal()[len(KeyPrefix)+KeyIDLen+1:]), c.secret)
	}
	for i := range 5 {
		raw, k := e.mustCreate(t, "k", Constraints{}, ScopeAdmin)
		add(raw)
		if _, err := e.mgr.Authenticate(ctx, raw.Reveal()); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			nr, _, err := e.mgr.RotateKey(ctx, k.ID, Actor{KeyID: CLIActor})
			if err != nil {
				t.Fatal(err)
			}
			add(nr)
		}
	}
	raw, _, err := EnsureBootstrapKey(ctx, e.mgr, e.dir) // no-op: keys exist
	if err != nil || raw != "" {
		t.Fatalf("bootstrap with keys present: %v", err)
	}
	if err := e.store.FlushLastUsed(ctx); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(e.store.Path() + "*")
	if len(files) < 2 {
		t.Fatalf("expected the database and its WAL, found %v", files)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if bytes.Contains(data, s) {
				t.Fatalf("%s contains a secret", filepath.Base(f))
			}
		}
	}
	// The HMACs are there: the check looks at the right bytes.
	keys, _ := e.store.ListKeys(ctx)
	found := false
	for _, f := range files {
		data, _ := os.ReadFile(f)
		found = found || bytes.Contains(data, keys[0].SecretHMAC)
	}
	if !found {
		t.Fatal("no HMAC found in the database files: the grep is looking at the wrong thing")
	}
}

// Nothing the manager, store or guard logs contains a secret, at debug level.
func TestLogsNeverContainSecrets(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir := t.TempDir()
	st, err := store.Open(ctx, filepath.Join(dir, store.DBFileName), store.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pep, err := LoadPeppers(PepperConfig{DataDir: dir, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(ManagerConfig{Store: st, Peppers: pep, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGuard(GuardConfig{Manager: m, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	boot, _, err := EnsureBootstrapKey(ctx, m, dir)
	if err != nil {
		t.Fatal(err)
	}
	raw, k, err := m.CreateKey(ctx, KeySpec{Name: "r", Scopes: []Scope{ScopeInvokeRead}}, Actor{KeyID: CLIActor})
	if err != nil {
		t.Fatal(err)
	}
	rot, _, err := m.RotateKey(ctx, k.ID, Actor{KeyID: CLIActor})
	if err != nil {
		t.Fatal(err)
	}
	// Denials are logged: old (revoked) key, wrong secret, missing scope.
	for _, key := range []RawKey{raw, rot, boot} {
		c, _ := ParseKey(key.Reveal())
		wrong := FormatKey(c.ID, make([]byte, SecretBytes)).Reveal()
		for _, k := range []string{key.Reveal(), wrong} {
			_, _ = g.Authorize(incoming(ctx, "authorization", "Bearer "+k), "/mxgateway.v1.Admin/ListApiKeys", nil)
		}
	}
	log.Info("principal", "p", NewPrincipal("x", "y", nil, Constraints{}), "key", raw)
	out := buf.String()
	if !strings.Contains(out, "auth: call denied") || !strings.Contains(out, "API key created") {
		t.Fatalf("expected lifecycle and denial logs, got:\n%s", out)
	}
	for _, key := range []RawKey{raw, rot, boot} {
		secret := key.Reveal()[len(KeyPrefix)+KeyIDLen+1:]
		if strings.Contains(out, secret) {
			t.Fatalf("log contains a secret:\n%s", out)
		}
	}
	pepData, _ := os.ReadFile(filepath.Join(dir, PepperFileName))
	for _, line := range strings.Split(string(pepData), "\n") {
		if v, ok := strings.CutPrefix(line, "1:"); ok && strings.Contains(out, v) {
			t.Fatal("log contains the pepper")
		}
	}
}

func TestBootstrapKey(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	raw, created, err := EnsureBootstrapKey(ctx, e.mgr, e.dir)
	if err != nil || !created || raw == "" {
		t.Fatalf("first run: %v %v", created, err)
	}
	data, err := os.ReadFile(AdminKeyPath(e.dir))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(data)) != raw.Reveal() {
		t.Fatal("admin.key does not hold the key")
	}
	if fi, _ := os.Stat(AdminKeyPath(e.dir)); !isWindows() && fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.key mode %v", fi.Mode().Perm())
	}
	p, err := e.mgr.Authenticate(ctx, strings.TrimSpace(string(data)))
	if err != nil || !p.IsAdmin() {
		t.Fatalf("bootstrap key: %+v, %v", p, err)
	}
	// Second run: nothing new, file untouched.
	e.clock.t = e.clock.t.Add(time.Hour)
	raw2, created, err := EnsureBootstrapKey(ctx, e.mgr, e.dir)
	if err != nil || created || raw2 != "" {
		t.Fatalf("second run: %v %v", created, err)
	}
	// Revoking every key never brings a bootstrap key back.
	if _, err := e.mgr.RevokeKey(ctx, p.KeyID, Actor{}); err != nil {
		t.Fatal(err)
	}
	if _, created, _ := EnsureBootstrapKey(ctx, e.mgr, e.dir); created {
		t.Fatal("bootstrap key recreated after revocation")
	}
	evs, _ := e.mgr.ListAudit(ctx, store.AuditFilter{Action: ActionBootstrap})
	if len(evs) != 1 {
		t.Fatalf("bootstrap audit rows = %d", len(evs))
	}
}
