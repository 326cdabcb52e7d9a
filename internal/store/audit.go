package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Audit outcomes.
const (
	OutcomeOK     = "ok"
	OutcomeDenied = "denied"
	OutcomeFailed = "failed"
)

// AuditEvent is one row of the append-only audit log.
type AuditEvent struct {
	// Seq is the row's sequence number, assigned on append.
	Seq int64
	// Time is when it happened; the zero time means "now" on append.
	Time time.Time
	// ActorKeyID is the key that acted ("" when unauthenticated; "local:cli"
	// for the offline command).
	ActorKeyID string
	// Action is what was attempted, for example "apikey.create" or an RPC
	// method name.
	Action string
	// Target is what it was done to, for example a key id or session id.
	Target string
	// Outcome is OutcomeOK, OutcomeDenied or OutcomeFailed.
	Outcome string
	// Detail is free text; never a secret.
	Detail string
	// RemoteAddr is the caller's network address, when known.
	RemoteAddr string
}

// maxAuditField bounds every text field so a hostile value cannot bloat rows.
const maxAuditField = 512

func clip(s string) string {
	if len(s) <= maxAuditField {
		return s
	}
	return strings.ToValidUTF8(s[:maxAuditField], "") + "…"
}

func appendAudit(ctx context.Context, tx *sql.Tx, ev *AuditEvent) error {
	if ev == nil {
		return nil
	}
	at := ev.Time
	if at.IsZero() {
		at = time.Now()
	}
	outcome := ev.Outcome
	if outcome == "" {
		outcome = OutcomeOK
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO audit_log(at, actor_key_id, action, target, outcome, detail, remote_addr)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		at.UnixMilli(), clip(ev.ActorKeyID), clip(ev.Action), clip(ev.Target), clip(outcome), clip(ev.Detail), clip(ev.RemoteAddr))
	if err != nil {
		return fmt.Errorf("store: append audit: %w", err)
	}
	return nil
}

// AppendAudit appends one event to the audit log.
func (s *Store) AppendAudit(ctx context.Context, ev AuditEvent) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error { return appendAudit(ctx, tx, &ev) })
}

// AuditFilter selects audit rows. The zero value returns the newest
// DefaultAuditLimit rows.
type AuditFilter struct {
	// AfterSeq returns rows with Seq > AfterSeq, oldest first; 0 returns the
	// newest rows, newest first.
	AfterSeq int64
	// Limit caps the rows returned; 0 means DefaultAuditLimit, and it never
	// exceeds MaxAuditLimit.
	Limit int
	// ActorKeyID keeps only rows of this actor when not empty.
	ActorKeyID string
	// Action keeps only rows with this action when not empty.
	Action string
}

// Audit listing limits.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)

// ListAudit returns audit rows matching f.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultAuditLimit
	}
	limit = min(limit, MaxAuditLimit)
	var (
		where []string
		args  []any
	)
	if f.AfterSeq > 0 {
		where = append(where, "seq > ?")
		args = append(args, f.AfterSeq)
	}
	if f.ActorKeyID != "" {
		where = append(where, "actor_key_id = ?")
		args = append(args, f.ActorKeyID)
	}
	if f.Action != "" {
		where = append(where, "action = ?")
		args = append(args, f.Action)
	}
	q := `SELECT seq, at, actor_key_id, action, target, outcome, detail, remote_addr FROM audit_log`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if f.AfterSeq > 0 {
		q += " ORDER BY seq ASC"
	} else {
		q += " ORDER BY seq DESC"
	}
	q += " LIMIT ?"
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list audit: %w", err)
	}
	defer rows.Close()
	var out []AuditEvent
	for rows.Next() {
		var (
			ev AuditEvent
			at int64
		)
		if err := rows.Scan(&ev.Seq, &at, &ev.ActorKeyID, &ev.Action, &ev.Target, &ev.Outcome, &ev.Detail, &ev.RemoteAddr); err != nil {
			return nil, fmt.Errorf("store: list audit: %w", err)
		}
		ev.Time = time.UnixMilli(at).UTC()
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list audit: %w", err)
	}
	return out, nil
}

// CountAudit counts audit rows.
func (s *Store) CountAudit(ctx context.Context) (int64, error) {
	var n int64
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_log`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count audit: %w", err)
	}
	return n, nil
}
