package alarms

import (
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
)

// TestSubtagSettled: a view whose flags disagree with its times is held
// back (a raise whose InAlarm has not arrived yet, an ack whose Acked has
// not), as is one whose first values are still arriving.
func TestSubtagSettled(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &subtagRun{srcs: []Source{{Reference: "T.A"}}, vals: make([][nFields]*mxgatewayv1.MxValue, 1), have: make([][nFields]bool, 1), mapped: make([][nFields]bool, 1)}
	set := func(f field, v *mxgatewayv1.MxValue) { r.vals[0][f], r.have[0][f], r.mapped[0][f] = v, true, true }
	r.mapped[0][fPriority] = true // mapped, not arrived
	r.mapped[0][fAckOp] = true    // never arrives (a node has no AckOperator): not waited for
	set(fInAlarm, mxtypes.BoolValue(false))
	set(fAcked, mxtypes.BoolValue(true))
	set(fTimeOn, mxtypes.TimeValue(t0))
	set(fTimeOff, mxtypes.TimeValue(t0))
	set(fTimeAcked, mxtypes.TimeValue(t0))
	if r.settled(0) {
		t.Fatal("settled before every first value arrived")
	}
	set(fPriority, mxtypes.IntegerValue(500))
	if !r.settled(0) {
		t.Fatal("the normal state must be settled")
	}
	// A raise: Acked reset and TimeAlarmOn stamped, InAlarm still false.
	set(fAcked, mxtypes.BoolValue(false))
	set(fTimeOn, mxtypes.TimeValue(t0.Add(time.Second)))
	if r.settled(0) {
		t.Fatal("a raise without its InAlarm is settled")
	}
	set(fInAlarm, mxtypes.BoolValue(true))
	if !r.settled(0) {
		t.Fatal("the raise is complete")
	}
	// An ack: TimeAlarmAcked first.
	set(fTimeAcked, mxtypes.TimeValue(t0.Add(2*time.Second)))
	if r.settled(0) {
		t.Fatal("an ack time without Acked is settled")
	}
	set(fAcked, mxtypes.BoolValue(true))
	if !r.settled(0) {
		t.Fatal("the ack is complete")
	}
	if o := r.observation(0); o.Instance != uint64(t0.Add(time.Second).UnixMilli()) || !o.InAlarm || !o.Acked || o.Priority != 500 || o.AckOperator != "" {
		t.Fatalf("observation %+v", o)
	}
	// The simulator's AckOperator names the Galaxy's operator; a value of
	// another type (a node's configuration error) names none.
	set(fAckOp, mxtypes.StringValue("operator"))
	if o := r.observation(0); o.AckOperator != "operator" {
		t.Fatalf("AckOperator %q", o.AckOperator)
	}
	set(fAckOp, mxtypes.IntegerValue(0))
	if o := r.observation(0); o.AckOperator != "" {
		t.Fatalf("AckOperator %q from a non-string", o.AckOperator)
	}
}
