package session

import (
	"time"

	"github.com/mxgateway/mxgateway/internal/protocol"
)

// ring is the replay ring of one session: the most recent events, bounded by
// count (size), by bytes (maxBytes, the events' frame sizes) and by age. It
// holds events with contiguous sequence numbers, oldest first, so an event's
// position follows from its sequence. It grows on demand up to size so idle
// sessions stay small. The newest event is always kept, even when it alone
// is larger than maxBytes. Not safe for concurrent use: the owning Session's
// mu guards it.
type ring struct {
	size     int
	maxBytes int64
	buf      []ringEntry
	start    int // index of the oldest entry
	n        int
	bytes    int64
}

type ringEntry struct {
	ev   *protocol.Event
	size int
	at   time.Time // gateway receive time, for the age bound
}

const ringInitial = 64

func newRing(size int, maxBytes int64) *ring {
	return &ring{size: size, maxBytes: maxBytes, buf: make([]ringEntry, min(size, ringInitial))}
}

// push appends ev (size bytes), evicting the oldest entries while the ring
// is full by count or would exceed its byte bound. It reports how many
// entries were evicted.
func (r *ring) push(ev *protocol.Event, size int, at time.Time) (evicted int) {
	for r.n > 0 && r.bytes+int64(size) > r.maxBytes {
		r.dropOldest()
		evicted++
	}
	if r.n == len(r.buf) && len(r.buf) < r.size {
		r.grow()
	}
	if r.n == len(r.buf) {
		r.dropOldest()
		evicted++
	}
	r.buf[(r.start+r.n)%len(r.buf)] = ringEntry{ev: ev, size: size, at: at}
	r.n++
	r.bytes += int64(size)
	return evicted
}

func (r *ring) dropOldest() {
	r.bytes -= int64(r.buf[r.start].size)
	r.buf[r.start] = ringEntry{}
	r.start = (r.start + 1) % len(r.buf)
	r.n--
}

func (r *ring) grow() {
	nb := make([]ringEntry, min(2*len(r.buf), r.size))
	for i := range r.n {
		nb[i] = r.buf[(r.start+i)%len(r.buf)]
	}
	r.buf, r.start = nb, 0
}

// trimBefore drops entries received before cutoff and reports how many.
func (r *ring) trimBefore(cutoff time.Time) int {
	dropped := 0
	for r.n > 0 && r.buf[r.start].at.Before(cutoff) {
		r.dropOldest()
		dropped++
	}
	return dropped
}

// len is the number of events held.
func (r *ring) len() int { return r.n }

// heldBytes is the frame bytes of the events held.
func (r *ring) heldBytes() int64 { return r.bytes }

// firstSeq is the sequence of the oldest event held; ok is false when the
// ring is empty.
func (r *ring) firstSeq() (seq uint64, ok bool) {
	if r.n == 0 {
		return 0, false
	}
	return r.buf[r.start].ev.Sequence, true
}

// since returns the held events with a sequence above after, oldest first,
// in a new slice.
func (r *ring) since(after uint64) []*protocol.Event {
	first, ok := r.firstSeq()
	if !ok {
		return nil
	}
	skip := 0
	if after >= first {
		skip = int(after - first + 1)
	}
	if skip >= r.n {
		return nil
	}
	out := make([]*protocol.Event, 0, r.n-skip)
	for i := skip; i < r.n; i++ {
		out = append(out, r.buf[(r.start+i)%len(r.buf)].ev)
	}
	return out
}
