package ipc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// Listener accepts connections on one per-session endpoint.
type Listener interface {
	// Accept waits for and returns the next connection.
	Accept() (net.Conn, error)
	// Close stops listening and removes the endpoint (on Unix the socket and
	// its directory). It is safe to call more than once.
	Close() error
	// Endpoint is the address a worker passes to Dial.
	Endpoint() string
}

// DefaultDialTimeout bounds Dial when its context has no deadline.
const DefaultDialTimeout = 10 * time.Second

// maxSessionIDLen keeps endpoint names well inside platform limits.
const maxSessionIDLen = 128

// Sentinel errors.
var (
	// ErrInvalidSessionID is returned by Listen for an empty, overlong or
	// non-[A-Za-z0-9_-] session id (the id becomes part of a file or pipe
	// name).
	ErrInvalidSessionID = errors.New("ipc: invalid session id")
	// ErrUnsafeRuntimeDir is returned by Listen when the runtime directory
	// is not a directory owned by the current user and closed to others.
	ErrUnsafeRuntimeDir = errors.New("ipc: unsafe runtime directory")
	// ErrNoPeerPID is returned by PeerPID when the connection type or
	// platform cannot report the peer's process id.
	ErrNoPeerPID = errors.New("ipc: peer pid unavailable")
	// ErrEndpointInUse is returned by ListenNamed when a live process
	// already serves the endpoint.
	ErrEndpointInUse = errors.New("ipc: endpoint in use")
	// ErrPeerUser is returned by CheckPeerUser when the peer runs as
	// another user or its user cannot be read.
	ErrPeerUser = errors.New("ipc: peer is not the current user")
)

func validateSessionID(id string) error {
	if id == "" || len(id) > maxSessionIDLen {
		return fmt.Errorf("%w: length %d", ErrInvalidSessionID, len(id))
	}
	for _, c := range id {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
		if !ok {
			return fmt.Errorf("%w: character %q", ErrInvalidSessionID, c)
		}
	}
	return nil
}

// dialRetry calls dial until it succeeds, fails with a non-retryable error,
// or ctx ends. A worker may race the listener on some platforms, so a
// missing or busy endpoint is retried with a short backoff.
func dialRetry(ctx context.Context, dial func(context.Context) (net.Conn, error), retryable func(error) bool) (net.Conn, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultDialTimeout)
		defer cancel()
	}
	wait := 5 * time.Millisecond
	for {
		c, err := dial(ctx)
		if err == nil {
			return c, nil
		}
		if !retryable(err) {
			return nil, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("ipc: dial: %w (last error: %v)", ctx.Err(), err)
		case <-t.C:
		}
		if wait < 200*time.Millisecond {
			wait *= 2
		}
	}
}
