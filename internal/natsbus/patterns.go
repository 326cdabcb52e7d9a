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
	if len(patterns) == 0 {
		return []string{s.TagAll()}
	}
	var out []string
	for _, p := range patterns {
		if sub, ok := patternSubject(s, p); ok {
			out = append(out, sub)
		}
	}
	return out
}

func patternSubject(s subject.Subjects, p string) (string, bool) {
	if p == "*" {
		return s.TagAll(), true
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
	return s.Prefix + "tag." + strings.Join(parts, "."), true
}
