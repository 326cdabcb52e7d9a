package mxtypes

import (
	"fmt"
	"strings"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// Common OPC DA quality words (MXACCESS.md §5.1).
const (
	QualityBad                   uint16 = 0
	QualityBadConfigurationError uint16 = 4
	QualityBadNotConnected       uint16 = 8
	QualityBadDeviceFailure      uint16 = 12
	QualityBadSensorFailure      uint16 = 16
	QualityBadLastKnownValue     uint16 = 20
	QualityBadCommFailure        uint16 = 24
	QualityBadOutOfService       uint16 = 28
	QualityBadWaitingInitialData uint16 = 32
	QualityUncertain             uint16 = 64
	QualityUncertainLastUsable   uint16 = 68
	QualityUncertainSensorNotAcc uint16 = 80
	QualityUncertainEUExceeded   uint16 = 84
	QualityUncertainSubNormal    uint16 = 88
	QualityGood                  uint16 = 192
	QualityGoodLocalOverride     uint16 = 216
)

// ClassifyQuality classifies a quality word by its masked low byte: 0xC0
// good, 0x40 uncertain, 0x00 bad; the undefined 0x80 counts as uncertain.
// Masking keeps high-byte bits from making a bad value look good.
func ClassifyQuality(q uint16) mxgatewayv1.QualityClass {
	switch q & 0xC0 {
	case 0xC0:
		return mxgatewayv1.QualityClass_QUALITY_CLASS_GOOD
	case 0x00:
		return mxgatewayv1.QualityClass_QUALITY_CLASS_BAD
	default:
		return mxgatewayv1.QualityClass_QUALITY_CLASS_UNCERTAIN
	}
}

// OPC UA status codes used by the quality mapping (OPC UA Part 8, Annex A).
var uaBySubstatus = map[uint16]uint32{
	0x00: 0x80000000, // Bad
	0x04: 0x80890000, // Bad_ConfigurationError
	0x08: 0x808A0000, // Bad_NotConnected
	0x0C: 0x808B0000, // Bad_DeviceFailure
	0x10: 0x808C0000, // Bad_SensorFailure
	0x14: 0x80310000, // last known value → Bad_NoCommunication
	0x18: 0x80310000, // comm failure → Bad_NoCommunication
	0x1C: 0x808D0000, // Bad_OutOfService
	0x20: 0x80320000, // Bad_WaitingForInitialData
	0x40: 0x40000000, // Uncertain
	0x44: 0x40900000, // Uncertain_LastUsableValue
	0x50: 0x40930000, // Uncertain_SensorNotAccurate
	0x54: 0x40940000, // Uncertain_EngineeringUnitsExceeded
	0x58: 0x40950000, // Uncertain_SubNormal
	0xC0: 0x00000000, // Good
	0xD8: 0x00960000, // Good_LocalOverride
}

// OPCUAStatusCode maps an OPC DA quality word to an OPC UA status code,
// carrying the limit bits (DA bits 0-1) into the UA limit bits (8-9).
func OPCUAStatusCode(q uint16) uint32 {
	low := q & 0xFF
	sub := low &^ 0x03
	code, ok := uaBySubstatus[sub]
	if !ok {
		switch ClassifyQuality(q) {
		case mxgatewayv1.QualityClass_QUALITY_CLASS_GOOD:
			code = 0x00000000
		case mxgatewayv1.QualityClass_QUALITY_CLASS_UNCERTAIN:
			code = 0x40000000
		default:
			code = 0x80000000
		}
	}
	return code | uint32(low&0x03)<<8
}

// NewQuality returns the wire form of a quality word.
func NewQuality(q uint16) *mxgatewayv1.Quality {
	return &mxgatewayv1.Quality{Raw: uint32(q), QualityClass: ClassifyQuality(q), OpcuaStatusCode: OPCUAStatusCode(q)}
}

var qualityText = map[uint16]string{
	QualityBad:                   "Bad",
	QualityBadConfigurationError: "Bad: configuration error",
	QualityBadNotConnected:       "Bad: not connected",
	QualityBadDeviceFailure:      "Bad: device failure",
	QualityBadSensorFailure:      "Bad: sensor failure",
	QualityBadLastKnownValue:     "Bad: last known value",
	QualityBadCommFailure:        "Bad: communication failure",
	QualityBadOutOfService:       "Bad: out of service",
	QualityBadWaitingInitialData: "Bad: waiting for initial data",
	QualityUncertain:             "Uncertain",
	QualityUncertainLastUsable:   "Uncertain: last usable value",
	QualityUncertainSensorNotAcc: "Uncertain: sensor not accurate",
	QualityUncertainEUExceeded:   "Uncertain: engineering units exceeded",
	QualityUncertainSubNormal:    "Uncertain: sub-normal",
	QualityGood:                  "Good",
	QualityGoodLocalOverride:     "Good: local override",
}

// QualityText describes a quality word in words, for example "Good",
// "Bad: configuration error" or "Uncertain: last usable value (high
// limited)"; high-byte bits are shown raw.
func QualityText(q uint16) string {
	low := q & 0xFF
	base, ok := qualityText[low&0xFC]
	if !ok {
		cls := strings.TrimPrefix(ClassifyQuality(q).String(), "QUALITY_CLASS_")
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
		base += fmt.Sprintf(" [0x%04X]", q)
	}
	return base
}
