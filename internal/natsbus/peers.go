package natsbus

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/logging"
)

// Gateways that share one NATS system (leaf nodes, or one external system)
// and one Galaxy share interest (docs/nats.md, "Scaling out"):
//
//   - Each gateway has a random id per run and announces it every peerBeat
//     on mxgw.v1.<galaxy>.peer.hello; a peer not heard for peerDead is gone
//     (a gateway that stops says so on mxgw.v1.<galaxy>.peer.bye).
//   - The owner of a reference is the gateway, among the live ones, with
//     the highest rendezvous hash of (id, reference): every gateway that
//     sees the same peers picks the same owner, and references spread over
//     the gateways.
//   - A gateway whose consumers lease a reference it does not own holds no
//     advise: it forwards its consumers' interest, as one lease of its own
//     (consumer = its id) per reference, to the owner on
//     mxgw.v1.<galaxy>.peer.<owner id>.lease, renews it every peerRenew
//     while any of its consumers' leases holds, and releases it when the
//     last one lapses. It follows the owner's values on the value subject
//     (its last value, sequence and bucket stay current).
//   - A gateway advises a reference while any peer's lease holds it, or its
//     own consumers' leases do and it is the owner. Peers' leases are never
//     forwarded again, so there are no cycles. When the owner changes the
//     new one advises before the old one lets go (make before break); when
//     forwarding fails (the owner died and is not yet missed) the gateway
//     advises itself. Two gateways that briefly disagree about the peers
//     both advise until their views agree; the leases of the one that is
//     no longer owner then lapse.

// Peer timing.
const (
	// peerBeat is how often a gateway announces itself.
	peerBeat = time.Second
	// peerDead is how long a silent peer counts as live.
	peerDead = 3 * peerBeat
	// peerRequestTimeout bounds one forwarded lease or write.
	peerRequestTimeout = 10 * time.Second
)

// peer subjects, below mxgw.v1.<galaxy>.peer.
func (b *Bus) peerHello() string             { return b.subj.Prefix + "peer.hello" }
func (b *Bus) peerBye() string               { return b.subj.Prefix + "peer.bye" }
func (b *Bus) peerLease(id string) string    { return b.subj.Prefix + "peer." + id + ".lease" }
func (b *Bus) peerWrite(id string) string    { return b.subj.Prefix + "peer." + id + ".write" }
func peerLeaseID(id string) string           { return "peer\x00" + id }
func (b *Bus) peerWriteAll(id string) string { return b.peerWrite(id) + ".>" }

// ID is this gateway's id among its peers (random per run).
func (b *Bus) ID() string { return b.id }

// Peers is the number of other gateways this one sees.
func (b *Bus) Peers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.peers)
}

