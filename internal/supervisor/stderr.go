package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mxgateway/mxgateway/internal/logging"
)

const (
	// maxStderrLine caps one stderr line; longer lines are split.
	maxStderrLine = 64 << 10
	// keptStderrLines is how many recent lines a launch error quotes.
	keptStderrLines = 10
	// maxQuotedLine caps each quoted line in an error.
	maxQuotedLine = 400
)

// stderrLog re-emits a worker's stderr through the gateway logger, one record
// per line. The worker writes JSON slog lines; their level, message and
// attributes are kept. Anything else (a Go panic trace) is logged verbatim at
// Warn. It also remembers the last lines for launch errors.
//
// os/exec's copying goroutine is the only writer; the mutex guards the ring
// that launch errors read.
type stderrLog struct {
	buf []byte

	ready chan struct{} // closed by setLogger
	once  sync.Once

	mu   sync.Mutex
	log  *slog.Logger // carries the session id, then the worker pid
	last []string
}

// loggerWait bounds how long a line waits for setLogger; the pid is known
// microseconds after the process starts, but a line must never block for
// good.
const loggerWait = time.Second

// setLogger sets the logger that carries the worker's pid once it is known;
// lines written before then wait for it (at most loggerWait).
func (s *stderrLog) setLogger(l *slog.Logger) {
	s.once.Do(func() {
		s.mu.Lock()
		s.log = l
		s.mu.Unlock()
		close(s.ready)
	})
}

func newStderrLog(log *slog.Logger) *stderrLog {
	return &stderrLog{log: log, ready: make(chan struct{})}
}

// Write implements io.Writer.
func (s *stderrLog) Write(p []byte) (int, error) {
	s.buf = append(s.buf, p...)
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			if len(s.buf) >= maxStderrLine {
				s.line(s.buf)
				s.buf = s.buf[:0]
			}
			break
		}
		s.line(s.buf[:i])
		s.buf = s.buf[i+1:]
	}
	// Compact so the buffer does not creep forward forever.
	if len(s.buf) == 0 {
		s.buf = s.buf[:0:cap(s.buf)]
		if cap(s.buf) > maxStderrLine {
			s.buf = nil
		}
	}
	return len(p), nil
}

// flush emits an unterminated last line; call it after the process ended.
func (s *stderrLog) flush() {
	if len(s.buf) > 0 {
		s.line(s.buf)
		s.buf = nil
	}
}

func (s *stderrLog) line(b []byte) {
	text := strings.TrimRight(string(b), "\r")
	if strings.TrimSpace(text) == "" {
		return
	}
	select {
	case <-s.ready:
	default:
		t := time.NewTimer(loggerWait)
		select {
		case <-s.ready:
		case <-t.C:
		}
		t.Stop()
	}
	s.mu.Lock()
	quoted := text
	if len(quoted) > maxQuotedLine {
		quoted = quoted[:maxQuotedLine] + "…"
	}
	s.last = append(s.last, quoted)
	if len(s.last) > keptStderrLines {
		s.last = s.last[len(s.last)-keptStderrLines:]
	}
	log := s.log
	s.mu.Unlock()

	level, msg, attrs, ok := parseJSONLine(b)
	if !ok {
		log.Warn(text, "stream", "stderr")
		return
	}
	log.LogAttrs(context.Background(), level, msg, attrs...)
}

// lastLines returns the most recent stderr lines, oldest first.
func (s *stderrLog) lastLines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.last...)
}

// parseJSONLine reads one slog JSON record. Keys the gateway logger adds
// itself (time, session, worker pid) are dropped; the rest become attributes
// in sorted order.
func parseJSONLine(b []byte) (slog.Level, string, []slog.Attr, bool) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return 0, "", nil, false
	}
	var rec map[string]any
	// Numbers stay json.Number so integers such as durations in nanoseconds
	// are re-emitted exactly, not as floats in exponent form.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&rec); err != nil {
		return 0, "", nil, false
	}
	level := slog.LevelInfo
	if v, ok := rec[slog.LevelKey].(string); ok {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			level = slog.LevelInfo
		}
	}
	msg, _ := rec[slog.MessageKey].(string)
	keys := make([]string, 0, len(rec))
	for k := range rec {
		switch k {
		case slog.TimeKey, slog.LevelKey, slog.MessageKey, logging.KeySession, logging.KeyWorkerPID:
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := make([]slog.Attr, 0, len(keys))
	for _, k := range keys {
		name := k
		if k == logging.KeyComponent {
			// The gateway logger already names its own component; keep the
			// worker's under another key so no record carries it twice.
			name = "worker_" + k
		}
		attrs = append(attrs, slog.Any(name, rec[k]))
	}
	return level, msg, attrs, true
}
