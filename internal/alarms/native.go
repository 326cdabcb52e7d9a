package alarms

import (
	"context"
	"encoding/xml"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
)

// Provider (b): the native alarm consumer of a System Platform node
// (GALAXY.md §2.4: the wnwrap consumer, polled for its current alarms on
// the STA of an x86 process). The consumer lives in the worker of a
// gateway-internal session (NativeConsumers, session.go) behind Consumer;
// everything else (polling, parsing the current-alarm XML, mapping native
// alarms to the watch list, acknowledgement routing) is here and tested on
// every OS with a fake consumer.
//
// The consumer's method names and the XML layout below follow what the
// upstream projects report; they are [inferred], not checked against a
// real node: a consumer missing a method fails to open, and the monitor
// fails over to the subtag provider.

// NativeAlarm is one current alarm as the native consumer reports it.
type NativeAlarm struct {
	GUID        string
	Reference   string // full reference: "Galaxy!Area.Object.Attribute"
	State       string // UNACK_ALM, ACK_ALM, UNACK_RTN, ACK_RTN (or ACTIVE / ACKNOWLEDGED forms)
	Priority    uint32
	Category    string
	Description string
	Comment     string
	Operator    string
	TimeOn      time.Time
	TimeLast    time.Time
	Value       string
	Limit       string
}

// Consumer is the native alarm consumer: one registration for a query.
type Consumer interface {
	// CurrentXML returns the consumer's current alarms (GetXmlCurrentAlarms2).
	CurrentXML(ctx context.Context) (string, error)
	// Authenticate checks a Galaxy user's credentials (MXAccess
	// AuthenticateUser on the consumer's session): nil when the Galaxy
	// accepts them. The consumer's acknowledgement names a user but
	// verifies no password, so a secured or verified acknowledgement
	// checks its credentials here first.
	Authenticate(ctx context.Context, c Credentials) error
	// Ack acknowledges a native alarm by GUID as operator (nil: the
	// consumer's own identity).
	Ack(ctx context.Context, guid, comment string, operator *Credentials) error
	// Close releases the consumer.
	Close()
}

// ConsumerFactory opens a consumer for an alarm query (\\Node\Galaxy!Area).
type ConsumerFactory func(ctx context.Context, query string) (Consumer, error)

// NativePollInterval is how often the current alarms are read.
const NativePollInterval = time.Second

// Native is the native-consumer provider.
type Native struct {
	open     ConsumerFactory
	query    string
	interval time.Duration

	mu   sync.Mutex
	cur  Consumer
	guid map[string]string // lower-case reference → GUID of its current alarm
}

// NewNative returns the native provider over consumers from open, for the
// alarm query (empty: "\Galaxy!" every area of the local node); interval
// 0 is NativePollInterval.
func NewNative(open ConsumerFactory, query string, interval time.Duration) *Native {
	if query == "" {
		query = `\Galaxy!`
	}
	if interval <= 0 {
		interval = NativePollInterval
	}
	return &Native{open: open, query: query, interval: interval}
}

// Kind implements Provider.
func (*Native) Kind() mxgatewayv1.AlarmProvider {
	return mxgatewayv1.AlarmProvider_ALARM_PROVIDER_NATIVE
}

// Probe implements Provider: a consumer opens and answers one poll.
func (p *Native) Probe(ctx context.Context) error {
	c, err := p.open(ctx, p.query)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.CurrentXML(ctx)
	return err
}

