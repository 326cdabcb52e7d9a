package sim

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	"go.yaml.in/yaml/v3"
)

// maxModelErrors bounds how many problems one load reports.
const maxModelErrors = 20

// LoadModel reads a YAML model file. Every problem is reported as
// "file:line: problem"; a bad file never panics.
func LoadModel(filename string) (*Model, error) {
	data, err := os.ReadFile(filename)
	if err != nil {
		return nil, fmt.Errorf("sim: load model: %w", err)
	}
	return ParseModel(data, filename)
}

// ParseModel parses a YAML model; name is used in error messages.
func ParseModel(data []byte, name string) (*Model, error) {
	d := &modelDecoder{file: name}
	m := d.decode(data)
	if len(d.errs) > 0 {
		return nil, d.err()
	}
	if err := m.finish(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return m, nil
}

type modelDecoder struct {
	file string
	errs []string
}

func (d *modelDecoder) err() error {
	errs := d.errs
	more := ""
	if len(errs) > maxModelErrors {
		more = fmt.Sprintf("\n(%d more problems)", len(errs)-maxModelErrors)
		errs = errs[:maxModelErrors]
	}
	return errors.New(strings.Join(errs, "\n") + more)
}

func (d *modelDecoder) errf(n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errs = append(d.errs, fmt.Sprintf("%s:%d: %s", d.file, line, fmt.Sprintf(format, args...)))
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (d *modelDecoder) decode(data []byte) *Model {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := err.Error()
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			d.errs = append(d.errs, fmt.Sprintf("%s:%s: %s", d.file, m[1], m[2]))
		} else {
			d.errs = append(d.errs, fmt.Sprintf("%s:1: %s", d.file, strings.TrimPrefix(msg, "yaml: ")))
		}
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		d.errs = append(d.errs, fmt.Sprintf("%s:1: empty model", d.file))
		return nil
	}
	root := doc.Content[0]
	f := d.fields(root, "model", "galaxy", "description", "areas", "templates", "users", "objects", "knobs", "faults")
	if f == nil {
		return nil
	}
	m := &Model{}
	if n := f["galaxy"]; n != nil {
		m.Galaxy = d.identifier(n, "galaxy name")
	} else {
		d.errf(root, "missing galaxy name")
	}
	m.Description = d.str(f["description"])
	areas := map[string]*yaml.Node{}
	for _, n := range d.seq(f["areas"], "areas") {
		af := d.fields(n, "area", "name", "parent")
		if af == nil {
			continue
		}
		a := Area{Name: d.identifier(af["name"], "area name"), Parent: d.str(af["parent"])}
		if a.Name == "" {
			continue
		}
		if areas[strings.ToLower(a.Name)] != nil {
			d.errf(n, "duplicate area %q", a.Name)
		}
		if a.Parent != "" && areas[strings.ToLower(a.Parent)] == nil {
			d.errf(af["parent"], "parent area %q is not defined above", a.Parent)
		}
		areas[strings.ToLower(a.Name)] = n
		m.Areas = append(m.Areas, a)
	}
	users := map[string]bool{}
	for _, n := range d.seq(f["users"], "users") {
		uf := d.fields(n, "user", "name", "password", "permissions")
		if uf == nil {
			continue
		}
		u := User{Name: d.str(uf["name"]), Password: d.str(uf["password"])}
		if u.Name == "" {
			d.errf(n, "user without a name")
			continue
		}
		if users[strings.ToLower(u.Name)] {
			d.errf(n, "duplicate user %q", u.Name)
		}
		users[strings.ToLower(u.Name)] = true
		for _, p := range d.seq(uf["permissions"], "permissions") {
			s := strings.ToLower(d.str(p))
			switch s {
			case PermOperate, PermTune, PermConfigure, PermVerify:
				u.Permissions = append(u.Permissions, s)
			default:
				d.errf(p, "unknown permission %q (want operate, tune, configure or verify)", s)
			}
		}
		m.Users = append(m.Users, u)
	}
	templates := map[string]*Template{}
	for _, n := range d.seq(f["templates"], "templates") {
		tf := d.fields(n, "template", "name", "derivedFrom", "category", "attributes")
		if tf == nil {
			continue
		}
		tp := &Template{Name: d.str(tf["name"]), DerivedFrom: d.str(tf["derivedFrom"])}
		if !strings.HasPrefix(tp.Name, "$") || len(tp.Name) < 2 {
			d.errf(n, "template name %q must start with $", tp.Name)
			continue
		}
		if templates[strings.ToLower(tp.Name)] != nil {
			d.errf(n, "duplicate template %q", tp.Name)
			continue
		}
		if tp.DerivedFrom != "" && templates[strings.ToLower(tp.DerivedFrom)] == nil {
			d.errf(tf["derivedFrom"], "template %s: derivedFrom %q is not defined above", tp.Name, tp.DerivedFrom)
		}
		if cn := tf["category"]; cn != nil {
			if v, ok := d.integer(cn, "category", 0, math.MaxInt32); ok {
				tp.Category = int32(v)
			}
		}
		tp.Attributes = d.attributes(tf["attributes"], tp.Name)
		templates[strings.ToLower(tp.Name)] = tp
		m.Templates = append(m.Templates, tp)
	}
	tags := map[string]bool{}
	for _, n := range d.seq(f["objects"], "objects") {
		o := d.object(n, areas, templates)
		if o == nil {
			continue
		}
		key := strings.ToLower(o.Tag)
		switch {
		case key == strings.ToLower(SimObjectTag):
			d.errf(n, "tag %q is reserved for the built-in fault-injection object", o.Tag)
			continue
		case tags[key]:
			d.errf(n, "duplicate tag %q", o.Tag)
			continue
		}
		tags[key] = true
		m.Objects = append(m.Objects, o)
	}
	if kn := f["knobs"]; kn != nil {
		m.knobs = d.knobs(kn)
	}
	for _, n := range d.seq(f["faults"], "faults") {
		if fs, ok := d.fault(n, tags); ok {
			m.Faults = append(m.Faults, fs)
		}
	}
	return m
}

