package config

import (
	"strings"
	"time"

	"github.com/mxgateway/mxgateway/api/mxgateway/v1/subject"
)

// NATSMode says whether and how the gateway publishes shared subscriptions
// on NATS (docs/nats.md).
type NATSMode string

// NATS modes.
const (
	// NATSEmbedded runs a NATS server with JetStream inside the gateway
	// (default), storing under <data_dir>/nats.
	NATSEmbedded NATSMode = "embedded"
	// NATSExternal connects to an existing NATS system (nats_url,
	// nats_creds_file).
	NATSExternal NATSMode = "external"
	// NATSOff runs no NATS.
	NATSOff NATSMode = "off"
)

// NATS payload encodings of values.
const (
	NATSPayloadProtobuf = "protobuf"
	NATSPayloadJSON     = "json"
)

// NATSConfig is the nats_* section of Config.
type NATSConfig struct {
	// Mode is embedded (default), external or off; MXGATEWAY_NATS_MODE.
	Mode NATSMode
	// Listen is the embedded server's client address. Default
	// 127.0.0.1:4222 (NATS's own port); port 0 lets the kernel choose;
	// MXGATEWAY_NATS_LISTEN.
	Listen string
	// Galaxy is the <galaxy> token of every subject. Default "galaxy";
	// MXGATEWAY_NATS_GALAXY.
	Galaxy string
	// URL lists the servers of an external NATS system (comma-separated
	// nats:// or tls:// URLs); MXGATEWAY_NATS_URL.
	URL string
	// CredsFile is the NATS credentials file (JWT and nkey seed) the gateway
	// connects to an external system with; MXGATEWAY_NATS_CREDS_FILE.
	CredsFile string
	// LeafListen, when set, lets other NATS servers (another gateway's
	// embedded server) connect to the embedded server as leaf nodes;
	// MXGATEWAY_NATS_LEAF_LISTEN.
	LeafListen string
	// LeafRemotes are the leaf-node URLs (nats-leaf://host:7422) the
	// embedded server connects to, joining a larger NATS system;
	// MXGATEWAY_NATS_LEAF_REMOTES.
	LeafRemotes []string
	// Payload is the encoding of published values: protobuf (default) or
	// json (protobuf's JSON mapping); MXGATEWAY_NATS_PAYLOAD.
	Payload string
	// Lease is the default lease of a shared subscription. Default 30s;
	// MXGATEWAY_NATS_LEASE.
	Lease time.Duration
	// LeaseMax caps the lease a consumer may ask for. Default 10m;
	// MXGATEWAY_NATS_LEASE_MAX.
	LeaseMax time.Duration
	// MaxReferences caps the references advised for shared subscriptions.
	// Default 10000; MXGATEWAY_NATS_MAX_REFERENCES.
	MaxReferences int
	// MaxLeasesPerKey caps the leases one API key holds. Default 10000;
	// MXGATEWAY_NATS_MAX_LEASES_PER_KEY.
	MaxLeasesPerKey int
}

// DefaultNATSListen is the embedded NATS server's default client address.
const DefaultNATSListen = subject.DefaultAddr

func defaultNATS() NATSConfig {
	return NATSConfig{
		Mode:            NATSEmbedded,
		Listen:          DefaultNATSListen,
		Galaxy:          subject.DefaultGalaxy,
		Payload:         NATSPayloadProtobuf,
		Lease:           30 * time.Second,
		LeaseMax:        10 * time.Minute,
		MaxReferences:   10000,
		MaxLeasesPerKey: 10000,
	}
}

