package client

import (
	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
)

// Quality is the raw 16-bit OPC DA quality word MXAccess reports (192 is
// good). Its class comes from the masked low byte, so high-byte bits never
// make a bad value look good.
type Quality uint16

// QualityFromProto returns the raw word of a wire Quality.
func QualityFromProto(q *mxgatewayv1.Quality) Quality { return Quality(q.GetRaw()) }

// Class returns the OPC DA class: q&0xC0 == 0xC0 good, 0x40 or the undefined
// 0x80 uncertain, 0x00 bad.
func (q Quality) Class() mxgatewayv1.QualityClass { return mxtypes.ClassifyQuality(uint16(q)) }

// IsGood reports whether the quality is in the good class.
func (q Quality) IsGood() bool { return q.Class() == mxgatewayv1.QualityClass_QUALITY_CLASS_GOOD }

// IsBad reports whether the quality is in the bad class.
func (q Quality) IsBad() bool { return q.Class() == mxgatewayv1.QualityClass_QUALITY_CLASS_BAD }

// IsUncertain reports whether the quality is in the uncertain class.
func (q Quality) IsUncertain() bool {
	return q.Class() == mxgatewayv1.QualityClass_QUALITY_CLASS_UNCERTAIN
}

// String describes the quality in words, for example "Good",
// "Bad: configuration error" or "Uncertain: last usable value (high limited)".
func (q Quality) String() string { return mxtypes.QualityText(uint16(q)) }
