package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/mxgateway/mxgateway/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), DBFileName), Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestOpenFresh(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v != LatestSchemaVersion() || v < 1 {
		t.Fatalf("schema version = %d, want %d", v, LatestSchemaVersion())
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(s.Path())
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Fatalf("database mode = %v, want owner-only", fi.Mode().Perm())
		}
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// Every pooled connection, writer and reader alike, must carry the DSN pragmas.
func TestPragmasOnEveryConnection(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	want := map[string]string{"journal_mode": "wal", "busy_timeout": "5000", "foreign_keys": "1", "synchronous": "1"}
	check := func(label string, q func(string) (string, error)) {
		for p, w := range want {
			got, err := q("PRAGMA " + p)
			if err != nil {
				t.Fatalf("%s %s: %v", label, p, err)
			}
			if got != w {
				t.Errorf("%s: %s = %q, want %q", label, p, got, w)
			}
		}
	}
	check("writer", func(q string) (string, error) {
		var v string
		err := s.w.QueryRowContext(ctx, q).Scan(&v)
		return v, err
	})
	// Hold several reader connections at once so more than one is checked.
	conns := make([]interface{ Close() error }, 0, readerConns)
	for i := range readerConns {
		c, err := s.r.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		check(fmt.Sprintf("reader %d", i), func(q string) (string, error) {
			var v string
			err := c.QueryRowContext(ctx, q).Scan(&v)
			return v, err
		})
		var qo string
		if err := c.QueryRowContext(ctx, "PRAGMA query_only").Scan(&qo); err != nil || qo != "1" {
			t.Errorf("reader %d query_only = %q, %v", i, qo, err)
		}
	}
	for _, c := range conns {
		_ = c.Close()
	}
}

func TestReaderCannotWrite(t *testing.T) {
	s := openTemp(t)
	if _, err := s.r.ExecContext(context.Background(), `INSERT INTO audit_log(at, action, outcome) VALUES (1, 'x', 'ok')`); err == nil {
		t.Fatal("write through the reader pool succeeded")
	}
}

func TestReopenIsIdempotent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), DBFileName)
	for i := range 3 {
		s, err := Open(ctx, path, Options{})
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		if i == 0 {
			if err := s.CreateKey(ctx, testKey("k1"), nil); err != nil {
				t.Fatal(err)
			}
		}
		var rows int
		if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_version`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if rows != LatestSchemaVersion() {
			t.Fatalf("open %d: %d schema_version rows, want %d", i, rows, LatestSchemaVersion())
		}
		if n, err := s.CountKeys(ctx, false); err != nil || n != 1 {
			t.Fatalf("open %d: CountKeys = %d, %v", i, n, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), DBFileName)
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO schema_version(version, name, applied_at) VALUES (?, 'future.sql', 0)`, LatestSchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, path, Options{})
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open = %v, want ErrSchemaTooNew", err)
	}
}

func TestIncrementalMigrations(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), DBFileName)
	one := fstest.MapFS{"0001_a.sql": {Data: []byte(`CREATE TABLE a (x INTEGER);`)}}
	two := fstest.MapFS{
		"0001_a.sql": {Data: []byte(`CREATE TABLE a (x INTEGER);`)},
		"0002_b.sql": {Data: []byte(`CREATE TABLE b (y INTEGER); INSERT INTO a VALUES (7);`)},
	}
	s, err := open(ctx, path, Options{}, one)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	s, err = open(ctx, path, Options{}, two)
	if err != nil {
		t.Fatal(err)
	}
	var x int
	if err := s.r.QueryRowContext(ctx, `SELECT x FROM a`).Scan(&x); err != nil || x != 7 {
		t.Fatalf("second migration not applied: %d, %v", x, err)
	}
	_ = s.Close()
	// Back to the older set: the database is now too new for it.
	if _, err := open(ctx, path, Options{}, one); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("older binary: %v, want ErrSchemaTooNew", err)
	}
}

func TestFailedMigrationRollsBack(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), DBFileName)
	bad := fstest.MapFS{
		"0001_a.sql": {Data: []byte(`CREATE TABLE a (x INTEGER);`)},
		"0002_b.sql": {Data: []byte(`CREATE TABLE b (y INTEGER); INSERT INTO nope VALUES (1);`)},
	}
	if _, err := open(ctx, path, Options{}, bad); err == nil {
		t.Fatal("broken migration succeeded")
	}
	good := fstest.MapFS{"0001_a.sql": bad["0001_a.sql"]}
	s, err := open(ctx, path, Options{}, good)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema WHERE name = 'b'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("table b of the failed migration exists: %d, %v", n, err)
	}
}

func TestMigrationNumbering(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"gap":      {"0001_a.sql": {Data: []byte(`SELECT 1;`)}, "0003_c.sql": {Data: []byte(`SELECT 1;`)}},
		"dup":      {"0001_a.sql": {Data: []byte(`SELECT 1;`)}, "1_b.sql": {Data: []byte(`SELECT 1;`)}},
		"unnamed":  {"0001.sql": {Data: []byte(`SELECT 1;`)}},
		"notint":   {"x_a.sql": {Data: []byte(`SELECT 1;`)}},
		"nonempty": {},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadMigrations(fsys)
			if name == "nonempty" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted bad migration set")
			}
		})
	}
}

