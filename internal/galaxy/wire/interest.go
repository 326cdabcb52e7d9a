package wire

import (
	"fmt"
	"strings"

	"github.com/mxgateway/mxgateway/internal/backend/sim"
)

// Bounds of a filtered session's interest set (Hello.interest, Interest),
// kept by the client and enforced by the runtime: references, and their
// bytes in all. They fit one Hello within MaxFrameBytes.
const (
	MaxInterest      = 1 << 18
	MaxInterestBytes = 8 << 20
)

// InterestLimitError is an interest set that would exceed its bounds.
type InterestLimitError struct {
	// Refs and Bytes are what the set would hold.
	Refs, Bytes int
}

func (e *InterestLimitError) Error() string {
	return fmt.Sprintf("galaxy: interest set of %d references (%d bytes) over its bounds (%d references, %d bytes)",
		e.Refs, e.Bytes, MaxInterest, MaxInterestBytes)
}

// InterestSet is a filtered session's interest set: attribute references,
// compared case-insensitively, within MaxInterest and MaxInterestBytes. The
// zero value is empty and ready; it is not safe for concurrent use.
type InterestSet struct {
	refs  map[string]struct{}
	bytes int
}

// InterestKey is the set's key of an attribute reference.
func InterestKey(ref string) string { return strings.ToLower(ref) }

// Update removes remove, then adds add; a change that would take the set
// past its bounds is refused whole with an *InterestLimitError.
func (s *InterestSet) Update(add, remove []string) error {
	n, b := len(s.refs), s.bytes
	gone := map[string]bool{}
	for _, r := range remove {
		if k := InterestKey(r); s.Has(k) && !gone[k] {
			gone[k] = true
			n, b = n-1, b-len(k)
		}
	}
	added := map[string]bool{}
	for _, r := range add {
		k := InterestKey(r)
		if (s.Has(k) && !gone[k]) || added[k] {
			continue
		}
		added[k] = true
		n, b = n+1, b+len(k)
	}
	if n > MaxInterest || b > MaxInterestBytes {
		return &InterestLimitError{Refs: n, Bytes: b}
	}
	for k := range gone {
		s.Remove(k)
	}
	if s.refs == nil && len(added) > 0 {
		s.refs = make(map[string]struct{}, len(added))
	}
	for k := range added {
		s.refs[k] = struct{}{}
		s.bytes += len(k)
	}
	return nil
}

// Remove removes ref; it reports whether the set held it.
func (s *InterestSet) Remove(ref string) bool {
	k := InterestKey(ref)
	if _, ok := s.refs[k]; !ok {
		return false
	}
	delete(s.refs, k)
	s.bytes -= len(k)
	return true
}

// Has reports whether the set holds ref.
func (s *InterestSet) Has(ref string) bool {
	_, ok := s.refs[InterestKey(ref)]
	return ok
}

// Len is the number of references in the set.
func (s *InterestSet) Len() int { return len(s.refs) }

// Refs returns the set's references (lower-case, in no order).
func (s *InterestSet) Refs() []string {
	out := make([]string, 0, len(s.refs))
	for k := range s.refs {
		out = append(out, k)
	}
	return out
}

// Ordinals resolves the set against m: by ordinal, whether the attribute
// is in the set. References that name no attribute of m stay in the set
// (a later deploy may add them).
func (s *InterestSet) Ordinals(m *sim.Model) []bool {
	out := make([]bool, m.AttributeCount())
	for k := range s.refs {
		if ord, ok := m.SharedAttribute(k); ok {
			out[ord] = true
		}
	}
	return out
}
