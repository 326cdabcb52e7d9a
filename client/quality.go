package client

import (
	"fmt"
	"strings"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// Quality is the raw 16-bit OPC DA quality word MXAccess reports (192 is
// good). Its class comes from the masked low byte, so high-byte bits never
// make a bad value look good.
type Quality uint16

// QualityFromProto returns the raw word of a wire Quality.
func QualityFromProto(q *mxgatewayv1.Quality) Quality { return Quality(q.GetRaw()) }

// Class returns the OPC DA class: q&0xC0 == 0xC0 good, 0x40 or the undefined
// 0x80 uncertain, 0x00 bad.
func (q Quality) Class() mxgatewayv1.QualityClass {
	switch q & 0xC0 {
	case 0xC0:
		return mxgatewayv1.QualityClass_QUALITY_CLASS_GOOD
	case 0x00:
		return mxgatewayv1.QualityClass_QUALITY_CLASS_BAD
	}
	return mxgatewayv1.QualityClass_QUALITY_CLASS_UNCERTAIN
}

// IsGood reports whether the quality is in the good class.
func (q Quality) IsGood() bool { return q.Class() == mxgatewayv1.QualityClass_QUALITY_CLASS_GOOD }

// IsBad reports whether the quality is in the bad class.
func (q Quality) IsBad() bool { return q.Class() == mxgatewayv1.QualityClass_QUALITY_CLASS_BAD }

// IsUncertain reports whether the quality is in the uncertain class.
func (q Quality) IsUncertain() bool {
	return q.Class() == mxgatewayv1.QualityClass_QUALITY_CLASS_UNCERTAIN
}

var qualityText = map[Quality]string{
	0:   "Bad",
	4:   "Bad: configuration error",
	8:   "Bad: not connected",
	12:  "Bad: device failure",
	16:  "Bad: sensor failure",
	20:  "Bad: last known value",
	24:  "Bad: communication failure",
	28:  "Bad: out of service",
	32:  "Bad: waiting for initial data",
	64:  "Uncertain",
	68:  "Uncertain: last usable value",
	80:  "Uncertain: sensor not accurate",
	84:  "Uncertain: engineering units exceeded",
	88:  "Uncertain: sub-normal",
	192: "Good",
	216: "Good: local override",
}

// String describes the quality in words, for example "Good",
// "Bad: configuration error" or "Uncertain: last usable value (high limited)".
func (q Quality) String() string {
	low := q & 0xFF
	base, ok := qualityText[low&0xFC]
	if !ok {
		cls := strings.TrimPrefix(q.Class().String(), "QUALITY_CLASS_")
		base = fmt.Sprintf("%s%s (substatus %d)", cls[:1], strings.ToLower(cls[1:]), (low>>2)&0x0F)
	}
	switch low & 0x03 {
	case 1:
		base += " (low limited)"
	case 2:
		base += " (high limited)"
	case 3:
		base += " (constant)"
	}
	if q>>8 != 0 {
		base += fmt.Sprintf(" [0x%04X]", uint16(q))
	}
	return base
}
