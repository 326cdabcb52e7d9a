package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	apiKey    = "mxgw_k7Q2a9_Zm9vYmFyYmF6cXV4LXNlY3JldF9wYXJ0LTEyMw"
	apiSecret = "Zm9vYmFyYmF6cXV4LXNlY3JldF9wYXJ0LTEyMw"
	password  = "Tr0ub4dor&3"
)

// decodeLines parses JSON log output into one map per record.
func decodeLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("bad log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestNewOptions(t *testing.T) {
	for _, tc := range []struct {
		level, format string
		ok            bool
	}{
		{"", "", true}, {"debug", "json", true}, {"WARN", "TEXT", true}, {"warning", "text", true}, {"error", "json", true},
		{"trace", "text", false}, {"info", "xml", false},
	} {
		_, err := New(io.Discard, tc.level, tc.format)
		if (err == nil) != tc.ok {
			t.Errorf("New(%q, %q) err = %v, want ok=%v", tc.level, tc.format, err, tc.ok)
		}
	}
	var b bytes.Buffer
	l, err := New(&b, "warn", "json")
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown")
	lines := decodeLines(t, b.Bytes())
	if len(lines) != 1 || lines[0]["msg"] != "shown" {
		t.Fatalf("level filter: %v", lines)
	}
	b.Reset()
	l, _ = New(&b, "info", "text")
	l.Info("hello", "k", "v")
	if !strings.Contains(b.String(), "msg=hello k=v") {
		t.Fatalf("text format: %q", b.String())
	}
}

type stringer struct{ s string }

func (s stringer) String() string { return s.s }

func TestRedaction(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			var b bytes.Buffer
			l, err := New(&b, "debug", format)
			if err != nil {
				t.Fatal(err)
			}
			l = l.With("api_key", apiKey, KeySession, "s-1")
			l.Info("client sent key "+apiKey,
				"password", password,
				"Authorization", "Bearer "+apiKey,
				"nonce", []byte{1, 2, 3},
				"session_token", "tok-123456",
				"pepper", "pepper-bytes",
				"header", "x-api-key: "+apiKey,
				KeyErr, fmt.Errorf("verify %s: %w", apiKey, errors.New("bad secret")),
				"stringer", stringer{"key=" + apiKey},
				"raw", []byte(apiKey),
				"secret_value", Secret("s3cr3t-value"),
				"typed", Secret(password),
				slog.Group("creds", "user", "operator", "passwd", password, slog.Group("inner", "client_secret", "deep-secret")),
				KeyKeyID, "k7Q2a9",
			)
			out := b.String()
			for _, s := range []string{apiSecret, password, "tok-123456", "pepper-bytes", "s3cr3t-value", "deep-secret"} {
				if strings.Contains(out, s) {
					t.Errorf("secret %q leaked:\n%s", s, out)
				}
			}
			for _, s := range []string{"mxgw_k7Q2a9_REDACTED", "operator", "k7Q2a9", "bad secret", "s-1"} {
				if !strings.Contains(out, s) {
					t.Errorf("expected %q in output:\n%s", s, out)
				}
			}
		})
	}
}

