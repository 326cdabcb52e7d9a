package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Key is one API key row. It holds the HMAC of the secret, never the secret.
type Key struct {
	// ID is the public lookup id (the <id> of mxgw_<id>_<secret>).
	ID string
	// Name is the display name.
	Name string
	// SecretHMAC is HMAC-SHA256(pepper, secret).
	SecretHMAC []byte
	// PepperVersion names the pepper SecretHMAC was computed with.
	PepperVersion int
	// Scopes are the granted scopes.
	Scopes []string
	// AllowRead holds reference patterns allowed for add/subscribe/read;
	// empty allows every reference.
	AllowRead []string
	// AllowWrite holds reference patterns allowed for writes; empty allows
	// every reference.
	AllowWrite []string
	// CreatedAt is the creation time.
	CreatedAt time.Time
	// LastUsedAt is the last successful authentication; zero when never
	// (written in batches, so it can lag by the flush interval).
	LastUsedAt time.Time
	// RevokedAt is the revocation time; zero while the key is active.
	RevokedAt time.Time
	// RotatedFrom is the id of the key this one replaced, if any.
	RotatedFrom string
}

// Revoked reports whether the key has been revoked.
func (k *Key) Revoked() bool { return !k.RevokedAt.IsZero() }

// LogValue logs the key without its HMAC.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", k.ID),
		slog.String("name", k.Name),
		slog.Any("scopes", k.Scopes),
		slog.Bool("revoked", k.Revoked()),
	)
}

const keyColumns = `id, name, secret_hmac, pepper_version, scopes, allow_read, allow_write,
	created_at, last_used_at, revoked_at, rotated_from`

type rowScanner interface {
	Scan(dest ...any) error
}

func scanKey(row rowScanner) (Key, error) {
	var (
		k                             Key
		scopes, allowRead, allowWrite string
		created                       int64
		lastUsed, revoked             sql.NullInt64
		rotatedFrom                   sql.NullString
	)
	if err := row.Scan(&k.ID, &k.Name, &k.SecretHMAC, &k.PepperVersion, &scopes, &allowRead, &allowWrite,
		&created, &lastUsed, &revoked, &rotatedFrom); err != nil {
		return Key{}, err
	}
	if err := json.Unmarshal([]byte(scopes), &k.Scopes); err != nil {
		return Key{}, fmt.Errorf("store: key %s scopes: %w", k.ID, err)
	}
	if err := json.Unmarshal([]byte(allowRead), &k.AllowRead); err != nil {
		return Key{}, fmt.Errorf("store: key %s allow_read: %w", k.ID, err)
	}
	if err := json.Unmarshal([]byte(allowWrite), &k.AllowWrite); err != nil {
		return Key{}, fmt.Errorf("store: key %s allow_write: %w", k.ID, err)
	}
	k.CreatedAt = time.UnixMilli(created).UTC()
	k.LastUsedAt = fromMillis(lastUsed)
	k.RevokedAt = fromMillis(revoked)
	k.RotatedFrom = rotatedFrom.String
	return k, nil
}

