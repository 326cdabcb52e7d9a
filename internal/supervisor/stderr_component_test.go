package supervisor

import "testing"

// A worker's own component attribute must not collide with the gateway
// logger's, which would write the JSON key twice.
func TestParseJSONLineRenamesComponent(t *testing.T) {
	_, msg, attrs, ok := parseJSONLine([]byte(`{"time":"2026-01-01T00:00:00Z","level":"INFO","msg":"ready","component":"mxgateway worker","x":1}`))
	if !ok || msg != "ready" {
		t.Fatalf("parse failed: ok=%v msg=%q", ok, msg)
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
func TestParseJSONLineKeepsIntegers(t *testing.T) {
	_, _, attrs, ok := parseJSONLine([]byte(`{"level":"INFO","msg":"m","grace":300000000}`))
	if !ok || len(attrs) != 1 {
		t.Fatalf("parse: ok=%v attrs=%v", ok, attrs)
	}
	if got := attrs[0].Value.String(); got != "300000000" {
		t.Fatalf("grace re-emitted as %q, want 300000000", got)
	}
}
