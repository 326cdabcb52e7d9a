package alarms

// SeverityBand maps a range of native priorities (1 the most urgent) to
// one OPC UA severity (1000 the most severe). The bands follow OPC UA
// Part 9's five severity ranges, most urgent first.
type SeverityBand struct {
	MaxPriority uint32 // the band covers priorities up to this one
	Severity    uint32
	Label       string // the OPC UA range's name
}

// SeverityBands is the one home of the priority → severity mapping
// (docs/alarms.md prints it; a test checks the page).
var SeverityBands = []SeverityBand{
	{MaxPriority: 100, Severity: 1000, Label: "High"},
	{MaxPriority: 250, Severity: 900, Label: "High"},
	{MaxPriority: 500, Severity: 750, Label: "Medium High"},
	{MaxPriority: 750, Severity: 500, Label: "Medium"},
	{MaxPriority: 900, Severity: 300, Label: "Medium Low"},
	{MaxPriority: 999, Severity: 100, Label: "Low"},
}

// Severity returns the OPC UA severity of a native priority. Priority 0
// (Application Server's most urgent, which InTouch shows as 1) maps like 1;
// anything above 999 like 999.
func Severity(priority uint32) uint32 {
	for _, b := range SeverityBands {
		if priority <= b.MaxPriority {
			return b.Severity
		}
	}
	return SeverityBands[len(SeverityBands)-1].Severity
}
