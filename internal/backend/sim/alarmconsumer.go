package sim

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	"github.com/mxgateway/mxgateway/internal/backend"
)

// The simulator's native alarm consumer (backend.AlarmConsumer): the
// current alarms of the Galaxy as the session's simulator sees them (the
// runtime's alarm sub-attributes), rendered in the document layout the
// gateway's native provider parses (alarms.ParseCurrentAlarms), so that the
// native provider runs end to end without a System Platform node.

// AlarmConsumerIdentity is who a native acknowledgement without a user is
// attributed to (the consumer's own identity).
const AlarmConsumerIdentity = "mxgateway"

var _ backend.AlarmConsumer = (*Backend)(nil)

// consumerAlarm is one element of the current-alarm document: an ALARM
// element whose attributes are its fields, in this order (appendXML). The
// fields from Comment on are left out when empty.
type consumerAlarm struct {
	GUID            string
	Reference       string
	State           string
	Priority        string
	Type            string
	Comment         string
	OperatorComment string
	Operator        string
	OriginationTime string
	TransitionTime  string
	Value           string
	Limit           string
}

// appendXML writes the element as encoding/xml marshals it
// (<ALARM GUID="..." ...></ALARM>, attribute values escaped as its
// EscapeString does); written by hand so that a worker does not link
// encoding/xml for one flat element (docs/performance.md, "Lean workers").
func (a *consumerAlarm) appendXML(sb *strings.Builder) {
	values := [len(alarmAttrs)]string{a.GUID, a.Reference, a.State, a.Priority, a.Type,
		a.Comment, a.OperatorComment, a.Operator, a.OriginationTime, a.TransitionTime, a.Value, a.Limit}
	sb.WriteString("<ALARM")
	for i, v := range values {
		if v == "" && i >= alarmRequired {
			continue
		}
		sb.WriteByte(' ')
		sb.WriteString(alarmAttrs[i])
		sb.WriteString(`="`)
		escapeXMLAttr(sb, v)
		sb.WriteByte('"')
	}
	sb.WriteString("></ALARM>")
}

// alarmAttrs names the ALARM element's attributes in the order it writes
// them (consumerAlarm's fields); the first alarmRequired are always
// written, the others only when not empty.
var alarmAttrs = [...]string{"GUID", "Reference", "State", "Priority", "Type",
	"Comment", "OperatorComment", "Operator", "OriginationTime", "TransitionTime", "Value", "Limit"}

const alarmRequired = 5

// escapeXMLAttr writes s escaped as encoding/xml escapes an attribute
// value: the five markup characters and tab, newline and carriage return
// as character references, and a rune XML does not allow (or a byte that
// is not UTF-8) as U+FFFD.
func escapeXMLAttr(sb *strings.Builder, s string) {
	last := 0
	for i := 0; i < len(s); {
		r, width := utf8.DecodeRuneInString(s[i:])
		i += width
		var esc string
		switch r {
		case '"':
			esc = "&#34;"
		case '\'':
			esc = "&#39;"
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '\t':
			esc = "&#x9;"
		case '\n':
			esc = "&#xA;"
		case '\r':
			esc = "&#xD;"
		default:
			if xmlChar(r) && !(r == utf8.RuneError && width == 1) {
				continue
			}
			esc = "\uFFFD"
		}
		sb.WriteString(s[last : i-width])
		sb.WriteString(esc)
		last = i
	}
	sb.WriteString(s[last:])
}

// xmlChar reports whether XML 1.0 allows r in a document (the Char
// production).
func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// HasAlarmConsumer implements backend.AlarmConsumer: the simulator has one.
func (*Backend) HasAlarmConsumer() bool { return true }

// OpenAlarmConsumer implements backend.AlarmConsumer. The query's area
// (after '!') limits the alarms to that area's objects; none means every
// area.
func (b *Backend) OpenAlarmConsumer(query string) error {
	i := strings.LastIndexByte(query, '!')
	if i < 0 {
		return backend.NewCallError("SetXmlAlarmQuery", mxtypes.E_INVALIDARG, fmt.Sprintf("alarm query %q has no '!'", query))
	}
	area := query[i+1:]
	var fresh <-chan struct{}
	err := b.call(func() {
		if b.consumer != nil {
			b.unpin(b.consumer.pinned)
		}
		b.consumer = &consumerState{area: area}
		fresh = b.notifyFresh(b.pinConsumer())
	})
	if err == nil {
		// A filtered session follows what the consumer reads from now on:
		// the first poll reads the Galaxy's values, not stale copies.
		b.awaitFresh(fresh)
	}
	return err
}

