package sim

import (
	"fmt"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
)

// The generated plant's shape per area: PlantLines lines of
// PlantEquipment pieces of equipment, one engine per area, one platform
// per PlantAreasPerPlatform areas.
const (
	PlantLines            = 10
	PlantEquipment        = 10
	PlantAreasPerPlatform = 10
	// PlantMovingEvery: one piece of equipment in this many has a PV that
	// moves (a random walk every PlantTick), so a large plant is not a
	// storm.
	PlantMovingEvery = 10
	PlantTick        = 5 * time.Second
)

// PlantModel generates a plant of n areas (`--sim-plant N`): the Galaxy
// structure of a real one (nested areas, platforms, engines, lines
// containing equipment, templates with derivation chains, hosted-by
// relations, alarmed attributes with their alarm extension), with about
// 2,100 attributes per area. The same n always gives the same model, so
// the runtime and every worker build it alike.
func PlantModel(n int) (*Model, error) {
	if n < 1 {
		return nil, fmt.Errorf("sim: plant needs at least one area, got %d", n)
	}
	attr := func(name string, t mxgatewayv1.MxDataType, sec SecurityClassification) *Attribute {
		return &Attribute{Name: name, Type: t, Security: sec, Quality: mxtypes.QualityGood}
	}
	equipAttrs := func() []*Attribute {
		pv := attr("PV", tDouble, ViewOnly)
		pv.Initial, pv.Historized = mxtypes.DoubleValue(50), true
		sp := attr("SP", tDouble, Operate)
		sp.Initial, sp.Historized = mxtypes.DoubleValue(50), true
		hi := attr("HiLimit", tDouble, Tune)
		hi.Initial = mxtypes.DoubleValue(90)
		alarm := attr("HiAlarm", tBool, ViewOnly)
		alarm.Alarm = true
		run := attr("Running", tBool, Operate)
		mode := attr("Mode", tString, Operate)
		mode.Initial = mxtypes.StringValue("Auto")
		hours := attr("RunHours", tElapsed, ViewOnly)
		desc := attr("Description", tString, Configure)
		hist := attr("History", tDouble, ViewOnly)
		hist.Dimension = 8
		return []*Attribute{pv, sp, hi, alarm, run, mode, hours, desc, hist}
	}
	m := &Model{Galaxy: "Plant", Description: fmt.Sprintf("generated plant of %d areas", n)}
	m.Templates = []*Template{
		{Name: "$WinPlatform", Category: CategoryPlatform},
		{Name: "$AppEngine", Category: CategoryEngine},
		{Name: "$UserDefined", Category: CategoryUserDefined},
		{Name: "$gEquipment", DerivedFrom: "$UserDefined", Attributes: equipAttrs()},
		{Name: "$Pump", DerivedFrom: "$gEquipment"},
		{Name: "$Line", DerivedFrom: "$UserDefined"},
	}
	chain := func(name string) []*Template {
		var out []*Template
		for name != "" {
			for _, t := range m.Templates {
				if t.Name == name {
					out = append(out, t)
					name = t.DerivedFrom
					break
				}
			}
		}
		return out
	}
	names := func(ts []*Template) []string {
		out := make([]string, len(ts))
		for i, t := range ts {
			out[i] = t.Name
		}
		return out
	}
	m.Areas = append(m.Areas, Area{Name: "Site"})
	pumpChain, lineChain := chain("$Pump"), chain("$Line")
	for p := 0; p < (n+PlantAreasPerPlatform-1)/PlantAreasPerPlatform; p++ {
		scan := attr("ScanState", tBool, ViewOnly)
		scan.Initial = mxtypes.BoolValue(true)
		m.Objects = append(m.Objects, &Object{Tag: fmt.Sprintf("Platform_%03d", p+1), Contained: fmt.Sprintf("Platform%d", p+1),
			Area: "Site", Template: "$WinPlatform", Templates: []string{"$WinPlatform"}, Attributes: []*Attribute{scan}})
	}
	moving := 0
	for a := 1; a <= n; a++ {
		area := fmt.Sprintf("Area_%03d", a)
		m.Areas = append(m.Areas, Area{Name: area, Parent: "Site"})
		engine := fmt.Sprintf("AppEngine_%03d", a)
		scan := attr("ScanState", tBool, ViewOnly)
		scan.Initial = mxtypes.BoolValue(true)
		m.Objects = append(m.Objects, &Object{Tag: engine, Contained: "AppEngine", Area: area,
			Template: "$AppEngine", Templates: []string{"$AppEngine"},
			HostedBy: fmt.Sprintf("Platform_%03d", (a-1)/PlantAreasPerPlatform+1), Attributes: []*Attribute{scan}})
		for l := 1; l <= PlantLines; l++ {
			line := fmt.Sprintf("Line_%03d_%02d", a, l)
			count := attr("Count", tInt, FreeAccess)
			state := attr("State", tString, Operate)
			state.Initial = mxtypes.StringValue("Running")
			m.Objects = append(m.Objects, &Object{Tag: line, Contained: fmt.Sprintf("Line%d", l), Area: area,
				Template: "$Line", Templates: names(lineChain), HostedBy: engine,
				Attributes: inherit(lineChain, []*Attribute{count, state})})
			for e := 1; e <= PlantEquipment; e++ {
				o := &Object{Tag: fmt.Sprintf("Pump_%03d_%02d_%02d", a, l, e), Contained: fmt.Sprintf("Pump%d", e),
					ContainedBy: line, Area: area, Template: "$Pump", Templates: names(pumpChain), HostedBy: engine,
					Attributes: inherit(pumpChain, nil)}
				if moving%PlantMovingEvery == 0 {
					o.Attribute("PV").Generator = &Generator{Kind: GenRandomWalk, Every: PlantTick, Min: 0, Max: 100, Step: 1}
				}
				moving++
				m.Objects = append(m.Objects, o)
			}
		}
	}
	if err := m.finish(); err != nil {
		return nil, err
	}
	return m, nil
}
