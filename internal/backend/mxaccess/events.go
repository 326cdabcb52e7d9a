package mxaccess

import (
	"errors"
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	"github.com/mxgateway/mxgateway/internal/variant"
)

// Event member names of _ILMXProxyServerEvents and _ILMXProxyServerEvents2.
const (
	EventOnDataChange         = "OnDataChange"
	EventOnWriteComplete      = "OnWriteComplete"
	EventOperationComplete    = "OperationComplete"
	EventOnBufferedDataChange = "OnBufferedDataChange"
)

// EventNames lists the event members the sinks accept.
var EventNames = []string{EventOnDataChange, EventOnWriteComplete, EventOperationComplete, EventOnBufferedDataChange}

// ErrEventShape is returned when an event's arguments do not have the
// shape this build expects.
var ErrEventShape = errors.New("mxaccess: unexpected event arguments")

// eventDecoder turns copied-out event arguments into wire events.
type eventDecoder struct {
	loc    *time.Location
	layout variant.StatusLayout
}

// decode builds the event for member name. The argument shapes follow
// MXACCESS.md §3: OnDataChange(hLMX, hItem, value, quality, timestamp,
// ref statuses) and OnWriteComplete(hLMX, hItem, ref statuses) are
// verified; OperationComplete and OnBufferedDataChange are [unverified]
// and decoded leniently (see decodeOperationComplete, decodeBuffered).
func (d eventDecoder) decode(name string, args []variant.Value) (*mxgatewayv1.Event, error) {
	switch name {
	case EventOnDataChange:
		return d.decodeDataChange(args)
	case EventOnWriteComplete:
		if len(args) != 3 {
			return nil, fmt.Errorf("%w: %s with %d arguments %s, want 3", ErrEventShape, name, len(args), vts(args))
		}
		h, it, err := handles(name, args)
		if err != nil {
			return nil, err
		}
		st, err := variant.DecodeStatuses(args[2], d.layout)
		if err != nil {
			return nil, fmt.Errorf("%s statuses: %w", name, err)
		}
		return &mxgatewayv1.Event{Family: mxgatewayv1.EventFamily_EVENT_FAMILY_ON_WRITE_COMPLETE,
			Body: &mxgatewayv1.Event_WriteComplete{WriteComplete: &mxgatewayv1.OnWriteComplete{
				ServerHandle: h, ItemHandle: it, Statuses: st}}}, nil
	case EventOperationComplete:
		return d.decodeOperationComplete(args)
	case EventOnBufferedDataChange:
		return d.decodeBuffered(args)
	}
	return nil, fmt.Errorf("%w: unknown event %q", ErrEventShape, name)
}

func (d eventDecoder) decodeDataChange(args []variant.Value) (*mxgatewayv1.Event, error) {
	if len(args) != 6 {
		return nil, fmt.Errorf("%w: OnDataChange with %d arguments %s, want 6", ErrEventShape, len(args), vts(args))
	}
	h, it, err := handles(EventOnDataChange, args)
	if err != nil {
		return nil, err
	}
	q, err := quality(args[3])
	if err != nil {
		return nil, err
	}
	st, err := variant.DecodeStatuses(args[5], d.layout)
	if err != nil {
		return nil, fmt.Errorf("OnDataChange statuses: %w", err)
	}
	val := variant.ToMxValue(args[2], d.loc)
	ts, diag := d.timestamp(args[4])
	if diag != "" {
		val.Diagnostic = joinDiag(val.Diagnostic, diag)
	}
	return &mxgatewayv1.Event{Family: mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE,
		Body: &mxgatewayv1.Event_DataChange{DataChange: &mxgatewayv1.OnDataChange{
			ServerHandle: h, ItemHandle: it, Value: val, Quality: mxtypes.NewQuality(q),
			Timestamp: ts, Statuses: st}}}, nil
}

// decodeOperationComplete accepts (hLMX, hItem[, ..., statuses]): the
// parameters are [unverified]; MXACCESS.md §3.4 expects the OnWriteComplete
// shape. A trailing record array is the status list.
func (d eventDecoder) decodeOperationComplete(args []variant.Value) (*mxgatewayv1.Event, error) {
	if len(args) < 2 {
		return nil, fmt.Errorf("%w: OperationComplete with %d arguments %s", ErrEventShape, len(args), vts(args))
	}
	h, it, err := handles(EventOperationComplete, args)
	if err != nil {
		return nil, err
	}
	var st []*mxgatewayv1.MxStatus
	if len(args) > 2 {
		if st, err = variant.DecodeStatuses(args[len(args)-1], d.layout); err != nil {
			return nil, fmt.Errorf("OperationComplete statuses: %w", err)
		}
	}
	return &mxgatewayv1.Event{Family: mxgatewayv1.EventFamily_EVENT_FAMILY_OPERATION_COMPLETE,
		Body: &mxgatewayv1.Event_OperationComplete{OperationComplete: &mxgatewayv1.OperationComplete{
			ServerHandle: h, ItemHandle: it, Statuses: st}}}, nil
}

