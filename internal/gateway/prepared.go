package gateway

import (
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/session"
)

// Bounds of the encodings shared between the streams of one session.
const (
	// preparedSlots is how many recent events keep their encoding: streams
	// further apart than this encode for themselves.
	preparedSlots = 1024
	// maxPreparedBytes is the largest encoding kept; larger events are
	// encoded by every stream. With preparedSlots it bounds a session's
	// cache at 8 MiB.
	maxPreparedBytes = 8 << 10
)

// preparedCache shares the encoding of a session's events between its
// unbatched streams, so that an event is marshalled once however many
// subscribers it has: the first stream to send an event encodes it
// (grpc.PreparedMsg), the others send the same bytes. Slots are indexed by
// sequence and keyed by the event itself (every subscriber is offered the
// same *Event), so a slot reused by a later event, or a subscriber's own
// gap marker, is a miss, never a wrong message. Safe for concurrent use.
// The gateway registers no compressor, so every stream encodes alike.
type preparedCache struct {
	slots [preparedSlots]atomic.Pointer[preparedEntry]
	// encodes and hits count what the cache did (tests read them).
	encodes, hits atomic.Int64
}

type preparedEntry struct {
	ev  *mxgatewayv1.Event
	msg *grpc.PreparedMsg
}

// preparer encodes a response for a stream (the stream's sender; a fake
// in tests).
type preparer interface {
	size(*mxgatewayv1.StreamEventsResponse) int
	prepare(*mxgatewayv1.StreamEventsResponse, *grpc.PreparedMsg) error
}

// get returns the encoding of the unbatched, undelayed response carrying
// ev, made by p on a miss. A nil message with a nil error means "too large
// to share": the caller sends ev itself.
func (c *preparedCache) get(ev *mxgatewayv1.Event, p preparer) (*grpc.PreparedMsg, error) {
	slot := &c.slots[ev.GetSequence()%preparedSlots]
	if e := slot.Load(); e != nil && e.ev == ev {
		c.hits.Add(1)
		return e.msg, nil
	}
	resp := &mxgatewayv1.StreamEventsResponse{Event: ev}
	if p.size(resp) > maxPreparedBytes {
		return nil, nil
	}
	msg := &grpc.PreparedMsg{}
	if err := p.prepare(resp, msg); err != nil {
		return nil, err
	}
	c.encodes.Add(1)
	slot.Store(&preparedEntry{ev: ev, msg: msg})
	return msg, nil
}

// preparedCaches hands out one preparedCache per session while at least
// two of its streams are attached: a lone stream encodes as it sends,
// without the copy a PreparedMsg costs.
type preparedCaches struct {
	mu sync.Mutex
	m  map[*session.Session]*sharedPrepared
}

type sharedPrepared struct {
	streams int                           // under preparedCaches.mu
	cache   atomic.Pointer[preparedCache] // nil while fewer than two streams are attached
}

// current is the session's cache, or nil: encode as you send.
func (sp *sharedPrepared) current() *preparedCache {
	if sp == nil {
		return nil
	}
	return sp.cache.Load()
}

// attach registers a stream of s; detach unregisters it (safe to call
// twice).
func (pc *preparedCaches) attach(s *session.Session) (sp *sharedPrepared, detach func()) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.m == nil {
		pc.m = make(map[*session.Session]*sharedPrepared)
	}
	sp = pc.m[s]
	if sp == nil {
		sp = &sharedPrepared{}
		pc.m[s] = sp
	}
	sp.streams++
	if sp.streams == 2 {
		sp.cache.Store(&preparedCache{})
	}
	var once sync.Once
	detach = func() {
		once.Do(func() {
			pc.mu.Lock()
			defer pc.mu.Unlock()
			sp.streams--
			if sp.streams < 2 {
				sp.cache.Store(nil)
			}
			if sp.streams == 0 {
				delete(pc.m, s)
			}
		})
	}
	return sp, detach
}
