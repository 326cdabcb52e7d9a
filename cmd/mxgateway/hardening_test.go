package main

import (
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
