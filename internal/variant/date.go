package variant

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// OLE Automation dates (VT_DATE) are float64 days since 1899-12-30 00:00
// with no zone. For negative values the integer part counts days back and
// the fraction is still a positive time of day: -1.25 is 1899-12-29 06:00,
// not 1899-12-28 18:00. The valid range is 0100-01-01 to 9999-12-31.
const (
	minOADay = -657434             // 0100-01-01
	maxOADay = 2958465             // 9999-12-31
	msPerDay = 24 * 60 * 60 * 1000 // 86,400,000
)

// ErrDateRange is returned for dates outside the VT_DATE range, NaN or Inf.
var ErrDateRange = errors.New("variant: date out of VT_DATE range")

var oaEpoch = time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC)

// FromOADate converts an OLE Automation date to a time, rounding to the
// nearest millisecond. The date is wall-clock time in loc (time.Local for
// timestamps MXAccess gives in local time, time.UTC otherwise); the result
// is in UTC. Wall times that do not exist or repeat at a DST change resolve
// as time.Date documents.
//
// This replaces go-ole's GetVariantDate, which rounds to whole seconds and
// labels local wall time as UTC.
func FromOADate(oa float64, loc *time.Location) (time.Time, error) {
	if math.IsNaN(oa) || oa <= minOADay-1 || oa >= maxOADay+1 {
		return time.Time{}, fmt.Errorf("%w: %v", ErrDateRange, oa)
	}
	days := math.Trunc(oa)
	frac := math.Abs(oa - days)
	ms := int64(math.Round(frac * msPerDay))
	// Midnight of the day in UTC arithmetic (no DST), then the time of day;
	// ms == msPerDay rolls over to the next midnight, which is the rounded
	// value.
	wall := oaEpoch.AddDate(0, 0, int(days)).Add(time.Duration(ms) * time.Millisecond)
	if loc == nil || loc == time.UTC {
		return wall, nil
	}
	return time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(),
		wall.Second(), wall.Nanosecond(), loc).UTC(), nil
}

// ToOADate converts t to an OLE Automation date holding t's wall-clock time
// in loc, rounded to the millisecond. It is the inverse of FromOADate.
func ToOADate(t time.Time, loc *time.Location) (float64, error) {
	if loc == nil {
		loc = time.UTC
	}
	w := t.In(loc).Round(time.Millisecond)
	// Re-label the wall clock as UTC so that day arithmetic has no DST.
	wall := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), time.UTC)
	midnight := time.Date(w.Year(), w.Month(), w.Day(), 0, 0, 0, 0, time.UTC)
	// Whole days via Unix seconds: time.Duration cannot span 1,800 years.
	days := (midnight.Unix() - oaEpoch.Unix()) / 86400
	if days < minOADay || days > maxOADay {
		return 0, fmt.Errorf("%w: %s", ErrDateRange, t.Format(time.RFC3339))
	}
	ms := wall.Sub(midnight).Milliseconds()
	frac := float64(ms) / msPerDay
	d := float64(days)
	if d < 0 {
		// Days back, time of day still forward: -1 day 06:00 is -1.25.
		return d - frac, nil
	}
	return d + frac, nil
}

// FromFILETIME converts a FILETIME (100 ns intervals since 1601-01-01 UTC)
// to a time in UTC, truncated to 100 ns.
func FromFILETIME(ft uint64) time.Time {
	const epochSeconds = 11644473600 // 1601-01-01 to 1970-01-01
	return time.Unix(int64(ft/10000000)-epochSeconds, int64(ft%10000000)*100).UTC()
}
