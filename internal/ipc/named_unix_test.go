//go:build unix

package ipc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestListenNamed: a stable endpoint in a private directory; a stale
// socket is replaced, a live one refused, an open directory refused, and
// Close unlinks the socket but keeps the directory.
func TestListenNamed(t *testing.T) {
	dir := filepath.Join(shortTempDir(t), "g")
	ln, err := ListenNamed(dir, "galaxy")
	if err != nil {
		t.Fatal(err)
	}
	if ln.Endpoint() != NamedEndpoint(dir, "galaxy") {
		t.Fatalf("endpoint %q, want %q", ln.Endpoint(), NamedEndpoint(dir, "galaxy"))
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v, %v", fi.Mode().Perm(), err)
	}
	if _, err := ListenNamed(dir, "galaxy"); !errors.Is(err, ErrEndpointInUse) {
		t.Fatalf("second listener: %v, want ErrEndpointInUse", err)
	}
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			err = CheckPeerUser(c)
			c.Close()
		}
		done <- err
	}()
	c, err := Dial(context.Background(), ln.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatalf("peer check of our own connection: %v", err)
	}
	ln.Close()
	if _, err := os.Stat(ln.Endpoint()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket after Close: %v", err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("directory after Close: %v", err)
	}
	// A socket file nobody serves (a killed runtime's) is replaced.
	stale, err := ListenNamed(dir, "galaxy")
	if err != nil {
		t.Fatal(err)
	}
	stale.(*unixListener).ln.SetUnlinkOnClose(false)
	stale.Close()
	again, err := ListenNamed(dir, "galaxy")
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	again.Close()
	// A directory others can enter is refused.
	open := filepath.Join(shortTempDir(t), "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := ListenNamed(open, "galaxy"); !errors.Is(err, ErrUnsafeRuntimeDir) {
		t.Fatalf("0755 directory: %v, want ErrUnsafeRuntimeDir", err)
	}
	if _, err := ListenNamed(dir, "../x"); !errors.Is(err, ErrInvalidSessionID) {
		t.Fatalf("bad name: %v", err)
	}
}