// Run implements Provider: a poll every interval; a failed poll ends the
// run (the monitor counts it toward failover).
func (p *Native) Run(ctx context.Context, srcs []Source, sink Sink) error {
	c, err := p.open(ctx, p.query)
	if err != nil {
		return fmt.Errorf("open the native alarm consumer: %w", err)
	}
	defer c.Close()
	p.mu.Lock()
	p.cur, p.guid = c, map[string]string{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.cur = nil
		p.mu.Unlock()
	}()
	idx := indexSources(srcs)
	last := map[int]Observation{}
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for first := true; ; first = false {
		doc, err := c.CurrentXML(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("poll the native alarm consumer: %w", err)
		}
		list, err := ParseCurrentAlarms(doc)
		if err != nil {
			return err
		}
		obs := p.observations(srcs, idx, list, last)
		if len(obs) > 0 {
			sink.Observe(obs)
		}
		if first {
			sink.Ready(fmt.Sprintf("native consumer %s: %d current alarms", p.query, len(list)))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// indexSources maps the lower-case references (Object.Attribute) of the
// watch list to their positions.
func indexSources(srcs []Source) map[string]int {
	idx := make(map[string]int, len(srcs))
	for i, s := range srcs {
		idx[strings.ToLower(s.Reference)] = i
	}
	return idx
}

// LocalReference turns a native full reference ("Galaxy!Area.Object.Attr"
// or "Object.Attr") into the watch list's form, given a lookup.
func LocalReference(full string, known func(string) bool) (string, bool) {
	r := full
	if i := strings.LastIndexByte(r, '!'); i >= 0 {
		r = r[i+1:]
	}
	for {
		if known(strings.ToLower(r)) {
			return r, true
		}
		i := strings.IndexByte(r, '.')
		if i < 0 {
			return "", false
		}
		r = r[i+1:] // drop a leading area
	}
}

// observations maps one poll to the changed alarms' views; a watched alarm
// absent from the poll is normal and acknowledged.
func (p *Native) observations(srcs []Source, idx map[string]int, list []NativeAlarm, last map[int]Observation) []Observation {
	cur := map[int]Observation{}
	guids := map[string]string{}
	for _, na := range list {
		ref, ok := LocalReference(na.Reference, func(s string) bool { _, ok := idx[s]; return ok })
		if !ok {
			continue
		}
		i := idx[strings.ToLower(ref)]
		in, acked := nativeState(na.State)
		o := Observation{Reference: srcs[i].Reference, InAlarm: in, Acked: acked, Instance: instanceOf(na.GUID),
			Priority: min(na.Priority, 999), Category: na.Category, Description: na.Description, AckComment: na.Comment,
			AckOperator: na.Operator,
			TimeOn:      na.TimeOn, Mode: mxgatewayv1.AlarmMode_ALARM_MODE_ENABLED, NativeID: na.GUID}
		if na.Value != "" {
			o.Value = mxtypes.StringValue(na.Value)
		}
		if na.Limit != "" {
			o.Limit = mxtypes.StringValue(na.Limit)
		}
		if acked {
			o.TimeAcked = na.TimeLast
		}
		if !in {
			o.TimeOff = na.TimeLast
		}
		cur[i] = o
		guids[strings.ToLower(srcs[i].Reference)] = na.GUID
	}
	var out []Observation
	for i, o := range cur {
		if prev, ok := last[i]; !ok || !sameView(prev, o) {
			out = append(out, o)
		}
		last[i] = o
	}
	for i, prev := range last {
		if _, ok := cur[i]; ok {
			continue
		}
		if prev.InAlarm || !prev.Acked {
			ended := prev
			ended.InAlarm, ended.Acked = false, true
			out = append(out, ended)
		}
		delete(last, i)
	}
	p.mu.Lock()
	p.guid = guids
	p.mu.Unlock()
	return out
}

func sameView(a, b Observation) bool {
	return a.InAlarm == b.InAlarm && a.Acked == b.Acked && a.Instance == b.Instance && a.Priority == b.Priority &&
		a.AckComment == b.AckComment && a.AckOperator == b.AckOperator && a.Description == b.Description
}

// nativeState reads the consumer's state names.
func nativeState(s string) (inAlarm, acked bool) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "UNACK_ALM", "UNACK", "ACTIVE", "ALARM_CONDITION_STATE_ACTIVE":
		return true, false
	case "ACK_ALM", "ACK", "ACKNOWLEDGED", "ALARM_CONDITION_STATE_ACKNOWLEDGED":
		return true, true
	case "UNACK_RTN", "RTN_UNACK", "INACTIVE_UNACKNOWLEDGED":
		return false, false
	}
	return false, true
}

// instanceOf derives a non-zero instance from a native GUID.
func instanceOf(guid string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(strings.ToLower(guid)))
	return h.Sum64() | 1
}

