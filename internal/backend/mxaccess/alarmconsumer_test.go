package mxaccess

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/variant"
)

// fakeCreator is a fakeObject that can create the alarm consumer.
type fakeCreator struct {
	*fakeObject
	registered bool
	missing    string // a method the consumer lacks
	failQuery  bool   // SetXmlAlarmQuery refuses
	disp       *fakeDispatch
}

func (f *fakeCreator) ClassExists(string) bool { return f.registered }

func (f *fakeCreator) CreateDispatch(progID string, methods []string) (Dispatcher, error) {
	if !f.registered {
		return nil, &backend.NotSupportedError{Method: backend.AlarmConsumerMethod, Reason: progID + " not registered"}
	}
	if slices.Contains(methods, f.missing) {
		return nil, &backend.NotSupportedError{Method: f.missing, Reason: "no such method"}
	}
	f.disp = &fakeDispatch{hr: map[string]int32{}}
	if f.failQuery {
		f.disp.hr[consumerSetQuery] = -2147024809
	}
	return f.disp, nil
}

type fakeDispatch struct {
	mu       sync.Mutex
	calls    []string
	hr       map[string]int32
	doc      string
	released int
}

func (d *fakeDispatch) Invoke(name string, args []variant.Value) (CallResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var s []string
	for _, a := range args {
		s = append(s, a.Str)
	}
	d.calls = append(d.calls, name+"("+strings.Join(s, ",")+")")
	if hr := d.hr[name]; hr != 0 {
		return CallResult{HRESULT: hr, Message: "refused"}, nil
	}
	if name == consumerCurrent {
		return CallResult{Ret: variant.BSTR(d.doc)}, nil
	}
	return CallResult{}, nil
}

func (d *fakeDispatch) Release() { d.released++ }

// TestAlarmConsumerCalls: the consumer opens with InitializeConsumer and
// SetXmlAlarmQuery, polls GetXmlCurrentAlarms2 within the bound, acks by
// GUID as the user, turns HRESULTs into CallErrors, a missing class or
// method into NotSupported, and is released on close and on Close.
func TestAlarmConsumerCalls(t *testing.T) {
	var ce *backend.CallError
	var ns *backend.NotSupportedError

	plain, _ := openFake(t, newFake(5), Options{})
	if plain.HasAlarmConsumer() {
		t.Fatal("an object that cannot create it has a consumer")
	}
	if err := plain.OpenAlarmConsumer(`\G!`); !errors.As(err, &ns) {
		t.Fatalf("open without a creator: %v, want NotSupported", err)
	}

	f := &fakeCreator{fakeObject: newFake(5)}
	b, _ := openFake(t, f.fakeObject, Options{})
	b.obj = f // the backend sees the creator
	if b.HasAlarmConsumer() {
		t.Fatal("an unregistered class reported")
	}
	if err := b.OpenAlarmConsumer(`\G!`); !errors.As(err, &ns) {
		t.Fatalf("open of an unregistered class: %v, want NotSupported", err)
	}
	f.registered, f.missing = true, consumerAck
	if !b.HasAlarmConsumer() {
		t.Fatal("a registered class not reported")
	}
	if err := b.OpenAlarmConsumer(`\G!`); !errors.As(err, &ns) || ns.Method != consumerAck {
		t.Fatalf("open of a consumer without AckAlarm: %v", err)
	}
	f.missing = ""
	if _, err := b.PollAlarmConsumer(0); !errors.As(err, &ce) {
		t.Fatalf("poll before open: %v, want a CallError", err)
	}
	if err := b.OpenAlarmConsumer(`\G!North`); err != nil {
		t.Fatal(err)
	}
	d := f.disp
	d.doc = "<ALARM_RECORDS/>"
	if doc, err := b.PollAlarmConsumer(100); err != nil || doc != d.doc {
		t.Fatalf("poll: %q, %v", doc, err)
	}
	if _, err := b.PollAlarmConsumer(3); !errors.As(err, &ce) {
		t.Fatalf("poll past the bound: %v, want a CallError", err)
	}
	if err := b.AckAlarm("{G}", "seen", "op"); err != nil {
		t.Fatal(err)
	}
	d.hr[consumerAck] = -2147467259
	if err := b.AckAlarm("{G}", "", ""); !errors.As(err, &ce) || ce.HRESULT != -2147467259 {
		t.Fatalf("refused ack: %v", err)
	}
	want := []string{`InitializeConsumer(mxgateway)`, `SetXmlAlarmQuery(\G!North)`, `GetXmlCurrentAlarms2()`,
		`GetXmlCurrentAlarms2()`, `AckAlarm({G},seen,op)`, `AckAlarm({G},,)`}
	if !slices.Equal(d.calls, want) {
		t.Fatalf("calls %q, want %q", d.calls, want)
	}

	// A failed SetXmlAlarmQuery releases the new consumer; reopening
	// releases the old one.
	if err := b.OpenAlarmConsumer(`\G!`); err != nil {
		t.Fatal(err)
	}
	if d.released != 1 {
		t.Fatalf("the replaced consumer released %d times", d.released)
	}
	d2 := f.disp
	if err := b.CloseAlarmConsumer(); err != nil || d2.released != 1 {
		t.Fatalf("close: %v, released %d", err, d2.released)
	}
	f.failQuery = true
	if err := b.OpenAlarmConsumer(`bad`); !errors.As(err, &ce) || f.disp.released != 1 {
		t.Fatalf("refused query: %v, released %d", err, f.disp.released)
	}
	if _, err := b.PollAlarmConsumer(0); !errors.As(err, &ce) {
		t.Fatalf("poll after a failed open: %v, want a CallError", err)
	}
	f.failQuery = false
	if err := b.OpenAlarmConsumer(`\G!`); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if f.disp.released != 1 {
		t.Fatalf("Close released the consumer %d times", f.disp.released)
	}
}
