package alarms

import (
	"fmt"
	"slices"
	"strings"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// Filter bounds.
const (
	MaxFilterEntries = 64  // prefixes of one kind, states
	MaxFilterText    = 256 // characters of one prefix or of the text
)

// filter is a validated AlarmFilter.
type filter struct {
	areas, refs    []string // lower-case
	minPri, maxPri uint32
	states         []mxgatewayv1.AlarmState
	text           string // lower-case
	// allow, when set, is the caller's read constraint on references.
	allow func(ref string) bool
}

// ParseFilter validates f; the error wraps ErrInvalid.
func ParseFilter(f *mxgatewayv1.AlarmFilter) (*filter, error) {
	out := &filter{minPri: f.GetMinPriority(), maxPri: f.GetMaxPriority()}
	if len(f.GetAreaPrefixes()) > MaxFilterEntries || len(f.GetReferencePrefixes()) > MaxFilterEntries ||
		len(f.GetStates()) > MaxFilterEntries {
		return nil, fmt.Errorf("%w: a filter has at most %d entries of each kind", ErrInvalid, MaxFilterEntries)
	}
	if out.minPri > 999 || out.maxPri > 999 || (out.maxPri != 0 && out.minPri > out.maxPri) {
		return nil, fmt.Errorf("%w: priority range %d..%d is not within 1..999", ErrInvalid, out.minPri, out.maxPri)
	}
	for _, l := range [][]string{f.GetAreaPrefixes(), f.GetReferencePrefixes(), {f.GetText()}} {
		for _, s := range l {
			if len(s) > MaxFilterText {
				return nil, fmt.Errorf("%w: a filter string has at most %d bytes", ErrInvalid, MaxFilterText)
			}
		}
	}
	for _, s := range f.GetStates() {
		if s <= mxgatewayv1.AlarmState_ALARM_STATE_UNSPECIFIED || s > mxgatewayv1.AlarmState_ALARM_STATE_ACK_RTN {
			return nil, fmt.Errorf("%w: unknown alarm state %d", ErrInvalid, s)
		}
	}
	for _, p := range f.GetAreaPrefixes() {
		out.areas = append(out.areas, strings.ToLower(p))
	}
	for _, p := range f.GetReferencePrefixes() {
		out.refs = append(out.refs, strings.ToLower(p))
	}
	out.states = f.GetStates()
	out.text = strings.ToLower(f.GetText())
	return out, nil
}

func hasPrefix(s string, prefixes []string) bool {
	if len(prefixes) == 0 {
		return true
	}
	s = strings.ToLower(s)
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// match reports whether an alarm passes; a transition also passes when
// its previous state does (a client watching UNACK_ALM sees the
// acknowledgement that takes an alarm out of it).
func (f *filter) match(a *mxgatewayv1.Alarm, previous mxgatewayv1.AlarmState) bool {
	if f == nil {
		return true
	}
	if f.allow != nil && !f.allow(a.GetReference()) {
		return false
	}
	if !hasPrefix(a.GetArea(), f.areas) || !hasPrefix(a.GetReference(), f.refs) {
		return false
	}
	if f.minPri != 0 && a.GetPriority() < f.minPri || f.maxPri != 0 && a.GetPriority() > f.maxPri {
		return false
	}
	if len(f.states) > 0 && !slices.Contains(f.states, a.GetState()) && !slices.Contains(f.states, previous) {
		return false
	}
	if f.text != "" {
		hay := strings.ToLower(a.GetReference() + "\x00" + a.GetDescription() + "\x00" + a.GetAckComment())
		if !strings.Contains(hay, f.text) {
			return false
		}
	}
	return true
}