// decodeBuffered accepts the [unverified] guess (hLMX, hItem, values,
// qualities, timestamps, statuses): values/qualities/timestamps are either
// equal-length arrays (one sample per index, in order) or scalars (one
// sample).
func (d eventDecoder) decodeBuffered(args []variant.Value) (*mxgatewayv1.Event, error) {
	if len(args) != 6 {
		return nil, fmt.Errorf("%w: OnBufferedDataChange with %d arguments %s, want 6", ErrEventShape, len(args), vts(args))
	}
	h, it, err := handles(EventOnBufferedDataChange, args)
	if err != nil {
		return nil, err
	}
	st, err := variant.DecodeStatuses(args[5], d.layout)
	if err != nil {
		return nil, fmt.Errorf("OnBufferedDataChange statuses: %w", err)
	}
	vals, quals, times := elems(args[2]), elems(args[3]), elems(args[4])
	if len(vals) != len(quals) || len(vals) != len(times) {
		return nil, fmt.Errorf("%w: OnBufferedDataChange with %d values, %d qualities, %d timestamps", ErrEventShape, len(vals), len(quals), len(times))
	}
	samples := make([]*mxgatewayv1.BufferedSample, len(vals))
	for i := range vals {
		q, err := quality(quals[i])
		if err != nil {
			return nil, err
		}
		v := variant.ToMxValue(vals[i], d.loc)
		ts, diag := d.timestamp(times[i])
		if diag != "" {
			v.Diagnostic = joinDiag(v.Diagnostic, diag)
		}
		samples[i] = &mxgatewayv1.BufferedSample{Value: v, Quality: mxtypes.NewQuality(q), Timestamp: ts}
	}
	return &mxgatewayv1.Event{Family: mxgatewayv1.EventFamily_EVENT_FAMILY_ON_BUFFERED_DATA_CHANGE,
		Body: &mxgatewayv1.Event_BufferedDataChange{BufferedDataChange: &mxgatewayv1.OnBufferedDataChange{
			ServerHandle: h, ItemHandle: it, Samples: samples, Statuses: st}}}, nil
}

// elems returns the elements of an array argument, or the argument itself.
func elems(v variant.Value) []variant.Value {
	if v.VT.IsArray() && v.Array != nil {
		return v.Array.Elems
	}
	return []variant.Value{v}
}

func handles(name string, args []variant.Value) (int32, int32, error) {
	h, ok1 := args[0].Int()
	it, ok2 := args[1].Int()
	if !ok1 || !ok2 || h < math.MinInt32 || h > math.MaxInt32 || it < math.MinInt32 || it > math.MaxInt32 {
		return 0, 0, fmt.Errorf("%w: %s handles are %s, %s", ErrEventShape, name, args[0], args[1])
	}
	return int32(h), int32(it), nil
}

// quality reads the quality word. It may arrive as VT_I2 or VT_I4
// [unverified]; only its 16 bits mean anything (MXACCESS.md §8.6).
func quality(v variant.Value) (uint16, error) {
	q, ok := v.Int()
	if !ok {
		return 0, fmt.Errorf("%w: quality is %s", ErrEventShape, v)
	}
	return uint16(q), nil
}

// timestamp reads the value time: VT_DATE as wall-clock time in the
// configured zone [unverified which], VT_FILETIME / 64-bit integers as UTC
// FILETIME (the `pft` prefix), VT_EMPTY as none. Anything else yields no
// timestamp and a diagnostic.
func (d eventDecoder) timestamp(v variant.Value) (*timestamppb.Timestamp, string) {
	switch v.VT {
	case variant.VT_EMPTY, variant.VT_NULL:
		return nil, ""
	case variant.VT_DATE:
		oa, _ := v.Float()
		t, err := variant.FromOADate(oa, d.loc)
		if err != nil {
			return nil, fmt.Sprintf("timestamp VT_DATE %v out of range", oa)
		}
		return timestamppb.New(t), ""
	case variant.VT_FILETIME, variant.VT_I8, variant.VT_UI8:
		return timestamppb.New(variant.FromFILETIME(v.Bits)), ""
	}
	return nil, "timestamp not decodable: " + v.String()
}

func joinDiag(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func vts(args []variant.Value) string {
	s := "("
	for i, a := range args {
		if i > 0 {
			s += ", "
		}
		s += a.RawVT.String()
	}
	return s + ")"
}
