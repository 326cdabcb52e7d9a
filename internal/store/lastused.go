package store

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"time"
)

// DefaultFlushInterval is how often RunLastUsedFlusher writes last-used
// times when given no interval.
const DefaultFlushInterval = time.Minute

// TouchLastUsed records that key id was used at t. It only updates memory;
// FlushLastUsed (run periodically by RunLastUsedFlusher, and by Close) writes
// the batch, so authentication never waits on a database write.
func (s *Store) TouchLastUsed(id string, t time.Time) {
	s.touchMu.Lock()
	if prev, ok := s.touched[id]; !ok || t.After(prev) {
		s.touched[id] = t
	}
	s.touchMu.Unlock()
}

// FlushLastUsed writes the pending last-used times in one transaction. Times
// never move backwards. On failure the batch is kept for the next flush.
func (s *Store) FlushLastUsed(ctx context.Context) error {
	s.touchMu.Lock()
	batch := s.touched
	s.touched = make(map[string]time.Time)
	s.touchMu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		for id, t := range batch {
			ms := t.UnixMilli()
			if _, err := tx.ExecContext(ctx,
				`UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`,
				ms, id, ms); err != nil {
				return fmt.Errorf("store: flush last used: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		// Put the batch back, keeping any newer time recorded meanwhile.
		s.touchMu.Lock()
		newer := s.touched
		s.touched = batch
		for id, t := range newer {
			if prev, ok := s.touched[id]; !ok || t.After(prev) {
				s.touched[id] = t
			}
		}
		s.touchMu.Unlock()
	}
	return err
}

// pendingLastUsed returns a copy of the unflushed batch (for tests).
func (s *Store) pendingLastUsed() map[string]time.Time {
	s.touchMu.Lock()
	defer s.touchMu.Unlock()
	return maps.Clone(s.touched)
}

// RunLastUsedFlusher flushes last-used times every interval (0 means
// DefaultFlushInterval) until ctx ends, then flushes once more and returns
// ctx's error. Its caller owns the goroutine; errors of periodic flushes are
// logged and retried on the next tick.
func (s *Store) RunLastUsedFlusher(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = DefaultFlushInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := s.FlushLastUsed(fctx); err != nil {
				s.log.Warn("store: final last-used flush failed", "err", err)
			}
			cancel()
			return ctx.Err()
		case <-t.C:
			if err := s.FlushLastUsed(ctx); err != nil {
				s.log.Warn("store: last-used flush failed; will retry", "err", err)
			}
		}
	}
}