func TestPathValidation(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro"} {
		if _, err := Open(context.Background(), p, Options{}); err == nil {
			t.Errorf("Open(%q) succeeded", p)
		}
	}
}

func testKey(id string) Key {
	return Key{
		ID:            id,
		Name:          "name-" + id,
		SecretHMAC:    bytes.Repeat([]byte{0xab}, 32),
		PepperVersion: 1,
		Scopes:        []string{"session:open", "invoke:read"},
		AllowRead:     []string{"TIC*.PV"},
		AllowWrite:    nil,
		CreatedAt:     time.UnixMilli(1_700_000_000_000).UTC(),
	}
}

func TestKeyLifecycle(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	k := testKey("abc")
	if err := s.CreateKey(ctx, k, &AuditEvent{ActorKeyID: "local:cli", Action: "apikey.create", Target: "abc"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateKey(ctx, k, nil); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate create = %v, want ErrExists", err)
	}
	got, err := s.GetKey(ctx, "abc")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != k.Name || !bytes.Equal(got.SecretHMAC, k.SecretHMAC) || got.PepperVersion != 1 ||
		len(got.Scopes) != 2 || got.AllowRead[0] != "TIC*.PV" || len(got.AllowWrite) != 0 ||
		!got.CreatedAt.Equal(k.CreatedAt) || got.Revoked() || !got.LastUsedAt.IsZero() {
		t.Fatalf("GetKey = %+v", got)
	}
	if _, err := s.GetKey(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetKey(nope) = %v", err)
	}

	// Rotate: the old key is revoked, the new one inherits name, scopes and
	// constraints and points back at the old one.
	at := k.CreatedAt.Add(time.Hour)
	nk, err := s.RotateKey(ctx, "abc", Key{ID: "def", SecretHMAC: []byte{1, 2, 3}, PepperVersion: 2, CreatedAt: at},
		&AuditEvent{Action: "apikey.rotate", Target: "abc"})
	if err != nil {
		t.Fatal(err)
	}
	if nk.ID != "def" || nk.Name != k.Name || nk.RotatedFrom != "abc" || nk.PepperVersion != 2 || nk.AllowRead[0] != "TIC*.PV" {
		t.Fatalf("rotated key = %+v", nk)
	}
	old, _ := s.GetKey(ctx, "abc")
	if !old.Revoked() || !old.RevokedAt.Equal(at) {
		t.Fatalf("old key after rotate: %+v", old)
	}
	if _, err := s.RotateKey(ctx, "abc", Key{ID: "ghi", SecretHMAC: []byte{1}, CreatedAt: at}, nil); !errors.Is(err, ErrRevoked) {
		t.Fatalf("rotate revoked = %v", err)
	}
	if _, err := s.RotateKey(ctx, "zzz", Key{ID: "ghi", SecretHMAC: []byte{1}, CreatedAt: at}, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rotate unknown = %v", err)
	}

	if _, err := s.RevokeKey(ctx, "def", at, &AuditEvent{Action: "apikey.revoke", Target: "def"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RevokeKey(ctx, "def", at, nil); !errors.Is(err, ErrRevoked) {
		t.Fatalf("second revoke = %v", err)
	}
	if _, err := s.RevokeKey(ctx, "nope", at, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke unknown = %v", err)
	}

	keys, err := s.ListKeys(ctx)
	if err != nil || len(keys) != 2 {
		t.Fatalf("ListKeys = %d, %v", len(keys), err)
	}
	if n, _ := s.CountKeys(ctx, true); n != 0 {
		t.Fatalf("active keys = %d", n)
	}
	if n, _ := s.CountKeys(ctx, false); n != 2 {
		t.Fatalf("all keys = %d", n)
	}
	// Only the successful operations were audited: create, rotate, revoke.
	evs, err := s.ListAudit(ctx, AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range evs {
		actions = append(actions, e.Action)
	}
	if fmt.Sprint(actions) != "[apikey.revoke apikey.rotate apikey.create]" {
		t.Fatalf("audit actions = %v", actions)
	}
}

func TestAuditAppendOnly(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	if err := s.AppendAudit(ctx, AuditEvent{Action: "x", Outcome: OutcomeDenied}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE audit_log SET outcome = 'ok'`); err == nil {
		t.Fatal("audit row updated")
	}
	if _, err := s.w.ExecContext(ctx, `DELETE FROM audit_log`); err == nil {
		t.Fatal("audit row deleted")
	}
	if n, _ := s.CountAudit(ctx); n != 1 {
		t.Fatalf("CountAudit = %d", n)
	}
}

func TestListAudit(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	for i := range 10 {
		actor := "a"
		if i%2 == 1 {
			actor = "b"
		}
		if err := s.AppendAudit(ctx, AuditEvent{ActorKeyID: actor, Action: fmt.Sprintf("act%d", i%3), Detail: string(bytes.Repeat([]byte("x"), 2000))}); err != nil {
			t.Fatal(err)
		}
	}
	newest, err := s.ListAudit(ctx, AuditFilter{Limit: 3})
	if err != nil || len(newest) != 3 || newest[0].Seq != 10 || newest[2].Seq != 8 {
		t.Fatalf("newest = %+v, %v", newest, err)
	}
	if len(newest[0].Detail) > maxAuditField+len("…") {
		t.Fatalf("detail not clipped: %d bytes", len(newest[0].Detail))
	}
	after, _ := s.ListAudit(ctx, AuditFilter{AfterSeq: 7})
	if len(after) != 3 || after[0].Seq != 8 {
		t.Fatalf("after 7 = %+v", after)
	}
	b, _ := s.ListAudit(ctx, AuditFilter{ActorKeyID: "b"})
	if len(b) != 5 {
		t.Fatalf("actor b rows = %d", len(b))
	}
	a0, _ := s.ListAudit(ctx, AuditFilter{ActorKeyID: "a", Action: "act0"})
	if len(a0) != 2 { // i = 0, 6
		t.Fatalf("actor a act0 rows = %d", len(a0))
	}
}

func TestLastUsedIsBatched(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	if err := s.CreateKey(ctx, testKey("k"), nil); err != nil {
		t.Fatal(err)
	}
	t1 := time.UnixMilli(1_800_000_000_000).UTC()
	s.TouchLastUsed("k", t1)
	s.TouchLastUsed("k", t1.Add(-time.Hour)) // older: ignored
	if k, _ := s.GetKey(ctx, "k"); !k.LastUsedAt.IsZero() {
		t.Fatal("TouchLastUsed wrote to the database")
	}
	if err := s.FlushLastUsed(ctx); err != nil {
		t.Fatal(err)
	}
	if k, _ := s.GetKey(ctx, "k"); !k.LastUsedAt.Equal(t1) {
		t.Fatalf("LastUsedAt = %v, want %v", k.LastUsedAt, t1)
	}
	// An older time never moves it backwards, even across flushes.
	s.TouchLastUsed("k", t1.Add(-time.Minute))
	if err := s.FlushLastUsed(ctx); err != nil {
		t.Fatal(err)
	}
	if k, _ := s.GetKey(ctx, "k"); !k.LastUsedAt.Equal(t1) {
		t.Fatalf("LastUsedAt moved back to %v", k.LastUsedAt)
	}
	if len(s.pendingLastUsed()) != 0 {
		t.Fatal("batch not emptied by flush")
	}
}

func TestLastUsedFlusher(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	if err := s.CreateKey(ctx, testKey("k"), nil); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.RunLastUsedFlusher(fctx, 10*time.Millisecond) }()
	t1 := time.UnixMilli(1_800_000_000_000).UTC()
	s.TouchLastUsed("k", t1)
	testutil.Eventually(t, 10*time.Second, func() error {
		k, err := s.GetKey(ctx, "k")
		if err != nil {
			return err
		}
		if !k.LastUsedAt.Equal(t1) {
			return fmt.Errorf("LastUsedAt = %v", k.LastUsedAt)
		}
		return nil
	})
	// A touch just before cancel is written by the final flush.
	t2 := t1.Add(time.Second)
	s.TouchLastUsed("k", t2)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("flusher returned %v", err)
	}
	if k, _ := s.GetKey(ctx, "k"); !k.LastUsedAt.Equal(t2) {
		t.Fatalf("final flush missing: %v", k.LastUsedAt)
	}
}

func TestCloseFlushesAndIsIdempotent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), DBFileName)
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateKey(ctx, testKey("k"), nil); err != nil {
		t.Fatal(err)
	}
	t1 := time.UnixMilli(1_800_000_000_000).UTC()
	s.TouchLastUsed("k", t1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	s, err = Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if k, _ := s.GetKey(ctx, "k"); !k.LastUsedAt.Equal(t1) {
		t.Fatalf("Close did not flush: %v", k.LastUsedAt)
	}
}

// Two stores on one file (the gateway and the apikey command) write at the
// same time; busy_timeout and IMMEDIATE transactions make them wait, not fail.
func TestConcurrentProcessesWrite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), DBFileName)
	a, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i, s := range []*Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				if err := s.CreateKey(ctx, testKey(fmt.Sprintf("s%d-%d", i, j)), &AuditEvent{Action: "x"}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n, _ := a.CountKeys(ctx, false); n != 100 {
		t.Fatalf("keys = %d, want 100", n)
	}
}

func TestEnsureDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := EnsureDataDir(dir); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := EnsureDataDir(dir); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(dir)
		if fi.Mode().Perm() != 0o700 {
			t.Fatalf("mode = %v, want 0700", fi.Mode().Perm())
		}
	}
}
