package itemref

import (
	"errors"
	"strings"
	"testing"
)

func TestParseValid(t *testing.T) {
	cases := []struct {
		in   string
		want Ref
	}{
		{"TIC101", Ref{Object: "TIC101"}},
		{"TIC101.PV", Ref{Object: "TIC101", Attribute: "PV"}},
		{"Obj.Alarm16.Description", Ref{Object: "Obj", Attribute: "Alarm16.Description"}},
		{"Line1.Recipe[]", Ref{Object: "Line1", Attribute: "Recipe", IndexKind: IndexWhole}},
		{"Line1.Recipe[3]", Ref{Object: "Line1", Attribute: "Recipe", IndexKind: IndexElement, Index: 3}},
		{"Line1.Recipe[0]", Ref{Object: "Line1", Attribute: "Recipe", IndexKind: IndexElement, Index: 0}},
		{"Line1.Recipe[-1]", Ref{Object: "Line1", Attribute: "Recipe", IndexKind: IndexElement, Index: -1}},
		{"Line1.Counts[2].05", Ref{Object: "Line1", Attribute: "Counts", IndexKind: IndexElement, Index: 2, HasBit: true, Bit: 5}},
		{"Pump1.FaultCode.00", Ref{Object: "Pump1", Attribute: "FaultCode", HasBit: true}},
		{"Pump1.FaultCode.31", Ref{Object: "Pump1", Attribute: "FaultCode", HasBit: true, Bit: 31}},
		{"Obj.05", Ref{Object: "Obj", HasBit: true, Bit: 5}},
		{"Tank1.Level.Quality", Ref{Object: "Tank1", Attribute: "Level", Property: PropQuality, PropertyText: "Quality"}},
		{"Tank1.Level.time", Ref{Object: "Tank1", Attribute: "Level", Property: PropTime, PropertyText: "time"}},
		{"Tank1.Quality", Ref{Object: "Tank1", Attribute: "Quality"}},
		{"Tank1.Level.PROPERTY(quality)", Ref{Object: "Tank1", Attribute: "Level", Property: PropQuality, PropertyText: "quality", PropertyEscaped: true}},
		{"Tank1.property(Dimension1)", Ref{Object: "Tank1", Property: PropDimension1, PropertyText: "Dimension1", PropertyEscaped: true}},
		{"Line1.Recipe[].Dimension1", Ref{Object: "Line1", Attribute: "Recipe", IndexKind: IndexWhole, Property: PropDimension1, PropertyText: "Dimension1"}},
		{"Obj._Attributes", Ref{Object: "Obj", Attribute: "_Attributes"}},
		{"MxDemo:Tank1.Level", Ref{Galaxy: "MxDemo", Object: "Tank1", Attribute: "Level"}},
		{"$Tank.Level", Ref{Object: "$Tank", Attribute: "Level"}},
		{"Größe.Wert", Ref{Object: "Größe", Attribute: "Wert"}},
		{"101TIC.PV", Ref{Object: "101TIC", Attribute: "PV"}},
		{"Obj.Attr.SecurityClassification", Ref{Object: "Obj", Attribute: "Attr", Property: PropSecurityClassification, PropertyText: "SecurityClassification"}},
		{"Obj.Attr.Value", Ref{Object: "Obj", Attribute: "Attr", Property: PropValue, PropertyText: "Value"}},
		{"Obj.Attr.Locked", Ref{Object: "Obj", Attribute: "Attr", Property: PropLocked, PropertyText: "Locked"}},
		{"Obj.Attr.Category", Ref{Object: "Obj", Attribute: "Attr", Property: PropCategory, PropertyText: "Category"}},
		{"Obj.Attr.Name", Ref{Object: "Obj", Attribute: "Attr", Property: PropName, PropertyText: "Name"}},
		{"Obj.Attr.Type", Ref{Object: "Obj", Attribute: "Attr", Property: PropType, PropertyText: "Type"}},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Fatalf("Parse(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
			want := tc.in
			if strings.HasPrefix(tc.in, "Tank1.property(") {
				want = strings.Replace(tc.in, "property(", "PROPERTY(", 1) // canonical keyword
			}
			if s := got.String(); s != want {
				t.Fatalf("String() = %q, want %q", s, want)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	long := strings.Repeat("a", MaxIdentifier+1)
	seg := strings.Repeat("b", MaxIdentifier)
	attr330 := strings.TrimSuffix(strings.Repeat(seg+".", 10), ".") + ".abcdefghi" // 329+9 > 329
	cases := []string{
		"",
		" TIC101.PV",
		"TIC101.PV ",
		"TIC101..PV",
		"TIC101.",
		".PV",
		"TIC101.PV+1",
		"TIC-101.PV",
		"TIC101.P(V)",
		"TIC101.123",
		"TIC101.5",
		"TIC101.32",
		"TIC101.05.Quality",
		"123.PV",
		"Obj.Arr[x]",
		"Obj.Arr[1",
		"Obj.Arr]",
		"Obj.Arr[1]x",
		"Obj.Arr[-2]",
		"Obj.Arr[99999999999]",
		"Obj.Arr[1].Foo",
		"Obj.Arr[1].Sub.Quality",
		"Obj.Attr.PROPERTY(nothing)",
		"Obj.Attr.PROPERTY(quality",
		"Obj.Attr.PROPERTY(quality).X",
		"Obj[1].PV",
		"G:H:Obj.PV",
		":Obj.PV",
		"G:",
		long + ".PV",
		"Obj." + long,
		"Obj." + attr330,
		"Obj." + strings.Repeat("x.", 200) + "y",
		"Obj.\xff",
	}
	for _, in := range cases {
		t.Run(in, func(t *testing.T) {
			r, err := Parse(in)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want error", in, r)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			var e *Error
			if !errors.As(err, &e) || e.Reason == "" {
				t.Fatalf("error %v is not an *Error with a reason", err)
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	seg := strings.Repeat("b", MaxIdentifier)
	if _, err := Parse(seg + "." + seg); err != nil {
		t.Fatalf("32-character identifiers refused: %v", err)
	}
	// Ten 32-character segments and nine dots: exactly 329.
	attr := strings.TrimSuffix(strings.Repeat(seg+".", 10), ".")
	attr = attr[:MaxAttribute]
	if strings.HasSuffix(attr, ".") {
		t.Fatal("test construction")
	}
	if _, err := Parse("O." + attr); err != nil {
		t.Fatalf("329-character attribute refused: %v", err)
	}
	if _, err := Parse("O." + attr + "x"); err == nil {
		t.Fatal("330-character attribute accepted")
	}
}

func TestIsAttributeList(t *testing.T) {
	for in, want := range map[string]bool{
		"Obj._Attributes":         true,
		"Obj._attributes":         true,
		"Obj._Attributes[]":       false,
		"Obj._Attributes.Quality": false,
		"Obj.PV":                  false,
	} {
		r, err := Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.IsAttributeList(); got != want {
			t.Errorf("%q: IsAttributeList = %v, want %v", in, got, want)
		}
	}
}

func TestAttributeOrDefault(t *testing.T) {
	r, _ := Parse("TIC101")
	if r.AttributeOrDefault() != "PV" {
		t.Fatalf("default attribute %q", r.AttributeOrDefault())
	}
	r, _ = Parse("TIC101.SP")
	if r.AttributeOrDefault() != "SP" {
		t.Fatalf("attribute %q", r.AttributeOrDefault())
	}
}

func TestLookupProperty(t *testing.T) {
	for p := PropValue; p <= PropTime; p++ {
		got, ok := LookupProperty(strings.ToUpper(p.String()))
		if !ok || got != p {
			t.Errorf("LookupProperty(%q) = %v, %v", strings.ToUpper(p.String()), got, ok)
		}
	}
	if _, ok := LookupProperty(""); ok {
		t.Error("empty name found")
	}
}
