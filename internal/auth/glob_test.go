package auth

import (
	"errors"
	"testing"
)

func TestMatchPattern(t *testing.T) {
	cases := []struct {
		pat, ref string
		want     bool
	}{
		{"TIC101.PV", "TIC101.PV", true},
		{"TIC101.PV", "tic101.pv", true},
		{"tic101.pv", "TIC101.PV", true},
		{"TIC101.PV", "TIC101.PV2", false},
		{"TIC*", "TIC101.PV", true},
		{"TIC*.PV", "TIC101.PV", true},
		{"TIC*.PV", "TIC101.SP", false},
		{"*.PV", "Area.Tank1.PV", true},
		{"*", "", true},
		{"*", "anything.at.all", true},
		{"", "", true},
		{"", "x", false},
		{"TIC10?.PV", "TIC101.PV", true},
		{"TIC10?.PV", "TIC10.PV", false},
		{"Line1.Recipe[]", "Line1.Recipe[]", true},
		{"Line1.Recipe[]", "Line1.Recipe1", false},
		{"Line1.*[]", "Line1.Recipe[]", true},
		{`Tank\*`, "Tank*", true},
		{`Tank\*`, "Tank1", false},
		{`a\?b`, "a?b", true},
		{`a\?b`, "axb", false},
		{`a\\b`, `a\b`, true},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
		{"*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
		{"Müller.*", "MÜLLER.x", true},
	}
	for _, tc := range cases {
		if got := MatchPattern(tc.pat, tc.ref); got != tc.want {
			t.Errorf("MatchPattern(%q, %q) = %v, want %v", tc.pat, tc.ref, got, tc.want)
		}
	}
}

func TestValidatePattern(t *testing.T) {
	for _, p := range []string{"a", "*", `a\*`, `a\\`, "Line1.Recipe[]"} {
		if err := ValidatePattern(p); err != nil {
			t.Errorf("ValidatePattern(%q) = %v", p, err)
		}
	}
	long := make([]byte, MaxPatternLen+1)
	for i := range long {
		long[i] = 'a'
	}
	for _, p := range []string{"", `a\`, `a\\\`, "a\nb", string(long)} {
		if err := ValidatePattern(p); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("ValidatePattern(%q) = %v, want ErrInvalidSpec", p, err)
		}
	}
}

func TestPrincipalConstraints(t *testing.T) {
	p := NewPrincipal("k", "n", []Scope{ScopeInvokeRead}, Constraints{AllowRead: []string{"Area1.*", "TIC101.PV"}, AllowWrite: []string{"Area1.SP*"}})
	for ref, want := range map[string]bool{"Area1.Level": true, "area1.level": true, "TIC101.PV": true, "TIC102.PV": false} {
		if got := p.AllowRead(ref); got != want {
			t.Errorf("AllowRead(%q) = %v", ref, got)
		}
	}
	for ref, want := range map[string]bool{"Area1.SP1": true, "Area1.Level": false, "TIC101.PV": false} {
		if got := p.AllowWrite(ref); got != want {
			t.Errorf("AllowWrite(%q) = %v", ref, got)
		}
	}
	free := NewPrincipal("k", "n", nil, Constraints{})
	if !free.AllowRead("x") || !free.AllowWrite("x") || free.HasWriteConstraints() || free.HasReadConstraints() {
		t.Error("empty constraints must allow everything")
	}
	var nilP *Principal
	if nilP.AllowRead("x") || nilP.AllowWrite("x") || nilP.Has(ScopeInvokeRead) {
		t.Error("nil principal allowed something")
	}
}
