package sim

import (
	"fmt"
	"strings"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	"github.com/mxgateway/mxgateway/internal/itemref"
)

// SecurityClassification is an attribute's write classification
// (MXACCESS.md §5.6).
type SecurityClassification int32

// Security classifications in AVEVA's listing order.
const (
	FreeAccess    SecurityClassification = 0
	Operate       SecurityClassification = 1
	SecuredWrite  SecurityClassification = 2
	VerifiedWrite SecurityClassification = 3
	Tune          SecurityClassification = 4
	Configure     SecurityClassification = 5
	ViewOnly      SecurityClassification = 6
)

var securityNames = []string{"FreeAccess", "Operate", "SecuredWrite", "VerifiedWrite", "Tune", "Configure", "ViewOnly"}

// String returns the classification's name.
func (s SecurityClassification) String() string {
	if s >= 0 && int(s) < len(securityNames) {
		return securityNames[s]
	}
	return fmt.Sprintf("SecurityClassification(%d)", int32(s))
}

// User permissions.
const (
	PermOperate   = "operate"
	PermTune      = "tune"
	PermConfigure = "configure"
	PermVerify    = "verify"
)

// Model is a Galaxy: its objects, attributes, users, signal generators and
// scripted faults. Build one with LoadModel, ParseModel or DemoModel. A model
// is read-only once a Backend uses it; runtime values live in the Backend.
type Model struct {
	// Galaxy is the Galaxy name (the optional "Galaxy:" reference prefix).
	Galaxy string
	// Description is free text shown in BackendInfo.
	Description string
	// Areas lists the areas, parents before children.
	Areas []Area
	// Templates lists the templates, each after the one it derives from.
	Templates []*Template
	// Objects lists the automation objects in model order, including the
	// built-in Sim object (always last).
	Objects []*Object
	// Users lists the Galaxy users AuthenticateUser accepts.
	Users []User
	// Faults lists the scripted faults, relative to Backend.Open.
	Faults []FaultScript

	knobs    func(*Knobs) // knob overrides from the model file, nil if none
	objects  map[string]*Object
	attrList []*Attribute // every attribute, by ordinal
	finished bool
}

// Area is a Galaxy area.
type Area struct {
	Name   string
	Parent string // "" for a root area
}

// Template is a Galaxy template: its attributes are inherited by the
// templates derived from it and by its instances.
type Template struct {
	Name        string // "$Tank"
	DerivedFrom string // the parent template, "" for a base template
	Category    int32  // GR category id given to instances (0: derived)
	Attributes  []*Attribute
}

// Galaxy Repository category ids (GALAXY.md §1.2).
const (
	CategoryPlatform    int32 = 1
	CategoryEngine      int32 = 3
	CategoryUserDefined int32 = 10
	CategoryArea        int32 = 13
)

// Object is an automation object.
type Object struct {
	ID        int32  // stable object id (gobject_id): 1-based model order
	Tag       string // unique tag name used in references
	Contained string // contained name used in browse trees
	// ContainedBy is the tag of the containing object, "" when the object
	// sits directly in its area. Browse parents are the container if any,
	// else the area.
	ContainedBy string
	Area        string
	Template    string
	// Templates is the derivation chain, nearest first ($Tank, $gTank, ...).
	Templates []string
	// Category is the GR category id: platform 1, engine 3, user-defined
	// 10; derived from the template chain when the model does not say.
	Category int32
	// HostedBy is the tag of the object hosting this one: an engine hosts
	// application objects, a platform hosts engines. "" for none.
	HostedBy string
	// Attributes in model order.
	Attributes []*Attribute

	attrs   map[string]*Attribute
	builtin bool
}

// Attribute is an attribute of an object.
type Attribute struct {
	Name      string // possibly dotted ("Settings.Mode")
	Type      mxgatewayv1.MxDataType
	Dimension int // Dimension1: 0 for a scalar, else the array length
	Security  SecurityClassification
	// Initial is the initial value (an array value for arrays); nil means the
	// type's zero value.
	Initial    *mxgatewayv1.MxValue
	Quality    uint16 // initial quality (192 unless set)
	Historized bool
	Alarm      bool
	Locked     bool
	Category   int32
	Generator  *Generator // nil: the value changes only by writes
	// Primitive names the primitive an attribute belongs to:
	// "AlarmExtension" for the sub-attributes an alarmed attribute gets,
	// "" for the object's own.
	Primitive string

	ord   int32   // ordinal in the model, set by finish
	owner *Object // the object, set by finish
}

