package e2e

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// TestServePortTaken: when the gRPC or the HTTP port is taken, serve says so
// in one line (which port, which flag), exits 1, and creates nothing: no
// first-run key it could not serve, no worker, no shutdown warnings.
func TestServePortTaken(t *testing.T) {
	t.Parallel()
	bin := harness.Binary(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	for _, tc := range []struct{ name, grpc, http, want, flag string }{
		{"grpc", addr, "127.0.0.1:0", "mxgateway serve: cannot listen for gRPC on " + addr + ": ", "--listen)"},
		{"http", "127.0.0.1:0", addr, "mxgateway serve: cannot listen for HTTP on " + addr + ": ", "--http-listen)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			data := filepath.Join(dir, "data")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "serve", "--listen="+tc.grpc, "--http-listen="+tc.http, "--nats-listen=127.0.0.1:0", "--data-dir="+data)
			cmd.Env = append(os.Environ(), "TMPDIR="+dir)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("serve on a taken port: %v, want exit 1\nstderr:\n%s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			if stdout.Len() != 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], tc.want) ||
				strings.Contains(lines[0], "serve: serve:") || !strings.HasSuffix(lines[0], tc.flag) {
				t.Fatalf("want one line starting %q naming the flag; stdout %q, stderr:\n%s", tc.want, stdout.String(), stderr.String())
			}
			if _, err := os.Stat(filepath.Join(data, harness.AdminKeyFile)); !os.IsNotExist(err) {
				t.Fatalf("a first-run key was created by a gateway that could not serve (%v)", err)
			}
		})
	}
}

// TestServeBannerLastAndLaterRunHint: the first run's key banner comes after
// the start-up logs (readiness probe included), not buried in them, and
// names the key's file without the key (stderr is not a terminal); a later
// run says where the admin key is.
func TestServeBannerLastAndLaterRunHint(t *testing.T) {
	t.Parallel()
	g := harness.Start(t)
	const closing = "mxgateway: ================================================================\n"
	var out string
	eventually(t, "the first-run banner", func() error {
		out = g.Stderr.String()
		if strings.Count(out, closing) < 2 {
			return errors.New("banner not complete yet")
		}
		return nil
	})
	// Standard error is a pipe here, not a terminal: the banner names the
	// key's file and never shows the key.
	banner := strings.Index(out, "mxgateway: first run: created an admin API key")
	if banner < 0 || strings.Contains(out, g.AdminKey) || !strings.Contains(out, filepath.Join(g.DataDir, harness.AdminKeyFile)) {
		t.Fatalf("no first-run banner naming the key file without the key:\n%s", redactKey(out, g.AdminKey))
	}
	if probe := strings.LastIndex(out[:banner], "readyprobe"); probe < 0 || strings.Contains(out[banner:], "readyprobe") {
		t.Fatalf("the banner is not after the readiness probe's logs:\n%s", out)
	}
	if i := strings.Index(out, `"msg":"HTTP listening"`); i < 0 || i > banner {
		t.Fatalf("the banner is not after the listen logs:\n%s", out)
	}
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	g2 := g.Restart(t)
	want := "mxgateway: the first-run admin key is in " + filepath.Join(g.DataDir, harness.AdminKeyFile) + " "
	var out2 string
	eventually(t, "the admin key hint", func() error {
		if out2 = g2.Stderr.String(); !strings.Contains(out2, want) {
			return errors.New("no hint yet")
		}
		return nil
	})
	if !strings.Contains(out2, want) || strings.Contains(out2, "first run: created") || strings.Contains(out2, g.AdminKey) {
		t.Fatalf("a later run should say %q and not show the key:\n%s", want, out2)
	}
}