// fields checks that n is a mapping with only the allowed keys and returns
// key → value node. It returns nil (after reporting) if n is not a mapping.
func (d *modelDecoder) fields(n *yaml.Node, what string, allowed ...string) map[string]*yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.errf(n, "%s must be a mapping", what)
		return nil
	}
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		ok := false
		for _, a := range allowed {
			if k.Value == a {
				ok = true
				break
			}
		}
		switch {
		case !ok:
			d.errf(k, "unknown field %q in %s (allowed: %s)", k.Value, what, strings.Join(allowed, ", "))
		case out[k.Value] != nil:
			d.errf(k, "duplicate field %q in %s", k.Value, what)
		default:
			out[k.Value] = v
		}
	}
	return out
}

func (d *modelDecoder) seq(n *yaml.Node, what string) []*yaml.Node {
	if n == nil || n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errf(n, "%s must be a list", what)
		return nil
	}
	return n.Content
}

func (d *modelDecoder) scalar(n *yaml.Node, what string) (string, bool) {
	if n == nil {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		d.errf(n, "%s must be a scalar", what)
		return "", false
	}
	return n.Value, true
}

func (d *modelDecoder) str(n *yaml.Node) string {
	s, _ := d.scalar(n, "value")
	return s
}

func (d *modelDecoder) identifier(n *yaml.Node, what string) string {
	s, ok := d.scalar(n, what)
	if !ok {
		return ""
	}
	if s == "" || len(s) > 32 || strings.ContainsAny(s, " .:[]()+-*/=<>&|!^~,;'\"\t") {
		d.errf(n, "invalid %s %q", what, s)
		return ""
	}
	return s
}

