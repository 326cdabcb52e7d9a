package variant

import (
	"encoding/binary"
	"errors"
	"testing"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

func TestDecodeStatusesByteFixture(t *testing.T) {
	a := NewArena()
	// Two MXSTATUS_PROXY records exactly as the compiled-in layout expects:
	// {success=-1, category=0 (Ok), detectedBy=1, detail=0} and
	// {success=0, category=3 (CommunicationError), detectedBy=1, detail=1003}.
	raw := []byte{
		0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0xEB, 0x03, 0x00, 0x00,
	}
	sa := a.SafeArray(FADF_RECORD, 0, 16, 0, 2, raw)
	slot := a.Alloc(binary.LittleEndian.AppendUint32(nil, sa))
	v, err := ReadVariant(a, a.Variant(VT_BYREF|VT_ARRAY|VT_RECORD, uint64(slot)))
	if err != nil {
		t.Fatal(err)
	}
	if string(v.Array.Raw) != string(raw) {
		t.Fatalf("raw % X", v.Array.Raw)
	}
	st, err := DecodeStatuses(v, DefaultStatusLayout)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 2 {
		t.Fatalf("%d statuses", len(st))
	}
	if !st[0].Success || st[0].SuccessRaw != -1 || st[0].Category != mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_OK {
		t.Errorf("status 0 = %v", st[0])
	}
	if st[1].Success || st[1].Category != mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_COMMUNICATION_ERROR ||
		st[1].Detail != 1003 || st[1].DetectedByRaw != 1 {
		t.Errorf("status 1 = %v", st[1])
	}
	if got := StatusRecord(DefaultStatusLayout, 0, 3, 1, 1003); string(got) != string(raw[16:]) {
		t.Errorf("StatusRecord % X", got)
	}
}

func TestDecodeStatusesRefusesOtherLayouts(t *testing.T) {
	a := NewArena()
	sa := a.SafeArray(FADF_RECORD, 0, 12, 0, 1, make([]byte, 12))
	v, err := ReadVariant(a, a.Variant(VT_ARRAY|VT_RECORD, uint64(sa)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeStatuses(v, DefaultStatusLayout); !errors.Is(err, ErrStatusLayout) {
		t.Fatalf("err = %v", err)
	}
	if _, err := DecodeStatuses(Int32(1), DefaultStatusLayout); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v", err)
	}
	if st, err := DecodeStatuses(Empty(), DefaultStatusLayout); err != nil || st != nil {
		t.Fatalf("empty: %v %v", st, err)
	}
	// A packed 12-byte layout (if the type library says so) decodes.
	packed := StatusLayout{Size: 12, SuccessOff: 0, CategoryOff: 2, DetectedByOff: 6, DetailOff: 10}
	rec := StatusRecord(packed, -1, 6, 5, 7)
	sa = a.SafeArray(FADF_RECORD, 0, 12, 0, 1, rec)
	v, _ = ReadVariant(a, a.Variant(VT_ARRAY|VT_RECORD, uint64(sa)))
	st, err := DecodeStatuses(v, packed)
	if err != nil || len(st) != 1 || st[0].CategoryRaw != 6 || st[0].DetectedByRaw != 5 || st[0].Detail != 7 {
		t.Fatalf("packed: %v %v", st, err)
	}
}

func TestStatusLayoutFromFields(t *testing.T) {
	fields := []RecordField{
		{"success", 0, VT_I2}, {"category", 4, VT_USERDEFINED}, {"detectedBy", 8, VT_USERDEFINED}, {"detail", 12, VT_I2},
	}
	l, err := StatusLayoutFromFields(16, fields)
	if err != nil || l != DefaultStatusLayout {
		t.Fatalf("l=%+v err=%v", l, err)
	}
	if _, err := StatusLayoutFromFields(16, fields[:3]); err == nil {
		t.Fatal("accepted 3 fields")
	}
	bad := append([]RecordField(nil), fields...)
	bad[0].VT = VT_I4
	if _, err := StatusLayoutFromFields(16, bad); err == nil {
		t.Fatal("accepted 32-bit success")
	}
	if _, err := StatusLayoutFromFields(8, fields); err == nil {
		t.Fatal("accepted fields beyond the size")
	}
}
