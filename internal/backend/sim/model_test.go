package sim

import (
	"context"
	"fmt"
	"github.com/mxgateway/mxgateway/internal/itemtable"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
)

func TestModelErrorsNameFileLineAndProblem(t *testing.T) {
	cases := []struct {
		name, src string
		line      int
		problem   string
	}{
		{"unknown type", `galaxy: G
objects:
  - tag: A
    attributes:
      - {name: X, type: MxDouble}
      - {name: Y, type: MxWidget}
`, 6, `unknown type "MxWidget"`},
		{"bad array dimension", `galaxy: G
objects:
  - tag: A
    attributes:
      - name: X
        type: MxInteger
        array: 0
`, 7, "array dimension 0 out of range"},
		{"array of structs", `galaxy: G
objects:
  - tag: A
    attributes:
      - {name: X, type: MxQualifiedStruct, array: 3}
`, 5, "cannot be an array"},
		{"duplicate tag", `galaxy: G
objects:
  - tag: A
  - tag: B
  - tag: a
`, 5, `duplicate tag "a"`},
		{"duplicate attribute", `galaxy: G
objects:
  - tag: A
    attributes:
      - {name: X, type: MxDouble}
      - {name: x, type: MxDouble}
`, 6, `duplicate attribute "x"`},
		{"reserved Sim", `galaxy: G
objects:
  - tag: Sim
`, 3, "reserved"},
		{"yaml syntax", `galaxy: G
objects:
  - tag: A
   attributes: [
`, 2, "did not find expected"},
		{"unknown field", `galaxy: G
objects:
  - tag: A
    atributes: []
`, 4, `unknown field "atributes"`},
		{"missing galaxy", `objects: []
`, 1, "missing galaxy"},
		{"bad value", `galaxy: G
objects:
  - tag: A
    attributes:
      - {name: X, type: MxInteger, value: 1.5}
`, 5, `"1.5" is not a valid MxInteger value`},
		{"too many array values", `galaxy: G
objects:
  - tag: A
    attributes:
      - {name: X, type: MxInteger, array: 2, value: [1, 2, 3]}
`, 5, "3 values for an array of dimension 2"},
		{"bad security", `galaxy: G
objects:
  - tag: A
    attributes:
      - {name: X, type: MxInteger, security: Secret}
`, 5, `unknown security classification "Secret"`},
		{"generator on wrong type", `galaxy: G
objects:
  - tag: A
    attributes:
      - name: X
        type: MxString
        generator: {kind: sine}
`, 7, "needs a numeric scalar"},
		{"unknown generator", `galaxy: G
objects:
  - tag: A
    attributes:
      - name: X
        type: MxDouble
        generator:
          kind: chaos
`, 8, `unknown generator kind "chaos"`},
		{"bad duration", `galaxy: G
objects:
  - tag: A
    attributes:
      - name: X
        type: MxDouble
        generator: {kind: ramp, every: soon}
`, 7, `"soon" is not a duration`},
		{"unknown area", `galaxy: G
areas: [{name: P}]
objects:
  - {tag: A, area: Q}
`, 4, `unknown area "Q"`},
		{"unknown permission", `galaxy: G
users:
  - {name: u, password: p, permissions: [operate, fly]}
`, 3, `unknown permission "fly"`},
		{"bad knob", `galaxy: G
knobs:
  writeCoercion: loose
`, 3, `writeCoercion: "loose" is not one of`},
		{"bad fault", `galaxy: G
faults:
  - {kind: hresult, method: Frobnicate, hresult: 0x80004005}
`, 3, `unknown method "Frobnicate"`},
		{"fault on unknown object", `galaxy: G
faults:
  - {kind: qualityFlip, object: Nope}
`, 3, `unknown object "Nope"`},
		{"bad tag", `galaxy: G
objects:
  - tag: "Tank 1"
`, 3, `invalid tag name "Tank 1"`},
		{"empty", ``, 1, "empty model"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseModel([]byte(c.src), "plant.yaml")
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			prefix := fmt.Sprintf("plant.yaml:%d: ", c.line)
			if !strings.Contains(msg, prefix) || !strings.Contains(msg, c.problem) {
				t.Fatalf("error %q, want %q...%q", msg, prefix, c.problem)
			}
		})
	}
}

func TestLoadModelFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.yaml")
	if err := os.WriteFile(p, []byte("galaxy: G\nobjects:\n  - tag: A\n    attributes: [{name: X, type: Bogus}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadModel(p)
	if err == nil || !strings.HasPrefix(err.Error(), p+":4: ") {
		t.Fatalf("LoadModel error %v, want %s:4: ...", err, p)
	}
	if _, err := LoadModel(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Fatal("missing file loaded")
	}
	if _, err := New(Options{ModelPath: p}); err == nil {
		t.Fatal("New accepted a bad model file")
	}
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("galaxy: G\nknobs: {firstBindDelay: 1s, securityMode: galaxy, unresolvedCategory: MxCategoryOperationalError}\nobjects:\n  - tag: A\n    attributes: [{name: PV, type: MxDouble, value: 3}]\n"), 0o600)
	b, err := New(Options{ModelPath: good})
	if err != nil {
		t.Fatal(err)
	}
	k := b.Knobs()
	if k.FirstBindDelay != time.Second || k.SecurityMode != SecurityGalaxy || k.UnresolvedCategory != catOperational || k.RebindDelay != 50*time.Millisecond {
		t.Fatalf("model knobs not applied: %+v", k)
	}
	if b.Model().Object("Sim") == nil {
		t.Fatal("Sim object missing")
	}
	b.Close() // never opened: a no-op
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Options{Profile: "fast"}); err == nil {
		t.Fatal("unknown profile accepted")
	}
	k, _ := DefaultKnobs(ProfileTest)
	k.WriteEchoOrder = "sideways"
	if _, err := New(Options{Knobs: &k}); err == nil {
		t.Fatal("bad knob accepted")
	}
	m := &Model{Galaxy: "G", Objects: []*Object{{Tag: "A"}, {Tag: "A"}}}
	if _, err := New(Options{Model: m}); err == nil || !strings.Contains(err.Error(), "duplicate tag") {
		t.Fatalf("Go-built model with duplicate tags: %v", err)
	}
	m = &Model{Galaxy: "G", Objects: []*Object{{Tag: "A", Attributes: []*Attribute{
		{Name: "X", Type: tDouble, Generator: &Generator{Kind: GenRamp}}}}}}
	if _, err := New(Options{Model: m}); err == nil {
		t.Fatal("Go-built model with a bad generator accepted")
	}
	b, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Register("x"); err != ErrNotOpen {
		t.Fatalf("Register before Open: %v", err)
	}
}

// TestDemoModel checks the embedded demo Galaxy promises of docs/simulator.md.
func TestDemoModel(t *testing.T) {
	m := DemoModel()
	types := map[mxgatewayv1.MxDataType]bool{}
	classes := map[SecurityClassification]bool{}
	arrays, generators := 0, 0
	for _, o := range m.Objects {
		for _, a := range o.Attributes {
			types[a.Type] = true
			classes[a.Security] = true
			if a.Dimension > 0 {
				arrays++
			}
			if a.Generator != nil && a.Generator.Kind != GenConstant {
				generators++
			}
		}
	}
	for dt := range typeNames {
		if !types[dt] {
			t.Errorf("demo does not use %s", typeName(dt))
		}
	}
	for c := FreeAccess; c <= ViewOnly; c++ {
		if !classes[c] {
			t.Errorf("demo does not use %s", c)
		}
	}
	if len(m.Users) < 2 || len(m.Areas) < 3 || arrays < 3 || generators < 5 {
		t.Errorf("demo too small: %d users, %d areas, %d arrays, %d generators", len(m.Users), len(m.Areas), arrays, generators)
	}
	// Every demo tag and Sim attribute is documented.
	doc, err := os.ReadFile("../../../docs/simulator.md")
	if err != nil {
		t.Fatalf("docs/simulator.md: %v", err)
	}
	for _, x := range alarmExtension {
		if !regexp.MustCompile("`<Attr>\\." + x.name + "`").Match(doc) {
			t.Errorf("alarm sub-attribute %s is not listed in docs/simulator.md", x.name)
		}
	}
	for _, o := range m.Objects {
		for _, a := range o.Attributes {
			if a.Primitive != "" {
				continue // the alarm sub-attributes are listed once, above
			}
			ref := o.Tag + "." + a.Name
			if !regexp.MustCompile("`" + regexp.QuoteMeta(ref) + "(\\[\\])?`").Match(doc) {
				t.Errorf("%s is not listed in docs/simulator.md", ref)
			}
		}
	}
}

