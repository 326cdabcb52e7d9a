//go:build unix

package ipc

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// shortTempDir returns a private directory with a short path: t.TempDir
// names can exceed the 108-byte socket path limit.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ipct")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestListenCreatesPrivateDirAndCloseRemovesIt(t *testing.T) {
	root := filepath.Join(shortTempDir(t), "rt")
	ln, err := Listen(root, "abc")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("runtime dir mode %v, want 0700", fi.Mode().Perm())
	}
	sock := ln.Endpoint()
	dir := filepath.Dir(sock)
	if filepath.Dir(dir) != root {
		t.Fatalf("endpoint %s not in a subdirectory of %s", sock, root)
	}
	fi, err = os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("endpoint dir mode %v, want 0700", fi.Mode().Perm())
	}
	fi, err = os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("%s is %v, not a socket", sock, fi.Mode())
	}

	// Two sessions get two different directories.
	ln2, err := Listen(root, "abc")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(ln2.Endpoint()) == dir {
		t.Error("second listener reused the first directory")
	}
	ln2.Close()

	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Errorf("endpoint dir still exists after Close: %v", err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("runtime dir not empty after Close: %v", entries)
	}
}

func TestListenRefusesUnsafeRuntimeDir(t *testing.T) {
	root := filepath.Join(shortTempDir(t), "open")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o777); err != nil {
		t.Fatal(err)
	}
	if ln, err := Listen(root, "x"); !errors.Is(err, ErrUnsafeRuntimeDir) {
		if err == nil {
			ln.Close()
		}
		t.Fatalf("Listen in a world-writable dir = %v, want ErrUnsafeRuntimeDir", err)
	}
	file := filepath.Join(shortTempDir(t), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(file, "x"); err == nil {
		t.Fatal("Listen under a regular file succeeded")
	}
}

func TestListenRefusesOverlongSocketPath(t *testing.T) {
	root := filepath.Join(shortTempDir(t), strings.Repeat("d", 100))
	ln, err := Listen(root, "x")
	if err == nil {
		ln.Close()
		t.Fatal("Listen with an overlong path succeeded")
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 0 {
		t.Errorf("failed Listen left %v behind", entries)
	}
}

// TestDialRetriesUntilListening dials before the socket exists and succeeds
// once it appears.
func TestDialRetriesUntilListening(t *testing.T) {
	dir := shortTempDir(t)
	path := filepath.Join(dir, "late.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	type res struct {
		c   net.Conn
		err error
	}
	got := make(chan res, 1)
	go func() {
		c, err := Dial(ctx, path)
		got <- res{c, err}
	}()
	// Dial may run before or after the listener appears; either way it
	// must connect. TestDialRetryRetriesRetryableErrors covers the retry.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	r.c.Close()
}

func TestPeerPIDRejectsOtherConns(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := PeerPID(a); !errors.Is(err, ErrNoPeerPID) {
		t.Fatalf("PeerPID(net.Pipe) = %v, want ErrNoPeerPID", err)
	}
}

func TestDialRetryRetriesRetryableErrors(t *testing.T) {
	calls := 0
	a, b := net.Pipe()
	defer b.Close()
	c, err := dialRetry(context.Background(), func(context.Context) (net.Conn, error) {
		calls++
		if calls < 3 {
			return nil, &net.OpError{Op: "dial", Err: syscall.ENOENT}
		}
		return a, nil
	}, func(err error) bool { return errors.Is(err, syscall.ENOENT) })
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if calls != 3 {
		t.Fatalf("dial called %d times, want 3", calls)
	}
	permanent := errors.New("permanent")
	calls = 0
	_, err = dialRetry(context.Background(), func(context.Context) (net.Conn, error) {
		calls++
		return nil, permanent
	}, func(err error) bool { return errors.Is(err, syscall.ENOENT) })
	if !errors.Is(err, permanent) || calls != 1 {
		t.Fatalf("non-retryable: err %v after %d calls", err, calls)
	}
}