// Generator kinds.
const (
	GenConstant   = "constant"
	GenRamp       = "ramp"
	GenSine       = "sine"
	GenRandomWalk = "randomWalk"
	GenSquare     = "square"
	GenToggle     = "toggle"
	GenCounter    = "counter"
	GenClock      = "clock"
	GenScript     = "script"
)

// Generator changes an attribute's value over time.
type Generator struct {
	Kind string
	// Every is the tick interval (default 1 s).
	Every time.Duration
	// Min, Max, Step: ramp, random walk, counter.
	Min, Max, Step float64
	// Amplitude, Offset, Period: sine (Period is one full cycle).
	Amplitude, Offset float64
	Period            time.Duration
	// Values: square/toggle alternates between them.
	Values []*mxgatewayv1.MxValue
	// Steps and Loop: script.
	Steps []ScriptStep
	Loop  bool
}

// ScriptStep is one timed step of a script generator.
type ScriptStep struct {
	After   time.Duration        // after the previous step (or Open)
	Value   *mxgatewayv1.MxValue // nil keeps the value
	Quality *uint16              // nil keeps the quality
}

// User is a Galaxy user.
type User struct {
	Name        string
	Password    string
	Permissions []string // operate, tune, configure, verify
}

// Has reports whether u has permission p.
func (u *User) Has(p string) bool {
	for _, q := range u.Permissions {
		if strings.EqualFold(q, p) {
			return true
		}
	}
	return false
}

// Fault kinds, for FaultScript.Kind.
const (
	FaultCrash                  = "crash"
	FaultHang                   = "hang"
	FaultSlowCall               = "slowCall"
	FaultStorm                  = "storm"
	FaultQualityFlip            = "qualityFlip"
	FaultHResult                = "hresult"
	FaultWithholdWriteComplete  = "withholdWriteComplete"
	FaultLateEventAfterUnadvise = "lateEventAfterUnadvise"
	FaultSilentDeath            = "silentDeath"
	// The Galaxy runtime's faults (Galaxy-wide; ignored by a standalone
	// simulator): platformDown and engineOffScan of Object for Duration,
	// slowFirstBind of Duration (first binds take Duration while it lasts,
	// which is until the next one: a duration of 0 ends it).
	FaultPlatformDown  = "platformDown"
	FaultEngineOffScan = "engineOffScan"
	FaultSlowFirstBind = "slowFirstBind"
)

// RuntimeFault reports whether a fault kind is the Galaxy runtime's.
func RuntimeFault(kind string) bool {
	return kind == FaultPlatformDown || kind == FaultEngineOffScan || kind == FaultSlowFirstBind
}

// FaultScript is a fault scheduled by the model.
type FaultScript struct {
	Kind  string
	At    time.Duration // after Open
	Every time.Duration // repeat interval; 0 runs once
	// Code: crash exit code. Duration: hang, slowCall, qualityFlip.
	Code     int
	Duration time.Duration
	// Count: storm events.
	Count int
	// Object: qualityFlip target tag.
	Object string
	// Method, HResult, Reference, Calls: hresult injection for Method
	// (case-insensitive), only for items whose reference matches the glob
	// Reference when set, for Calls calls (0: until the model ends).
	Method    string
	HResult   int32
	Reference string
	Calls     int
	// Enabled: withholdWriteComplete, lateEventAfterUnadvise, silentDeath.
	Enabled bool
}

// SimObjectTag is the tag of the built-in fault-injection object.
const SimObjectTag = "Sim"

// Object returns the object with tag name tag (case-insensitive), or nil.
func (m *Model) Object(tag string) *Object {
	m.index()
	return m.objects[strings.ToLower(tag)]
}

// AttributeCount returns the number of attributes of the model, the Sim
// object's included.
func (m *Model) AttributeCount() int { return len(m.attrList) }

// AttributeAt returns the object and attribute of ordinal i, or nils.
func (m *Model) AttributeAt(i int) (*Object, *Attribute) {
	if i < 0 || i >= len(m.attrList) {
		return nil, nil
	}
	a := m.attrList[i]
	return a.owner, a
}

// Ordinal returns the attribute's ordinal in its model.
func (a *Attribute) Ordinal() int32 { return a.ord }

// HostChain returns the lower-case tags of o and of every object hosting
// it (its engine, then its platform), nearest first.
func (m *Model) HostChain(o *Object) []string {
	out := []string{strings.ToLower(o.Tag)}
	seen := map[string]bool{out[0]: true}
	for h := o.HostedBy; h != ""; {
		k := strings.ToLower(h)
		if seen[k] {
			break
		}
		seen[k] = true
		out = append(out, k)
		ho := m.Object(h)
		if ho == nil {
			break
		}
		h = ho.HostedBy
	}
	return out
}

