package tlsutil

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/mxgateway/mxgateway/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

func cfgAt(dir string, now time.Time) SelfSignedConfig {
	return SelfSignedConfig{
		Dir:        dir,
		ExtraNames: []string{"gw.example.test", "10.1.2.3"},
		Now:        func() time.Time { return now },
		Hostname:   func() (string, error) { return "NodeA", nil },
	}
}

func serial(t *testing.T, s SelfSigned) string {
	t.Helper()
	leaf, err := x509.ParseCertificate(s.Certificate.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.SerialNumber.String()
}

func TestSelfSignedIsPersistedAndReused(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	a, err := EnsureSelfSigned(cfgAt(dir, now))
	if err != nil || !a.Generated {
		t.Fatalf("first: %v generated=%v", err, a.Generated)
	}
	leaf, _ := x509.ParseCertificate(a.Certificate.Certificate[0])
	for _, n := range []string{"localhost", "nodea", "gw.example.test"} {
		if err := leaf.VerifyHostname(n); err != nil {
			t.Errorf("SAN %s: %v", n, err)
		}
	}
	for _, ip := range []string{"127.0.0.1", "::1", "10.1.2.3"} {
		if err := leaf.VerifyHostname(ip); err != nil {
			t.Errorf("SAN %s: %v", ip, err)
		}
	}
	if runtime.GOOS != "windows" {
		fi, _ := os.Stat(a.KeyFile)
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("key mode %v", fi.Mode().Perm())
		}
	}
	b, err := EnsureSelfSigned(cfgAt(dir, now.Add(24*time.Hour)))
	if err != nil || b.Generated || serial(t, a) != serial(t, b) {
		t.Fatalf("restart did not reuse the certificate: %v generated=%v", err, b.Generated)
	}
}

func TestSelfSignedRegenerated(t *testing.T) {
	now := time.Now()
	cases := []struct {
		name  string
		later func(SelfSignedConfig) SelfSignedConfig
		setup func(dir string)
	}{
		{"expired", func(c SelfSignedConfig) SelfSignedConfig {
			c.Now = func() time.Time { return now.Add(DefaultValidity + time.Hour) }
			return c
		}, nil},
		{"near expiry", func(c SelfSignedConfig) SelfSignedConfig {
			c.Now = func() time.Time { return now.Add(DefaultValidity - DefaultRenewBefore/2) }
			return c
		}, nil},
		{"hostname changed", func(c SelfSignedConfig) SelfSignedConfig {
			c.Hostname = func() (string, error) { return "NodeB", nil }
			return c
		}, nil},
		{"extra name added", func(c SelfSignedConfig) SelfSignedConfig {
			c.ExtraNames = append(c.ExtraNames, "192.168.7.7")
			return c
		}, nil},
		{"corrupt key", func(c SelfSignedConfig) SelfSignedConfig { return c }, func(dir string) {
			_ = os.WriteFile(filepath.Join(dir, KeyFileName), []byte("junk"), 0o600)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			a, err := EnsureSelfSigned(cfgAt(dir, now))
			if err != nil {
				t.Fatal(err)
			}
			if tc.setup != nil {
				tc.setup(dir)
			}
			b, err := EnsureSelfSigned(tc.later(cfgAt(dir, now)))
			if err != nil {
				t.Fatal(err)
			}
			if !b.Generated || serial(t, a) == serial(t, b) {
				t.Fatal("certificate not regenerated")
			}
			// And the new one is what the next start loads.
			c, err := EnsureSelfSigned(tc.later(cfgAt(dir, now)))
			if err != nil || c.Generated || serial(t, c) != serial(t, b) {
				t.Fatalf("regenerated certificate not persisted: %v", err)
			}
		})
	}
}

// A gRPC server with the self-signed certificate on 127.0.0.1, and a client
// that pins it: the pinned client connects, one pinning another CA does not.
func TestPinnedTLS(t *testing.T) {
	dir := t.TempDir()
	ss, err := EnsureSelfSigned(SelfSignedConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	other, err := EnsureSelfSigned(SelfSignedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(ServerConfig(ss.Certificate))))
	hs := health.NewServer()
	grpc_health_v1.RegisterHealthServer(srv, hs)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	defer func() {
		hs.Shutdown()
		srv.Stop()
		<-done
	}()

	check := func(caFile, serverName string) error {
		cfg, err := ClientConfig(caFile, serverName)
		if err != nil {
			return err
		}
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{})
		return err
	}
	if err := check(ss.CertFile, ""); err != nil {
		t.Fatalf("pinned client (IP SAN): %v", err)
	}
	if err := check(ss.CertFile, "localhost"); err != nil {
		t.Fatalf("pinned client (localhost): %v", err)
	}
	if err := check(other.CertFile, ""); err == nil {
		t.Fatal("client pinning another certificate connected")
	}
	if err := check(ss.CertFile, "evil.example"); err == nil {
		t.Fatal("name outside the SANs accepted")
	}
}

func TestClientConfigErrors(t *testing.T) {
	if _, err := ClientConfig(filepath.Join(t.TempDir(), "missing.pem"), ""); err == nil {
		t.Fatal("missing CA file accepted")
	}
	f := filepath.Join(t.TempDir(), "junk.pem")
	_ = os.WriteFile(f, []byte("not pem"), 0o600)
	if _, err := ClientConfig(f, ""); err == nil {
		t.Fatal("junk CA file accepted")
	}
}

func TestLoadKeyPair(t *testing.T) {
	ss, err := EnsureSelfSigned(SelfSignedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyPair(ss.CertFile, ss.KeyFile); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyPair(ss.KeyFile, ss.CertFile); err == nil {
		t.Fatal("swapped files accepted")
	}
	if cfg := ServerConfig(ss.Certificate); cfg.MinVersion < tls.VersionTLS12 {
		t.Fatal("server allows TLS < 1.2")
	}
}
