package itemref

import "testing"

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"TIC101", "TIC101.PV", "Line1.Recipe[]", "Line1.Recipe[3]", "Line1.Recipe[-1]",
		"Pump1.FaultCode.07", "Tank1.Level.Quality", "Tank1.Level.PROPERTY(time)",
		"MxDemo:Tank1.Level", "Obj._Attributes", "Obj.Arr[007].05", "Obj.a.b.c.d",
		"Obj..", "Obj.[]", "Obj.Arr[1].Value", "G:O.A[1].PROPERTY(Dimension1)", "x.PV+1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(r.String())
		if err != nil {
			t.Fatalf("Parse(%q) ok, but Parse(String()=%q): %v", s, r.String(), err)
		}
		if again != r {
			t.Fatalf("round trip of %q: %+v != %+v", s, again, r)
		}
		if r.Object == "" {
			t.Fatalf("accepted %q with empty object", s)
		}
	})
}
