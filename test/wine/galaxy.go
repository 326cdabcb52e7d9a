package wine

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	"github.com/mxgateway/mxgateway/internal/backend/sim"
)

// StandInGalaxy renders a simulator model as the Galaxy file of the
// stand-in LMXProxy server (the format is described in
// lmxproxy/galaxy.c). The model is the one home of the Galaxy: the
// simulator loads the same file as its model, so both backends serve the
// same attributes, values, classifications and users. Every value travels
// as the VARIANT type mxtypes.VariantTypeOf gives its data type.
func StandInGalaxy(m *sim.Model) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "galaxy\t%s\n", escape(m.Galaxy))
	for _, u := range m.Users {
		fmt.Fprintf(&b, "user\t%s\t%s\t%s\n", escape(u.Name), escape(u.Password), strings.Join(u.Permissions, ","))
	}
	for _, o := range m.Objects {
		for _, a := range o.Attributes {
			vt := mxtypes.VariantTypeOf(a.Type)
			fields := []string{"attr", escape(o.Tag + "." + a.Name), strconv.Itoa(int(a.Type)), strconv.Itoa(int(vt)),
				strconv.Itoa(int(a.Security)), strconv.Itoa(a.Dimension), strconv.Itoa(int(a.Quality))}
			vals, err := encodeValues(a, vt)
			if err != nil {
				return nil, fmt.Errorf("wine: %s.%s: %w", o.Tag, a.Name, err)
			}
			b.WriteString(strings.Join(append(fields, vals...), "\t"))
			b.WriteByte('\n')
		}
	}
	return b.Bytes(), nil
}

// encodeValues returns the value fields of an attribute's initial value:
// one for a scalar, Dimension for an array, none for a type without a
// value (MxNoData, MxQualifiedStruct).
func encodeValues(a *sim.Attribute, vt mxtypes.VT) ([]string, error) {
	if vt == mxtypes.VT_EMPTY {
		return nil, nil
	}
	if a.Dimension == 0 {
		s, err := encodeScalar(a.Initial, vt)
		if err != nil {
			return nil, err
		}
		return []string{s}, nil
	}
	out := make([]string, a.Dimension)
	for i := range out {
		var e *mxgatewayv1.MxValue
		if arr := a.Initial.GetArrayValue(); arr != nil && i < mxtypes.ArrayLen(arr) {
			e = mxtypes.ArrayElement(arr, i)
		}
		s, err := encodeScalar(e, vt)
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		out[i] = s
	}
	return out, nil
}

// encodeScalar encodes one value for VARIANT type vt; nil is the type's
// zero value, as in the simulator.
func encodeScalar(v *mxgatewayv1.MxValue, vt mxtypes.VT) (string, error) {
	switch vt {
	case mxtypes.VT_BOOL:
		if v.GetBoolValue() {
			return "1", nil
		}
		return "0", nil
	case mxtypes.VT_I4:
		return strconv.FormatInt(int64(v.GetInt32Value()), 10), nil
	case mxtypes.VT_R4:
		return strconv.FormatFloat(float64(v.GetFloatValue()), 'g', -1, 32), nil
	case mxtypes.VT_R8:
		d := v.GetDoubleValue()
		if du := v.GetDurationValue(); du != nil {
			d = du.AsDuration().Seconds()
		}
		return strconv.FormatFloat(d, 'g', -1, 64), nil
	case mxtypes.VT_BSTR:
		return escape(v.GetStringValue()), nil
	case mxtypes.VT_DATE:
		if v.GetTimestampValue() == nil {
			return "0", nil
		}
		return strconv.FormatInt(v.GetTimestampValue().AsTime().UnixMilli(), 10), nil
	}
	return "", fmt.Errorf("no stand-in encoding for VARIANT type %d", vt)
}

// escape protects the file's separators: backslash, tab and newline.
func escape(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`).Replace(s)
}