// rendezvous is the weight of gateway id for reference name: FNV-1a of
// both, then a 64-bit finalizer (MurmurHash3's fmix64), since FNV's high
// bits hardly depend on the last bytes and references often differ only
// there (TIC101.PV, TIC101.SP).
func rendezvous(id, name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	h.Write([]byte{0})
	h.Write([]byte(name))
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// ownerLocked is the gateway that owns name among the live ones. b.mu must
// be held.
func (b *Bus) ownerLocked(name string) string {
	best, w := b.id, rendezvous(b.id, name)
	for id := range b.peers {
		if pw := rendezvous(id, name); pw > w || (pw == w && id > best) {
			best, w = id, pw
		}
	}
	return best
}

// startPeers subscribes to the peer subjects.
func (b *Bus) startPeers() error {
	for _, s := range []struct {
		subject string
		h       nats.MsgHandler
	}{
		{b.peerHello(), b.handleHello}, {b.peerBye(), b.handleBye},
		{b.peerLease(b.id), b.handlePeerLease}, {b.peerWriteAll(b.id), b.handlePeerWrite},
	} {
		sub, err := b.nc.Subscribe(s.subject, s.h)
		if err != nil {
			return fmt.Errorf("natsbus: subscribe %s: %w", s.subject, err)
		}
		b.subs = append(b.subs, sub)
	}
	return b.nc.Publish(b.peerHello(), b.hello())
}

// peerInfo is what a gateway knows of a peer.
type peerInfo struct {
	seen   time.Time // when last heard
	alarms bool      // it publishes alarm transitions
}

// helloAlarms marks a hello from a gateway that publishes alarms.
const helloAlarms = "alarms"

// hello is this gateway's announcement: its id, and helloAlarms after a
// space while it publishes alarms.
func (b *Bus) hello() []byte {
	if b.alarms.Load() {
		return []byte(b.id + " " + helloAlarms)
	}
	return []byte(b.id)
}

func (b *Bus) handleHello(msg *nats.Msg) {
	id, flag, _ := strings.Cut(string(msg.Data), " ")
	if id == b.id || !validConsumer(id) {
		return
	}
	b.mu.Lock()
	_, known := b.peers[id]
	b.peers[id] = peerInfo{seen: time.Now(), alarms: flag == helloAlarms}
	b.mu.Unlock()
	if !known {
		b.log.Info("nats: peer gateway joined", slog.String("peer", id))
		// Answer at once, so the newcomer need not wait a beat for us.
		_ = b.nc.Publish(b.peerHello(), b.hello())
		signal(b.rebalance)
	}
}

func (b *Bus) handleBye(msg *nats.Msg) {
	id := string(msg.Data)
	b.mu.Lock()
	_, known := b.peers[id]
	delete(b.peers, id)
	b.dropPeerLeasesLocked(id)
	b.mu.Unlock()
	if known {
		b.log.Info("nats: peer gateway left", slog.String("peer", id))
	}
	signal(b.rebalance)
}

// beating announces this gateway every peerBeat and forgets silent peers.
// It does nothing else, so that slow peer requests never delay a beat.
func (b *Bus) beating() {
	beat := time.NewTicker(peerBeat)
	defer beat.Stop()
	for {
		select {
		case <-b.stop:
			return
		case now := <-beat.C:
			_ = b.nc.Publish(b.peerHello(), b.hello())
			b.mu.Lock()
			gone := false
			for id, p := range b.peers {
				if now.Sub(p.seen) >= peerDead {
					delete(b.peers, id)
					b.dropPeerLeasesLocked(id)
					b.log.Info("nats: peer gateway silent; gone", slog.String("peer", id))
					gone = true
				}
			}
			b.mu.Unlock()
			if gone {
				signal(b.rebalance)
			}
		}
	}
}

// peering renews forwarded interest and settles every reference when the
// peers change.
func (b *Bus) peering() {
	renew := time.NewTicker(b.peerRenew())
	defer renew.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-b.rebalance:
			b.settleAll()
		case <-renew.C:
			b.renewForwards()
		}
	}
}

// dropPeerLeasesLocked drops the leases of a peer that left; settleAll then
// releases what they held. b.mu must be held.
func (b *Bus) dropPeerLeasesLocked(id string) {
	for _, r := range b.refs {
		delete(r.leases, peerLeaseID(id))
	}
}

// peerRenew is how often forwarded interest is renewed: a third of the
// lease it asks for (nats_lease).
func (b *Bus) peerRenew() time.Duration { return max(10*time.Millisecond, b.opts.Lease/3) }

// settleAll settles every reference (the owners may have changed).
func (b *Bus) settleAll() {
	b.mu.Lock()
	todo := make([]*ref, 0, len(b.refs))
	for _, r := range b.refs {
		todo = append(todo, r)
	}
	b.mu.Unlock()
	for _, r := range todo {
		b.settle(b.stopCtx, r)
	}
}

// interestLocked counts r's leases by kind and returns the finest filter of
// its own consumers' leases. b.mu must be held.
func (r *ref) interestLocked() (local, peers int, f filter) {
	first := true
	for _, l := range r.leases {
		if l.peer {
			peers++
			continue
		}
		local++
		if first || l.filter.deadband < f.deadband {
			f.deadband = l.filter.deadband
		}
		if l.filter.every > 0 && (f.every == 0 || l.filter.every < f.every) {
			f.every = l.filter.every
		}
		first = false
	}
	return local, peers, f
}

// settle makes r's advise and forwarding match its leases and owner: no
// lease, neither; a peer's lease, or its own consumers' when this gateway
// owns r, an advise here; its own consumers' only and another owner, a
// forward to that owner (falling back to an advise here when the owner does
// not answer). It returns why r is not served, if it is not.
func (b *Bus) settle(ctx context.Context, r *ref) (reason, why string) {
	r.settleMu.Lock()
	defer r.settleMu.Unlock()
	b.mu.Lock()
	local, peers, f := r.interestLocked()
	owner, fwd := b.ownerLocked(r.name), r.forward
	b.mu.Unlock()

	if local == 0 && peers == 0 {
		b.stopForward(r, fwd)
		b.unadvise(ctx, r)
		return "", ""
	}
	if peers == 0 && owner != b.id && fwd == owner {
		return "", "" // renewed by renewForwards
	}
	if peers == 0 && owner != b.id {
		e, err := b.forwardOne(ctx, owner, r, f)
		if err == nil && e.GetReason() == "" {
			b.mu.Lock()
			r.forward = owner
			if v := e.GetLast(); v != nil && (r.last == nil || v.GetSequence() > r.seq) {
				r.last, r.seq = v, v.GetSequence()
			}
			b.mu.Unlock()
			b.follow(r)
			if fwd != "" && fwd != owner {
				b.stopForward(r, fwd)
			}
			b.dropAdvise(ctx, r) // the owner advises now: make before break
			return "", ""
		}
		if err == nil {
			err = errors.New(e.GetReason() + ": " + e.GetMessage())
		}
		b.log.Warn("nats: owner gateway did not take the interest; advising here", slog.String("reference", r.name),
			slog.String("owner", owner), slog.Any(logging.KeyErr, err))
	}
	reason, why = b.advise(ctx, r)
	if reason == "" && fwd != "" {
		b.stopForward(r, fwd)
	}
	return reason, why
}

