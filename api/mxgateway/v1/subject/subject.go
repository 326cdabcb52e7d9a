package subject

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadReference is a reference or subject that has no escaped form (an
// empty part, such as "A..B") or is not a canonical escaped form.
var ErrBadReference = errors.New("subject: bad reference")

// Version is the version token of every subject.
const Version = "v1"

// Plain reports whether b stands for itself in a subject token.
func Plain(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_'
}

const hexDigits = "0123456789ABCDEF"

// EscapeToken escapes one part of a reference (the text between dots) into
// one NATS subject token: every byte outside [A-Za-z0-9_-] becomes =XX.
func EscapeToken(part string) string {
	n := 0
	for i := 0; i < len(part); i++ {
		if !Plain(part[i]) {
			n++
		}
	}
	if n == 0 {
		return part
	}
	var b strings.Builder
	b.Grow(len(part) + 2*n)
	for i := 0; i < len(part); i++ {
		c := part[i]
		if Plain(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xF])
	}
	return b.String()
}

// EscapeReference maps a Galaxy reference to subject tokens joined by dots:
// each dot-separated part escaped with EscapeToken. "Tank01.Level[1]"
// becomes "Tank01.Level=5B1=5D". The result is also a valid JetStream KV
// key. An empty reference or an empty part is ErrBadReference.
func EscapeReference(ref string) (string, error) {
	if ref == "" {
		return "", fmt.Errorf("%w: empty", ErrBadReference)
	}
	parts := strings.Split(ref, ".")
	for i, p := range parts {
		if p == "" {
			return "", fmt.Errorf("%w: %q has an empty part", ErrBadReference, ref)
		}
		parts[i] = EscapeToken(p)
	}
	return strings.Join(parts, "."), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// UnescapeReference reverses EscapeReference. It accepts only canonical
// input (what EscapeReference produces: upper-case hex, and no escape of a
// byte that stands for itself), so the mapping is one to one.
func UnescapeReference(tokens string) (string, error) {
	if tokens == "" {
		return "", fmt.Errorf("%w: empty", ErrBadReference)
	}
	var b strings.Builder
	b.Grow(len(tokens))
	partLen := 0
	for i := 0; i < len(tokens); i++ {
		c := tokens[i]
		switch {
		case c == '.':
			if partLen == 0 {
				return "", fmt.Errorf("%w: %q has an empty token", ErrBadReference, tokens)
			}
			b.WriteByte('.')
			partLen = 0
			continue
		case Plain(c):
			b.WriteByte(c)
		case c == '=' && i+2 < len(tokens):
			hi, ok1 := unhex(tokens[i+1])
			lo, ok2 := unhex(tokens[i+2])
			d := hi<<4 | lo
			if !ok1 || !ok2 || Plain(d) {
				return "", fmt.Errorf("%w: %q has a non-canonical escape at %d", ErrBadReference, tokens, i)
			}
			b.WriteByte(d)
			i += 2
		default:
			return "", fmt.Errorf("%w: %q has %q at %d", ErrBadReference, tokens, c, i)
		}
		partLen++
	}
	if partLen == 0 {
		return "", fmt.Errorf("%w: %q ends with an empty token", ErrBadReference, tokens)
	}
	return b.String(), nil
}

// Subjects names every subject and bucket of one Galaxy.
type Subjects struct {
	// Prefix is mxgw.v1.<galaxy>.
	Prefix string
	galaxy string
}

// NewSubjects returns the subjects of galaxy, which must be one plain token.
func NewSubjects(galaxy string) (Subjects, error) {
	if galaxy == "" || EscapeToken(galaxy) != galaxy {
		return Subjects{}, fmt.Errorf("subject: galaxy %q must be letters, digits, - and _", galaxy)
	}
	return Subjects{Prefix: "mxgw." + Version + "." + galaxy + ".", galaxy: galaxy}, nil
}

// Tag is the subject the values of ref are published on.
func (s Subjects) Tag(ref string) (string, error) {
	t, err := EscapeReference(ref)
	if err != nil {
		return "", err
	}
	return s.Prefix + "tag." + t, nil
}

// TagAll matches every value subject.
func (s Subjects) TagAll() string { return s.Prefix + "tag.>" }

// RefOfTag returns the reference a value subject carries.
func (s Subjects) RefOfTag(subject string) (string, error) {
	t, ok := strings.CutPrefix(subject, s.Prefix+"tag.")
	if !ok {
		return "", fmt.Errorf("%w: %q is not a value subject", ErrBadReference, subject)
	}
	return UnescapeReference(t)
}

// Alarm is the subject the transitions of the alarm ref (its MXAccess
// reference, "Tank1.Level.HiHi") are published on.
func (s Subjects) Alarm(ref string) (string, error) {
	t, err := EscapeReference(ref)
	if err != nil {
		return "", err
	}
	return s.Prefix + "alarm." + t, nil
}

// AlarmAll matches every alarm subject.
func (s Subjects) AlarmAll() string { return s.Prefix + "alarm.>" }

// RefOfAlarm returns the alarm reference an alarm subject carries.
func (s Subjects) RefOfAlarm(subject string) (string, error) {
	t, ok := strings.CutPrefix(subject, s.Prefix+"alarm.")
	if !ok {
		return "", fmt.Errorf("%w: %q is not an alarm subject", ErrBadReference, subject)
	}
	return UnescapeReference(t)
}

// Subscribe is the lease subject of the key keyID.
func (s Subjects) Subscribe(keyID string) string { return s.Prefix + "subscribe." + keyID }

// SubscribeAll matches every key's lease subject.
func (s Subjects) SubscribeAll() string { return s.Prefix + "subscribe.*" }

// Write is the write subject of ref for the key keyID.
func (s Subjects) Write(keyID, ref string) (string, error) {
	t, err := EscapeReference(ref)
	if err != nil {
		return "", err
	}
	return s.Prefix + "write." + keyID + "." + t, nil
}

// WriteAll matches every write subject.
func (s Subjects) WriteAll() string { return s.Prefix + "write.*.>" }

// ParseWrite splits a write subject into key id and reference.
func (s Subjects) ParseWrite(subject string) (keyID, ref string, err error) {
	rest, ok := strings.CutPrefix(subject, s.Prefix+"write.")
	if !ok {
		return "", "", fmt.Errorf("%w: %q is not a write subject", ErrBadReference, subject)
	}
	keyID, t, ok := strings.Cut(rest, ".")
	if !ok {
		return "", "", fmt.Errorf("%w: %q names no reference", ErrBadReference, subject)
	}
	ref, err = UnescapeReference(t)
	return keyID, ref, err
}

// Deploy is the subject of deploy events.
func (s Subjects) Deploy() string { return s.Prefix + "deploy" }

// Bucket is the last-value key-value bucket: mxgw_<galaxy>_lv.
func (s Subjects) Bucket() string { return "mxgw_" + s.galaxy + "_lv" }

// Inbox is the inbox prefix a key's NATS connection must use for replies
// (nats.go CustomInboxPrefix); the key may subscribe below it only.
func Inbox(keyID string) string { return "_INBOX." + keyID }

// Match reports whether the literal subject matches the NATS pattern
// pat (tokens, "*" for one token, ">" for one or more at the end).
func Match(pat, subject string) bool {
	for {
		pt, prest, pmore := strings.Cut(pat, ".")
		st, srest, smore := strings.Cut(subject, ".")
		switch {
		case pt == ">":
			return st != ""
		case pt != "*" && pt != st:
			return false
		}
		if !pmore || !smore {
			return pmore == smore
		}
		pat, subject = prest, srest
	}
}

// Covered reports whether any pattern in pats matches subject.
func Covered(pats []string, subject string) bool {
	for _, p := range pats {
		if Match(p, subject) {
			return true
		}
	}
	return false
}

// Defaults of the gateway's NATS side, for the gateway's configuration and
// for clients.
const (
	// DefaultGalaxy is the default <galaxy> token (nats_galaxy).
	DefaultGalaxy = "galaxy"
	// DefaultAddr is the embedded NATS server's default client address
	// (nats_listen): NATS's own port, on loopback.
	DefaultAddr = "127.0.0.1:4222"
)
