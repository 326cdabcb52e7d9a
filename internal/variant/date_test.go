package variant

import (
	"errors"
	"math"
	"testing"
	"time"
	_ "time/tzdata" // DST cases need a zone database on every OS
)

func TestFromOADate(t *testing.T) {
	utc := time.UTC
	cases := []struct {
		oa   float64
		want time.Time
	}{
		{0, time.Date(1899, 12, 30, 0, 0, 0, 0, utc)},
		{1.5, time.Date(1899, 12, 31, 12, 0, 0, 0, utc)},
		// Negative dates: the fraction is still a positive time of day.
		{-1.25, time.Date(1899, 12, 29, 6, 0, 0, 0, utc)},
		{-0.25, time.Date(1899, 12, 30, 6, 0, 0, 0, utc)},
		{-2.75, time.Date(1899, 12, 28, 18, 0, 0, 0, utc)},
		{25569, time.Date(1970, 1, 1, 0, 0, 0, 0, utc)},
		// 45000 = 2023-03-15; 0.5 + 123 ms.
		{45000.5 + 123.0/86400000, time.Date(2023, 3, 15, 12, 0, 0, 123e6, utc)},
		// Rounds to the nearest millisecond, carrying into the next day.
		{45000 + 86399999.6/86400000, time.Date(2023, 3, 16, 0, 0, 0, 0, utc)},
		{2958465.5, time.Date(9999, 12, 31, 12, 0, 0, 0, utc)},
		{-657434, time.Date(100, 1, 1, 0, 0, 0, 0, utc)},
	}
	for _, tc := range cases {
		got, err := FromOADate(tc.oa, utc)
		if err != nil {
			t.Errorf("%v: %v", tc.oa, err)
			continue
		}
		if !got.Equal(tc.want) {
			t.Errorf("%v: got %s want %s", tc.oa, got.Format(time.RFC3339Nano), tc.want.Format(time.RFC3339Nano))
		}
	}
	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), -657435.5, 2958466, 1e300} {
		if _, err := FromOADate(bad, utc); !errors.Is(err, ErrDateRange) {
			t.Errorf("%v: err = %v", bad, err)
		}
	}
}

func TestFromOADateZones(t *testing.T) {
	plus2 := time.FixedZone("UTC+2", 2*3600)
	got, err := FromOADate(45000.5, plus2)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2023, 3, 15, 10, 0, 0, 0, time.UTC); !got.Equal(want) || got.Location() != time.UTC {
		t.Fatalf("got %s", got)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	// 2023-07-01 12:00 CEST is 10:00 UTC; 2023-01-01 12:00 CET is 11:00 UTC.
	summer, _ := ToOADate(time.Date(2023, 7, 1, 12, 0, 0, 0, time.UTC), time.UTC)
	winter, _ := ToOADate(time.Date(2023, 1, 1, 12, 0, 0, 0, time.UTC), time.UTC)
	if s, _ := FromOADate(summer, berlin); s.Hour() != 10 {
		t.Errorf("summer: %s", s)
	}
	if w, _ := FromOADate(winter, berlin); w.Hour() != 11 {
		t.Errorf("winter: %s", w)
	}
}

func TestToOADateRoundTrip(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	times := []time.Time{
		time.Date(1899, 12, 29, 6, 0, 0, 0, time.UTC),
		time.Date(1899, 12, 30, 23, 59, 59, 999e6, time.UTC),
		time.Date(1850, 6, 1, 13, 14, 15, 16e6, time.UTC),
		time.Date(2024, 2, 29, 23, 59, 59, 1e6, time.UTC),
		time.Date(2038, 1, 19, 3, 14, 7, 999e6, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC),
		time.Date(100, 1, 1, 0, 0, 0, 1e6, time.UTC),
	}
	for _, loc := range []*time.Location{time.UTC, time.FixedZone("-5", -5*3600), berlin} {
		for _, tt := range times {
			if loc != time.UTC && (tt.Year() >= 9999 || tt.Year() <= 100) {
				continue // shifting the zone leaves the VT_DATE range
			}
			oa, err := ToOADate(tt, loc)
			if err != nil {
				t.Fatalf("%s in %s: %v", tt, loc, err)
			}
			back, err := FromOADate(oa, loc)
			if err != nil {
				t.Fatal(err)
			}
			if !back.Equal(tt) {
				t.Errorf("%s in %s: oa %v back %s", tt, loc, oa, back)
			}
		}
	}
	oa, _ := ToOADate(time.Date(1899, 12, 29, 6, 0, 0, 0, time.UTC), time.UTC)
	if oa != -1.25 {
		t.Errorf("negative date encoded as %v, want -1.25", oa)
	}
	if _, err := ToOADate(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.UTC); !errors.Is(err, ErrDateRange) {
		t.Errorf("year 10000: %v", err)
	}
	// Sub-millisecond parts round.
	oa, _ = ToOADate(time.Date(2023, 3, 15, 0, 0, 0, 1_600_000, time.UTC), time.UTC)
	if back, _ := FromOADate(oa, time.UTC); back.Nanosecond() != 2_000_000 {
		t.Errorf("rounded to %d ns", back.Nanosecond())
	}
}

func TestFromFILETIME(t *testing.T) {
	if got := FromFILETIME(116444736000000000 + 12345678); !got.Equal(time.Unix(1, 234567800).UTC()) {
		t.Errorf("got %s", got)
	}
	if got := FromFILETIME(0); !got.Equal(time.Date(1601, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("epoch: %s", got)
	}
}
