package itemref

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Length limits of the reference grammar, in characters.
const (
	MaxIdentifier = 32  // an object tag name, a Galaxy name or one attribute segment
	MaxAttribute  = 329 // a whole dotted attribute name
	MaxReference  = 380 // the whole reference
)

// DefaultAttribute is the attribute a reference without one names.
const DefaultAttribute = "PV"

// AttributesName is the pseudo-attribute listing an object's attribute names.
const AttributesName = "_Attributes"

// ErrInvalid is wrapped by every error Parse returns.
var ErrInvalid = errors.New("itemref: invalid reference")

// Error describes why a reference is malformed.
type Error struct {
	Ref    string // the reference as given
	Reason string // what is wrong
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("itemref: %s in %q", e.Reason, e.Ref)
}

// Unwrap returns ErrInvalid.
func (e *Error) Unwrap() error { return ErrInvalid }

// IndexKind says whether and how a reference indexes an array.
type IndexKind int

// Index kinds.
const (
	IndexNone    IndexKind = iota // no brackets
	IndexWhole                    // "[]": the whole array
	IndexElement                  // "[n]": one element (1-based; -1 is allowed by the grammar)
)

// Property is an attribute property named at the end of a reference.
type Property int

// Properties of an attribute (MXACCESS.md §5.5).
const (
	PropNone Property = iota
	PropValue
	PropType
	PropQuality
	PropDimension1
	PropSecurityClassification
	PropLocked
	PropCategory
	PropName
	PropTime
)

var propertyNames = [...]string{
	PropNone:                   "",
	PropValue:                  "Value",
	PropType:                   "Type",
	PropQuality:                "Quality",
	PropDimension1:             "Dimension1",
	PropSecurityClassification: "SecurityClassification",
	PropLocked:                 "Locked",
	PropCategory:               "Category",
	PropName:                   "Name",
	PropTime:                   "Time",
}

// String returns the canonical name of p ("" for PropNone).
func (p Property) String() string {
	if p < 0 || int(p) >= len(propertyNames) {
		return fmt.Sprintf("Property(%d)", int(p))
	}
	return propertyNames[p]
}

// LookupProperty returns the property named name, case-insensitively.
func LookupProperty(name string) (Property, bool) {
	for i, n := range propertyNames {
		if i != 0 && strings.EqualFold(n, name) {
			return Property(i), true
		}
	}
	return PropNone, false
}

// Ref is a parsed item reference. The zero value is not a valid reference.
type Ref struct {
	// Galaxy is the optional remote Galaxy name (before ':'), "" if absent.
	Galaxy string
	// Object is the object's tag name, as written.
	Object string
	// Attribute is the dotted attribute name as written, without index, bit
	// field or property; "" when the reference names none (meaning PV).
	Attribute string
	// IndexKind and Index describe an array index; Index is meaningful for
	// IndexElement only and is the number as written (1-based).
	IndexKind IndexKind
	Index     int
	// HasBit and Bit describe a bit field ".00" to ".31".
	HasBit bool
	Bit    int
	// Property is the property named at the end, PropNone if none.
	// PropertyText is its spelling as written; PropertyEscaped is true for
	// the ".PROPERTY(name)" form, which always means the property even when
	// an attribute of that name exists.
	Property        Property
	PropertyText    string
	PropertyEscaped bool
}

// AttributeOrDefault returns Attribute, or DefaultAttribute when it is empty.
func (r Ref) AttributeOrDefault() string {
	if r.Attribute == "" {
		return DefaultAttribute
	}
	return r.Attribute
}

// IsAttributeList reports whether r is "Obj._Attributes".
func (r Ref) IsAttributeList() bool {
	return strings.EqualFold(r.Attribute, AttributesName) && r.IndexKind == IndexNone &&
		!r.HasBit && r.Property == PropNone
}

// String returns the reference in the grammar. For any r returned by Parse,
// Parse(r.String()) returns r again.
func (r Ref) String() string {
	var sb strings.Builder
	if r.Galaxy != "" {
		sb.WriteString(r.Galaxy)
		sb.WriteByte(':')
	}
	sb.WriteString(r.Object)
	if r.Attribute != "" {
		sb.WriteByte('.')
		sb.WriteString(r.Attribute)
	}
	switch r.IndexKind {
	case IndexWhole:
		sb.WriteString("[]")
	case IndexElement:
		sb.WriteByte('[')
		sb.WriteString(strconv.Itoa(r.Index))
		sb.WriteByte(']')
	}
	if r.HasBit {
		fmt.Fprintf(&sb, ".%02d", r.Bit)
	}
	if r.Property != PropNone {
		sb.WriteByte('.')
		if r.PropertyEscaped {
			sb.WriteString("PROPERTY(")
			sb.WriteString(r.PropertyText)
			sb.WriteByte(')')
		} else {
			sb.WriteString(r.PropertyText)
		}
	}
	return sb.String()
}

