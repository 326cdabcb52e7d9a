package config

import (
	"errors"
	"testing"
)

// TestValidateSimGalaxySources: one model source per Galaxy.
func TestValidateSimGalaxySources(t *testing.T) {
	for _, tc := range []struct {
		name   string
		set    func(*Config)
		reason string
	}{
		{"plant and model", func(c *Config) { c.SimPlant, c.SimModel = 2, "m.yaml" }, "sim_plant"},
		{"external and model", func(c *Config) { c.SimGalaxy, c.SimModel = "/run/g", "m.yaml" }, "sim_galaxy"},
		{"external and plant", func(c *Config) { c.SimGalaxy, c.SimPlant = "/run/g", 3 }, "sim_galaxy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.DataDir = t.TempDir()
			tc.set(&c)
			var fe *FieldError
			err := c.Validate()
			found := false
			for _, e := range flatten(err) {
				if errors.As(e, &fe) && fe.Key == tc.reason {
					found = true
				}
			}
			if !found {
				t.Fatalf("Validate() = %v, want a %s problem", err, tc.reason)
			}
		})
	}
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}
