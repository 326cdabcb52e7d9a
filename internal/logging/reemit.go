package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"
)

// MaxWorkerLine is the longest worker output line LineWriter keeps; longer
// lines are cut and re-emitted in pieces.
const MaxWorkerLine = 64 << 10

// maxGroupDepth bounds the nesting ReemitWorkerLine follows.
const maxGroupDepth = 8

// ReemitWorkerLine re-emits one line a worker wrote to stderr through
// logger, which should already carry the session and worker_pid
// (logger.With(KeySession, id, KeyWorkerPID, pid)).
//
// A JSON slog line keeps its time, level, message and attributes (nested
// objects become groups, attribute order is kept, integers stay exact). The
// line's own top-level session and worker_pid are dropped, since logger
// carries them, and its component is renamed worker_component, since logger
// has its own. Anything else, such as
// a Go panic trace, is logged at Warn as "worker output" with the text in
// the "line" attribute. Redaction applies in both cases, whatever handler
// logger has.
func ReemitWorkerLine(logger *slog.Logger, line []byte) {
	line = bytes.TrimSpace(line)
	if logger == nil || len(line) == 0 {
		return
	}
	ctx := context.Background()
	h := logger.Handler()
	r, ok := parseWorkerLine(line)
	if !ok {
		if !h.Enabled(ctx, slog.LevelWarn) {
			return
		}
		r = slog.NewRecord(time.Now(), slog.LevelWarn, "worker output", 0)
		r.AddAttrs(slog.String(KeyLine, RedactString(string(line))))
		_ = h.Handle(ctx, r)
		return
	}
	if !h.Enabled(ctx, r.Level) {
		return
	}
	_ = NewRedactHandler(h).Handle(ctx, r)
}

// parseWorkerLine decodes a JSON slog line into a record.
func parseWorkerLine(line []byte) (slog.Record, bool) {
	if line[0] != '{' {
		return slog.Record{}, false
	}
	attrs, err := decodeObject(line, 0)
	if err != nil {
		return slog.Record{}, false
	}
	t := time.Now()
	level := slog.LevelInfo
	msg := ""
	rest := attrs[:0]
	for _, a := range attrs {
		switch a.Key {
		case slog.TimeKey:
			if a.Value.Kind() == slog.KindString {
				if pt, err := time.Parse(time.RFC3339Nano, a.Value.String()); err == nil {
					t = pt
					continue
				}
			}
			rest = append(rest, a)
		case slog.LevelKey:
			var l slog.Level
			if a.Value.Kind() == slog.KindString && l.UnmarshalText([]byte(a.Value.String())) == nil {
				level = l
				continue
			}
			rest = append(rest, a)
		case slog.MessageKey:
			if a.Value.Kind() == slog.KindString {
				msg = a.Value.String()
				continue
			}
			rest = append(rest, a)
		case KeySession, KeyWorkerPID:
			// logger already carries both; a second copy would write the
			// JSON key twice.
		case KeyComponent:
			// logger names its own component; keep the worker's under
			// another key so no record carries the key twice.
			a.Key = "worker_" + KeyComponent
			rest = append(rest, a)
		default:
			rest = append(rest, a)
		}
	}
	r := slog.NewRecord(t, level, msg, 0)
	r.AddAttrs(rest...)
	return r, true
}

// decodeObject decodes one JSON object into attributes in document order.
func decodeObject(data []byte, depth int) ([]slog.Attr, error) {
	if depth > maxGroupDepth {
		return nil, errors.New("logging: worker line nested too deeply")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("logging: not a JSON object")
	}
	var attrs []slog.Attr
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("logging: bad JSON key")
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		a, err := decodeValue(key, raw, depth)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, a)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("logging: trailing data after the JSON object")
	}
	return attrs, nil
}

func decodeValue(key string, raw json.RawMessage, depth int) (slog.Attr, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		group, err := decodeObject(trimmed, depth+1)
		if err != nil {
			return slog.Attr{}, err
		}
		return slog.Attr{Key: key, Value: slog.GroupValue(group...)}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return slog.Attr{}, err
	}
	switch x := v.(type) {
	case string:
		return slog.String(key, x), nil
	case bool:
		return slog.Bool(key, x), nil
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return slog.Int64(key, n), nil
		}
		if f, err := x.Float64(); err == nil {
			return slog.Float64(key, f), nil
		}
		return slog.String(key, x.String()), nil
	default: // nil or an array
		return slog.Any(key, x), nil
	}
}

// LineWriter is an io.Writer that splits what a worker writes to stderr
// into lines and re-emits each with ReemitWorkerLine. Set it as the
// worker's exec.Cmd.Stderr and call Close after the process has been
// waited for, to emit a last unterminated line.
type LineWriter struct {
	logger *slog.Logger
	mu     sync.Mutex
	buf    []byte
}

// NewLineWriter returns a LineWriter re-emitting through logger.
func NewLineWriter(logger *slog.Logger) *LineWriter {
	return &LineWriter{logger: logger}
}

// Write re-emits every complete line in p and keeps the rest for the next
// call. It never fails.
func (w *LineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			for len(w.buf) >= MaxWorkerLine {
				ReemitWorkerLine(w.logger, w.buf[:MaxWorkerLine])
				w.buf = append(w.buf[:0], w.buf[MaxWorkerLine:]...)
			}
			break
		}
		w.buf = append(w.buf, p[:i]...)
		p = p[i+1:]
		for len(w.buf) > MaxWorkerLine {
			ReemitWorkerLine(w.logger, w.buf[:MaxWorkerLine])
			w.buf = append(w.buf[:0], w.buf[MaxWorkerLine:]...)
		}
		ReemitWorkerLine(w.logger, w.buf)
		w.buf = w.buf[:0]
	}
	return n, nil
}

// Close emits a last line that had no newline. It is safe to call twice.
func (w *LineWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		ReemitWorkerLine(w.logger, w.buf)
		w.buf = nil
	}
	return nil
}
