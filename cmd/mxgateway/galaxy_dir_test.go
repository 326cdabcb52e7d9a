package main

import "testing"

// TestGalaxyDirPID: runtime directories carry the gateway pid and a random
// part; names that are not ours are not taken for ours.
func TestGalaxyDirPID(t *testing.T) {
	cases := []struct {
		name string
		pid  int
		ok   bool
	}{
		{"mxgw-galaxy-1132-482913", 1132, true},
		{"mxgw-galaxy-7", 7, true}, // the layout of earlier versions
		{"mxgw-galaxy-x-1", 0, false},
		{"mxgw-galaxy-", 0, false},
		{"mxgw-worker-12-3", 0, false},
	}
	for _, c := range cases {
		pid, ok := galaxyDirPID(c.name)
		if ok != c.ok || (ok && pid != c.pid) {
			t.Errorf("galaxyDirPID(%q) = %d, %v; want %d, %v", c.name, pid, ok, c.pid, c.ok)
		}
	}
}
