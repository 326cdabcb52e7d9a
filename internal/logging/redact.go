package logging

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
)

// Redacted replaces every secret in the log.
const Redacted = "REDACTED"

// Secret is a string that never reaches a log or a formatted string: it
// prints REDACTED through slog, fmt (%v, %s, %q, %#v) and encoding/json.
// Call Reveal for the value itself.
type Secret string

// String returns REDACTED.
func (Secret) String() string { return Redacted }

// GoString returns a Go expression that does not contain the secret.
func (Secret) GoString() string { return `logging.Secret("` + Redacted + `")` }

// LogValue returns REDACTED as the value slog records.
func (Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON encodes the secret as "REDACTED".
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// Reveal returns the secret itself.
func (s Secret) Reveal() string { return string(s) }

// secretKeyWords are the fragments that make an attribute key secret.
var secretKeyWords = []string{"password", "passwd", "secret", "nonce", "api_key", "apikey", "authorization", "token", "pepper", "credential"}

// IsSecretKey reports whether an attribute key names a secret, so its value
// is never logged.
func IsSecretKey(key string) bool {
	k := strings.ToLower(key)
	for _, w := range secretKeyWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// apiKeyPattern matches an API key mxgw_<id>_<secret>: the id is
// alphanumeric and the secret runs to the next character that cannot be
// part of an encoded secret.
var apiKeyPattern = regexp.MustCompile(`mxgw_([A-Za-z0-9]+)_[A-Za-z0-9_\-+/=.~]+`)

// RedactString replaces the secret of every API key in s, keeping its
// public id: mxgw_<id>_<secret> becomes mxgw_<id>_REDACTED.
func RedactString(s string) string {
	if !strings.Contains(s, "mxgw_") {
		return s
	}
	return apiKeyPattern.ReplaceAllString(s, "mxgw_${1}_"+Redacted)
}

// redactAttr returns a with secrets removed: the whole value when the key
// is secret, API keys inside strings, errors and Stringers, recursively
// through groups. LogValuers are resolved first.
func redactAttr(a slog.Attr) slog.Attr {
	if IsSecretKey(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, RedactString(v.String()))
	case slog.KindGroup:
		in := v.Group()
		out := make([]slog.Attr, len(in))
		for i, ga := range in {
			out[i] = redactAttr(ga)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}
	case slog.KindAny:
		var s string
		switch x := v.Any().(type) {
		case error:
			s = x.Error()
		case fmt.Stringer:
			s = x.String()
		case []byte:
			s = string(x)
		default:
			return slog.Attr{Key: a.Key, Value: v}
		}
		if r := RedactString(s); r != s {
			return slog.String(a.Key, r)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// redactHandler wraps a handler and removes secrets from every record and
// every attribute added with WithAttrs.
type redactHandler struct {
	inner slog.Handler
}

// NewRedactHandler wraps h so that no secret reaches it: values of
// attributes with secret-looking keys become REDACTED, and API keys in the
// message or in string, error and Stringer values lose their secret.
func NewRedactHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(*redactHandler); ok {
		return h
	}
	return &redactHandler{inner: h}
}

func (h *redactHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *redactHandler) Handle(ctx context.Context, r slog.Record) error {
	nr := slog.NewRecord(r.Time, r.Level, RedactString(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		nr.AddAttrs(redactAttr(a))
		return true
	})
	return h.inner.Handle(ctx, nr)
}

func (h *redactHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		out[i] = redactAttr(a)
	}
	return &redactHandler{inner: h.inner.WithAttrs(out)}
}

func (h *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{inner: h.inner.WithGroup(name)}
}