func (d *modelDecoder) integer(n *yaml.Node, what string, min, max int64) (int64, bool) {
	s, ok := d.scalar(n, what)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		// Hex HRESULTs such as 0x80070057 exceed int32 as unsigned.
		u, uerr := strconv.ParseUint(s, 0, 32)
		if uerr != nil {
			d.errf(n, "%s: %q is not an integer", what, s)
			return 0, false
		}
		v = int64(int32(uint32(u)))
	}
	if v < min || v > max {
		d.errf(n, "%s %d out of range %d..%d", what, v, min, max)
		return 0, false
	}
	return v, true
}

func (d *modelDecoder) float(n *yaml.Node, what string) (float64, bool) {
	s, ok := d.scalar(n, what)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		d.errf(n, "%s: %q is not a number", what, s)
		return 0, false
	}
	return v, true
}

func (d *modelDecoder) boolean(n *yaml.Node, what string) bool {
	if n == nil {
		return false
	}
	var b bool
	if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
		d.errf(n, "%s must be true or false", what)
	}
	return b
}

func (d *modelDecoder) duration(n *yaml.Node, what string) (time.Duration, bool) {
	s, ok := d.scalar(n, what)
	if !ok {
		return 0, false
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		d.errf(n, "%s: %q is not a duration such as 500ms or 2s", what, s)
		return 0, false
	}
	return v, true
}

func (d *modelDecoder) object(n *yaml.Node, areas map[string]*yaml.Node, templates map[string]*Template) *Object {
	f := d.fields(n, "object", "tag", "contained", "containedBy", "area", "template", "hostedBy", "category", "attributes")
	if f == nil {
		return nil
	}
	o := &Object{Tag: d.identifier(f["tag"], "tag name")}
	if f["tag"] == nil {
		d.errf(n, "object without a tag")
	}
	if o.Tag == "" {
		return nil
	}
	o.Contained = o.Tag
	if c := f["contained"]; c != nil {
		o.Contained = d.identifier(c, "contained name")
	}
	o.Area = d.str(f["area"])
	if o.Area != "" && areas[strings.ToLower(o.Area)] == nil {
		d.errf(f["area"], "object %s: unknown area %q", o.Tag, o.Area)
	}
	o.Template = d.str(f["template"])
	o.HostedBy = d.str(f["hostedBy"])
	o.ContainedBy = d.str(f["containedBy"])
	if cn := f["category"]; cn != nil {
		if v, ok := d.integer(cn, "category", 0, math.MaxInt32); ok {
			o.Category = int32(v)
		}
	}
	// The template chain, nearest first; its attributes are inherited,
	// root first, and the object's own replace them by name.
	var chain []*Template
	for t, seen := templates[strings.ToLower(o.Template)], map[*Template]bool{}; t != nil && !seen[t]; t = templates[strings.ToLower(t.DerivedFrom)] {
		seen[t] = true
		chain = append(chain, t)
		o.Templates = append(o.Templates, t.Name)
		if o.Category == 0 {
			o.Category = t.Category
		}
	}
	if len(o.Templates) == 0 && o.Template != "" {
		o.Templates = []string{o.Template}
	}
	own := d.attributes(f["attributes"], o.Tag)
	o.Attributes = inherit(chain, own)
	return o
}

// attributes decodes an attribute list (of an object or a template).
func (d *modelDecoder) attributes(n *yaml.Node, owner string) []*Attribute {
	var out []*Attribute
	names := map[string]bool{}
	for _, an := range d.seq(n, "attributes") {
		a := d.attribute(an, owner)
		if a == nil {
			continue
		}
		key := strings.ToLower(a.Name)
		if names[key] {
			d.errf(an, "%s: duplicate attribute %q", owner, a.Name)
			continue
		}
		names[key] = true
		out = append(out, a)
	}
	return out
}

var attrNameRE = regexp.MustCompile(`^[A-Za-z_$#][A-Za-z0-9_$#]*(\.[A-Za-z_$#][A-Za-z0-9_$#]*)*$`)

