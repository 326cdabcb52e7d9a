package sim

import (
	"encoding/xml"
	"strings"
	"testing"
)

// xmlAlarm is consumerAlarm as encoding/xml marshals it: the document the
// simulator wrote before it rendered the elements by hand.
type xmlAlarm struct {
	XMLName         xml.Name `xml:"ALARM"`
	GUID            string   `xml:"GUID,attr"`
	Reference       string   `xml:"Reference,attr"`
	State           string   `xml:"State,attr"`
	Priority        string   `xml:"Priority,attr"`
	Type            string   `xml:"Type,attr"`
	Comment         string   `xml:"Comment,attr,omitempty"`
	OperatorComment string   `xml:"OperatorComment,attr,omitempty"`
	Operator        string   `xml:"Operator,attr,omitempty"`
	OriginationTime string   `xml:"OriginationTime,attr,omitempty"`
	TransitionTime  string   `xml:"TransitionTime,attr,omitempty"`
	Value           string   `xml:"Value,attr,omitempty"`
	Limit           string   `xml:"Limit,attr,omitempty"`
}

func checkAlarmXML(t *testing.T, a consumerAlarm) {
	t.Helper()
	want, err := xml.Marshal(xmlAlarm{GUID: a.GUID, Reference: a.Reference, State: a.State, Priority: a.Priority, Type: a.Type,
		Comment: a.Comment, OperatorComment: a.OperatorComment, Operator: a.Operator, OriginationTime: a.OriginationTime,
		TransitionTime: a.TransitionTime, Value: a.Value, Limit: a.Limit})
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	a.appendXML(&sb)
	if sb.String() != string(want) {
		t.Errorf("appendXML:\n got %s\nwant %s", sb.String(), want)
	}
}

func TestAlarmXMLAsEncodingXML(t *testing.T) {
	checkAlarmXML(t, consumerAlarm{})
	checkAlarmXML(t, consumerAlarm{GUID: "{1-2}", Reference: "Tank1.Level.HiHi", State: "UNACK_ALM", Priority: "500", Type: "HiHi"})
	checkAlarmXML(t, consumerAlarm{
		GUID: "g", Reference: "r", State: "s", Priority: "1", Type: "t",
		Comment: `a "quoted" <comment> & 'more'`, OperatorComment: "line1\nline2\r\tend",
		Operator: "Ünïcödé 操作员", OriginationTime: "2026-01-02T03:04:05.5Z", TransitionTime: "x",
		Value: "1.5", Limit: "2",
	})
	for _, s := range []string{"\x00", "\x1f", "bad\xffutf8", "\uFFFD", "\uFFFE", "\U0001F600", "\ud7ff\ue000", "]]>", "&amp;"} {
		checkAlarmXML(t, consumerAlarm{Reference: s, Comment: s, Limit: s})
	}
}

func FuzzAlarmXMLAsEncodingXML(f *testing.F) {
	f.Add("Tank1.Level", `x"y'z<&>`, "\t\n\r")
	f.Fuzz(func(t *testing.T, ref, comment, value string) {
		checkAlarmXML(t, consumerAlarm{Reference: ref, Comment: comment, Value: value, Type: value})
	})
}
