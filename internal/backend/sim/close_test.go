package sim

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestCloseReturnsWhenItsCallMeetsACrash: Close's teardown call runs on the
// STA after what is due; when a scripted crash is due then (the STA halts
// instead of running the call), Close still returns. The STA is held in a
// posted function while the crash falls due and Close queues its call, so
// the call is served where a posted batch serves a waiting call. Before
// the fix Close waited for the call for good.
func TestCloseReturnsWhenItsCallMeetsACrash(t *testing.T) {
	m, err := ParseModel([]byte(`
galaxy: TestGalaxy
objects:
  - tag: Obj
    attributes:
      - {name: PV, type: MxDouble, value: 1.5}
faults:
  - {kind: crash, at: 10s, code: 3}
`), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	clk := NewFakeClock(testStart)
	exits := make(chan int, 1)
	b, err := New(Options{Model: m, Profile: ProfileTest, Clock: clk, Seed: 1, Exit: func(c int) { exits <- c }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open(context.Background(), discardSink{}); err != nil {
		t.Fatal(err)
	}
	started, gate := make(chan struct{}), make(chan struct{})
	b.post(func() { close(started); <-gate })
	<-started
	clk.Advance(10 * time.Second) // the crash is due; the STA is busy
	closed := make(chan []string, 1)
	go func() { closed <- b.Close() }()
	waitBlocked(t, "sim.(*Backend).Close(")
	close(gate)
	select {
	case warns := <-closed:
		if len(warns) != 1 || !strings.Contains(warns[0], "crashed") {
			t.Errorf("Close warns %q, want that the backend had crashed", warns)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close never returned") // leaks the backend's goroutines
	}
	if code := <-exits; code != 3 {
		t.Fatalf("exit code %d, want 3", code)
	}
}

// waitBlocked waits until a goroutine whose stack holds fn is blocked in a
// select or a channel operation.
func waitBlocked(t *testing.T, fn string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.Stack(buf, true)
		for _, g := range bytes.Split(buf[:n], []byte("\n\n")) {
			if bytes.Contains(g, []byte(fn)) && (bytes.Contains(g, []byte("[select")) || bytes.Contains(g, []byte("[chan send"))) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no goroutine in %s blocked", fn)
		}
		runtime.Gosched()
	}
}
