package variant

import (
	"encoding/binary"
	"errors"
	"fmt"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
)

// StatusLayout is the memory layout of one MXSTATUS_PROXY record.
type StatusLayout struct {
	Size          uint32
	SuccessOff    uint32 // int16
	CategoryOff   uint32 // int32 (MxStatusCategory)
	DetectedByOff uint32 // int32 (MxStatusSource)
	DetailOff     uint32 // int16
}

// DefaultStatusLayout is the compiled-in MXSTATUS_PROXY layout: int16
// success@0, int32 category@4, int32 detectedBy@8, int16 detail@12, 16
// bytes with natural alignment. [unverified] (MXACCESS.md §8.6): the COM
// layer compares it with the type library's record description at start-up
// (StatusLayoutFromFields) and refuses to decode on mismatch.
var DefaultStatusLayout = StatusLayout{Size: 16, SuccessOff: 0, CategoryOff: 4, DetectedByOff: 8, DetailOff: 12}

// Validate checks that every field lies inside the record.
func (l StatusLayout) Validate() error {
	if l.Size == 0 || l.SuccessOff+2 > l.Size || l.CategoryOff+4 > l.Size ||
		l.DetectedByOff+4 > l.Size || l.DetailOff+2 > l.Size {
		return fmt.Errorf("%w: MXSTATUS_PROXY layout %+v", ErrMalformed, l)
	}
	return nil
}

// RecordField is one field of a record type as a type library describes it
// (VARDESC: name, oInst and VARTYPE).
type RecordField struct {
	Name   string
	Offset uint32
	VT     VT
}

// StatusLayoutFromFields builds a layout from a type library's description
// of MXSTATUS_PROXY. Field names are matched case-insensitively; enum fields
// appear as VT_I4 or VT_USERDEFINED (an enum), the 16-bit ones as VT_I2,
// VT_UI2 or VT_BOOL.
func StatusLayoutFromFields(size uint32, fields []RecordField) (StatusLayout, error) {
	l := StatusLayout{Size: size}
	found := 0
	for _, f := range fields {
		var dst *uint32
		var small bool
		switch lower(f.Name) {
		case "success":
			dst, small = &l.SuccessOff, true
		case "category":
			dst = &l.CategoryOff
		case "detectedby":
			dst = &l.DetectedByOff
		case "detail":
			dst, small = &l.DetailOff, true
		default:
			continue
		}
		if small && f.VT != VT_I2 && f.VT != VT_UI2 && f.VT != VT_BOOL {
			return StatusLayout{}, fmt.Errorf("%w: MXSTATUS_PROXY.%s is %s, want a 16-bit type", ErrMalformed, f.Name, f.VT)
		}
		if !small && f.VT != VT_I4 && f.VT != VT_INT && f.VT != VT_USERDEFINED && f.VT != VT_UI4 {
			return StatusLayout{}, fmt.Errorf("%w: MXSTATUS_PROXY.%s is %s, want a 32-bit type", ErrMalformed, f.Name, f.VT)
		}
		*dst = f.Offset
		found++
	}
	if found != 4 {
		return StatusLayout{}, fmt.Errorf("%w: MXSTATUS_PROXY has %d of the 4 expected fields", ErrMalformed, found)
	}
	return l, l.Validate()
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

// ErrStatusLayout is returned when a status array's element size differs
// from the layout: the statuses are then not decoded at all.
var ErrStatusLayout = errors.New("variant: MXSTATUS_PROXY element size differs from the expected layout")

// DecodeStatuses decodes every MXSTATUS_PROXY element of v: a record array
// (VT_ARRAY|VT_RECORD, possibly received VT_BYREF) or a single record whose
// bytes the COM layer copied into Raw. VT_EMPTY is an empty status list.
func DecodeStatuses(v Value, l StatusLayout) ([]*mxgatewayv1.MxStatus, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	var raw []byte
	switch {
	case v.VT == VT_EMPTY || v.VT == VT_NULL:
		return nil, nil
	case v.VT == VT_ARRAY|VT_RECORD:
		if v.Array == nil || len(v.Array.Raw) == 0 {
			return nil, nil
		}
		if v.Array.Header.ElemSize != l.Size {
			return nil, fmt.Errorf("%w: element size %d, layout %d (raw % X)", ErrStatusLayout, v.Array.Header.ElemSize, l.Size, v.Array.Raw)
		}
		raw = v.Array.Raw
	case v.VT == VT_RECORD && len(v.Raw) > 0:
		if uint32(len(v.Raw)) != l.Size {
			return nil, fmt.Errorf("%w: record of %d bytes, layout %d", ErrStatusLayout, len(v.Raw), l.Size)
		}
		raw = v.Raw
	default:
		return nil, fmt.Errorf("%w: status argument is %s (%s), not a record array", ErrMalformed, v.VT, v.RawVT)
	}
	out := make([]*mxgatewayv1.MxStatus, 0, len(raw)/int(l.Size))
	for off := 0; off+int(l.Size) <= len(raw); off += int(l.Size) {
		r := raw[off : off+int(l.Size)]
		out = append(out, mxtypes.NewStatus(
			int16(binary.LittleEndian.Uint16(r[l.SuccessOff:])),
			int32(binary.LittleEndian.Uint32(r[l.CategoryOff:])),
			int32(binary.LittleEndian.Uint32(r[l.DetectedByOff:])),
			int16(binary.LittleEndian.Uint16(r[l.DetailOff:])),
		))
	}
	return out, nil
}

// StatusRecord returns the bytes of one MXSTATUS_PROXY in layout l, for
// fixtures and the self-test's comparison.
func StatusRecord(l StatusLayout, success int16, category, detectedBy int32, detail int16) []byte {
	b := make([]byte, l.Size)
	binary.LittleEndian.PutUint16(b[l.SuccessOff:], uint16(success))
	binary.LittleEndian.PutUint32(b[l.CategoryOff:], uint32(category))
	binary.LittleEndian.PutUint32(b[l.DetectedByOff:], uint32(detectedBy))
	binary.LittleEndian.PutUint16(b[l.DetailOff:], uint16(detail))
	return b
}
