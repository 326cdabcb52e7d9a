package runtime_test

import (
	"testing"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
)

const alarmModel = `
galaxy: AlGalaxy
users:
  - {name: op, password: op1, permissions: [operate]}
objects:
  - tag: Tank
    attributes:
      - {name: Level, type: MxDouble, value: 50}
      - {name: Level.Hi, type: MxBoolean, alarm: true}
      - {name: Level.Hi.Limit, type: MxDouble, value: 80}
      - {name: Level.Hi.Deadband, type: MxDouble, value: 5}
      - {name: Level.Lo, type: MxBoolean, alarm: true}
      - {name: Level.Lo.Limit, type: MxDouble, value: 10}
      - {name: Leak, type: MxBoolean, alarm: true}
`

func boolean(v bool) func(*mxgatewayv1.OnDataChange) bool {
	return func(dc *mxgatewayv1.OnDataChange) bool { return dc.GetValue().GetBoolValue() == v }
}

// TestLimitAlarmDeadband: a limit alarm raises at its limit, resets Acked,
// and returns only once the value is back by more than the deadband.
func TestLimitAlarmDeadband(t *testing.T) {
	r := startRig(t, shortDir(t), nil, alarmModel)
	s := openSession(t, r.dir, r.key)
	level := s.sub(t, "Tank.Level")
	in, acked := s.sub(t, "Tank.Level.Hi.InAlarm"), s.sub(t, "Tank.Level.Hi.Acked")
	on := s.sub(t, "Tank.Level.Hi.TimeAlarmOn")
	lo := s.sub(t, "Tank.Level.Lo.InAlarm")
	write := func(h int32, v *mxgatewayv1.MxValue) {
		t.Helper()
		if err := s.b.Write(s.h, h, v, 0); err != nil {
			t.Fatal(err)
		}
	}
	write(level, mxtypes.DoubleValue(85))
	// Events come in the order the runtime writes: Acked, TimeAlarmOn, InAlarm.
	s.rec.waitData(t, "Acked reset on raise", acked, boolean(false))
	first := s.rec.waitData(t, "raise time", on, func(*mxgatewayv1.OnDataChange) bool { return true })
	s.rec.waitData(t, "raise", in, boolean(true))
	write(level, mxtypes.DoubleValue(77)) // inside the deadband: still in alarm
	write(level, mxtypes.DoubleValue(74))
	s.rec.waitData(t, "return", in, boolean(false))
	write(level, mxtypes.DoubleValue(5))
	s.rec.waitData(t, "low limit", lo, boolean(true))
	write(level, mxtypes.DoubleValue(90))
	second := s.rec.waitData(t, "second raise time", on, func(*mxgatewayv1.OnDataChange) bool { return true })
	s.rec.waitData(t, "second raise", in, boolean(true))
	if !second.GetValue().GetTimestampValue().AsTime().After(first.GetValue().GetTimestampValue().AsTime()) {
		t.Fatalf("raise times %v then %v: each raise must be later", first.GetValue(), second.GetValue())
	}
	s.rec.waitData(t, "low return", lo, boolean(false))
}

// TestDiscreteAlarmAckAndMode: a discrete alarm follows its own value; an
// AckMsg write acknowledges and stamps the time and the operator (the
// registration's client name for a plain write, the Galaxy user of a
// secured one; a raise clears it); Disable forces InAlarm off.
func TestDiscreteAlarmAckAndMode(t *testing.T) {
	r := startRig(t, shortDir(t), nil, alarmModel)
	s := openSession(t, r.dir, r.key)
	leak, in, acked := s.sub(t, "Tank.Leak"), s.sub(t, "Tank.Leak.InAlarm"), s.sub(t, "Tank.Leak.Acked")
	ackMsg, ackTime, mode := s.sub(t, "Tank.Leak.AckMsg"), s.sub(t, "Tank.Leak.TimeAlarmAcked"), s.sub(t, "Tank.Leak.AlarmMode")
	cmd, op := s.sub(t, "Tank.Leak.AlarmModeCmd"), s.sub(t, "Tank.Leak.AckOperator")
	operator := func(name string) func(*mxgatewayv1.OnDataChange) bool {
		return func(dc *mxgatewayv1.OnDataChange) bool { return dc.GetValue().GetStringValue() == name }
	}
	write := func(h int32, v *mxgatewayv1.MxValue) {
		t.Helper()
		if err := s.b.Write(s.h, h, v, 0); err != nil {
			t.Fatal(err)
		}
	}
	write(leak, mxtypes.BoolValue(true))
	s.rec.waitData(t, "unacked", acked, boolean(false))
	s.rec.waitData(t, "raise", in, boolean(true))
	write(ackMsg, mxtypes.StringValue("seen it"))
	s.rec.waitData(t, "ack operator: the client name", op, operator("test"))
	s.rec.waitData(t, "ack time", ackTime, func(*mxgatewayv1.OnDataChange) bool { return true })
	s.rec.waitData(t, "acked", acked, boolean(true))
	write(cmd, mxtypes.StringValue("disable"))
	s.rec.waitData(t, "mode", mode, func(dc *mxgatewayv1.OnDataChange) bool { return dc.GetValue().GetStringValue() == "Disable" })
	s.rec.waitData(t, "disabled: off", in, boolean(false))
	write(cmd, mxtypes.StringValue("Enable"))
	s.rec.waitData(t, "a raise clears the operator", op, operator(""))
	s.rec.waitData(t, "a new raise is unacknowledged", acked, boolean(false))
	s.rec.waitData(t, "enabled: raised again", in, boolean(true))
	uid, err := s.b.AuthenticateUser(s.h, "op", "op1")
	if err != nil || uid == 0 {
		t.Fatalf("AuthenticateUser: %d, %v", uid, err)
	}
	if err := s.b.WriteSecured(s.h, ackMsg, uid, 0, mxtypes.StringValue("mine")); err != nil {
		t.Fatal(err)
	}
	s.rec.waitData(t, "ack operator: the Galaxy user", op, operator("op"))
	s.rec.waitData(t, "acked by op", acked, boolean(true))
}
