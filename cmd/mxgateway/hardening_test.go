package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/mxgateway/mxgateway/internal/auth"
	"github.com/mxgateway/mxgateway/internal/config"
	"github.com/mxgateway/mxgateway/internal/gateway"
)

// TestHardeningDefaultsAgree: the configuration's defaults of the
// hardening limits are the packages' own defaults, so a gateway built
// without a configuration (tests, embedders) is bounded the same way.
func TestHardeningDefaultsAgree(t *testing.T) {
	c := config.Default()
	pairs := []struct {
		key       string
		cfg, pkgs any
	}{
		{"stream_write_timeout", c.StreamWriteTimeout, gateway.DefaultStreamWriteTimeout},
		{"max_header_list_bytes", c.MaxHeaderListBytes, gateway.DefaultMaxHeaderListBytes},
		{"max_concurrent_streams", c.MaxConcurrentStreams, gateway.DefaultMaxConcurrentStreams},
		{"max_health_watches", c.MaxHealthWatches, gateway.DefaultMaxHealthWatches},
		{"max_connection_idle", c.MaxConnectionIdle, gateway.DefaultMaxConnectionIdle},
		{"credential_backoff", c.CredentialBackoff, auth.DefaultCredentialBackoff},
		{"credential_backoff_max", c.CredentialBackoffMax, auth.DefaultCredentialBackoffMax},
	}
	for _, p := range pairs {
		if p.cfg != p.pkgs {
			t.Errorf("%s: configuration default %v, package default %v", p.key, p.cfg, p.pkgs)
		}
	}
	// The per-key session cap leaves room for other keys.
	if c.MaxSessionsPerKey >= c.MaxSessions {
		t.Errorf("max_sessions_per_key %d leaves no room in max_sessions %d", c.MaxSessionsPerKey, c.MaxSessions)
	}
	if got := sessionsPerKey(&c, auth.ModeAPIKey); got != c.MaxSessionsPerKey {
		t.Errorf("sessionsPerKey = %d", got)
	}
	small := c
	small.MaxSessions = 4
	if got := sessionsPerKey(&small, auth.ModeAPIKey); got != 4 {
		t.Errorf("sessionsPerKey with max_sessions 4 = %d, want 4", got)
	}
	if got := sessionsPerKey(&c, auth.ModeNone); got != 0 {
		t.Errorf("sessionsPerKey with auth=none = %d, want none", got)
	}
}

// TestBootstrapKeyOnlyOnTerminal: the first-run key is printed only to a
// terminal; to anything else (a pipe, a journal, a log file) only the path
// of its file is printed. When it could not be saved it is printed anyway:
// the screen is then its only copy.
func TestBootstrapKeyOnlyOnTerminal(t *testing.T) {
	const key, path = "mxgw_aaaaaaaaaaaaaaaa_c2VjcmV0LXNlY3JldC1zZWNyZXQ", "/data/admin.key"
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if isTerminal(w) || isTerminal(&bytes.Buffer{}) {
		t.Fatal("a pipe or a buffer taken for a terminal")
	}
	for _, tc := range []struct {
		saved, show, wantKey bool
	}{
		{saved: true, show: false, wantKey: false},
		{saved: true, show: true, wantKey: true},
		{saved: false, show: true, wantKey: true},
	} {
		var out bytes.Buffer
		printBootstrapKey(&out, key, path, tc.saved, tc.show)
		if got := strings.Contains(out.String(), key); got != tc.wantKey {
			t.Errorf("saved=%v show=%v: key printed = %v, want %v", tc.saved, tc.show, got, tc.wantKey)
		}
		if tc.saved && !strings.Contains(out.String(), path) {
			t.Errorf("saved=%v show=%v: the path is not printed", tc.saved, tc.show)
		}
	}
}
