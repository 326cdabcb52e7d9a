package auth

import (
	"fmt"
	"strings"
	"unicode"
)

// Pattern limits.
const (
	// MaxPatterns caps the patterns of one list.
	MaxPatterns = 64
	// MaxPatternLen caps one pattern's length in bytes.
	MaxPatternLen = 256
)

// pattern is a compiled reference pattern: lower-cased runes.
type pattern []rune

// ValidatePattern checks one reference pattern. Patterns are globs over the
// whole reference: "*" matches any run of characters (dots included), "?"
// matches one character, "\" makes the next character literal. There are no
// character classes, so "[" and "]" (array references such as
// "Line1.Recipe[]") are ordinary characters. Matching ignores case.
func ValidatePattern(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%w: empty pattern", ErrInvalidSpec)
	case len(p) > MaxPatternLen:
		return fmt.Errorf("%w: pattern longer than %d bytes", ErrInvalidSpec, MaxPatternLen)
	case strings.ContainsFunc(p, unicode.IsControl):
		return fmt.Errorf("%w: pattern %q has control characters", ErrInvalidSpec, p)
	}
	escaped := false
	for _, r := range p {
		escaped = !escaped && r == '\\'
	}
	if escaped {
		return fmt.Errorf("%w: pattern %q ends with a lone backslash", ErrInvalidSpec, p)
	}
	return nil
}

func compilePattern(p string) pattern { return pattern([]rune(strings.ToLower(p))) }

// match reports whether the lower-cased reference s matches p. It runs in
// O(len(p)·len(s)) at worst: one backtrack point, the last star.
func (p pattern) match(s []rune) bool {
	pi, si := 0, 0
	star, starS := -1, 0
	for si < len(s) {
		if pi < len(p) {
			switch c := p[pi]; c {
			case '*':
				star, starS = pi, si
				pi++
				continue
			case '?':
				pi++
				si++
				continue
			case '\\':
				if pi+1 < len(p) && p[pi+1] == s[si] {
					pi += 2
					si++
					continue
				}
			default:
				if c == s[si] {
					pi++
					si++
					continue
				}
			}
		}
		if star < 0 {
			return false
		}
		starS++
		si, pi = starS, star+1
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// patternSet is a compiled pattern list; an empty set allows everything.
type patternSet []pattern

func compileSet(ps []string) patternSet {
	out := make(patternSet, 0, len(ps))
	for _, p := range ps {
		out = append(out, compilePattern(p))
	}
	return out
}

// allows reports whether ref matches the set (always true for an empty set).
func (ps patternSet) allows(ref string) bool {
	if len(ps) == 0 {
		return true
	}
	s := []rune(strings.ToLower(ref))
	for _, p := range ps {
		if p.match(s) {
			return true
		}
	}
	return false
}

// MatchPattern reports whether ref matches the pattern p (see
// ValidatePattern for the syntax).
func MatchPattern(p, ref string) bool {
	return compilePattern(p).match([]rune(strings.ToLower(ref)))
}