// Parse parses ref. It checks syntax and the length limits only; an
// unknown object or attribute is not an error here.
func Parse(ref string) (Ref, error) {
	fail := func(format string, args ...any) (Ref, error) {
		return Ref{}, &Error{Ref: ref, Reason: fmt.Sprintf(format, args...)}
	}
	if ref == "" {
		return fail("empty reference")
	}
	if !utf8.ValidString(ref) {
		return fail("invalid UTF-8")
	}
	if n := utf8.RuneCountInString(ref); n > MaxReference {
		return fail("reference is %d characters, limit %d", n, MaxReference)
	}
	var r Ref
	rest := ref
	if i := strings.IndexByte(rest, ':'); i >= 0 {
		r.Galaxy = rest[:i]
		rest = rest[i+1:]
		if err := checkIdentifier(r.Galaxy, "galaxy name"); err != "" {
			return fail("%s", err)
		}
	}
	segs := strings.Split(rest, ".")
	r.Object = segs[0]
	if err := checkIdentifier(r.Object, "object name"); err != "" {
		return fail("%s", err)
	}
	var attr []string
	last := len(segs) - 1
	for i := 1; i <= last; i++ {
		seg := segs[i]
		switch {
		case hasPrefixFold(seg, "PROPERTY("):
			if i != last {
				return fail("PROPERTY(...) must end the reference")
			}
			if !strings.HasSuffix(seg, ")") {
				return fail("unterminated PROPERTY(")
			}
			name := seg[len("PROPERTY(") : len(seg)-1]
			p, ok := LookupProperty(name)
			if !ok {
				return fail("unknown property %q", name)
			}
			r.Property, r.PropertyText, r.PropertyEscaped = p, name, true
		case seg != "" && allDigits(seg):
			if len(seg) != 2 {
				return fail("all-digit segment %q (bit fields are .00 to .31)", seg)
			}
			n, _ := strconv.Atoi(seg)
			if n > 31 {
				return fail("bit field .%s out of range .00 to .31", seg)
			}
			if i != last {
				return fail("bit field .%s must end the reference", seg)
			}
			r.HasBit, r.Bit = true, n
		default:
			if r.IndexKind != IndexNone {
				// After an index only a bit field or a property may follow.
				p, ok := LookupProperty(seg)
				if !ok || i != last {
					return fail("unexpected %q after an array index", seg)
				}
				r.Property, r.PropertyText = p, seg
				continue
			}
			name, idx, hasIdx, err := splitIndex(seg)
			if err != "" {
				return fail("%s", err)
			}
			if !hasIdx && i == last && len(attr) > 0 {
				if p, ok := LookupProperty(seg); ok {
					r.Property, r.PropertyText = p, seg
					continue
				}
			}
			if e := checkIdentifier(name, "attribute segment"); e != "" {
				return fail("%s", e)
			}
			attr = append(attr, name)
			if hasIdx {
				if idx == nil {
					r.IndexKind = IndexWhole
				} else {
					r.IndexKind, r.Index = IndexElement, *idx
				}
			}
		}
	}
	r.Attribute = strings.Join(attr, ".")
	if n := utf8.RuneCountInString(r.Attribute); n > MaxAttribute {
		return fail("attribute name is %d characters, limit %d", n, MaxAttribute)
	}
	return r, nil
}

// splitIndex splits "Name[3]" into "Name" and 3, "Name[]" into "Name" and
// nil. The error is a reason, "" when fine.
func splitIndex(seg string) (name string, idx *int, has bool, err string) {
	open := strings.IndexByte(seg, '[')
	if open < 0 {
		if strings.IndexByte(seg, ']') >= 0 {
			return "", nil, false, "unbalanced ']'"
		}
		return seg, nil, false, ""
	}
	if !strings.HasSuffix(seg, "]") {
		return "", nil, false, "array index must end the segment"
	}
	inner := seg[open+1 : len(seg)-1]
	name = seg[:open]
	if inner == "" {
		return name, nil, true, ""
	}
	if inner == "-1" {
		n := -1
		return name, &n, true, ""
	}
	if !allDigits(inner) || len(inner) > 10 {
		return "", nil, false, fmt.Sprintf("bad array index %q", inner)
	}
	n, e := strconv.ParseInt(inner, 10, 32)
	if e != nil {
		return "", nil, false, fmt.Sprintf("array index %q out of range", inner)
	}
	// Normalise "007" so that String round-trips.
	v := int(n)
	return name, &v, true, ""
}

// checkIdentifier returns a reason when s is not a valid identifier.
func checkIdentifier(s, what string) string {
	if s == "" {
		return "empty " + what
	}
	if n := utf8.RuneCountInString(s); n > MaxIdentifier {
		return fmt.Sprintf("%s %q is %d characters, limit %d", what, s, n, MaxIdentifier)
	}
	if allDigits(s) {
		return fmt.Sprintf("all-digit %s %q", what, s)
	}
	for _, c := range s {
		if !identRune(c) {
			return fmt.Sprintf("character %q not allowed in %s", c, what)
		}
	}
	return ""
}

// identRune reports whether c may appear in an identifier: letters, digits
// and '_', '$' (template names) and '#'. Everything else, including every
// operator character and white space, is refused.
func identRune(c rune) bool {
	switch {
	case c == '_' || c == '$' || c == '#':
		return true
	case c < utf8.RuneSelf:
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
	default:
		return unicode.IsLetter(c) || unicode.IsDigit(c)
	}
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
