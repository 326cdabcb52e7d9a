package alarms

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

// fakeConsumer serves a current-alarm document the test sets, like the
// COM consumer's GetXmlCurrentAlarms2.
type fakeConsumer struct {
	mu   sync.Mutex
	doc  string
	fail error
	acks []string
}

func (f *fakeConsumer) set(doc string, fail error) {
	f.mu.Lock()
	f.doc, f.fail = doc, fail
	f.mu.Unlock()
}

func (f *fakeConsumer) CurrentXML(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.doc, f.fail
}

func (f *fakeConsumer) Ack(_ context.Context, guid, comment string, op *Credentials) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acks = append(f.acks, guid+"|"+comment)
	return nil
}

// Authenticate accepts the password "right".
func (f *fakeConsumer) Authenticate(_ context.Context, c Credentials) error {
	if c.Password != "right" {
		return errors.New("not authenticated")
	}
	return nil
}

func (f *fakeConsumer) Close() {}

const nativeDoc = `<ALARMS>
  <ALARM GUID="{A1}" Reference="MxDemo!TankFarm.Tank1.HighLevel" State="UNACK_ALM" Priority="250" Type="DSC" Comment="Level high" OriginationTime="2026-12-03T06:00:00.000Z" TransitionTime="2026-12-03T06:00:00.000Z"/>
  <ALARM GUID="{B2}" Reference="Other!Area.Unknown.Alarm" State="UNACK_ALM" Priority="10"/>
</ALARMS>`

// TestNativeProvider: the native provider's polling, mapping and
// acknowledgement over a fake consumer, through the monitor; a failing
// poll fails over to the standby.
func TestNativeProvider(t *testing.T) {
	fc := &fakeConsumer{}
	fc.set(nativeDoc, nil)
	opens := 0
	var mu sync.Mutex
	native := NewNative(func(context.Context, string) (Consumer, error) {
		mu.Lock()
		defer mu.Unlock()
		opens++
		return fc, nil
	}, "", 5e6)
	standby := newScripted(mxgatewayv1.AlarmProvider_ALARM_PROVIDER_SUBTAG)
	m := start(t, Options{Failover: FailoverOptions{FailureThreshold: 1, ProbeInterval: 1e12}}, native, standby)
	var a *mxgatewayv1.Alarm
	testutil.Eventually(t, wait, func() error {
		l, _, _, err := m.List(nil, 0, "", nil)
		if err != nil || len(l) != 1 {
			return fmt.Errorf("list %v %v", l, err)
		}
		a = l[0]
		return nil
	})
	if a.GetReference() != "Tank1.HighLevel" || a.GetAlarmId() != "{A1}" || a.GetDegraded() || a.GetPriority() != 250 ||
		a.GetSeverity() != 900 || a.GetState() != stUnackAlm || a.GetDescription() != "Level high" {
		t.Fatalf("native alarm %v", a)
	}
	// Secured and verified: the consumer verifies no password, so the
	// credentials are checked first; a wrong one acknowledges nothing.
	for _, req := range []AckRequest{
		{Reference: "Tank1.HighLevel", Comment: "bad", Operator: &Credentials{User: "op", Password: "wrong"}},
		{Reference: "Tank1.HighLevel", Comment: "bad", Operator: &Credentials{User: "op", Password: "right"}, Verifier: &Credentials{User: "sup", Password: "wrong"}},
	} {
		if _, err := m.Acknowledge(context.Background(), req); !errors.Is(err, ErrAckRefused) {
			t.Fatalf("ack with %+v / %+v: %v, want ErrAckRefused", req.Operator, req.Verifier, err)
		}
	}
	if _, err := m.Acknowledge(context.Background(), AckRequest{Reference: "Tank1.HighLevel", Instance: a.GetInstance(), Comment: "ok"}); err != nil {
		t.Fatal(err)
	}
	fc.mu.Lock()
	if len(fc.acks) != 1 || fc.acks[0] != "{A1}|ok" {
		t.Fatalf("acks %v", fc.acks)
	}
	fc.mu.Unlock()
	// Acknowledged elsewhere (another HMI): the record's operator and
	// comment are the consumer's.
	fc.set(`<ALARMS><ALARM GUID="{A1}" Reference="MxDemo!TankFarm.Tank1.HighLevel" State="ACK_ALM" Priority="250"
	  Operator="op2" OperatorComment="from the panel" OriginationTime="2026-12-03T06:00:00.000Z" TransitionTime="2026-12-03T06:01:00.000Z"/></ALARMS>`, nil)
	testutil.Eventually(t, wait, func() error {
		l, _, _, _ := m.List(nil, 0, "", nil)
		if len(l) != 1 || l[0].GetState() != stAckAlm || l[0].GetAckComment() != "from the panel" || l[0].GetAckOperator() != "op2" {
			return fmt.Errorf("acknowledged elsewhere: %v", l)
		}
		return nil
	})
	// The alarm leaves the consumer's list: normal and acknowledged.
	fc.set(`<ALARMS/>`, nil)
	testutil.Eventually(t, wait, func() error {
		if l, _, _, _ := m.List(nil, 0, "", nil); len(l) != 0 {
			return fmt.Errorf("still active: %v", l)
		}
		return nil
	})
	// A failing poll: the monitor fails over to the standby.
	fc.set("", errors.New("RPC_E_DISCONNECTED"))
	testutil.Eventually(t, wait, func() error {
		if s := m.Status(); s.GetProvider() != mxgatewayv1.AlarmProvider_ALARM_PROVIDER_SUBTAG {
			return fmt.Errorf("status %v", s)
		}
		return nil
	})
}

// TestParseCurrentAlarms: the document, its bounds and bad input.
func TestParseCurrentAlarms(t *testing.T) {
	l, err := ParseCurrentAlarms(nativeDoc)
	if err != nil || len(l) != 2 || l[0].GUID != "{A1}" || l[0].TimeOn.IsZero() || l[0].Priority != 250 {
		t.Fatalf("%v %v", l, err)
	}
	if l, err := ParseCurrentAlarms(""); err != nil || len(l) != 0 {
		t.Fatalf("empty: %v %v", l, err)
	}
	if _, err := ParseCurrentAlarms("<ALARMS><ALARM"); err == nil {
		t.Fatal("a broken document parsed")
	}
	for full, want := range map[string]string{"G!Area.Tank1.HighLevel": "Tank1.HighLevel", "Tank1.HighLevel": "Tank1.HighLevel", "G!X.Y": ""} {
		got, _ := LocalReference(full, func(s string) bool { return s == "tank1.highlevel" })
		if got != want {
			t.Errorf("LocalReference(%q) = %q, want %q", full, got, want)
		}
	}
}