// forwardOne forwards this gateway's interest in r to owner.
func (b *Bus) forwardOne(ctx context.Context, owner string, r *ref, f filter) (*mxgatewayv1.SharedLeaseEntry, error) {
	rep, err := b.forward(ctx, owner, []string{r.name}, f, false)
	if err != nil {
		return nil, err
	}
	if len(rep.GetEntries()) != 1 {
		return nil, fmt.Errorf("peer lease reply: %s %s", rep.GetReason(), rep.GetMessage())
	}
	return rep.GetEntries()[0], nil
}

// forward sends one lease (or release) of this gateway for names to owner.
func (b *Bus) forward(ctx context.Context, owner string, names []string, f filter, release bool) (*mxgatewayv1.SharedLeaseReply, error) {
	req := &mxgatewayv1.SharedLeaseRequest{Consumer: b.id, References: names, Ttl: durationpb.New(b.opts.Lease),
		Release: release, Deadband: f.deadband}
	if f.every > 0 {
		req.AtLeastEvery = durationpb.New(f.every)
	}
	data, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, peerRequestTimeout)
	defer cancel()
	msg, err := b.nc.RequestWithContext(rctx, b.peerLease(owner), data)
	if err != nil {
		return nil, err
	}
	rep := &mxgatewayv1.SharedLeaseReply{}
	if err := proto.Unmarshal(msg.Data, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// stopForward releases this gateway's lease on r at fwd and stops following
// r's values, if r was forwarded there.
func (b *Bus) stopForward(r *ref, fwd string) {
	b.mu.Lock()
	if r.forward == fwd {
		r.forward = ""
	}
	sub := r.follower
	still := r.forward != ""
	if !still {
		r.follower = nil
	}
	b.mu.Unlock()
	if sub != nil && !still {
		_ = sub.Unsubscribe()
	}
	if fwd == "" {
		return
	}
	// Best effort: an unanswered release lapses at the owner anyway.
	data, _ := proto.Marshal(&mxgatewayv1.SharedLeaseRequest{Consumer: b.id, References: []string{r.name}, Release: true})
	_ = b.nc.Publish(b.peerLease(fwd), data)
}

// follow subscribes to r's value subject (once) so the last value, the
// sequence and this gateway's bucket follow the owner's publications.
func (b *Bus) follow(r *ref) {
	b.mu.Lock()
	if r.follower != nil || b.closed {
		b.mu.Unlock()
		return
	}
	sbj := r.subject
	b.mu.Unlock()
	sub, err := b.nc.Subscribe(sbj, func(m *nats.Msg) {
		v := &mxgatewayv1.SharedValue{}
		if _, err := decode(m.Data, v); err != nil {
			return
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		if v.GetSequence() <= r.seq {
			return // ours, or older
		}
		r.last, r.seq, r.published = v, v.GetSequence(), time.Now()
		if r.item == 0 {
			b.dirty[r.kvKey] = m.Data
			signal(b.kvWake)
		}
	})
	if err != nil {
		b.log.Warn("nats: owner's values not followed", slog.String("reference", r.name), slog.Any(logging.KeyErr, err))
		return
	}
	b.mu.Lock()
	if r.follower != nil || r.forward == "" {
		b.mu.Unlock()
		_ = sub.Unsubscribe()
		return
	}
	r.follower = sub
	b.mu.Unlock()
}

// renewForwards renews this gateway's forwarded leases, one request per
// owner and filter for up to MaxLeaseReferences references; a reference its
// owner no longer holds (or an owner that does not answer) is settled again.
func (b *Bus) renewForwards() {
	type group struct {
		owner string
		f     filter
	}
	groups := map[group][]*ref{}
	b.mu.Lock()
	for _, r := range b.refs {
		if r.forward == "" {
			continue
		}
		if local, _, f := r.interestLocked(); local > 0 {
			g := group{r.forward, f}
			groups[g] = append(groups[g], r)
		}
	}
	b.mu.Unlock()
	var again []*ref
	for g, refs := range groups {
		for len(refs) > 0 {
			chunk := refs[:min(len(refs), MaxLeaseReferences)]
			refs = refs[len(chunk):]
			names := make([]string, len(chunk))
			for i, r := range chunk {
				names[i] = r.name
			}
			rep, err := b.forward(b.stopCtx, g.owner, names, g.f, false)
			if err != nil || len(rep.GetEntries()) != len(chunk) {
				again = append(again, chunk...)
				continue
			}
			for i, e := range rep.GetEntries() {
				if e.GetReason() != "" {
					again = append(again, chunk[i])
				}
			}
		}
	}
	for _, r := range again {
		b.mu.Lock()
		r.forward = "" // not held there: settle anew
		b.mu.Unlock()
		b.settle(b.stopCtx, r)
	}
}

// handlePeerLease takes another gateway's lease (consumer = its id): the
// gateway checked its own consumers' rights, and peer subjects are the
// gateways' own (no API key may publish there).
func (b *Bus) handlePeerLease(msg *nats.Msg) {
	ctx, cancel := context.WithTimeout(b.stopCtx, requestTimeout)
	defer cancel()
	req := &mxgatewayv1.SharedLeaseRequest{}
	reply := &mxgatewayv1.SharedLeaseReply{}
	if err := proto.Unmarshal(msg.Data, req); err != nil || !validConsumer(req.GetConsumer()) || len(req.GetReferences()) > MaxLeaseReferences {
		reply.Reason, reply.Message = mxgatewayv1.ReasonInvalidRequest, "not a peer's SharedLeaseRequest"
		b.respond(msg, false, reply)
		return
	}
	peer := req.GetConsumer()
	ttl := min(max(req.GetTtl().AsDuration(), time.Millisecond), b.opts.LeaseMax)
	f := filter{deadband: req.GetDeadband(), every: req.GetAtLeastEvery().AsDuration()}
	for _, name := range req.GetReferences() {
		e := &mxgatewayv1.SharedLeaseEntry{Reference: name}
		reply.Entries = append(reply.Entries, e)
		sbj, err := b.subj.Tag(name)
		if err != nil {
			e.Reason, e.Message = mxgatewayv1.ReasonInvalidRequest, err.Error()
			continue
		}
		e.Subject = sbj
		if req.GetRelease() {
			b.release(ctx, name, peerLeaseID(peer))
			continue
		}
		e.Last, e.Reason, e.Message = b.acquire(ctx, name, sbj, peerLeaseID(peer),
			leaseEntry{keyID: peer, peer: true, expires: time.Now().Add(ttl), filter: f})
	}
	b.respond(msg, false, reply)
}

// forwardWrite passes a write the gateway accepted to the owner of the
// reference, which holds its item: subject peer.<owner>.write.<key id>.<tag…>.
func (b *Bus) forwardWrite(ctx context.Context, owner, keyID, name string, req *mxgatewayv1.SharedWriteRequest) (*mxgatewayv1.SharedWriteReply, error) {
	sbj, err := b.subj.Write(keyID, name)
	if err != nil {
		return nil, err
	}
	data, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	msg, err := b.nc.RequestWithContext(rctx, b.peerWrite(owner)+"."+strings.TrimPrefix(sbj, b.subj.Prefix+"write."), data)
	if err != nil {
		return nil, err
	}
	rep := &mxgatewayv1.SharedWriteReply{}
	if err := proto.Unmarshal(msg.Data, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// handlePeerWrite runs a write another gateway accepted (it checked the
// key's write rights) on this gateway's item.
func (b *Bus) handlePeerWrite(msg *nats.Msg) {
	ctx, cancel := context.WithTimeout(b.stopCtx, requestTimeout)
	defer cancel()
	req := &mxgatewayv1.SharedWriteRequest{}
	reply := &mxgatewayv1.SharedWriteReply{}
	keyID, name, err := b.subj.ParseWrite(b.subj.Prefix + "write." + strings.TrimPrefix(msg.Subject, b.peerWrite(b.id)+"."))
	if err == nil {
		err = proto.Unmarshal(msg.Data, req)
	}
	if err != nil || req.GetValue() == nil {
		reply.Reason, reply.Message = mxgatewayv1.ReasonInvalidRequest, "not a peer's SharedWriteRequest"
		b.respond(msg, false, reply)
		return
	}
	reply.Reply, reply.Reason, reply.Message = b.write(ctx, keyID, name, req, false)
	b.respond(msg, false, reply)
}
