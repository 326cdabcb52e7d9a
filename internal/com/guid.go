package com

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// GUID has the memory layout of a Windows GUID (and of go-ole's ole.GUID).
type GUID struct {
	Data1 uint32
	Data2 uint16
	Data3 uint16
	Data4 [8]byte
}

// ErrBadGUID is returned by ParseGUID.
var ErrBadGUID = errors.New("com: malformed GUID")

// ParseGUID parses "{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}" (braces optional).
func ParseGUID(s string) (GUID, error) {
	t := strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	if len(t) != 36 || t[8] != '-' || t[13] != '-' || t[18] != '-' || t[23] != '-' {
		return GUID{}, fmt.Errorf("%w: %q", ErrBadGUID, s)
	}
	b, err := hex.DecodeString(t[0:8] + t[9:13] + t[14:18] + t[19:23] + t[24:])
	if err != nil {
		return GUID{}, fmt.Errorf("%w: %q", ErrBadGUID, s)
	}
	var g GUID
	g.Data1 = binary.BigEndian.Uint32(b[0:])
	g.Data2 = binary.BigEndian.Uint16(b[4:])
	g.Data3 = binary.BigEndian.Uint16(b[6:])
	copy(g.Data4[:], b[8:])
	return g, nil
}

// MustParseGUID is ParseGUID for constants; it panics on a malformed GUID.
func MustParseGUID(s string) GUID {
	g, err := ParseGUID(s)
	if err != nil {
		panic(err)
	}
	return g
}

// String formats g in registry form with braces and upper-case hex.
func (g GUID) String() string {
	return fmt.Sprintf("{%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X}",
		g.Data1, g.Data2, g.Data3, g.Data4[0], g.Data4[1],
		g.Data4[2], g.Data4[3], g.Data4[4], g.Data4[5], g.Data4[6], g.Data4[7])
}

// Bytes returns the 16 bytes of g in memory order.
func (g GUID) Bytes() [16]byte {
	var b [16]byte
	binary.LittleEndian.PutUint32(b[0:], g.Data1)
	binary.LittleEndian.PutUint16(b[4:], g.Data2)
	binary.LittleEndian.PutUint16(b[6:], g.Data3)
	copy(b[8:], g.Data4[:])
	return b
}

// GUIDFromBytes decodes 16 bytes in memory order.
func GUIDFromBytes(b []byte) GUID {
	var g GUID
	g.Data1 = binary.LittleEndian.Uint32(b[0:])
	g.Data2 = binary.LittleEndian.Uint16(b[4:])
	g.Data3 = binary.LittleEndian.Uint16(b[6:])
	copy(g.Data4[:], b[8:16])
	return g
}

// Well-known interface IDs.
var (
	IID_NULL                      = GUID{}
	IID_IUnknown                  = MustParseGUID("{00000000-0000-0000-C000-000000000046}")
	IID_IDispatch                 = MustParseGUID("{00020400-0000-0000-C000-000000000046}")
	IID_IConnectionPointContainer = MustParseGUID("{B196B284-BAB4-101A-B69C-00AA00341D07}")
	IID_IConnectionPoint          = MustParseGUID("{B196B286-BAB4-101A-B69C-00AA00341D07}")
)
