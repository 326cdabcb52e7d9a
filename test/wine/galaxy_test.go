package wine

import (
	"strings"
	"testing"

	"github.com/mxgateway/mxgateway/internal/backend/sim"
)

// TestStandInGalaxy converts the suite's model and checks the records the
// stand-in parses: every attribute once, its VARIANT type, and values with
// the separators escaped.
func TestStandInGalaxy(t *testing.T) {
	m, err := sim.LoadModel("testdata/standin.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := StandInGalaxy(m)
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		f := strings.Split(l, "\t")
		if f[0] == "attr" {
			if _, dup := lines[f[1]]; dup {
				t.Fatalf("attribute %s twice", f[1])
			}
			lines[f[1]] = f
		}
	}
	n := 0
	for _, o := range m.Objects {
		n += len(o.Attributes)
	}
	if len(lines) != n {
		t.Fatalf("%d attribute records, model has %d attributes", len(lines), n)
	}
	cases := map[string][]string{
		// ref: type, VT, security, dim, quality, values...
		"Types.Int":       {"2", "3", "0", "0", "192", "42"},
		"Types.Float":     {"3", "4", "0", "0", "192", "1.5"},
		"Types.Time":      {"6", "7", "0", "0", "192", "1748764800125"},
		"Types.Strings":   {"5", "8", "0", "3", "192", "a", "", `tab\tand space`},
		"Types.Bools":     {"1", "11", "0", "3", "192", "1", "0", "1"},
		"Secure.ReadOnly": {"4", "5", "6", "0", "192", "7.5"},
		"Sim.FailMethod":  {"5", "8", "0", "0", "192", ""},
	}
	for ref, want := range cases {
		got := lines[ref]
		if got == nil {
			t.Errorf("%s missing", ref)
			continue
		}
		if strings.Join(got[2:], "|") != strings.Join(want, "|") {
			t.Errorf("%s = %q, want %q", ref, got[2:], want)
		}
	}
	if !strings.HasPrefix(string(out), "galaxy\tStandIn\n") {
		t.Errorf("galaxy record missing: %q", string(out)[:40])
	}
	if !strings.Contains(string(out), "user\tsupervisor\tsupervisor1\toperate,tune,verify\n") {
		t.Errorf("user record missing")
	}
}

func TestEscape(t *testing.T) {
	if got := escape("a\\b\tc\nd"); got != `a\\b\tc\nd` {
		t.Fatalf("escape = %q", got)
	}
}