func jsonList(v []string) (string, error) {
	if v == nil {
		v = []string{}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func insertKey(ctx context.Context, tx *sql.Tx, k *Key) error {
	if k.ID == "" || len(k.SecretHMAC) == 0 || k.CreatedAt.IsZero() {
		return errors.New("store: key needs id, secret hmac and creation time")
	}
	scopes, err := jsonList(k.Scopes)
	if err != nil {
		return fmt.Errorf("store: encode scopes: %w", err)
	}
	ar, err := jsonList(k.AllowRead)
	if err != nil {
		return fmt.Errorf("store: encode allow_read: %w", err)
	}
	aw, err := jsonList(k.AllowWrite)
	if err != nil {
		return fmt.Errorf("store: encode allow_write: %w", err)
	}
	var rotated sql.NullString
	if k.RotatedFrom != "" {
		rotated = sql.NullString{String: k.RotatedFrom, Valid: true}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO api_keys(`+keyColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.Name, k.SecretHMAC, k.PepperVersion, scopes, ar, aw,
		k.CreatedAt.UnixMilli(), millis(k.LastUsedAt), millis(k.RevokedAt), rotated)
	if err != nil {
		var se *sqlite.Error
		if errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE) {
			return fmt.Errorf("%w: %s", ErrExists, k.ID)
		}
		return fmt.Errorf("store: insert key: %w", err)
	}
	return nil
}

// CreateKey inserts k and, in the same transaction, appends audit when it
// is not nil. It fails with ErrExists when the id is taken.
func (s *Store) CreateKey(ctx context.Context, k Key, audit *AuditEvent) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		if err := insertKey(ctx, tx, &k); err != nil {
			return err
		}
		return appendAudit(ctx, tx, audit)
	})
}

// GetKey returns the key with the given id, or ErrNotFound.
func (s *Store) GetKey(ctx context.Context, id string) (Key, error) {
	k, err := scanKey(s.r.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Key{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return Key{}, fmt.Errorf("store: get key: %w", err)
	}
	return k, nil
}

// ListKeys returns every key, revoked ones included, oldest first.
func (s *Store) ListKeys(ctx context.Context) ([]Key, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+keyColumns+` FROM api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("store: list keys: %w", err)
	}
	defer rows.Close()
	var out []Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list keys: %w", err)
	}
	return out, nil
}

// CountKeys counts keys; activeOnly leaves out revoked ones.
func (s *Store) CountKeys(ctx context.Context, activeOnly bool) (int, error) {
	q := `SELECT COUNT(*) FROM api_keys`
	if activeOnly {
		q += ` WHERE revoked_at IS NULL`
	}
	var n int
	if err := s.r.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count keys: %w", err)
	}
	return n, nil
}

// lockKey reads an active key inside a write transaction.
func lockKey(ctx context.Context, tx *sql.Tx, id string) (Key, error) {
	k, err := scanKey(tx.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Key{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return Key{}, fmt.Errorf("store: read key: %w", err)
	}
	if k.Revoked() {
		return k, fmt.Errorf("%w: %s", ErrRevoked, id)
	}
	return k, nil
}

// RevokeKey marks the key revoked at the given time and appends audit in the
// same transaction. It fails with ErrNotFound, or with ErrRevoked (returning
// the key as stored) when it was already revoked.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time, audit *AuditEvent) (Key, error) {
	var out Key
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		k, err := lockKey(ctx, tx, id)
		if err != nil {
			out = k
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ?`, at.UnixMilli(), id); err != nil {
			return fmt.Errorf("store: revoke key: %w", err)
		}
		k.RevokedAt = time.UnixMilli(at.UnixMilli()).UTC()
		out = k
		return appendAudit(ctx, tx, audit)
	})
	return out, err
}

// RotateKey replaces the active key oldID with repl in one transaction: the
// old key is revoked at repl.CreatedAt and repl is inserted with the old
// key's name, scopes and constraints and RotatedFrom = oldID. The caller
// supplies repl's ID, SecretHMAC, PepperVersion and CreatedAt. It returns the
// new key as stored.
func (s *Store) RotateKey(ctx context.Context, oldID string, repl Key, audit *AuditEvent) (Key, error) {
	var out Key
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		old, err := lockKey(ctx, tx, oldID)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ?`, repl.CreatedAt.UnixMilli(), oldID); err != nil {
			return fmt.Errorf("store: revoke rotated key: %w", err)
		}
		nk := Key{
			ID:            repl.ID,
			Name:          old.Name,
			SecretHMAC:    repl.SecretHMAC,
			PepperVersion: repl.PepperVersion,
			Scopes:        old.Scopes,
			AllowRead:     old.AllowRead,
			AllowWrite:    old.AllowWrite,
			CreatedAt:     time.UnixMilli(repl.CreatedAt.UnixMilli()).UTC(),
			RotatedFrom:   oldID,
		}
		if err := insertKey(ctx, tx, &nk); err != nil {
			return err
		}
		out = nk
		return appendAudit(ctx, tx, audit)
	})
	return out, err
}

// CreateFirstKey inserts k only when the store holds no key at all (revoked
// keys count), checking and inserting in one IMMEDIATE transaction so that
// two processes starting together cannot both create one. It reports whether
// it inserted.
func (s *Store) CreateFirstKey(ctx context.Context, k Key, audit *AuditEvent) (bool, error) {
	created := false
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM api_keys`).Scan(&n); err != nil {
			return fmt.Errorf("store: count keys: %w", err)
		}
		if n > 0 {
			return nil
		}
		if err := insertKey(ctx, tx, &k); err != nil {
			return err
		}
		created = true
		return appendAudit(ctx, tx, audit)
	})
	return created, err
}