func TestRedactString(t *testing.T) {
	for in, want := range map[string]string{
		"no key here": "no key here",
		apiKey:        "mxgw_k7Q2a9_REDACTED",
		"a " + apiKey + ", b mxgw_x1_abc-_=.def!": "a mxgw_k7Q2a9_REDACTED, b mxgw_x1_REDACTED!",
		"mxgw_ alone":      "mxgw_ alone",
		"mxgw_id_REDACTED": "mxgw_id_REDACTED",
	} {
		if got := RedactString(in); got != want {
			t.Errorf("RedactString(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIsSecretKey(t *testing.T) {
	for k, want := range map[string]bool{
		"password": true, "MXAccessPassword": true, "api_key": true, "nonce": true, "authorization": true,
		"access_token": true, "pepper_file": true, "client_secret": true, "credentials": true,
		"key_id": false, "session": false, "worker_pid": false, "command": false, "user": false,
	} {
		if IsSecretKey(k) != want {
			t.Errorf("IsSecretKey(%q) = %v, want %v", k, !want, want)
		}
	}
}

func TestSecretFormatting(t *testing.T) {
	s := Secret(password)
	for _, got := range []string{
		fmt.Sprint(s), fmt.Sprintf("%v %s %q %#v %+v", s, s, s, s, s), s.String(),
		fmt.Sprintf("%v", struct{ P Secret }{s}),
	} {
		if strings.Contains(got, password) {
			t.Errorf("secret leaked through fmt: %q", got)
		}
	}
	js, err := json.Marshal(map[string]Secret{"p": s})
	if err != nil || strings.Contains(string(js), password) {
		t.Errorf("secret leaked through json: %s %v", js, err)
	}
	if s.Reveal() != password {
		t.Error("Reveal lost the value")
	}
}

func TestReemitWorkerLine(t *testing.T) {
	var b bytes.Buffer
	l, _ := New(&b, "info", "json")
	l = l.With(KeySession, "s-42", KeyWorkerPID, 1234)

	wt := time.Date(2026, 3, 4, 5, 6, 7, 891000000, time.UTC)
	line := fmt.Sprintf(`{"time":%q,"level":"WARN","msg":"advise failed for %s","item":"Tank1.Level","handle":17,"ratio":0.5,"ok":false,"nil":null,"list":[1,"a"],"call":{"method":"Advise","password":%q,"hr":-2147467259}}`,
		wt.Format(time.RFC3339Nano), apiKey, password)
	ReemitWorkerLine(l, []byte(line+"\n"))
	ReemitWorkerLine(l, []byte(`{"time":"2026-03-04T05:06:07Z","level":"DEBUG","msg":"per item traffic"}`)) // below info
	ReemitWorkerLine(l, []byte("panic: runtime error: index out of range "+apiKey))
	ReemitWorkerLine(l, []byte(`{"msg":"no level or time","n":1}`))
	ReemitWorkerLine(l, []byte(`{"level":"ERROR+2","msg":"custom level"}`))
	ReemitWorkerLine(l, []byte("   "))
	ReemitWorkerLine(nil, []byte(`{"msg":"nil logger"}`))

	out := b.String()
	if strings.Contains(out, apiSecret) || strings.Contains(out, password) {
		t.Fatalf("secret leaked:\n%s", out)
	}
	recs := decodeLines(t, b.Bytes())
	if len(recs) != 4 {
		t.Fatalf("got %d records, want 4:\n%s", len(recs), out)
	}

	r := recs[0]
	if r["level"] != "WARN" || r["msg"] != "advise failed for mxgw_k7Q2a9_REDACTED" || r["session"] != "s-42" || r["worker_pid"] != float64(1234) {
		t.Errorf("record 0 header: %v", r)
	}
	if got, _ := time.Parse(time.RFC3339Nano, r["time"].(string)); !got.Equal(wt) {
		t.Errorf("time %v, want %v", r["time"], wt)
	}
	if r["item"] != "Tank1.Level" || r["handle"] != float64(17) || r["ratio"] != 0.5 || r["ok"] != false || r["nil"] != nil {
		t.Errorf("record 0 attrs: %v", r)
	}
	call, _ := r["call"].(map[string]any)
	if call["method"] != "Advise" || call["password"] != Redacted || call["hr"] != float64(-2147467259) {
		t.Errorf("record 0 group: %v", r["call"])
	}

	if recs[1]["level"] != "WARN" || recs[1]["msg"] != "worker output" ||
		recs[1][KeyLine] != "panic: runtime error: index out of range mxgw_k7Q2a9_REDACTED" || recs[1]["session"] != "s-42" {
		t.Errorf("non-JSON line: %v", recs[1])
	}
	if recs[2]["level"] != "INFO" || recs[2]["msg"] != "no level or time" {
		t.Errorf("defaults: %v", recs[2])
	}
	if recs[3]["level"] != "ERROR+2" {
		t.Errorf("custom level: %v", recs[3])
	}
}

// TestReemitThroughPlainLogger proves redaction does not depend on the
// logger having come from New.
func TestReemitThroughPlainLogger(t *testing.T) {
	var b bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&b, nil))
	ReemitWorkerLine(l, []byte(`{"level":"INFO","msg":"key `+apiKey+`","token":"abc"}`))
	ReemitWorkerLine(l, []byte(`not json `+apiKey))
	if strings.Contains(b.String(), apiSecret) || strings.Contains(b.String(), `"abc"`) {
		t.Fatalf("secret leaked:\n%s", b.String())
	}
	if len(decodeLines(t, b.Bytes())) != 2 {
		t.Fatalf("want 2 records:\n%s", b.String())
	}
}

func TestLineWriter(t *testing.T) {
	var b bytes.Buffer
	l, _ := New(&b, "info", "json")
	w := NewLineWriter(l)
	chunks := []string{`{"level":"INFO","ms`, `g":"one"}` + "\n" + `{"level":"INFO","msg":"two"}` + "\n\n" + `{"level":"INFO",`, `"msg":"three"}`}
	for _, c := range chunks {
		if n, err := w.Write([]byte(c)); err != nil || n != len(c) {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if got := len(decodeLines(t, b.Bytes())); got != 2 {
		t.Fatalf("before Close: %d records, want 2", got)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recs := decodeLines(t, b.Bytes())
	if len(recs) != 3 || recs[0]["msg"] != "one" || recs[1]["msg"] != "two" || recs[2]["msg"] != "three" {
		t.Fatalf("records: %v", recs)
	}

	// An endless line is cut into MaxWorkerLine pieces, not buffered forever.
	b.Reset()
	w = NewLineWriter(l)
	long := bytes.Repeat([]byte("x"), 2*MaxWorkerLine+10)
	w.Write(long)
	if got := len(decodeLines(t, b.Bytes())); got != 2 {
		t.Fatalf("long line: %d records before Close, want 2", got)
	}
	w.Close()
	if got := len(decodeLines(t, b.Bytes())); got != 3 {
		t.Fatalf("long line: %d records after Close, want 3", got)
	}
}

func TestOpenFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "logs", "mxgateway.log")
	for i := range 2 {
		f, err := OpenFile(p)
		if err != nil {
			t.Fatal(err)
		}
		l, _ := New(f, "info", "json")
		l.Info("line", "i", i)
		f.Close()
	}
	f, err := OpenFile(p)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	data, err := readAll(p)
	if err != nil {
		t.Fatal(err)
	}
	if recs := decodeLines(t, data); len(recs) != 2 {
		t.Fatalf("appended records: %d, want 2", len(recs))
	}
}

func FuzzReemitWorkerLine(f *testing.F) {
	f.Add([]byte(`{"time":"2026-01-01T00:00:00Z","level":"INFO","msg":"m","a":{"b":{"c":1}}}`))
	f.Add([]byte(`{"level":3,"msg":[1],"time":false}`))
	f.Add([]byte(`{"a":1}{"b":2}`))
	f.Add([]byte(`panic: x`))
	f.Add([]byte(`{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":1}}}}}}}}}}`))
	l := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.Fuzz(func(t *testing.T, line []byte) {
		ReemitWorkerLine(l, line)
	})
}

func readAll(path string) ([]byte, error) { return os.ReadFile(path) }
