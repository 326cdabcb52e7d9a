package logging

import (
	"context"
	"log/slog"
	"sync"
	"testing"
)

// recorder is a slog handler that keeps every record it is given.
type recorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.recs = append(r.recs, rec.Clone())
	r.mu.Unlock()
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// reemitOne re-emits line and returns the one record it produced.
func reemitOne(t *testing.T, line string) (slog.Record, []slog.Attr) {
	t.Helper()
	rec := &recorder{}
	ReemitWorkerLine(slog.New(rec), []byte(line))
	if len(rec.recs) != 1 {
		t.Fatalf("%q gave %d records, want 1", line, len(rec.recs))
	}
	r := rec.recs[0]
	var attrs []slog.Attr
	r.Attrs(func(a slog.Attr) bool { attrs = append(attrs, a); return true })
	return r, attrs
}

// A worker's own component attribute must not collide with the gateway
// logger's, which would write the JSON key twice.
func TestReemitRenamesComponent(t *testing.T) {
	r, attrs := reemitOne(t, `{"time":"2026-01-01T00:00:00Z","level":"INFO","msg":"ready","component":"mxgateway worker","x":1}`)
	if r.Message != "ready" {
		t.Fatalf("msg = %q, want ready", r.Message)
	}
	got := map[string]bool{}
	for _, a := range attrs {
		got[a.Key] = true
	}
	if got["component"] || !got["worker_component"] || !got["x"] {
		t.Fatalf("attrs = %v, want worker_component and x without component", attrs)
	}
}

// Integers from the worker's JSON lines must survive exactly.
func TestReemitKeepsIntegers(t *testing.T) {
	_, attrs := reemitOne(t, `{"level":"INFO","msg":"m","grace":300000000}`)
	if len(attrs) != 1 {
		t.Fatalf("attrs = %v, want only grace", attrs)
	}
	if got := attrs[0].Value.String(); got != "300000000" {
		t.Fatalf("grace re-emitted as %q, want 300000000", got)
	}
}

// The worker's own session and worker_pid are dropped (the gateway logger
// carries them); the level, message and other attributes are kept in
// document order; anything that is not a JSON object is plain output.
func TestReemitParsesWorkerLine(t *testing.T) {
	r, attrs := reemitOne(t, `{"time":"2026-01-01T00:00:00Z","level":"WARN","msg":"m","session":"s","worker_pid":1,"b":2,"a":"x"}`)
	if r.Level != slog.LevelWarn || r.Message != "m" {
		t.Fatalf("level %v msg %q", r.Level, r.Message)
	}
	if len(attrs) != 2 || attrs[0].Key != "b" || attrs[1].Key != "a" {
		t.Fatalf("attrs %v, want b then a", attrs)
	}
	for _, line := range []string{"panic: boom", "{broken"} {
		r, attrs := reemitOne(t, line)
		if r.Message != "worker output" || r.Level != slog.LevelWarn || len(attrs) != 1 || attrs[0].Key != KeyLine || attrs[0].Value.String() != line {
			t.Fatalf("%q re-emitted as %v %v", line, r, attrs)
		}
	}
	if r, _ := reemitOne(t, `{"level":"nonsense","msg":"x"}`); r.Level != slog.LevelInfo || r.Message != "x" {
		t.Fatalf("unknown level must default to info: %v", r)
	}
}
