package natsbus

import (
	"strings"
	"testing"

	"github.com/mxgateway/mxgateway/api/mxgateway/v1/subject"
)

// TestReadSubjects: allow_read patterns become subject permissions that are
// never wider than the patterns.
func TestReadSubjects(t *testing.T) {
	s, _ := subject.NewSubjects("g")
	cases := []struct {
		patterns []string
		want     []string
	}{
		{nil, []string{"mxgw.v1.g.tag.>"}},
		{[]string{"*"}, []string{"mxgw.v1.g.tag.>"}},
		{[]string{"TIC101.PV"}, []string{"mxgw.v1.g.tag.TIC101.PV"}},
		{[]string{"TIC101.*"}, []string{"mxgw.v1.g.tag.TIC101.>"}},
		{[]string{"Area1.*.PV"}, []string{"mxgw.v1.g.tag.Area1.*.PV"}},
		{[]string{"Tank[1].Level"}, []string{"mxgw.v1.g.tag.Tank=5B1=5D.Level"}},
		{[]string{"TIC*", "T?C.PV", `a\*`, "x..y", "FIC101.PV"}, []string{"mxgw.v1.g.tag.FIC101.PV"}},
	}
	for _, tc := range cases {
		got := readSubjects(s, tc.patterns)
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("readSubjects(%q) = %q, want %q", tc.patterns, got, tc.want)
		}
		// Alarm subjects map alike, below alarm. instead of tag.
		got = alarmSubjects(s, tc.patterns)
		want := strings.ReplaceAll(strings.Join(tc.want, " "), "mxgw.v1.g.tag.", "mxgw.v1.g.alarm.")
		if strings.Join(got, " ") != want {
			t.Errorf("alarmSubjects(%q) = %q, want %q", tc.patterns, got, want)
		}
	}
}
