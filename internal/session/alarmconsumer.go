package session

import (
	"context"
	"fmt"
	"time"

	workerv1 "github.com/mxgateway/mxgateway/api/mxgateway/worker/v1"
)

// AlarmConsumerWorker is a Worker that can carry the gateway-internal
// requests of the native alarm consumer (workerclient.Client is one).
type AlarmConsumerWorker interface {
	// HasAlarmConsumer reports whether the worker's backend has the
	// native alarm consumer.
	HasAlarmConsumer() bool
	// AlarmConsumer sends one request and waits for its reply.
	AlarmConsumer(ctx context.Context, req *workerv1.AlarmConsumerRequest, timeout time.Duration) (*workerv1.AlarmConsumerReply, error)
}

// HasAlarmConsumer reports whether the session's worker has the native
// alarm consumer.
func (s *Session) HasAlarmConsumer() bool {
	w, ok := s.w.(AlarmConsumerWorker)
	return ok && w.HasAlarmConsumer()
}

// AlarmConsumer sends one request to the worker's native alarm consumer.
// Only the gateway's alarm monitor calls it: no public API reaches it. It
// counts against MaxPendingCommands like a command; a timeout of 0 uses
// the manager's default. A worker without the consumer fails with
// ErrNoAlarmConsumer.
func (s *Session) AlarmConsumer(ctx context.Context, req *workerv1.AlarmConsumerRequest, timeout time.Duration) (*workerv1.AlarmConsumerReply, error) {
	w, ok := s.w.(AlarmConsumerWorker)
	if !ok || !w.HasAlarmConsumer() {
		return nil, fmt.Errorf("%w: session %s", ErrNoAlarmConsumer, s.id)
	}
	opts := &s.m.opts
	unanswered := s.w.Unanswered()
	s.mu.Lock()
	if err := s.usableLocked(); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if err := s.pendingRoomLocked(unanswered); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	s.pending++
	s.lastActivity = opts.Now()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.pending--
		s.lastActivity = opts.Now()
		s.mu.Unlock()
	}()
	if timeout <= 0 {
		timeout = opts.CommandTimeout
	}
	return w.AlarmConsumer(ctx, req, timeout)
}
