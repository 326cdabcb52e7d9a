package supervisor

import (
	"bytes"
	"log/slog"
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
// per line, with logging.ReemitWorkerLine: JSON slog lines keep their level,
// message and attributes; anything else (a Go panic trace) is logged at Warn.
// It also remembers the last lines for launch errors.
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

	logging.ReemitWorkerLine(log, b)
}

// lastLines returns the most recent stderr lines, oldest first.
func (s *stderrLog) lastLines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.last...)
}
