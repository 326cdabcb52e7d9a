// Package testutil holds helpers shared by tests: polling with a deadline
// instead of sleeping, and goroutine leak checks.
package testutil

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Eventually calls f until it returns nil or timeout passes, then fails the
// test with f's last error. It polls; it never sleeps for a fixed guess.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", timeout, err)
		}
		time.Sleep(wait)
		if wait < 50*time.Millisecond {
			wait *= 2
		}
	}
}

// VerifyNoLeaks is meant for TestMain: it runs the tests and fails the run
// when goroutines outlive them.
func VerifyNoLeaks(m *testing.M, opts ...goleak.Option) {
	goleak.VerifyTestMain(m, opts...)
}

// CheckLeaks fails t if goroutines started during the test are still running
// at cleanup. Call it first in a test.
func CheckLeaks(t *testing.T, opts ...goleak.Option) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		goleak.VerifyNone(t, append(opts, ignore)...)
	})
}
