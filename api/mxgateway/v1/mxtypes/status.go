package mxtypes

import (
	"fmt"
	"strings"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// NewStatus returns an MxStatus from the raw MXSTATUS_PROXY fields (§4):
// the enums carry the numbers, the raw fields keep them when they fall
// outside the known values.
func NewStatus(success int16, category, detectedBy int32, detail int16) *mxgatewayv1.MxStatus {
	return &mxgatewayv1.MxStatus{
		Success:       success != 0,
		SuccessRaw:    int32(success),
		Category:      mxgatewayv1.MxStatusCategory(category),
		DetectedBy:    mxgatewayv1.MxStatusSource(detectedBy),
		Detail:        int32(detail),
		CategoryRaw:   category,
		DetectedByRaw: detectedBy,
	}
}

// StatusOK reports whether one status entry is a success: category Ok or
// Pending (accepted, in progress), or Warning with a non-zero success word.
// Branch on the category, never on success == 1 (MXACCESS.md §4).
func StatusOK(st *mxgatewayv1.MxStatus) bool {
	switch st.GetCategory() {
	case mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_OK, mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_PENDING:
		return true
	case mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_WARNING:
		return st.GetSuccess()
	}
	return false
}

// CategoryName returns MXAccess's name of a status category
// ("MxCategorySecurityError"), or "MxCategory(n)" with the raw number for
// one this build does not know.
func CategoryName(c mxgatewayv1.MxStatusCategory, raw int32) string {
	if _, ok := mxgatewayv1.MxStatusCategory_name[int32(c)]; !ok {
		return fmt.Sprintf("MxCategory(%d)", raw)
	}
	if c == mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_UNKNOWN {
		return "MxStatusCategoryUnknown"
	}
	return "MxCategory" + camel(strings.TrimPrefix(c.String(), "MX_STATUS_CATEGORY_"))
}

// SourceName returns the name of a status source ("RespondingLmx"), or
// "source n" for one this build does not know.
func SourceName(s mxgatewayv1.MxStatusSource, raw int32) string {
	if _, ok := mxgatewayv1.MxStatusSource_name[int32(s)]; !ok {
		return fmt.Sprintf("source %d", raw)
	}
	return camel(strings.TrimPrefix(s.String(), "MX_STATUS_SOURCE_"))
}

// StatusString formats one status as "MxCategorySecurityError from
// RespondingAutomationObject, detail 0".
func StatusString(st *mxgatewayv1.MxStatus) string {
	if st == nil {
		return "no status"
	}
	return fmt.Sprintf("%s from %s, detail %d", CategoryName(st.GetCategory(), st.GetCategoryRaw()),
		SourceName(st.GetDetectedBy(), st.GetDetectedByRaw()), st.GetDetail())
}

// camel turns SECURITY_ERROR into SecurityError.
func camel(s string) string {
	var b strings.Builder
	for _, part := range strings.Split(s, "_") {
		if part == "" {
			continue
		}
		b.WriteString(part[:1])
		b.WriteString(strings.ToLower(part[1:]))
	}
	return b.String()
}