// TestDemoModelMoves runs the demo Galaxy on the real clock with the test
// profile and checks that its always-changing tags move.
// TestDemoFirstValuesMeaningful: no demo attribute starts with a 1970 time
// and good quality (issue: simulator warts).
func TestDemoFirstValuesMeaningful(t *testing.T) {
	b, err := New(Options{Profile: ProfileTest, Clock: NewFakeClock(testStart)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open(context.Background(), &recorder{}); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	vals, err := b.Values(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := b.Model()
	for _, c := range vals {
		o, a := m.AttributeAt(int(c.Attr))
		if c.Quality < 192 || a.Type != tTime {
			continue
		}
		times := []*mxgatewayv1.MxValue{c.Value}
		if a.Dimension > 0 {
			times = arrayElements(c.Value)
		}
		for _, v := range times {
			if v.GetTimestampValue().AsTime().Year() < 2000 {
				t.Errorf("%s.%s starts at %v with good quality", o.Tag, a.Name, v.GetTimestampValue().AsTime())
			}
		}
		if c.Time.Year() < 2000 {
			t.Errorf("%s.%s has timestamp %v", o.Tag, a.Name, c.Time)
		}
	}
}

func TestDemoModelMoves(t *testing.T) {
	clk := NewFakeClock(testStart)
	b, err := New(Options{Profile: ProfileTest, Clock: clk, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	if _, err := b.Open(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	e := &env{t: t, b: b, table: itemtable.New(), rec: rec, clk: clk}
	h := e.reg()
	refs := []string{"TIC101.PV", "TIC101.OUT", "Tank1.Level", "Tank1.Temperature", "Tank2.Level",
		"Pump1.Speed", "Pump1.RunHours", "Line1.ProductCount", "Line1.Clock"}
	for _, r := range refs {
		hi := e.add(h, r)
		if err := b.Advise(h, hi); err != nil {
			t.Fatal(err)
		}
	}
	e.settle()
	initial := len(dataChanges(rec.take()))
	if initial != len(refs) {
		t.Fatalf("%d initial values, want %d", initial, len(refs))
	}
	e.advance(time.Second)
	moved := map[int32]bool{}
	for _, dc := range dataChanges(rec.take()) {
		if dc.GetQuality().GetRaw() != 192 {
			t.Errorf("item %d quality %d", dc.GetItemHandle(), dc.GetQuality().GetRaw())
		}
		moved[dc.GetItemHandle()] = true
	}
	if len(moved) != len(refs) {
		t.Fatalf("%d of %d demo tags moved within a second", len(moved), len(refs))
	}
	// Spot checks of the documented demo values.
	for ref, want := range map[string]*mxgatewayv1.MxValue{
		"Tank1.Material":     mxtypes.StringValue("Ethanol"),
		"Tank1.Inlet":        mxtypes.TypedStringValue(tRef, "Valve1"),
		"Pump1.FaultCode.02": mxtypes.BoolValue(true),
		"Line1.Recipe[2]":    mxtypes.StringValue("Cola 500ml"),
		"TIC101.SP":          mxtypes.DoubleValue(65),
	} {
		hi := e.add(h, ref)
		b.Advise(h, hi)
		e.settle()
		dcs := dataChanges(rec.take())
		if len(dcs) != 1 || dcs[0].GetValue().String() != want.String() {
			t.Errorf("%s = %v, want %v", ref, dcs, want)
		}
	}
}

func TestGenerators(t *testing.T) {
	model := `
galaxy: G
objects:
  - tag: A
    attributes:
      - {name: Ramp, type: MxInteger, value: 8, generator: {kind: ramp, every: 1s, min: 0, max: 10, step: 1}}
      - {name: Down, type: MxDouble, value: 1, generator: {kind: ramp, every: 1s, min: 0, max: 2, step: -0.5}}
      - {name: Walk, type: MxFloat, value: 50, generator: {kind: randomWalk, every: 1s, min: 49, max: 51, step: 5}}
      - {name: Sine, type: MxDouble, generator: {kind: sine, every: 1s, amplitude: 10, offset: 5, period: 4s}}
      - {name: Sq, type: MxString, value: lo, generator: {kind: square, every: 2s, values: [lo, hi]}}
      - {name: Tog, type: MxBoolean, generator: {kind: toggle, every: 1s}}
      - {name: Cnt, type: MxElapsedTime, generator: {kind: counter, every: 1s, step: 2, max: 5}}
      - {name: Clk, type: MxTime, generator: {kind: clock, every: 1s}}
      - name: Scr
        type: MxInteger
        generator:
          kind: script
          loop: true
          steps: [{after: 1s, value: 1}, {after: 2s, value: 2, quality: 24}]
`
	e := newEnv(t, envOpt{model: model, knobs: func(k *Knobs) { k.FirstBindDelay = 0; k.RebindDelay = 0 }})
	h := e.reg()
	names := []string{"Ramp", "Down", "Walk", "Sine", "Sq", "Tog", "Cnt", "Clk", "Scr"}
	for _, n := range names {
		e.b.Advise(h, e.add(h, "A."+n))
	}
	e.settle()
	e.rec.take()
	series := map[string][]string{}
	for i := 0; i < 6; i++ {
		e.advance(time.Second)
		for _, dc := range dataChanges(e.rec.take()) {
			n := names[dc.GetItemHandle()-1]
			v := dc.GetValue()
			var s string
			switch {
			case v.GetTimestampValue() != nil:
				s = v.GetTimestampValue().AsTime().Sub(testStart).String()
			case v.GetStringValue() != "":
				s = v.GetStringValue()
			default:
				s = fmt.Sprint(math.Round(numeric(v)*1e6) / 1e6)
				if _, ok := v.GetKind().(*mxgatewayv1.MxValue_BoolValue); ok {
					s = fmt.Sprint(v.GetBoolValue())
				}
			}
			if dc.GetQuality().GetRaw() != 192 {
				s += fmt.Sprintf("/q%d", dc.GetQuality().GetRaw())
			}
			series[n] = append(series[n], s)
		}
	}
	want := map[string]string{
		"Ramp": "9 10 0 1 2 3",
		"Down": "0.5 0 2 1.5 1 0.5",
		"Sine": "15 5 -5 5 15 5",
		"Sq":   "hi lo hi",
		"Tog":  "true false true false true false",
		"Cnt":  "2 4 0 2 4 0",
		"Clk":  "1s 2s 3s 4s 5s 6s",
		"Scr":  "1 2/q24 1/q24 2/q24",
	}
	for n, w := range want {
		if got := strings.Join(series[n], " "); got != w {
			t.Errorf("%s: %s, want %s", n, got, w)
		}
	}
	for _, s := range series["Walk"] {
		var f float64
		fmt.Sscan(s, &f)
		if f < 49 || f > 51 {
			t.Errorf("random walk left its bounds: %v", series["Walk"])
		}
	}
	if len(series["Walk"]) == 0 {
		t.Error("random walk never moved")
	}
}

func FuzzParseModel(f *testing.F) {
	f.Add([]byte(testModelYAML))
	f.Add(demoYAML)
	f.Add([]byte("galaxy: G\nobjects:\n  - tag: A\n    attributes: [{name: X, type: MxInteger, array: 3, value: [1]}]\n"))
	f.Add([]byte("galaxy: G\nfaults: [{kind: storm, count: 5}]\nknobs: {handleReuse: lowest}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseModel(data, "fuzz.yaml")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		if m.Object(SimObjectTag) == nil {
			t.Fatal("accepted model without the Sim object")
		}
	})
}

const structureYAML = `
galaxy: G
areas:
  - {name: A}
templates:
  - name: $gTank
    attributes:
      - {name: Level, type: MxDouble, value: 1}
      - {name: Material, type: MxString, value: base}
  - name: $Tank
    derivedFrom: $gTank
    attributes:
      - {name: Material, type: MxString, value: water}
      - {name: High, type: MxBoolean, alarm: true}
objects:
  - {tag: P1, template: $WinPlatform}
  - {tag: E1, template: $AppEngine, hostedBy: P1}
  - {tag: Line1, area: A, hostedBy: E1}
  - tag: Tank_001
    contained: Tank
    containedBy: Line1
    area: A
    template: $Tank
    hostedBy: E1
    attributes:
      - {name: Level, type: MxDouble, value: 7}
      - {name: High.Priority, type: MxInteger, value: 10}
`

// TestModelGalaxyStructure: templates with derivation chains and
// inherited attributes, containment, hosting, categories, ids and the
// alarm extension.
func TestModelGalaxyStructure(t *testing.T) {
	m, err := ParseModel([]byte(structureYAML), "s.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tank := m.Object("tank_001")
	if tank == nil || tank.Contained != "Tank" || tank.ContainedBy != "Line1" || tank.ID != 4 ||
		!slices.Equal(tank.Templates, []string{"$Tank", "$gTank"}) || tank.Category != CategoryUserDefined {
		t.Fatalf("Tank_001 = %+v", tank)
	}
	if m.Object("P1").Category != CategoryPlatform || m.Object("E1").Category != CategoryEngine {
		t.Fatalf("categories: platform %d, engine %d", m.Object("P1").Category, m.Object("E1").Category)
	}
	if got := m.HostChain(tank); !slices.Equal(got, []string{"tank_001", "e1", "p1"}) {
		t.Fatalf("host chain %v", got)
	}
	// Own beats the nearest template, which beats the root.
	if v := tank.Attribute("Level").Initial.GetDoubleValue(); v != 7 {
		t.Errorf("Level = %v, want the object's 7", v)
	}
	if v := tank.Attribute("Material").Initial.GetStringValue(); v != "water" {
		t.Errorf("Material = %q, want $Tank's", v)
	}
	for _, x := range alarmExtension {
		a := tank.Attribute("High." + x.name)
		if a == nil {
			t.Errorf("High.%s missing", x.name)
			continue
		}
		if x.name == "Priority" {
			if a.Primitive != "" || a.Initial.GetInt32Value() != 10 {
				t.Errorf("the model's own High.Priority was replaced: %+v", a)
			}
		} else if a.Primitive != PrimitiveAlarmExtension || a.Type != x.typ {
			t.Errorf("High.%s = %+v", x.name, a)
		}
	}
	// Instances never share attributes.
	if m.Object("Line1").Attribute("Level") != nil {
		t.Error("Line1 inherited attributes it has no template for")
	}
	for _, bad := range []struct{ yaml, want string }{
		{"galaxy: G\ntemplates:\n  - {name: $A, derivedFrom: $Nope}\n", "derivedFrom"},
		{"galaxy: G\ntemplates:\n  - {name: A}\n", "must start with $"},
		{"galaxy: G\nobjects:\n  - {tag: X, hostedBy: Nope}\n", "hostedBy"},
		{"galaxy: G\nobjects:\n  - {tag: X, containedBy: X}\n", "containedBy"},
	} {
		if _, err := ParseModel([]byte(bad.yaml), "bad.yaml"); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v, want a %s problem", bad.yaml, err, bad.want)
		}
	}
}

// TestPlantModel: the generated plant reaches 100,000+ attributes with
// the structure of a real Galaxy, the same way every time.
func TestPlantModel(t *testing.T) {
	m, err := PlantModel(50)
	if err != nil {
		t.Fatal(err)
	}
	if n := m.AttributeCount(); n < 100_000 {
		t.Fatalf("%d attributes, want 100,000+", n)
	}
	again, _ := PlantModel(50)
	if again.AttributeCount() != m.AttributeCount() || len(again.Objects) != len(m.Objects) {
		t.Fatal("the plant is not deterministic")
	}
	pump := m.Object("Pump_050_10_10")
	if pump == nil || pump.ContainedBy != "Line_050_10" || pump.Contained != "Pump10" || pump.Area != "Area_050" ||
		!slices.Equal(m.HostChain(pump), []string{"pump_050_10_10", "appengine_050", "platform_005"}) ||
		!slices.Equal(pump.Templates, []string{"$Pump", "$gEquipment", "$UserDefined"}) {
		t.Fatalf("pump %+v, hosts %v", pump, m.HostChain(pump))
	}
	if a := pump.Attribute("HiAlarm.Acked"); a == nil || a.Primitive != PrimitiveAlarmExtension {
		t.Fatalf("HiAlarm.Acked = %+v", a)
	}
	if _, err := PlantModel(0); err == nil {
		t.Fatal("a plant of 0 areas was accepted")
	}
}
