package ui

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/prototext"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// maxValueText bounds a value as the dashboard shows it.
const maxValueText = 200

// formatValue prints a value for a table cell.
func formatValue(v *mxgatewayv1.MxValue) string {
	if v == nil || v.GetIsNull() {
		return "null"
	}
	var s string
	switch k := v.GetKind().(type) {
	case *mxgatewayv1.MxValue_BoolValue:
		s = fmt.Sprint(k.BoolValue)
	case *mxgatewayv1.MxValue_Int32Value:
		s = fmt.Sprint(k.Int32Value)
	case *mxgatewayv1.MxValue_Int64Value:
		s = fmt.Sprint(k.Int64Value)
	case *mxgatewayv1.MxValue_FloatValue:
		s = fmt.Sprint(k.FloatValue)
	case *mxgatewayv1.MxValue_DoubleValue:
		s = fmt.Sprint(k.DoubleValue)
	case *mxgatewayv1.MxValue_StringValue:
		s = k.StringValue
	case *mxgatewayv1.MxValue_TimestampValue:
		s = k.TimestampValue.AsTime().UTC().Format("2006-01-02 15:04:05.000Z")
	case *mxgatewayv1.MxValue_DurationValue:
		s = k.DurationValue.AsDuration().String()
	case *mxgatewayv1.MxValue_ArrayValue:
		s = strings.Join(strings.Fields(prototext.MarshalOptions{}.Format(k.ArrayValue)), " ")
	default:
		s = v.GetDiagnostic()
	}
	if len(s) > maxValueText {
		s = strings.ToValidUTF8(s[:maxValueText], "") + "…"
	}
	return s
}

// formatQuality prints a quality: its class and raw OPC DA value.
func formatQuality(q *mxgatewayv1.Quality) string {
	if q == nil {
		return ""
	}
	return fmt.Sprintf("%s (0x%02X)", strings.TrimPrefix(q.GetQualityClass().String(), "QUALITY_CLASS_"), q.GetRaw())
}