func (d *modelDecoder) attribute(n *yaml.Node, tag string) *Attribute {
	f := d.fields(n, "attribute", "name", "type", "array", "security", "value", "quality",
		"historized", "alarm", "locked", "category", "generator")
	if f == nil {
		return nil
	}
	name, _ := d.scalar(f["name"], "attribute name")
	if f["name"] == nil {
		d.errf(n, "%s: attribute without a name", tag)
		return nil
	}
	if !attrNameRE.MatchString(name) || len(name) > 329 {
		d.errf(f["name"], "%s: invalid attribute name %q", tag, name)
		return nil
	}
	for _, seg := range strings.Split(name, ".") {
		if len(seg) > 32 {
			d.errf(f["name"], "%s: attribute segment %q longer than 32 characters", tag, seg)
			return nil
		}
	}
	a := &Attribute{Name: name, Quality: mxtypes.QualityGood}
	where := tag + "." + name
	if tn := f["type"]; tn != nil {
		s, _ := d.scalar(tn, "type")
		dt, ok := parseTypeName(s)
		if !ok {
			d.errf(tn, "%s: unknown type %q (want an MxDataType such as MxDouble)", where, s)
			return nil
		}
		a.Type = dt
	} else {
		d.errf(n, "%s: missing type", where)
		return nil
	}
	if an := f["array"]; an != nil {
		v, ok := d.integer(an, "array dimension", 1, maxDimension)
		if !ok {
			return nil
		}
		if !arrayable(a.Type) {
			d.errf(an, "%s: %s cannot be an array", where, typeName(a.Type))
			return nil
		}
		a.Dimension = int(v)
	}
	if sn := f["security"]; sn != nil {
		s, _ := d.scalar(sn, "security")
		sc, ok := parseSecurity(s)
		if !ok {
			d.errf(sn, "%s: unknown security classification %q (want one of %s)", where, s, strings.Join(securityNames, ", "))
		}
		a.Security = sc
	}
	if qn := f["quality"]; qn != nil {
		if v, ok := d.integer(qn, "quality", 0, 65535); ok {
			a.Quality = uint16(v)
		}
	}
	if vn := f["value"]; vn != nil {
		if !hasValue(a.Type) {
			d.errf(vn, "%s: %s attributes have no value", where, typeName(a.Type))
		} else if v, ok := d.value(vn, a.Type, a.Dimension, where); ok {
			a.Initial = v
		}
	}
	a.Historized = d.boolean(f["historized"], "historized")
	a.Alarm = d.boolean(f["alarm"], "alarm")
	a.Locked = d.boolean(f["locked"], "locked")
	if cn := f["category"]; cn != nil {
		if v, ok := d.integer(cn, "category", math.MinInt32, math.MaxInt32); ok {
			a.Category = int32(v)
		}
	}
	if gn := f["generator"]; gn != nil {
		a.Generator = d.generator(gn, a, where)
	}
	return a
}

func parseSecurity(s string) (SecurityClassification, bool) {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 && n < len(securityNames) {
		return SecurityClassification(n), true
	}
	for i, n := range securityNames {
		if strings.EqualFold(n, s) {
			return SecurityClassification(i), true
		}
	}
	return 0, false
}

// value parses a model value of type dt: a list for arrays (shorter lists
// are padded with zero values), a scalar otherwise.
func (d *modelDecoder) value(n *yaml.Node, dt mxgatewayv1.MxDataType, dim int, where string) (*mxgatewayv1.MxValue, bool) {
	if dim == 0 {
		return d.scalarValue(n, dt, where)
	}
	if n.Kind != yaml.SequenceNode {
		d.errf(n, "%s: array value must be a list", where)
		return nil, false
	}
	if len(n.Content) > dim {
		d.errf(n, "%s: %d values for an array of dimension %d", where, len(n.Content), dim)
		return nil, false
	}
	elems := make([]*mxgatewayv1.MxValue, dim)
	ok := true
	for i := range elems {
		if i < len(n.Content) {
			e, eok := d.scalarValue(n.Content[i], dt, where)
			elems[i], ok = e, ok && eok
		} else {
			elems[i] = zeroScalar(dt)
		}
	}
	if !ok {
		return nil, false
	}
	return buildArray(dt, elems), true
}

