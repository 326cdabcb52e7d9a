package com

import (
	"testing"

	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
)

// TestHRESULTsAgreeWithMxtypes: the COM ABI's unsigned HRESULTs and the
// wire's signed ones are the same numbers.
func TestHRESULTsAgreeWithMxtypes(t *testing.T) {
	for _, c := range []struct {
		name     string
		unsigned uint32
		signed   int32
	}{
		{"S_OK", S_OK, mxtypes.S_OK},
		{"S_FALSE", S_FALSE, mxtypes.S_FALSE},
		{"E_NOTIMPL", E_NOTIMPL, mxtypes.E_NOTIMPL},
		{"E_FAIL", E_FAIL, mxtypes.E_FAIL},
		{"E_INVALIDARG", E_INVALIDARG, mxtypes.E_INVALIDARG},
	} {
		if int32(c.unsigned) != c.signed {
			t.Errorf("%s: com 0x%08X, mxtypes %d", c.name, c.unsigned, c.signed)
		}
	}
}
