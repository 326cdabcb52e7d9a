package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// Formats New accepts.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// New returns a logger writing to w at level (debug, info, warn or error;
// "" means info) in format (text or json; "" means text), with redaction
// applied to every record.
func New(w io.Writer, level, format string) (*slog.Logger, error) {
	h, err := NewHandler(w, level, format)
	if err != nil {
		return nil, err
	}
	return slog.New(h), nil
}

// NewHandler returns the redacting handler New uses, for callers that
// combine it with others (for example with slog.NewMultiHandler and an
// event log handler).
func NewHandler(w io.Writer, level, format string) (slog.Handler, error) {
	lvl, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	switch strings.ToLower(format) {
	case "", FormatText:
		h = slog.NewTextHandler(w, opts)
	case FormatJSON:
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("logging: format %q must be text or json", format)
	}
	return NewRedactHandler(h), nil
}

// ParseLevel parses debug, info, warn (or warning) and error, in any case.
// "" is info.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	default:
		return 0, fmt.Errorf("logging: level %q must be debug, info, warn or error", s)
	}
}

// OpenFile opens path for appending log lines, creating it (mode 0640) and
// its directory (0750) when missing. The caller closes it after the last
// record.
func OpenFile(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("logging: create log directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("logging: open log file: %w", err)
	}
	return f, nil
}