// natsKeys are the nats_* rows of the key table.
var natsKeys = []key{
	enumKey("nats_mode", "shared subscriptions on NATS: an embedded server, an external system, or none (docs/nats.md)", []NATSMode{NATSEmbedded, NATSExternal, NATSOff}, func(c *Config) *NATSMode { return &c.NATS.Mode }),
	stringKey("nats_listen", "embedded NATS server's client address (host:port; port 0: the kernel chooses)", func(c *Config) *string { return &c.NATS.Listen }),
	stringKey("nats_galaxy", "the <galaxy> token of the NATS subjects (letters, digits, - and _)", func(c *Config) *string { return &c.NATS.Galaxy }),
	stringKey("nats_url", "servers of an external NATS system (nats_mode=external; comma-separated URLs)", func(c *Config) *string { return &c.NATS.URL }),
	stringKey("nats_creds_file", "NATS credentials file for an external system (nats_mode=external)", func(c *Config) *string { return &c.NATS.CredsFile }),
	stringKey("nats_leaf_listen", "address on which other NATS servers may connect as leaf nodes (empty: none)", func(c *Config) *string { return &c.NATS.LeafListen }),
	listKey("nats_leaf_remotes", "leaf-node URLs the embedded server joins (comma-separated nats-leaf:// URLs)", func(c *Config) *[]string { return &c.NATS.LeafRemotes }),
	enumKey("nats_payload", "encoding of published values", []string{NATSPayloadProtobuf, NATSPayloadJSON}, func(c *Config) *string { return &c.NATS.Payload }),
	durationKey("nats_lease", "default lease of a shared subscription", time.Second, time.Hour, func(c *Config) *time.Duration { return &c.NATS.Lease }),
	durationKey("nats_lease_max", "longest lease a consumer may ask for (>= nats_lease)", time.Second, 24*time.Hour, func(c *Config) *time.Duration { return &c.NATS.LeaseMax }),
	intKey("nats_max_references", "most references advised for shared subscriptions", 1, 1000000, func(c *Config) *int { return &c.NATS.MaxReferences }),
	intKey("nats_max_leases_per_key", "most shared-subscription leases one API key holds", 1, 1000000, func(c *Config) *int { return &c.NATS.MaxLeasesPerKey }),
}

func init() { keys = append(keys, natsKeys...) }

// validToken reports whether s is a plain NATS subject token of letters,
// digits, "-" and "_".
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// validateNATS checks the rules between the nats_* keys and the rest.
func (c *Config) validateNATS(bad func(key, format string, args ...any)) {
	n := &c.NATS
	if n.Mode == NATSOff {
		return
	}
	if !validToken(n.Galaxy) {
		bad("nats_galaxy", "%q must be letters, digits, - and _ only (one subject token)", n.Galaxy)
	}
	if n.LeaseMax < n.Lease {
		bad("nats_lease_max", "%s must be at least nats_lease (%s)", FormatDuration(n.LeaseMax), FormatDuration(n.Lease))
	}
	switch n.Mode {
	case NATSEmbedded:
		if msg := checkAddr(n.Listen); msg != "" {
			bad("nats_listen", "%s", msg)
		} else {
			if c.TLS == TLSOff && !IsLoopbackAddr(n.Listen) {
				bad("nats_listen", "%q is not a loopback address and tls is off: plaintext carries API keys and values; use tls self-signed or files", n.Listen)
			}
			if c.Auth == AuthNone && !IsLoopbackAddr(n.Listen) {
				bad("nats_listen", "auth none is allowed only when nats_listen is a loopback address (nats_listen is %q)", n.Listen)
			}
			for _, o := range []struct{ key, addr string }{{"listen", c.Listen}, {"http_listen", c.HTTPListen}} {
				if checkAddr(o.addr) == "" && sameAddr(n.Listen, o.addr) {
					bad("nats_listen", "%q is the same address as %s", n.Listen, o.key)
				}
			}
		}
		if n.LeafListen != "" {
			if msg := checkAddr(n.LeafListen); msg != "" {
				bad("nats_leaf_listen", "%s", msg)
			} else if c.TLS == TLSOff && !IsLoopbackAddr(n.LeafListen) {
				bad("nats_leaf_listen", "%q is not a loopback address and tls is off", n.LeafListen)
			} else if c.Auth == AuthNone && !IsLoopbackAddr(n.LeafListen) {
				bad("nats_leaf_listen", "auth none is allowed only when nats_leaf_listen is a loopback address (nats_leaf_listen is %q)", n.LeafListen)
			}
		}
	case NATSExternal:
		if strings.TrimSpace(n.URL) == "" {
			bad("nats_url", "must be set when nats_mode is external")
		}
	}
}