func (d *modelDecoder) scalarValue(n *yaml.Node, dt mxgatewayv1.MxDataType, where string) (*mxgatewayv1.MxValue, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errf(n, "%s: value must be a scalar", where)
		return nil, false
	}
	s := n.Value
	bad := func() (*mxgatewayv1.MxValue, bool) {
		d.errf(n, "%s: %q is not a valid %s value", where, s, typeName(dt))
		return nil, false
	}
	switch {
	case dt == tBool:
		var b bool
		if n.Decode(&b) != nil {
			return bad()
		}
		return mxtypes.BoolValue(b), true
	case isInt32Type(dt):
		v, err := strconv.ParseInt(s, 0, 32)
		if err != nil {
			return bad()
		}
		return mxtypes.Int32Value(dt, int32(v)), true
	case dt == tFloat || dt == tDouble:
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return bad()
		}
		return fromFloat(dt, v), true
	case dt == tElapsed:
		if v, err := strconv.ParseFloat(s, 64); err == nil {
			return elapsedSeconds(v), true
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return bad()
		}
		return elapsedSeconds(v.Seconds()), true
	case isStringType(dt):
		return mxtypes.TypedStringValue(dt, s), true
	case dt == tTime:
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return bad()
		}
		return mxtypes.TimeValue(t), true
	}
	return bad()
}

// MinGeneratorPeriod is the shortest generator period (every) and the
// shortest round of a looping script: faster ones would keep the STA busy
// with ticks and flood every advised session.
const MinGeneratorPeriod = time.Millisecond

