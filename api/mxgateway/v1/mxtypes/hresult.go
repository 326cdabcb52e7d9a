package mxtypes

import "fmt"

// Well-known HRESULTs, as the signed 32-bit numbers MXAccess returns and
// the wire carries (MXACCESS.md §2.5).
const (
	S_OK                = int32(0)
	S_FALSE             = int32(1)
	E_NOTIMPL           = int32(-2147467263) // 0x80004001
	E_FAIL              = int32(-2147467259) // 0x80004005
	CO_E_NOT_SUPPORTED  = int32(-2147467231) // 0x80004021
	REGDB_E_CLASSNOTREG = int32(-2147221164) // 0x80040154
	E_ACCESSDENIED      = int32(-2147024891) // 0x80070005
	E_INVALIDARG        = int32(-2147024809) // 0x80070057
)

var hresultNames = map[int32]string{
	S_OK: "S_OK", S_FALSE: "S_FALSE", E_NOTIMPL: "E_NOTIMPL", E_FAIL: "E_FAIL",
	CO_E_NOT_SUPPORTED: "CO_E_NOT_SUPPORTED", REGDB_E_CLASSNOTREG: "REGDB_E_CLASSNOTREG",
	E_ACCESSDENIED: "E_ACCESSDENIED", E_INVALIDARG: "E_INVALIDARG",
}

// HResultName returns the symbolic name of a well-known HRESULT, or "".
func HResultName(hr int32) string { return hresultNames[hr] }

// HResultString formats an HRESULT as "0x80070057 E_INVALIDARG" (the name
// only when it is a well-known one).
func HResultString(hr int32) string {
	if name := hresultNames[hr]; name != "" {
		return fmt.Sprintf("0x%08X %s", uint32(hr), name)
	}
	return fmt.Sprintf("0x%08X", uint32(hr))
}

// Failed reports whether hr is a failure HRESULT (its severity bit set).
func Failed(hr int32) bool { return hr < 0 }