// consumerSubs are the alarm sub-attributes consumerAlarm reads.
var consumerSubs = []string{AlarmInAlarm, AlarmAcked, AlarmTimeAlarmOn, AlarmTimeAlarmOff, AlarmTimeAlarmAcked,
	AlarmPriority, AlarmCategory, AlarmDescAttrName, AlarmAckMsg, AlarmAckOperator}

// pinConsumer follows every attribute the open consumer reads (a filtered
// session receives only what it follows) and returns the Interest change
// the last of them waits for.
func (b *Backend) pinConsumer() uint64 {
	var sts []*attrState
	add := func(a *Attribute) {
		if st := b.attrs[a]; a != nil && st != nil {
			sts = append(sts, st)
		}
	}
	for _, d := range b.alarmDefs() {
		for _, sub := range consumerSubs {
			add(d.Sub(sub))
		}
		if d.Analog != nil {
			add(d.Analog)
			add(d.Limit)
		}
	}
	b.consumer.pinned = sts
	return b.pin(sts)
}

// CloseAlarmConsumer implements backend.AlarmConsumer.
func (b *Backend) CloseAlarmConsumer() error {
	return b.call(func() {
		if b.consumer != nil {
			b.unpin(b.consumer.pinned)
		}
		b.consumer = nil
	})
}

// PollAlarmConsumer implements backend.AlarmConsumer.
func (b *Backend) PollAlarmConsumer(maxBytes int) (string, error) {
	var doc string
	var cerr error
	err := b.call(func() {
		if b.consumer == nil {
			cerr = backend.NewCallError("GetXmlCurrentAlarms2", mxtypes.E_FAIL, "the alarm consumer is not open")
			return
		}
		doc, cerr = b.renderAlarms(maxBytes)
	})
	return doc, firstErr(err, cerr)
}

// AckAlarm implements backend.AlarmConsumer: the acknowledgement is the
// alarm's AckMsg write, attributed to user (AlarmConsumerIdentity when
// empty), as the Galaxy's alarm evaluation takes it.
func (b *Backend) AckAlarm(guid, comment, user string) error {
	var cerr error
	err := b.call(func() {
		if b.consumer == nil {
			cerr = backend.NewCallError("AckAlarm", mxtypes.E_FAIL, "the alarm consumer is not open")
			return
		}
		d, ok := b.currentAlarm(guid)
		if !ok {
			cerr = backend.NewCallError("AckAlarm", mxtypes.E_INVALIDARG, fmt.Sprintf("no current alarm %s", guid))
			return
		}
		st := b.attrs[d.Sub(AlarmAckMsg)]
		if st == nil {
			cerr = backend.NewCallError("AckAlarm", mxtypes.E_FAIL, "the alarm has no "+AlarmAckMsg)
			return
		}
		if r := []rune(comment); len(r) > AckMsgMaxLen {
			comment = string(r[:AckMsgMaxLen])
		}
		if user == "" {
			user = AlarmConsumerIdentity
		}
		b.setAttr(st, mxtypes.StringValue(comment), st.quality, b.now, false)
		if b.galaxy != nil {
			st.inFlight++
			b.galaxy.Write(st.attr.ord, st.value, st.ts, false, user)
		}
	})
	return firstErr(err, cerr)
}

// consumerState is the open consumer (STA only).
type consumerState struct {
	area   string       // "" every area
	pinned []*attrState // what pinConsumer follows
}

// alarmDefs lists the alarms the open consumer covers (STA only).
func (b *Backend) alarmDefs() []AlarmDef {
	b.mu.Lock()
	m := b.model
	b.mu.Unlock()
	var out []AlarmDef
	for _, o := range m.Objects {
		if o.builtin || b.consumer.area != "" && !strings.EqualFold(o.Area, b.consumer.area) {
			continue
		}
		out = append(out, o.Alarms()...)
	}
	return out
}

func (b *Backend) subValue(d *AlarmDef, sub string) *mxgatewayv1.MxValue {
	if st := b.attrs[d.Sub(sub)]; st != nil {
		return st.value
	}
	return nil
}

