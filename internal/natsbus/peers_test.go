package natsbus

import (
	"fmt"
	"testing"
	"time"
)

// TestOwnerAgreement: gateways that see the same peers pick the same owner
// of every reference, the references spread over them, and the alarm
// publisher is chosen among the gateways that publish alarms only.
func TestOwnerAgreement(t *testing.T) {
	ids := []string{"aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc"}
	buses := make([]*Bus, len(ids))
	for i, id := range ids {
		b := &Bus{id: id, peers: map[string]peerInfo{}}
		for j, other := range ids {
			if j != i {
				b.peers[other] = peerInfo{seen: time.Now(), alarms: j == 2}
			}
		}
		buses[i] = b
	}
	owned := map[string]int{}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	names := []string{}
	for n := range 238 {
		names = append(names, fmt.Sprintf("Tank%03d.Level", n))
	}
	for _, c := range alphabet { // names that differ in their last byte only
		names = append(names, "TIC101.P"+string(c))
	}
	for _, name := range names {
		want := buses[0].ownerLocked(name)
		for _, b := range buses[1:] {
			if got := b.ownerLocked(name); got != want {
				t.Fatalf("%s: owner %s seen from %s, %s from %s", name, got, b.id, want, buses[0].id)
			}
		}
		owned[want]++
	}
	for _, id := range ids {
		if owned[id] < 50 {
			t.Errorf("gateway %s owns %d of 300 references: %v", id, owned[id], owned)
		}
	}
	// Names that differ in their last byte only spread too.
	last := map[string]int{}
	for _, name := range names[238:] {
		last[buses[0].ownerLocked(name)]++
	}
	for _, id := range ids {
		if last[id] < 8 {
			t.Errorf("gateway %s owns %d of the %d TIC101.P? references: %v", id, last[id], len(alphabet), last)
		}
	}
	// Only c announces alarms: every gateway's publisher is itself (it
	// asks only while it publishes) or c, never a peer without alarms.
	for _, b := range buses {
		if got := b.alarmOwnerLocked(); got != b.id && got != ids[2] {
			t.Fatalf("alarm publisher seen from %s: %s", b.id, got)
		}
	}
	// A gateway alone owns everything.
	alone := &Bus{id: ids[0], peers: map[string]peerInfo{}}
	if alone.ownerLocked("TIC101.PV") != ids[0] {
		t.Fatal("a lone gateway does not own its references")
	}
}

// TestInterestCounts: a reference's leases are told apart by kind and the
// forwarded filter is the finest of the gateway's own consumers.
func TestInterestCounts(t *testing.T) {
	r := &ref{leases: map[string]leaseEntry{
		"k\x00a":     {keyID: "k", filter: filter{deadband: 2, every: time.Second}},
		"k\x00b":     {keyID: "k", filter: filter{deadband: 0.5}},
		"peer\x00gw": {keyID: "gw", peer: true, filter: filter{deadband: 0, every: 200 * time.Millisecond}},
	}}
	local, peers, f := r.interestLocked()
	if local != 2 || peers != 1 || f.deadband != 0.5 || f.every != time.Second {
		t.Fatalf("interest = %d local, %d peers, filter %+v", local, peers, f)
	}
}