// Builtin reports whether o is the built-in Sim object.
func (o *Object) Builtin() bool { return o.builtin }

// Attribute returns the attribute named name (case-insensitive), or nil.
func (o *Object) Attribute(name string) *Attribute {
	if o.attrs == nil {
		o.indexAttrs()
	}
	return o.attrs[strings.ToLower(name)]
}

func (o *Object) indexAttrs() {
	o.attrs = make(map[string]*Attribute, len(o.Attributes))
	for _, a := range o.Attributes {
		o.attrs[strings.ToLower(a.Name)] = a
	}
}

func (m *Model) index() {
	if m.objects != nil {
		return
	}
	m.objects = make(map[string]*Object, len(m.Objects))
	for _, o := range m.Objects {
		m.objects[strings.ToLower(o.Tag)] = o
		o.indexAttrs()
	}
}

// finish validates a model built in Go (or by the loader) and adds the Sim
// object when it is missing. It returns every problem found.
func (m *Model) finish() error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if m.Galaxy == "" {
		bad("galaxy name is empty")
	}
	seen := map[string]bool{}
	for _, o := range m.Objects {
		if o == nil {
			bad("nil object")
			continue
		}
		if r, err := itemref.Parse(o.Tag + ".x"); err != nil || r.Object != o.Tag || o.Tag == "" {
			bad("object tag %q is not a valid tag name", o.Tag)
		}
		key := strings.ToLower(o.Tag)
		if seen[key] {
			bad("duplicate tag %q", o.Tag)
		}
		seen[key] = true
		names := map[string]bool{}
		for _, a := range o.Attributes {
			if a == nil {
				bad("%s: nil attribute", o.Tag)
				continue
			}
			if _, err := itemref.Parse(o.Tag + "." + a.Name); err != nil || strings.ContainsAny(a.Name, "[]") {
				bad("%s: attribute name %q is not valid", o.Tag, a.Name)
			}
			if names[strings.ToLower(a.Name)] {
				bad("%s: duplicate attribute %q", o.Tag, a.Name)
			}
			names[strings.ToLower(a.Name)] = true
			if a.Dimension < 0 || a.Dimension > maxDimension {
				bad("%s.%s: array dimension %d not in 0..%d", o.Tag, a.Name, a.Dimension, maxDimension)
			}
			if a.Dimension > 0 && !arrayable(a.Type) {
				bad("%s.%s: %s cannot be an array", o.Tag, a.Name, typeName(a.Type))
			}
			if a.Security < FreeAccess || a.Security > ViewOnly {
				bad("%s.%s: unknown security classification %d", o.Tag, a.Name, a.Security)
			}
			if g := a.Generator; g != nil {
				if e := g.validateFor(a); e != "" {
					bad("%s.%s: generator %s: %s", o.Tag, a.Name, g.Kind, e)
				}
			}
		}
	}
	for i, o := range m.Objects {
		if o == nil {
			continue
		}
		if o.HostedBy != "" && !seen[strings.ToLower(o.HostedBy)] {
			bad("%s: hostedBy %q is not an object of the model", o.Tag, o.HostedBy)
		}
		if o.ContainedBy != "" && (!seen[strings.ToLower(o.ContainedBy)] || strings.EqualFold(o.ContainedBy, o.Tag)) {
			bad("%s: containedBy %q is not another object of the model", o.Tag, o.ContainedBy)
		}
		o.ID = int32(i + 1)
		if o.Category == 0 {
			o.Category = categoryOf(o)
		}
		o.Attributes = withAlarmExtensions(o.Attributes)
	}
	for _, f := range m.Faults {
		switch f.Kind {
		case FaultCrash, FaultHang, FaultSlowCall, FaultStorm, FaultQualityFlip, FaultHResult,
			FaultWithholdWriteComplete, FaultLateEventAfterUnadvise, FaultSilentDeath,
			FaultPlatformDown, FaultEngineOffScan, FaultSlowFirstBind:
		default:
			bad("unknown fault kind %q", f.Kind)
		}
		if f.Kind == FaultHResult {
			if _, ok := catalog.CanonicalMethod(f.Method); !ok {
				bad("hresult fault for unknown method %q", f.Method)
			}
		}
	}
	if !seen[strings.ToLower(SimObjectTag)] {
		m.Objects = append(m.Objects, simObject())
	} else {
		for _, o := range m.Objects {
			if o != nil && strings.EqualFold(o.Tag, SimObjectTag) && !o.builtin {
				bad("tag %q is reserved for the built-in fault-injection object", o.Tag)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("sim: invalid model: %s", strings.Join(errs, "; "))
	}
	m.objects = nil
	m.index()
	m.attrList = m.attrList[:0]
	for _, o := range m.Objects {
		for _, a := range o.Attributes {
			a.ord, a.owner = int32(len(m.attrList)), o
			m.attrList = append(m.attrList, a)
		}
	}
	m.finished = true
	return nil
}

// maxDimension bounds array attributes so a model cannot ask for absurd
// allocations.
const maxDimension = 65536

// Built-in Sim object attribute names.
const (
	SimCrash                  = "Crash"
	SimHangMs                 = "HangMs"
	SimSlowCallMs             = "SlowCallMs"
	SimStorm                  = "Storm"
	SimStormValue             = "StormValue"
	SimQualityFlip            = "QualityFlip"
	SimQualityFlipMs          = "QualityFlipMs"
	SimWithholdWriteComplete  = "WithholdWriteComplete"
	SimLateEventAfterUnadvise = "LateEventAfterUnadvise"
	SimFailMethod             = "FailMethod"
	SimFailHResult            = "FailHResult"
	SimSilentDeath            = "SilentDeath"
	SimSlowCalls              = "SlowCalls"
)

func simObject() *Object {
	i := mxgatewayv1.MxDataType_MX_DATA_TYPE_INTEGER
	s := mxgatewayv1.MxDataType_MX_DATA_TYPE_STRING
	b := mxgatewayv1.MxDataType_MX_DATA_TYPE_BOOLEAN
	attr := func(name string, t mxgatewayv1.MxDataType) *Attribute {
		return &Attribute{Name: name, Type: t, Quality: 192}
	}
	flipMs := attr(SimQualityFlipMs, i)
	flipMs.Initial = intValue(1000)
	failHR := attr(SimFailHResult, i)
	failHR.Initial = intValue(mxtypes.E_FAIL)
	o := &Object{
		Tag: SimObjectTag, Contained: SimObjectTag, Template: "$Simulator", builtin: true,
		Attributes: []*Attribute{
			attr(SimCrash, i),
			attr(SimHangMs, i),
			attr(SimSlowCallMs, i),
			attr(SimStorm, i),
			attr(SimStormValue, i),
			attr(SimQualityFlip, s),
			flipMs,
			attr(SimWithholdWriteComplete, b),
			attr(SimLateEventAfterUnadvise, b),
			attr(SimFailMethod, s),
			failHR,
			attr(SimSilentDeath, b),
			attr(SimSlowCalls, i),
		},
	}
	o.indexAttrs()
	return o
}

// validateFor checks a generator built in Go for attribute a; "" means fine.
func (g *Generator) validateFor(a *Attribute) string {
	numericScalar := isNumericType(a.Type) && a.Dimension == 0
	switch g.Kind {
	case GenRamp, GenCounter, GenRandomWalk, GenSine:
		if !numericScalar {
			return "needs a numeric scalar attribute"
		}
	case GenClock:
		if a.Type != tTime || a.Dimension != 0 {
			return "needs a scalar MxTime attribute"
		}
	case GenSquare, GenToggle:
		if a.Dimension != 0 || !hasValue(a.Type) {
			return "needs a scalar attribute"
		}
	}
	switch g.Kind {
	case GenConstant:
	case GenRamp, GenCounter, GenRandomWalk:
		if g.Every <= 0 || g.Max <= g.Min || g.Step == 0 {
			return "needs every > 0, max > min and a non-zero step"
		}
	case GenSine:
		if g.Every <= 0 || g.Period <= 0 {
			return "needs every > 0 and period > 0"
		}
	case GenSquare, GenToggle:
		if g.Every <= 0 || len(g.Values) < 2 {
			return "needs every > 0 and two values"
		}
	case GenClock:
		if g.Every <= 0 {
			return "needs every > 0"
		}
	case GenScript:
		var total time.Duration
		for _, s := range g.Steps {
			if s.After < 0 {
				return "negative step delay"
			}
			total += s.After
		}
		if len(g.Steps) == 0 || (g.Loop && total <= 0) {
			return "needs steps (that take time when looping)"
		}
	default:
		return "unknown kind"
	}
	return ""
}
