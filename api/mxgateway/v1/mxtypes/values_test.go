package mxtypes

import (
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

func TestVariantTypeOf(t *testing.T) {
	want := map[mxgatewayv1.MxDataType]VT{
		mxgatewayv1.MxDataType_MX_DATA_TYPE_NO_DATA:                      VT_EMPTY,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_BOOLEAN:                      VT_BOOL,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER:                      VT_I4,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_FLOAT:                        VT_R4,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_DOUBLE:                       VT_R8,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_STRING:                       VT_BSTR,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_TIME:                         VT_DATE,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_ELAPSED_TIME:                 VT_R8,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_REFERENCE:                    VT_BSTR,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_STATUS:                       VT_I4,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_DATA_TYPE_ENUM:               VT_I4,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_SECURITY_CLASSIFICATION_ENUM: VT_I4,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_DATA_QUALITY:                 VT_I4,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_QUALIFIED_ENUM:               VT_BSTR,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_QUALIFIED_STRUCT:             VT_EMPTY,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_INTERNATIONALIZED_STRING:     VT_BSTR,
		mxgatewayv1.MxDataType_MX_DATA_TYPE_BIG_STRING:                   VT_BSTR,
	}
	for dt, vt := range want {
		if got := VariantTypeOf(dt); got != vt {
			t.Errorf("VariantTypeOf(%v) = %d, want %d", dt, got, vt)
		}
	}
}

func TestTimeValueIsUTCMillisecond(t *testing.T) {
	in := time.Date(2025, 3, 4, 5, 6, 7, 891_234_567, time.FixedZone("Z1", 7200))
	v := TimeValue(in)
	got := v.GetTimestampValue().AsTime()
	if !got.Equal(in.Truncate(time.Millisecond)) || got.Nanosecond() != 891_000_000 {
		t.Fatalf("TimeValue = %v", got)
	}
	if v.GetVariantType() != uint32(VT_DATE) || v.GetDataType() != mxgatewayv1.MxDataType_MX_DATA_TYPE_TIME {
		t.Fatalf("TimeValue types %v", v)
	}
}

func TestArrayElement(t *testing.T) {
	arr := &mxgatewayv1.MxArray{
		ElementType:        mxgatewayv1.MxDataType_MX_DATA_TYPE_STRING,
		ElementVariantType: uint32(VT_BSTR),
		Elements:           &mxgatewayv1.MxArray_Strings{Strings: &mxgatewayv1.StringArray{Values: []string{"a", "b"}}},
	}
	v := ArrayValue(arr)
	if v.GetVariantType() != uint32(VT_ARRAY|VT_BSTR) || ArrayLen(arr) != 2 {
		t.Fatalf("ArrayValue %v", v)
	}
	if e := ArrayElement(arr, 1); e.GetStringValue() != "b" || e.GetVariantType() != uint32(VT_BSTR) {
		t.Fatalf("element 1 = %v", e)
	}
	if ArrayElement(arr, 2) != nil || ArrayElement(arr, -1) != nil {
		t.Fatal("out-of-range element not nil")
	}
	if e := ElapsedValue(90 * time.Second); e.GetDoubleValue() != 90 || e.GetVariantType() != uint32(VT_R8) {
		t.Fatalf("ElapsedValue %v", e)
	}
	if n := NullValue(mxgatewayv1.MxDataType_MX_DATA_TYPE_NO_DATA); !n.GetIsNull() || n.GetVariantType() != uint32(VT_EMPTY) {
		t.Fatalf("NullValue %v", n)
	}
}
