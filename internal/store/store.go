package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// readerConns is the size of the read pool.
const readerConns = 4

// Options configures Open. The zero value works.
type Options struct {
	// Logger receives lifecycle messages; nil discards them.
	Logger *slog.Logger
}

// Store is the SQLite key store and audit log. It is safe for concurrent use.
// Open starts no goroutines; RunLastUsedFlusher is the only background work,
// and its caller owns it.
type Store struct {
	path string
	log  *slog.Logger
	w    *sql.DB // writer pool: one connection, BEGIN IMMEDIATE
	r    *sql.DB // reader pool: query_only connections

	touchMu sync.Mutex
	touched map[string]time.Time // key id → latest use not yet written

	closeOnce sync.Once
	closeErr  error
}

// DSN returns the modernc.org/sqlite data source name for path. Pragmas are
// DSN entries so that the driver applies them to every pooled connection;
// busy_timeout comes first because switching to WAL can itself meet a lock.
// immediate makes write transactions BEGIN IMMEDIATE; readOnly adds
// query_only.
func DSN(path string, immediate, readOnly bool) string {
	q := []string{
		"_pragma=" + url.QueryEscape("busy_timeout(5000)"),
		"_pragma=" + url.QueryEscape("journal_mode(WAL)"),
		"_pragma=" + url.QueryEscape("synchronous(NORMAL)"),
		"_pragma=" + url.QueryEscape("foreign_keys(1)"),
	}
	if immediate {
		q = append(q, "_txlock=immediate")
	}
	if readOnly {
		q = append(q, "_query_only=1")
	}
	return path + "?" + strings.Join(q, "&")
}

// OpenInDir opens (creating when missing) the store at dir/DBFileName.
func OpenInDir(ctx context.Context, dir string, opts Options) (*Store, error) {
	return Open(ctx, filepath.Join(dir, DBFileName), opts)
}

// Open opens the database at path, creating it (mode 0600) when missing, and
// applies pending migrations. It fails with ErrSchemaTooNew when the database
// was migrated by a newer binary.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	return open(ctx, path, opts, embeddedMigrations())
}

func open(ctx context.Context, path string, opts Options, migrations fs.FS) (*Store, error) {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return nil, fmt.Errorf("store: unusable database path %q", path)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: create directory: %w", err)
	}
	// Create the file ourselves so that it (and the -wal/-shm files SQLite
	// derives from it) is private to the owner.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: create database: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("store: create database: %w", err)
	}

	w, err := sql.Open("sqlite", DSN(path, true, false))
	if err != nil {
		return nil, fmt.Errorf("store: open writer: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	s := &Store{path: path, log: log, w: w, touched: make(map[string]time.Time)}
	if err := s.migrate(ctx, migrations); err != nil {
		_ = w.Close()
		return nil, err
	}

	r, err := sql.Open("sqlite", DSN(path, false, true))
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("store: open reader: %w", err)
	}
	r.SetMaxOpenConns(readerConns)
	r.SetMaxIdleConns(readerConns)
	if err := r.PingContext(ctx); err != nil {
		_ = w.Close()
		_ = r.Close()
		return nil, fmt.Errorf("store: open reader: %w", err)
	}
	s.r = r
	return s, nil
}

// Path returns the database file path.
func (s *Store) Path() string { return s.path }

// Ping checks that both pools can reach the database (for /readyz).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping writer: %w", err)
	}
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping reader: %w", err)
	}
	return nil
}

// Close writes pending last-used times and closes both pools. It is safe to
// call more than once; later calls return the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var errs []error
		if err := s.FlushLastUsed(ctx); err != nil {
			errs = append(errs, err)
		}
		if err := s.r.Close(); err != nil {
			errs = append(errs, fmt.Errorf("store: close reader: %w", err))
		}
		if err := s.w.Close(); err != nil {
			errs = append(errs, fmt.Errorf("store: close writer: %w", err))
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// writeTx runs f in one IMMEDIATE transaction on the writer pool.
func (s *Store) writeTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// millis converts t to the stored form; the zero time is NULL.
func millis(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

// fromMillis converts a stored time back; NULL is the zero time.
func fromMillis(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}
