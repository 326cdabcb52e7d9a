package subject

import (
	"errors"
	"testing"
)

func TestEscapeRoundTrip(t *testing.T) {
	cases := map[string]string{
		"TIC101.PV":               "TIC101.PV",
		"Tank01.Level[1]":         "Tank01.Level=5B1=5D",
		"Line1.Recipe[]":          "Line1.Recipe=5B=5D",
		"Area1.Alarm!Hi":          "Area1.Alarm=21Hi",
		"a=b.c d":                 "a=3Db.c=20d",
		"x.*.>":                   "x.=2A.=3E",
		"Kessel_2-A.Temperatür":   "Kessel_2-A.Temperat=C3=BCr",
		"Obj.$Attr":               "Obj.=24Attr",
		"Plant.Area1.TIC101.PV.x": "Plant.Area1.TIC101.PV.x",
	}
	for ref, want := range cases {
		got, err := EscapeReference(ref)
		if err != nil || got != want {
			t.Errorf("EscapeReference(%q) = %q, %v; want %q", ref, got, err, want)
			continue
		}
		for _, c := range got {
			if !(c == '.' || c == '=' || Plain(byte(c))) {
				t.Errorf("%q: %q has %q, not allowed in a token or KV key", ref, got, c)
			}
		}
		back, err := UnescapeReference(got)
		if err != nil || back != ref {
			t.Errorf("UnescapeReference(%q) = %q, %v; want %q", got, back, err, ref)
		}
	}
}

// FuzzEscapeRoundTrip: every reference without an empty part escapes to
// tokens that unescape to it again.
func FuzzEscapeRoundTrip(f *testing.F) {
	for _, s := range []string{"TIC101.PV", "a[1]", "=", "..", "é.ß", "*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		esc, err := EscapeReference(ref)
		if err != nil {
			if !errors.Is(err, ErrBadReference) {
				t.Fatal(err)
			}
			return
		}
		back, err := UnescapeReference(esc)
		if err != nil || back != ref {
			t.Fatalf("%q -> %q -> %q, %v", ref, esc, back, err)
		}
	})
}

func TestUnescapeRefusesNonCanonical(t *testing.T) {
	for _, in := range []string{"", "a..b", ".a", "a.", "=41", "=5b", "=5", "a=", "a b", "a*b", ">", "=GG"} {
		if got, err := UnescapeReference(in); !errors.Is(err, ErrBadReference) {
			t.Errorf("UnescapeReference(%q) = %q, %v; want ErrBadReference", in, got, err)
		}
	}
	if _, err := EscapeReference("a..b"); !errors.Is(err, ErrBadReference) {
		t.Errorf("EscapeReference(a..b): %v", err)
	}
}

func TestSubjects(t *testing.T) {
	s, err := NewSubjects("demo")
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := s.Tag("Tank01.Level[1]")
	if tag != "mxgw.v1.demo.tag.Tank01.Level=5B1=5D" {
		t.Fatalf("Tag = %q", tag)
	}
	if ref, err := s.RefOfTag(tag); err != nil || ref != "Tank01.Level[1]" {
		t.Fatalf("RefOfTag = %q, %v", ref, err)
	}
	al, _ := s.Alarm("Area1.Alarm!Hi.HiHi")
	if al != "mxgw.v1.demo.alarm.Area1.Alarm=21Hi.HiHi" || !Match(s.AlarmAll(), al) {
		t.Fatalf("Alarm = %q", al)
	}
	if ref, err := s.RefOfAlarm(al); err != nil || ref != "Area1.Alarm!Hi.HiHi" {
		t.Fatalf("RefOfAlarm = %q, %v", ref, err)
	}
	if _, err := s.RefOfAlarm(tag); err == nil {
		t.Fatal("RefOfAlarm accepted a value subject")
	}
	w, _ := s.Write("abc", "TIC101.SP")
	if k, r, err := s.ParseWrite(w); err != nil || k != "abc" || r != "TIC101.SP" {
		t.Fatalf("parseWrite(%q) = %q %q %v", w, k, r, err)
	}
	if !Match(s.WriteAll(), w) || !Match(s.SubscribeAll(), s.Subscribe("abc")) {
		t.Fatal("wildcards do not match")
	}
	if s.Bucket() != "mxgw_demo_lv" {
		t.Fatalf("Bucket = %q", s.Bucket())
	}
	for _, bad := range []string{"", "a.b", "a*", "é"} {
		if _, err := NewSubjects(bad); err == nil {
			t.Errorf("NewSubjects(%q) accepted", bad)
		}
	}
}

func TestSubjectMatch(t *testing.T) {
	cases := []struct {
		pat, subj string
		want      bool
	}{
		{"a.b", "a.b", true},
		{"a.b", "a.b.c", false},
		{"a.*", "a.b", true},
		{"a.*", "a.b.c", false},
		{"a.>", "a.b.c", true},
		{"a.>", "a", false},
		{"a.*.c", "a.b.c", true},
		{">", "a", true},
	}
	for _, tc := range cases {
		if got := Match(tc.pat, tc.subj); got != tc.want {
			t.Errorf("Match(%q, %q) = %v", tc.pat, tc.subj, got)
		}
	}
}
