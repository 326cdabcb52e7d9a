package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// These helpers serve security_test.go and ops_test.go. They rely only on
// the harness's addresses and directories, so each test decides itself
// which key (if any) a connection carries.

// bearer attaches an API key to every call as "authorization: Bearer ...".
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// firstRunKey waits for the first-run admin key the gateway writes to
// <data-dir>/admin.key and returns it.
func firstRunKey(t *testing.T, g *harness.Gateway) string {
	t.Helper()
	var key string
	eventually(t, "admin.key written", func() error {
		b, err := os.ReadFile(filepath.Join(g.DataDir, "admin.key"))
		if err != nil {
			return err
		}
		key = strings.TrimSpace(string(b))
		if key == "" {
			return fmt.Errorf("admin.key is empty")
		}
		return nil
	})
	return key
}

// dialKey opens a plaintext connection that sends key on every call ("":
// no key). It is closed at cleanup.
func dialKey(t *testing.T, addr, key string) *grpc.ClientConn {
	t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if key != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(key)))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// dialCreds opens a connection with the given transport credentials and
// key, closed at cleanup.
func dialCreds(t *testing.T, addr string, creds credentials.TransportCredentials, key string) *grpc.ClientConn {
	t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if key != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(key)))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

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

// createKey creates a key through the Admin service on an admin connection.
func createKey(t *testing.T, admin *grpc.ClientConn, spec keyspec) newKey {
	t.Helper()
	resp, err := mxgatewayv1.NewAdminClient(admin).CreateApiKey(harness.Context(t, step), &mxgatewayv1.CreateApiKeyRequest{
		Name: spec.name, Scopes: spec.scopes, AllowRead: spec.allowRead, AllowWrite: spec.allowWrite,
	})
	if err != nil {
		t.Fatalf("CreateApiKey %q: %v", spec.name, err)
	}
	k := newKey{id: resp.GetKey().GetId(), raw: resp.GetRawKey()}
	if k.id == "" || !strings.HasPrefix(k.raw, "mxgw_"+k.id+"_") {
		t.Fatalf("CreateApiKey %q returned id %q and a key of the wrong shape", spec.name, k.id)
	}
	return k
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

// httpGet fetches path from the gateway's HTTP listener.
func httpGet(t *testing.T, g *harness.Gateway, path string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), step)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+g.HTTPAddr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

// metricSamples is a scrape of /metrics: series (name{labels}) to value.
type metricSamples map[string]float64

// scrape reads /metrics in the Prometheus text format.
func scrape(t *testing.T, g *harness.Gateway) metricSamples {
	t.Helper()
	code, body := httpGet(t, g, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d\n%s", code, body)
	}
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