func (d *modelDecoder) generator(n *yaml.Node, a *Attribute, where string) *Generator {
	f := d.fields(n, "generator", "kind", "every", "min", "max", "step", "amplitude", "offset",
		"period", "values", "steps", "loop")
	if f == nil {
		return nil
	}
	g := &Generator{Every: time.Second}
	kind, _ := d.scalar(f["kind"], "generator kind")
	if f["kind"] == nil {
		d.errf(n, "%s: generator without a kind", where)
		return nil
	}
	g.Kind = kind
	if en := f["every"]; en != nil {
		if v, ok := d.duration(en, "every"); ok {
			if v < MinGeneratorPeriod {
				d.errf(en, "%s: every %v is below the minimum generator period %v", where, v, MinGeneratorPeriod)
			}
			g.Every = v
		}
	}
	num := func(key string, def float64) float64 {
		if x := f[key]; x != nil {
			v, _ := d.float(x, key)
			return v
		}
		return def
	}
	numericScalar := func() bool {
		if !isNumericType(a.Type) || a.Dimension != 0 {
			d.errf(f["kind"], "%s: generator %s needs a numeric scalar (MxInteger, MxFloat, MxDouble, MxElapsedTime), not %s", where, kind, describeType(a))
			return false
		}
		return true
	}
	switch kind {
	case GenConstant:
	case GenRamp:
		if !numericScalar() {
			return nil
		}
		g.Min, g.Max, g.Step = num("min", 0), num("max", 100), num("step", 1)
		if g.Max <= g.Min || g.Step == 0 {
			d.errf(n, "%s: ramp needs max > min and a non-zero step", where)
		}
	case GenRandomWalk:
		if !numericScalar() {
			return nil
		}
		g.Min, g.Max, g.Step = num("min", 0), num("max", 100), num("step", 1)
		if g.Max <= g.Min || g.Step <= 0 {
			d.errf(n, "%s: randomWalk needs max > min and a positive step", where)
		}
	case GenCounter:
		if !numericScalar() {
			return nil
		}
		g.Min, g.Max, g.Step = num("min", 0), num("max", math.MaxInt32), num("step", 1)
		if g.Max <= g.Min || g.Step == 0 {
			d.errf(n, "%s: counter needs max > min and a non-zero step", where)
		}
	case GenSine:
		if !numericScalar() {
			return nil
		}
		g.Amplitude, g.Offset = num("amplitude", 1), num("offset", 0)
		g.Period = time.Minute
		if pn := f["period"]; pn != nil {
			g.Period, _ = d.duration(pn, "period")
		}
		if g.Period <= 0 {
			d.errf(n, "%s: sine needs a positive period", where)
		}
	case GenSquare, GenToggle:
		if a.Dimension != 0 || !hasValue(a.Type) {
			d.errf(f["kind"], "%s: %s needs a scalar attribute", where, kind)
			return nil
		}
		vals := d.seq(f["values"], "values")
		if len(vals) == 0 && a.Type == tBool {
			g.Values = []*mxgatewayv1.MxValue{mxtypes.BoolValue(false), mxtypes.BoolValue(true)}
		}
		for _, vn := range vals {
			if v, ok := d.scalarValue(vn, a.Type, where); ok {
				g.Values = append(g.Values, v)
			}
		}
		if len(g.Values) < 2 {
			d.errf(n, "%s: %s needs at least two values", where, kind)
		}
	case GenClock:
		if a.Type != tTime || a.Dimension != 0 {
			d.errf(f["kind"], "%s: clock needs a scalar MxTime attribute, not %s", where, describeType(a))
			return nil
		}
	case GenScript:
		if f["loop"] != nil {
			g.Loop = d.boolean(f["loop"], "loop")
		}
		var total time.Duration
		for _, sn := range d.seq(f["steps"], "steps") {
			sf := d.fields(sn, "script step", "after", "value", "quality")
			if sf == nil {
				continue
			}
			st := ScriptStep{}
			if an := sf["after"]; an != nil {
				st.After, _ = d.duration(an, "after")
			}
			total += st.After
			if vn := sf["value"]; vn != nil {
				if !hasValue(a.Type) {
					d.errf(vn, "%s: %s attributes have no value", where, typeName(a.Type))
				} else if v, ok := d.value(vn, a.Type, a.Dimension, where); ok {
					st.Value = v
				}
			}
			if qn := sf["quality"]; qn != nil {
				if v, ok := d.integer(qn, "quality", 0, 65535); ok {
					q := uint16(v)
					st.Quality = &q
				}
			}
			g.Steps = append(g.Steps, st)
		}
		if len(g.Steps) == 0 {
			d.errf(n, "%s: script needs at least one step", where)
		}
		if g.Loop && total < MinGeneratorPeriod {
			d.errf(n, "%s: a looping script's steps must take at least the minimum generator period %v together (they take %v)", where, MinGeneratorPeriod, total)
		}
	default:
		d.errf(f["kind"], "%s: unknown generator kind %q (want constant, ramp, sine, randomWalk, square, toggle, counter, clock or script)", where, kind)
		return nil
	}
	return g
}

func describeType(a *Attribute) string {
	if a.Dimension > 0 {
		return fmt.Sprintf("%s[%d]", typeName(a.Type), a.Dimension)
	}
	return typeName(a.Type)
}

