package auth

import (
	"context"
	"errors"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/internal/store"
)

// RevokedError is the cause of a context returned by WatchRevocation when
// its key was revoked (or rotated, or deleted from the store). It matches
// ErrKeyRevoked and converts to UNAUTHENTICATED with reason
// API_KEY_REVOKED.
type RevokedError struct{ KeyID string }

func (e *RevokedError) Error() string { return "auth: API key " + e.KeyID + " revoked" }

// Is matches ErrKeyRevoked.
func (e *RevokedError) Is(target error) bool { return target == ErrKeyRevoked }

// GRPCStatus returns UNAUTHENTICATED with reason API_KEY_REVOKED.
func (e *RevokedError) GRPCStatus() *status.Status {
	return statusWithInfo(codes.Unauthenticated, mxgatewayv1.ReasonAPIKeyRevoked, "API key revoked", nil)
}

// revocations ends the long-lived calls of revoked keys: watches by key id,
// fired at once by RevokeKey and RotateKey of this Manager, and by a poller
// that reads the store for the watched ids every poll interval (a key
// revoked by another process, such as the offline apikey command). The
// poller runs only while watches exist.
type revocations struct {
	poll time.Duration

	mu      sync.Mutex
	byKey   map[string]map[*revokeWatch]struct{}
	stop    chan struct{} // closes the running poller; nil when none runs
	stopped chan struct{} // closed when that poller returned
}

type revokeWatch struct {
	cancel context.CancelCauseFunc
}

// WatchRevocation returns a context derived from ctx that is cancelled with
// cause *RevokedError when key id is revoked: at once when this Manager
// revokes or rotates it, and within the key cache TTL when another process
// does. Call the returned function when the call ends; it stops the
// watch (and the poller once no watch is left) and waits for nothing but
// that.
func (m *Manager) WatchRevocation(ctx context.Context, id string) (context.Context, context.CancelFunc) {
	wctx, cancel := context.WithCancelCause(ctx)
	w := &revokeWatch{cancel: cancel}
	r := &m.revoked
	r.mu.Lock()
	if r.byKey == nil {
		r.byKey = make(map[string]map[*revokeWatch]struct{})
	}
	set := r.byKey[id]
	if set == nil {
		set = make(map[*revokeWatch]struct{})
		r.byKey[id] = set
	}
	set[w] = struct{}{}
	if r.stop == nil {
		r.stop, r.stopped = make(chan struct{}), make(chan struct{})
		go m.pollRevocations(r.stop, r.stopped)
	}
	r.mu.Unlock()
	return wctx, func() {
		cancel(context.Canceled)
		var stopped chan struct{}
		r.mu.Lock()
		if set := r.byKey[id]; set != nil {
			delete(set, w)
			if len(set) == 0 {
				delete(r.byKey, id)
			}
		}
		if len(r.byKey) == 0 && r.stop != nil {
			close(r.stop)
			stopped = r.stopped
			r.stop, r.stopped = nil, nil
		}
		r.mu.Unlock()
		if stopped != nil {
			<-stopped
		}
	}
}

// Watched is the number of calls watched for revocation.
func (m *Manager) Watched() int {
	r := &m.revoked
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, set := range r.byKey {
		n += len(set)
	}
	return n
}

// fireRevoked ends every watched call of key id.
func (m *Manager) fireRevoked(id string) {
	r := &m.revoked
	r.mu.Lock()
	defer r.mu.Unlock()
	for w := range r.byKey[id] {
		w.cancel(&RevokedError{KeyID: id})
	}
}

// pollRevocations reads the watched keys from the store every poll
// interval until stop is closed.
func (m *Manager) pollRevocations(stop <-chan struct{}, stopped chan<- struct{}) {
	defer close(stopped)
	t := time.NewTicker(m.revoked.poll)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		r := &m.revoked
		r.mu.Lock()
		ids := make([]string, 0, len(r.byKey))
		for id := range r.byKey {
			ids = append(ids, id)
		}
		r.mu.Unlock()
		for _, id := range ids {
			ctx, cancel := context.WithTimeout(context.Background(), m.revoked.poll)
			k, err := m.store.GetKey(ctx, id)
			cancel()
			switch {
			case errors.Is(err, store.ErrNotFound), err == nil && k.Revoked():
				m.cache.invalidate(id)
				m.log.Info("auth: ending the calls of a key revoked elsewhere", logging.KeyKeyID, id)
				m.fireRevoked(id)
			case err != nil:
				m.log.Warn("auth: revocation check failed", logging.KeyKeyID, id, logging.KeyErr, err)
			}
		}
	}
}
