package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxgateway/mxgateway/internal/testutil"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// lockedBuffer is a goroutine-safe output buffer for a command running in
// the background.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSubscribeAcrossGatewayRestart: mxctl subscribe keeps printing values
// when the gateway is killed and started again on the same address; it
// says that the session was recreated, and ends with exit 0 on Ctrl-C.
func TestSubscribeAcrossGatewayRestart(t *testing.T) {
	g := harness.Start(t)
	env := map[string]string{"MXGATEWAY_ADDR": g.GRPCAddr, "MXGATEWAY_DATA_DIR": g.DataDir}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"subscribe", "TIC101.PV", "--json"}, strings.NewReader(""), &stdout, &stderr, func(k string) string { return env[k] })
	}()
	// values counts the value lines after the recreated marker (all lines
	// when after is false).
	values := func(afterMarker bool) (n int, marker map[string]any) {
		seen := !afterMarker
		for _, line := range strings.Split(stdout.String(), "\n") {
			var row map[string]any
			if json.Unmarshal([]byte(line), &row) != nil {
				continue
			}
			if m, ok := row["recreated"].(map[string]any); ok {
				seen, marker = true, m
				continue
			}
			if seen && row["reference"] == "TIC101.PV" && row["ok"] == true {
				n++
			}
		}
		return n, marker
	}
	testutil.Eventually(t, 30*time.Second, func() error {
		if n, _ := values(false); n < 2 {
			return errors.New("fewer than 2 values before the restart")
		}
		return nil
	})
	g.Kill()
	g.RestartSameAddress(t)
	var marker map[string]any
	testutil.Eventually(t, 60*time.Second, func() error {
		var n int
		// The fresh initial value and one change after it: still printing.
		if n, marker = values(true); n < 2 {
			return errors.New("fewer than 2 values after the restart")
		}
		return nil
	})
	if marker["reason"] != "SESSION_NOT_FOUND" || marker["old_session"] == marker["new_session"] {
		t.Fatalf("recreated marker %v", marker)
	}
	cancel() // Ctrl-C
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit %d after Ctrl-C\nstderr:\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("mxctl subscribe did not stop after Ctrl-C")
	}
	errs := stderr.String()
	if !strings.Contains(errs, "the gateway lost the session (SESSION_NOT_FOUND); subscribed again in a new session") ||
		!strings.Contains(errs, ", 1 session recreated") {
		t.Fatalf("stderr does not report the recreated session:\n%s", errs)
	}
}
