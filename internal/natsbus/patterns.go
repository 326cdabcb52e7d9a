package natsbus

import (
	"strings"

	"github.com/mxgateway/mxgateway/api/mxgateway/v1/subject"
)

// readSubjects maps a key's allow_read patterns to value-subject patterns.
// No pattern allows every subject. A pattern maps when each of its
// dot-separated parts is either literal or exactly "*": a last "*" becomes
// ">" (a glob star also matches dots), an inner one "*" (narrower than the
// glob, never wider). A pattern with "?", "\" or a star inside a part has no
// subject form: it grants nothing on NATS (the gRPC API still honours it).
func readSubjects(s subject.Subjects, patterns []string) []string {
	return patternSubjects(s.TagAll(), s.Prefix+"tag.", patterns)
}

// alarmSubjects maps a key's allow_read patterns to alarm-subject patterns
// the same way (the gRPC alarms service checks an alarm's reference
// against allow_read).
func alarmSubjects(s subject.Subjects, patterns []string) []string {
	return patternSubjects(s.AlarmAll(), s.Prefix+"alarm.", patterns)
}

// patternSubjects maps patterns below base; all matches every subject
// there (no patterns, or "*").
func patternSubjects(all, base string, patterns []string) []string {
	if len(patterns) == 0 {
		return []string{all}
	}
	var out []string
	for _, p := range patterns {
		if sub, ok := patternSubject(all, base, p); ok {
			out = append(out, sub)
		}
	}
	return out
}

func patternSubject(all, base, p string) (string, bool) {
	if p == "*" {
		return all, true
	}
	if strings.ContainsAny(p, `?\`) {
		return "", false
	}
	parts := strings.Split(p, ".")
	for i, part := range parts {
		switch {
		case part == "*" && i == len(parts)-1:
			parts[i] = ">"
		case part == "*":
		case part == "" || strings.Contains(part, "*"):
			return "", false
		default:
			parts[i] = subject.EscapeToken(part)
		}
	}
	return base + strings.Join(parts, "."), true
}