// Acknowledge implements Provider: the native acknowledgement by GUID.
func (p *Native) Acknowledge(ctx context.Context, a Ack) (*mxgatewayv1.MxStatus, error) {
	p.mu.Lock()
	c, guid := p.cur, p.guid[strings.ToLower(a.Source.Reference)]
	p.mu.Unlock()
	if c == nil {
		return nil, ErrUnavailable
	}
	if guid == "" {
		return nil, fmt.Errorf("%w: %s has no current native alarm", ErrNotFound, a.Source.Reference)
	}
	for _, cred := range []*Credentials{a.Operator, a.Verifier} {
		if cred == nil {
			continue
		}
		if err := c.Authenticate(ctx, *cred); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrAckRefused, err)
		}
	}
	if err := c.Ack(ctx, guid, a.Comment, a.Operator); err != nil {
		return nil, fmt.Errorf("%w: native acknowledgement: %v", ErrAckRefused, err)
	}
	return &mxgatewayv1.MxStatus{Success: true}, nil
}

// currentAlarmsDoc is the assumed layout of GetXmlCurrentAlarms2's answer
// [inferred]: one element per alarm with its fields as attributes.
type currentAlarmsDoc struct {
	Alarms []struct {
		GUID        string `xml:"GUID,attr"`
		Name        string `xml:"TagName,attr"`
		Reference   string `xml:"Reference,attr"`
		State       string `xml:"State,attr"`
		Priority    string `xml:"Priority,attr"`
		Category    string `xml:"Type,attr"`
		Description string `xml:"Comment,attr"`
		OpComment   string `xml:"OperatorComment,attr"`
		Operator    string `xml:"Operator,attr"`
		TimeOn      string `xml:"OriginationTime,attr"`
		TimeLast    string `xml:"TransitionTime,attr"`
		Value       string `xml:"Value,attr"`
		Limit       string `xml:"Limit,attr"`
	} `xml:"ALARM"`
}

// maxNativeXML bounds one poll's document.
const maxNativeXML = 64 << 20

// ParseCurrentAlarms parses a current-alarm document.
func ParseCurrentAlarms(doc string) ([]NativeAlarm, error) {
	if len(doc) > maxNativeXML {
		return nil, fmt.Errorf("native alarm document of %d bytes (at most %d)", len(doc), maxNativeXML)
	}
	var d currentAlarmsDoc
	if strings.TrimSpace(doc) == "" {
		return nil, nil
	}
	if err := xml.Unmarshal([]byte(doc), &d); err != nil {
		return nil, fmt.Errorf("native alarm document: %w", err)
	}
	out := make([]NativeAlarm, 0, len(d.Alarms))
	for _, a := range d.Alarms {
		ref := a.Reference
		if ref == "" {
			ref = a.Name
		}
		pri, _ := strconv.ParseUint(strings.TrimSpace(a.Priority), 10, 32)
		out = append(out, NativeAlarm{GUID: a.GUID, Reference: ref, State: a.State, Priority: uint32(pri), Category: a.Category,
			Description: a.Description, Comment: a.OpComment, Operator: a.Operator, TimeOn: nativeTime(a.TimeOn),
			TimeLast: nativeTime(a.TimeLast), Value: a.Value, Limit: a.Limit})
	}
	return out, nil
}

func nativeTime(s string) time.Time {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.000", "2006-01-02T15:04:05.000"} {
		if t, err := time.Parse(layout, strings.TrimSpace(s)); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}