func (d *modelDecoder) fault(n *yaml.Node, tags map[string]bool) (FaultScript, bool) {
	f := d.fields(n, "fault", "kind", "at", "every", "code", "duration", "count", "object",
		"method", "hresult", "reference", "calls", "enabled")
	if f == nil {
		return FaultScript{}, false
	}
	fs := FaultScript{Enabled: true}
	kind, _ := d.scalar(f["kind"], "fault kind")
	fs.Kind = kind
	if x := f["at"]; x != nil {
		fs.At, _ = d.duration(x, "at")
	}
	if x := f["every"]; x != nil {
		fs.Every, _ = d.duration(x, "every")
	}
	if x := f["duration"]; x != nil {
		fs.Duration, _ = d.duration(x, "duration")
	}
	if x := f["code"]; x != nil {
		v, _ := d.integer(x, "code", 0, 255)
		fs.Code = int(v)
	}
	if x := f["count"]; x != nil {
		v, _ := d.integer(x, "count", 1, 100_000_000)
		fs.Count = int(v)
	}
	if x := f["calls"]; x != nil {
		v, _ := d.integer(x, "calls", 0, math.MaxInt32)
		fs.Calls = int(v)
	}
	if x := f["enabled"]; x != nil {
		fs.Enabled = d.boolean(x, "enabled")
	}
	fs.Object = d.str(f["object"])
	fs.Reference = d.str(f["reference"])
	if fs.Reference != "" {
		if _, err := path.Match(strings.ToLower(fs.Reference), ""); err != nil {
			d.errf(f["reference"], "bad reference glob %q", fs.Reference)
		}
	}
	need := func(key string) bool {
		if f[key] == nil {
			d.errf(n, "fault %s needs %s", kind, key)
			return false
		}
		return true
	}
	switch kind {
	case FaultCrash:
		if f["code"] == nil {
			fs.Code = 42
		}
	case FaultHang, FaultSlowCall:
		need("duration")
	case FaultStorm:
		need("count")
	case FaultQualityFlip:
		if need("object") && !tags[strings.ToLower(fs.Object)] {
			d.errf(f["object"], "qualityFlip of unknown object %q", fs.Object)
		}
		if fs.Duration == 0 {
			fs.Duration = time.Second
		}
	case FaultHResult:
		if need("method") {
			m, ok := catalog.CanonicalMethod(d.str(f["method"]))
			if !ok {
				d.errf(f["method"], "unknown method %q", d.str(f["method"]))
			}
			fs.Method = m
		}
		if need("hresult") {
			v, _ := d.integer(f["hresult"], "hresult", math.MinInt32, math.MaxUint32)
			fs.HResult = int32(v)
			if fs.HResult >= 0 {
				d.errf(f["hresult"], "hresult 0x%08X is not a failure code", uint32(fs.HResult))
			}
		}
	case FaultWithholdWriteComplete, FaultLateEventAfterUnadvise, FaultSilentDeath:
	case FaultPlatformDown, FaultEngineOffScan:
		if need("object") && !tags[strings.ToLower(fs.Object)] {
			d.errf(f["object"], "%s of unknown object %q", kind, fs.Object)
		}
		need("duration")
	case FaultSlowFirstBind:
		need("duration")
	case "":
		d.errf(n, "fault without a kind")
		return FaultScript{}, false
	default:
		d.errf(f["kind"], "unknown fault kind %q", kind)
		return FaultScript{}, false
	}
	return fs, true
}

