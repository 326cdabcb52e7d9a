package session

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

// TestRunningCommandHoldsLease: a command in flight, and one the worker
// still runs after its caller stopped waiting, keep the session's lease
// alive; the sweeper closes the session only after they finished.
func TestRunningCommandHoldsLease(t *testing.T) {
	clk := newFakeClock()
	release := make(chan struct{})
	h := newHarness(t, Options{Now: clk.Now, Lease: time.Minute, DetachGrace: time.Minute, SweepInterval: 5 * time.Millisecond})
	h.prepare = func(w *fakeWorker) {
		w.invoke = func(ctx context.Context, _ *mxgatewayv1.Command, _ time.Duration) (*mxgatewayv1.Reply, error) {
			<-release
			return &mxgatewayv1.Reply{Status: mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK}, nil
		}
	}
	s, w := h.open()
	done := make(chan error, 1)
	go func() {
		_, err := s.Invoke(context.Background(), &mxgatewayv1.Command{}, time.Hour)
		done <- err
	}()
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := s.Info().CommandsPending; n != 1 {
			return fmt.Errorf("%d commands pending", n)
		}
		return nil
	})
	clk.Add(time.Hour) // far past the lease, but a command runs
	if got := s.LeaseExpiresAt(); !got.After(clk.Now()) {
		t.Fatalf("lease %v not kept alive by the running command (now %v)", got, clk.Now())
	}
	waitSweeps(t, clk, h.m, s)
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the long command failed: %v", err)
	}

	// A command the worker still runs for a caller that gave up.
	w.unanswered.Store(1)
	clk.Add(time.Hour)
	waitSweeps(t, clk, h.m, s)
	w.unanswered.Store(0)
	testutil.Eventually(t, 5*time.Second, func() error {
		if _, err := h.m.Get(s.ID()); err == nil {
			return errors.New("session still registered after its commands finished")
		}
		return nil
	})
}

// TestFaultedSessionLeavesTable: a session whose worker failed leaves the
// table at once, even with a subscriber attached that never reads, so it
// no longer counts against MaxSessions; its tombstone keeps the state, the
// fault and the owner.
func TestFaultedSessionLeavesTable(t *testing.T) {
	h := newHarness(t, Options{MaxSessions: 1})
	s, w := h.open()
	sub, err := s.Subscribe(SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close() // attached, never read
	w.finish(errors.New("worker: process exited with code 42"))
	testutil.Eventually(t, 5*time.Second, func() error {
		if _, err := h.m.Get(s.ID()); err == nil {
			return errors.New("faulted session still registered")
		}
		return nil
	})
	ts, ok := h.m.Tombstone(s.ID())
	if !ok || ts.State != mxgatewayv1.SessionState_SESSION_STATE_FAULTED || ts.FaultReason == "" || ts.OwnerKeyID != "key1" {
		t.Fatalf("tombstone = %+v, %v", ts, ok)
	}
	if st := s.State(); st != mxgatewayv1.SessionState_SESSION_STATE_FAULTED {
		t.Fatalf("state %v, want FAULTED", st)
	}
	// The slot is free again.
	h.open()
}

// TestSessionsPerKey: one key cannot open more than MaxSessionsPerKey
// sessions (ErrKeyLimit), which leaves slots for other keys; a closed
// session gives its slot back.
func TestSessionsPerKey(t *testing.T) {
	h := newHarness(t, Options{MaxSessions: 4, MaxSessionsPerKey: 2})
	open := func(owner string) (*Session, error) {
		return h.m.Open(context.Background(), OpenRequest{ClientName: "quota", OwnerKeyID: owner})
	}
	a1, err := open("a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := open("a"); !errors.Is(err, ErrKeyLimit) {
		t.Fatalf("third session of key a = %v, want ErrKeyLimit", err)
	}
	if _, err := open("b"); err != nil {
		t.Fatalf("key b locked out: %v", err)
	}
	// An exempt opener (an admin key) is above the per-key quota.
	admin, err := h.m.Open(context.Background(), OpenRequest{ClientName: "admin", OwnerKeyID: "a", QuotaExempt: true})
	if err != nil {
		t.Fatalf("exempt open: %v", err)
	}
	admin.Close(context.Background())
	a1.Close(context.Background())
	if _, err := open("a"); err != nil {
		t.Fatalf("key a after a close: %v", err)
	}
	if _, err := open("c"); err != nil {
		t.Fatal(err)
	}
	if _, err := open("d"); !errors.Is(err, ErrLimit) {
		t.Fatalf("fifth session = %v, want ErrLimit", err)
	}
}
