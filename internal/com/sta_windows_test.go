//go:build windows && 386

package com

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mxgateway/mxgateway/internal/testutil"
)

// These tests run on a windows/386 machine (CI compiles them everywhere
// with `go test -c`); they need no MXAccess.

func TestSinkVtableCallbacksCreated(t *testing.T) {
	if sinkVtbl == 0 {
		t.Fatal("no vtable")
	}
	for i, m := range SinkVtable {
		if uptrAt(sinkVtbl+uintptr(i)*ptrSize) == 0 {
			t.Errorf("slot %d (%s) has no callback", i, m.Name)
		}
	}
}

func TestSTALifecycle(t *testing.T) {
	sta, err := StartSTA(STAOptions{Idle: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var onThread bool
	if err := sta.Do(func() { onThread = sta.OnThread() }); err != nil || !onThread {
		t.Fatalf("Do: err=%v onThread=%v", err, onThread)
	}
	if sta.OnThread() {
		t.Fatal("test goroutine reported as the STA")
	}
	// Re-entrant Do from a work item runs inline instead of deadlocking.
	inner := false
	if err := sta.Do(func() { _ = sta.Do(func() { inner = true }) }); err != nil || !inner {
		t.Fatalf("nested Do: err=%v inner=%v", err, inner)
	}
	if err := sta.Do(func() { panic("boom") }); err == nil {
		t.Fatal("panic not reported")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sta.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	// The pump wakes on its idle timeout and stamps activity.
	before := sta.LastActivity()
	testutil.Eventually(t, 5*time.Second, func() error {
		if !sta.LastActivity().After(before) {
			return errors.New("pump never woke on its idle timeout")
		}
		return nil
	})
	if err := sta.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sta.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := sta.Do(func() {}); !errors.Is(err, ErrSTAClosed) {
		t.Fatalf("Do after Close: %v", err)
	}
}

func TestInvokeFrameAndBSTR(t *testing.T) {
	b, err := AllocBSTR("Tank\u00e9.PV")
	if err != nil {
		t.Fatal(err)
	}
	defer FreeBSTR(b)
	s, err := readBSTRForTest(b)
	if err != nil || s != "Tank\u00e9.PV" {
		t.Fatalf("s=%q err=%v", s, err)
	}
}
