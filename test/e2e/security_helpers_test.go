package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// These helpers serve security_test.go and ops_test.go, on top of the
// harness (which dials with a key of the test's choice and fetches HTTP
// paths).

// keyspec describes a key to create through the Admin service.
type keyspec struct {
	name       string
	scopes     []string
	allowRead  []string
	allowWrite []string
}

// newKey is a key created by a test: its id and the full key.
type newKey struct {
	id  string
	raw string
}

// createKey creates a key through the Admin service (with the gateway's
// admin key) and returns it with its id.
func createKey(t *testing.T, g *harness.Gateway, spec keyspec) newKey {
	t.Helper()
	raw := g.CreateKey(t, spec.name, spec.scopes, spec.allowRead, spec.allowWrite)
	if len(raw) < 22 || !strings.HasPrefix(raw, "mxgw_") || raw[21] != '_' {
		t.Fatalf("CreateApiKey %q returned a key of the wrong shape (%d characters)", spec.name, len(raw))
	}
	return newKey{id: raw[5:21], raw: raw}
}

// keySecret returns the secret part of a key (after mxgw_<id>_).
func keySecret(t *testing.T, raw string) string {
	t.Helper()
	rest, ok := strings.CutPrefix(raw, "mxgw_")
	if !ok || len(rest) < 18 || rest[16] != '_' {
		t.Fatalf("not a key: %d characters", len(raw))
	}
	return rest[17:]
}

// fakeKey returns a well-formed key: id (random when "") and a random
// secret.
func fakeKey(id string) string {
	if id == "" {
		const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
		b := make([]byte, 16)
		rand.Read(b)
		for i := range b {
			b[i] = alphabet[int(b[i])%len(alphabet)]
		}
		id = string(b)
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	return "mxgw_" + id + "_" + base64.RawURLEncoding.EncodeToString(secret)
}

// metricSamples is a scrape of /metrics: series (name{labels}) to value.
type metricSamples map[string]float64

// scrape reads /metrics in the Prometheus text format.
func scrape(t *testing.T, g *harness.Gateway) metricSamples {
	t.Helper()
	body := g.Metrics(t)
	m := metricSamples{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("/metrics: bad line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics: bad value in %q", line)
		}
		m[line[:i]] = v
	}
	return m
}

// sum adds up every series of the metric name whose labels contain all of
// the given label="value" pairs; ok is false when no series matched.
func (m metricSamples) sum(name string, labels ...string) (float64, bool) {
	total, found := 0.0, false
	for series, v := range m {
		base, lab, _ := strings.Cut(series, "{")
		if base != name {
			continue
		}
		match := true
		for _, l := range labels {
			if !strings.Contains(lab, l) {
				match = false
				break
			}
		}
		if match {
			total += v
			found = true
		}
	}
	return total, found
}

// runBinary runs the built mxgateway binary with args (not through the harness:
// for commands that exit by themselves) and returns its exit code and
// output. The process is killed if it does not exit within step.
func runBinary(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	bin := harness.Binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), step)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("mxgateway %s did not exit within %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), step, out.String(), errb.String())
	}
	code = 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("mxgateway %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return code, out.String(), errb.String()
}