// knobs parses a knobs mapping into a function applying the overrides.
func (d *modelDecoder) knobs(n *yaml.Node) func(*Knobs) {
	f := d.fields(n, "knobs", "maxInterfaceLevel", "firstBindDelay", "rebindDelay", "updateLatency",
		"handleReuse", "statusSuccessValue", "statusArrayLength", "unresolvedQuality",
		"unresolvedCategory", "unresolvedDetail", "arrayWithoutBracketsCategory", "strictAddItem",
		"writeCoercion", "writePendingFirst", "writeEchoOrder", "emitTimestampOnlyChanges",
		"emitOperationComplete", "invalidHandleHResult", "securityMode", "bufferedUpdateInterval")
	if f == nil {
		return nil
	}
	var sets []func(*Knobs)
	for key, v := range f {
		switch key {
		case "maxInterfaceLevel":
			x, _ := d.integer(v, key, 1, 5)
			sets = append(sets, func(k *Knobs) { k.MaxInterfaceLevel = int(x) })
		case "firstBindDelay", "rebindDelay", "updateLatency", "bufferedUpdateInterval":
			x, _ := d.duration(v, key)
			key := key
			sets = append(sets, func(k *Knobs) {
				switch key {
				case "firstBindDelay":
					k.FirstBindDelay = x
				case "rebindDelay":
					k.RebindDelay = x
				case "updateLatency":
					k.UpdateLatency = x
				default:
					k.BufferedUpdateInterval = x
				}
			})
		case "handleReuse", "writeCoercion", "writeEchoOrder", "securityMode":
			x := d.str(v)
			key := key
			allowed := map[string][]string{
				"handleReuse":    {HandleReuseLowest, HandleReuseMonotonic},
				"writeCoercion":  {WriteCoercionLenient, WriteCoercionStrict},
				"writeEchoOrder": {EchoCompletionFirst, EchoDataFirst, EchoRandom},
				"securityMode":   {SecurityNone, SecurityGalaxy, SecurityOSUser},
			}[key]
			found := false
			for _, a := range allowed {
				found = found || a == x
			}
			if !found {
				d.errf(v, "%s: %q is not one of %s", key, x, strings.Join(allowed, ", "))
			}
			sets = append(sets, func(k *Knobs) {
				switch key {
				case "handleReuse":
					k.HandleReuse = x
				case "writeCoercion":
					k.WriteCoercion = x
				case "writeEchoOrder":
					k.WriteEchoOrder = x
				default:
					k.SecurityMode = x
				}
			})
		case "statusSuccessValue":
			x, _ := d.integer(v, key, math.MinInt16, math.MaxInt16)
			sets = append(sets, func(k *Knobs) { k.StatusSuccessValue = int16(x) })
		case "statusArrayLength":
			x, _ := d.integer(v, key, 1, 16)
			sets = append(sets, func(k *Knobs) { k.StatusArrayLength = int(x) })
		case "unresolvedQuality":
			x, _ := d.integer(v, key, 0, 65535)
			sets = append(sets, func(k *Knobs) { k.UnresolvedQuality = uint16(x) })
		case "unresolvedDetail":
			x, _ := d.integer(v, key, math.MinInt16, math.MaxInt16)
			sets = append(sets, func(k *Knobs) { k.UnresolvedDetail = int16(x) })
		case "unresolvedCategory", "arrayWithoutBracketsCategory":
			x, ok := parseCategory(d.str(v))
			if !ok {
				d.errf(v, "%s: unknown status category %q", key, d.str(v))
			}
			key := key
			sets = append(sets, func(k *Knobs) {
				if key == "unresolvedCategory" {
					k.UnresolvedCategory = x
				} else {
					k.ArrayWithoutBracketsCategory = x
				}
			})
		case "strictAddItem", "writePendingFirst", "emitTimestampOnlyChanges", "emitOperationComplete":
			x := d.boolean(v, key)
			key := key
			sets = append(sets, func(k *Knobs) {
				switch key {
				case "strictAddItem":
					k.StrictAddItem = x
				case "writePendingFirst":
					k.WritePendingFirst = x
				case "emitTimestampOnlyChanges":
					k.EmitTimestampOnlyChanges = x
				default:
					k.EmitOperationComplete = x
				}
			})
		case "invalidHandleHResult":
			x, _ := d.integer(v, key, math.MinInt32, math.MaxUint32)
			sets = append(sets, func(k *Knobs) { k.InvalidHandleHResult = int32(x) })
		}
	}
	return func(k *Knobs) {
		for _, s := range sets {
			s(k)
		}
	}
}

// parseCategory accepts a number or a name such as MxCategoryConfigurationError.
func parseCategory(s string) (int32, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		return int32(n), true
	}
	for v, name := range map[int32]string{
		-1: "MxStatusCategoryUnknown", 0: "MxCategoryOk", 1: "MxCategoryPending", 2: "MxCategoryWarning",
		3: "MxCategoryCommunicationError", 4: "MxCategoryConfigurationError",
		5: "MxCategoryOperationalError", 6: "MxCategorySecurityError", 7: "MxCategorySoftwareError",
		8: "MxCategoryOtherError",
	} {
		if strings.EqualFold(name, s) || strings.EqualFold(strings.TrimPrefix(name, "MxCategory"), s) {
			return v, true
		}
	}
	return 0, false
}
