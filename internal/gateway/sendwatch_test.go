package gateway

import (
	"testing"
	"time"
)

// TestSendWatchExclusive: a send that ends and the handler giving up on it
// exclude each other, and nothing is sent after the give-up.
func TestSendWatchExclusive(t *testing.T) {
	w := newSendWatch()
	if w.abandonSending() || w.abandonStuck(0) {
		t.Fatal("gave up on a send although none runs")
	}
	if !w.begin() || !w.end() {
		t.Fatal("a send between two give-up checks did not run")
	}
	if !w.begin() {
		t.Fatal("second send refused")
	}
	if w.abandonStuck(time.Hour) {
		t.Fatal("a fresh send judged stuck")
	}
	w.base = w.base.Add(-2 * time.Hour) // the send began two hours ago
	if !w.abandonStuck(time.Hour) {
		t.Fatal("a send older than the timeout not judged stuck")
	}
	if w.end() {
		t.Fatal("a send the handler gave up on ended normally")
	}
	if w.begin() {
		t.Fatal("a send began after the handler gave up")
	}
}
