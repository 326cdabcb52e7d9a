package browse

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
)

// WatchQueue is how many changes a watcher may have waiting; past it the
// oldest is dropped and the next one delivered is marked Gap. A change
// holds the Galaxy description and the changed ids, never a snapshot, so
// a slow watcher keeps no old model alive.
const WatchQueue = 16

// ErrNoModel: the store has no snapshot yet.
var ErrNoModel = errors.New("browse: no Galaxy model yet")

// Change is one change of the model in force, or (first for a watcher)
// the current state.
type Change struct {
	// Seq numbers the store's changes: 1 for the first snapshot, one more
	// per change after.
	Seq uint64
	// Info describes the model in force after the change.
	Info *mxgatewayv1.GalaxyInfo
	// Changed lists the ids of the objects added, removed or changed
	// (object or attributes), ascending; nil for the current state and
	// for a change of freshness only.
	Changed []int32
	// Gap: changes before this one were dropped (the watcher was slow).
	Gap bool
}

// Store holds the snapshot in force and numbers its changes for
// watchers. The zero value holds none.
type Store struct {
	cur atomic.Pointer[Snapshot]

	mu   sync.Mutex // orders Set and Watch: a watcher gets every change after its first state, once
	seq  uint64
	subs map[*Watch]struct{}
}

// Set puts s in force. It never blocks on a watcher.
func (st *Store) Set(s *Snapshot) {
	st.mu.Lock()
	defer st.mu.Unlock()
	prev := st.cur.Swap(s)
	if prev == s {
		return
	}
	st.seq++
	c := Change{Seq: st.seq, Info: s.Info(), Changed: diff(prev, s)}
	for w := range st.subs {
		w.push(c)
	}
}

// Load returns the snapshot in force, nil before the first.
func (st *Store) Load() *Snapshot { return st.cur.Load() }

// Watch starts a watcher: its first change is the current state, then
// every change after it. ErrNoModel before the first snapshot. Close it
// when done.
func (st *Store) Watch() (*Watch, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.cur.Load()
	if s == nil {
		return nil, ErrNoModel
	}
	w := &Watch{st: st, ready: make(chan struct{}, 1)}
	w.push(Change{Seq: st.seq, Info: s.Info()})
	if st.subs == nil {
		st.subs = map[*Watch]struct{}{}
	}
	st.subs[w] = struct{}{}
	return w, nil
}

// Watch is one watcher of a Store.
type Watch struct {
	st    *Store
	ready chan struct{} // a token while queue is not empty

	mu    sync.Mutex
	queue []Change
}

func (w *Watch) push(c Change) {
	w.mu.Lock()
	if len(w.queue) == WatchQueue {
		w.queue = slices.Delete(w.queue, 0, 1)
		w.queue[0].Gap = true
	}
	w.queue = append(w.queue, c)
	w.mu.Unlock()
	select {
	case w.ready <- struct{}{}:
	default:
	}
}

// Next returns the next change, waiting for one until ctx ends.
func (w *Watch) Next(ctx context.Context) (Change, error) {
	for {
		w.mu.Lock()
		if len(w.queue) > 0 {
			c := w.queue[0]
			w.queue = slices.Delete(w.queue, 0, 1)
			w.mu.Unlock()
			return c, nil
		}
		w.mu.Unlock()
		select {
		case <-w.ready:
		case <-ctx.Done():
			return Change{}, ctx.Err()
		}
	}
}

// Close ends the watcher.
func (w *Watch) Close() {
	w.st.mu.Lock()
	delete(w.st.subs, w)
	w.st.mu.Unlock()
}

// diff returns the ids of the objects added, removed or changed from
// prev to s, ascending (nil when none, or prev is nil). Snapshots that
// share their tree (a change of freshness) compare node by pointer.
func diff(prev, s *Snapshot) []int32 {
	if prev == nil {
		return nil
	}
	var out []int32
	for id, n := range s.byID {
		if p, ok := prev.byID[id]; !ok || (p != n && !sameNode(p, n)) {
			out = append(out, id)
		}
	}
	for id := range prev.byID {
		if _, ok := s.byID[id]; !ok {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func sameNode(a, b *node) bool {
	return proto.Equal(a.obj, b.obj) && slices.EqualFunc(a.attrs, b.attrs, func(x, y *mxgatewayv1.GalaxyAttribute) bool {
		return proto.Equal(x, y)
	})
}

// VisibleIDs returns the ids the viewer may know of: all of them without
// read constraints; else those of objects in s that the viewer may see
// (it, or an object below it, holds something the viewer may read).
func (s *Snapshot) VisibleIDs(v Viewer, ids []int32) []int32 {
	if v.Allow == nil {
		return ids
	}
	q := &query{s: s, v: v, permit: map[*node]bool{}, shown: map[*node]bool{}}
	var out []int32
	for _, id := range ids {
		if n := s.byID[id]; n != nil && q.showIgnoringFilter(n) {
			out = append(out, id)
		}
	}
	return out
}