// currentAlarm finds the current alarm guid names (STA only).
func (b *Backend) currentAlarm(guid string) (AlarmDef, bool) {
	for _, d := range b.alarmDefs() {
		if a, ok := b.consumerAlarm(&d); ok && strings.EqualFold(a.GUID, guid) {
			return d, true
		}
	}
	return AlarmDef{}, false
}

// consumerAlarm renders one alarm; ok is false when it is not current
// (returned to normal and acknowledged).
func (b *Backend) consumerAlarm(d *AlarmDef) (consumerAlarm, bool) {
	in := b.subValue(d, AlarmInAlarm).GetBoolValue()
	acked := b.subValue(d, AlarmAcked).GetBoolValue()
	var state string
	switch {
	case in && !acked:
		state = "UNACK_ALM"
	case in:
		state = "ACK_ALM"
	case !acked:
		state = "UNACK_RTN"
	default:
		return consumerAlarm{}, false
	}
	on := b.subValue(d, AlarmTimeAlarmOn).GetTimestampValue().AsTime()
	last := on
	for _, sub := range []string{AlarmTimeAlarmOff, AlarmTimeAlarmAcked} {
		if t := b.subValue(d, sub).GetTimestampValue().AsTime(); t.After(last) {
			last = t
		}
	}
	ref := d.Object.Tag + "." + d.Attr.Name
	if d.Object.Area != "" {
		ref = d.Object.Area + "." + ref
	}
	b.mu.Lock()
	galaxy := b.model.Galaxy
	b.mu.Unlock()
	a := consumerAlarm{
		GUID:            consumerGUID(galaxy, d.Object.Tag+"."+d.Attr.Name, on),
		Reference:       galaxy + "!" + ref,
		State:           state,
		Priority:        strconv.FormatInt(int64(numeric(b.subValue(d, AlarmPriority))), 10),
		Type:            b.subValue(d, AlarmCategory).GetStringValue(),
		Comment:         b.subValue(d, AlarmDescAttrName).GetStringValue(),
		OperatorComment: b.subValue(d, AlarmAckMsg).GetStringValue(),
		Operator:        b.subValue(d, AlarmAckOperator).GetStringValue(),
		OriginationTime: consumerTime(on),
		TransitionTime:  consumerTime(last),
	}
	if d.Analog != nil {
		if st := b.attrs[d.Analog]; st != nil {
			a.Value = strconv.FormatFloat(numeric(st.value), 'g', -1, 64)
		}
		if st := b.attrs[d.Limit]; st != nil {
			a.Limit = strconv.FormatFloat(numeric(st.value), 'g', -1, 64)
		}
	}
	return a, true
}

// renderAlarms writes the current-alarm document (STA only), failing
// when it would exceed maxBytes (0: no bound).
func (b *Backend) renderAlarms(maxBytes int) (string, error) {
	var sb strings.Builder
	sb.WriteString("<ALARM_RECORDS>")
	for _, d := range b.alarmDefs() {
		a, ok := b.consumerAlarm(&d)
		if !ok {
			continue
		}
		a.appendXML(&sb)
		if maxBytes > 0 && sb.Len() > maxBytes {
			return "", backend.NewCallError("GetXmlCurrentAlarms2", mxtypes.E_FAIL,
				fmt.Sprintf("the current-alarm document exceeds %d bytes", maxBytes))
		}
	}
	sb.WriteString("</ALARM_RECORDS>")
	if maxBytes > 0 && sb.Len() > maxBytes {
		return "", backend.NewCallError("GetXmlCurrentAlarms2", mxtypes.E_FAIL,
			fmt.Sprintf("the current-alarm document exceeds %d bytes", maxBytes))
	}
	return sb.String(), nil
}

// consumerGUID names one raise of an alarm: a new raise (a new
// TimeAlarmOn) is a new GUID, as with the native consumer.
func consumerGUID(galaxy, ref string, on time.Time) string {
	h := fnv.New128a()
	fmt.Fprintf(h, "%s!%s@%d", strings.ToLower(galaxy), strings.ToLower(ref), on.UnixNano())
	s := h.Sum(nil)
	return fmt.Sprintf("{%X-%X-%X-%X-%X}", s[0:4], s[4:6], s[6:8], s[8:10], s[10:16])
}

func consumerTime(t time.Time) string {
	if t.IsZero() || t.Unix() <= 0 {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
