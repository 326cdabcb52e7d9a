package ipc

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mxgateway/mxgateway/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

func TestListenRejectsBadSessionIDs(t *testing.T) {
	for _, id := range []string{"", "../x", "a/b", `a\b`, "a b", "é", strings.Repeat("a", maxSessionIDLen+1)} {
		ln, err := Listen(t.TempDir(), id)
		if err == nil {
			ln.Close()
			t.Fatalf("Listen(%q) succeeded", id)
		}
		if !errors.Is(err, ErrInvalidSessionID) {
			t.Fatalf("Listen(%q) = %v, want ErrInvalidSessionID", id, err)
		}
	}
}

// TestRoundTrip dials the endpoint in-process and checks both directions,
// the peer pid, and that Close is idempotent.
func TestRoundTrip(t *testing.T) {
	ln, err := Listen(shortTempDir(t), "sess-1")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	type acc struct {
		pid int
		err error
		msg string
	}
	done := make(chan acc, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- acc{err: err}
			return
		}
		defer c.Close()
		pid, err := PeerPID(c)
		if err != nil {
			done <- acc{err: err}
			return
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil {
			done <- acc{err: err}
			return
		}
		_, err = c.Write([]byte("world"))
		done <- acc{pid: pid, msg: string(buf), err: err}
	}()

	c, err := Dial(ctx, ln.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	a := <-done
	if a.err != nil {
		t.Fatal(a.err)
	}
	if a.pid != os.Getpid() {
		t.Errorf("PeerPID = %d, want %d", a.pid, os.Getpid())
	}
	if a.msg != "hello" || string(buf) != "world" {
		t.Errorf("exchanged %q/%q", a.msg, buf)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ln.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestDialGivesUpWhenContextEnds(t *testing.T) {
	ln, err := Listen(shortTempDir(t), "gone")
	if err != nil {
		t.Fatal(err)
	}
	ep := ln.Endpoint()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	c, err := Dial(ctx, ep)
	if err == nil {
		c.Close()
		t.Fatal("Dial to a closed endpoint succeeded")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial = %v, want a deadline error", err)
	}
}

func TestAcceptAfterCloseFails(t *testing.T) {
	ln, err := Listen(shortTempDir(t), "closed")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if c, err := ln.Accept(); err == nil {
		c.Close()
		t.Fatal("Accept after Close succeeded")
	}
}
