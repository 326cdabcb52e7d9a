package alarms

import "testing"

// TestAckOperatorSource: an acknowledgement made through the monitor names
// its own operator; otherwise the Galaxy's, and only while acknowledged.
func TestAckOperatorSource(t *testing.T) {
	for _, c := range []struct {
		name, ours, galaxy string
		acked              bool
		want               string
	}{
		{"through the monitor", "key-1", "mxgateway-alarm-monitor", true, "key-1"},
		{"by another client", "", "operator", true, "operator"},
		{"not acknowledged", "", "operator", false, ""},
		{"nobody says", "", "", true, ""},
	} {
		r := &record{src: Source{Reference: "T.A"}, ackOp: c.ours, obs: Observation{InAlarm: true, Acked: c.acked, AckOperator: c.galaxy}}
		if got := r.build(false).GetAckOperator(); got != c.want {
			t.Errorf("%s: ack_operator %q, want %q", c.name, got, c.want)
		}
	}
}
