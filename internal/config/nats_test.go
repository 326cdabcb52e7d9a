package config

import (
	"slices"
	"testing"
)

// TestValidateNATS: the rules between the nats_* keys and the rest, one
// FieldError naming the key per broken rule.
func TestValidateNATS(t *testing.T) {
	cases := []struct {
		name string
		set  func(c *Config)
		want []string // keys with a FieldError; nil: valid
	}{
		{"defaults", func(*Config) {}, nil},
		{"port 0", func(c *Config) { c.NATS.Listen = "127.0.0.1:0" }, nil},
		{"off ignores the rest", func(c *Config) { c.NATS.Mode = NATSOff; c.NATS.Listen = "nonsense" }, nil},
		{"plaintext off loopback", func(c *Config) { c.NATS.Listen = "0.0.0.0:4222" }, []string{"nats_listen"}},
		{"tls on allows any address", func(c *Config) { c.NATS.Listen = "0.0.0.0:4222"; c.TLS = TLSSelfSigned; c.Listen = "127.0.0.1:5000" }, nil},
		{"same as listen", func(c *Config) { c.NATS.Listen = c.Listen }, []string{"nats_listen"}},
		{"bad listen", func(c *Config) { c.NATS.Listen = "4222" }, []string{"nats_listen"}},
		{"galaxy with a dot", func(c *Config) { c.NATS.Galaxy = "a.b" }, []string{"nats_galaxy"}},
		{"external without url", func(c *Config) { c.NATS.Mode = NATSExternal }, []string{"nats_url"}},
		{"lease max below lease", func(c *Config) { c.NATS.LeaseMax = c.NATS.Lease / 2 }, []string{"nats_lease_max"}},
		{"bad mode", func(c *Config) { c.NATS.Mode = "cluster" }, []string{"nats_mode"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := defaults(envMap(map[string]string{"HOME": "/home/u"}), "linux")
			tc.set(&c)
			var got []string
			for _, fe := range fieldErrors(c.Validate()) {
				got = append(got, fe.Key)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("errors on %v, want %v (%v)", got, tc.want, c.Validate())
			}
		})
	}
}
