package config

import (
	"testing"
	"time"

	"github.com/mxgateway/mxgateway/internal/auth"
	"github.com/mxgateway/mxgateway/internal/gateway"
	"github.com/mxgateway/mxgateway/internal/protocol"
	"github.com/mxgateway/mxgateway/internal/session"
	"github.com/mxgateway/mxgateway/internal/worker"
	"github.com/mxgateway/mxgateway/internal/workerclient"
)

// TestDefaultsAreTheComponents: every default the configuration shares with
// a component is the component's own, so a component that changes its
// default changes the configured one. A literal in defaults() that repeats
// a component's value, or a component default written twice, fails here as
// soon as the two disagree.
func TestDefaultsAreTheComponents(t *testing.T) {
	c := Default()
	ints := []struct {
		key       string
		got, want int64
	}{
		{"max_sessions", int64(c.MaxSessions), session.DefaultMaxSessions},
		{"max_pending_commands", int64(c.MaxPendingCommands), session.DefaultMaxPendingCommands},
		{"max_subscribers", int64(c.MaxSubscribers), session.DefaultMaxSubscribers},
		{"subscriber_queue", int64(c.SubscriberQueue), session.DefaultSubscriberQueue},
		{"subscriber_queue_bytes", int64(c.SubscriberQueueBytes), session.DefaultSubscriberQueueBytes},
		{"replay_size", int64(c.ReplaySize), session.DefaultReplaySize},
		{"replay_bytes", int64(c.ReplayBytes), session.DefaultReplayBytes},
		{"event_buffer", int64(c.EventBuffer), workerclient.DefaultEventBuffer},
		{"event_buffer_bytes", int64(c.EventBufferBytes), workerclient.DefaultEventBufferBytes},
		{"worker_event_queue", int64(c.WorkerEventQueue), worker.DefaultEventQueueSize},
		{"worker_event_queue_bytes", int64(c.WorkerEventQueueBytes), worker.DefaultEventQueueBytes},
		{"max_frame_bytes", int64(c.MaxFrameBytes), protocol.DefaultMaxFrameBytes},
		// The gateway's gRPC bounds: config cannot import the gateway (mxctl
		// links config), so the two are kept equal here.
		{"max_message_bytes", int64(c.MaxMessageBytes), gateway.DefaultMaxMessageBytes},
		{"max_header_list_bytes", int64(c.MaxHeaderListBytes), gateway.DefaultMaxHeaderListBytes},
		{"max_concurrent_streams", int64(c.MaxConcurrentStreams), gateway.DefaultMaxConcurrentStreams},
		{"max_health_watches", int64(c.MaxHealthWatches), gateway.DefaultMaxHealthWatches},
	}
	for _, tc := range ints {
		if tc.got != tc.want {
			t.Errorf("%s defaults to %d, the component's default is %d", tc.key, tc.got, tc.want)
		}
	}
	durs := []struct {
		key       string
		got, want time.Duration
	}{
		{"command_timeout", c.CommandTimeout, session.DefaultCommandTimeout},
		{"lease", c.Lease, session.DefaultLease},
		{"detach_grace", c.DetachGrace, session.DefaultDetachGrace},
		{"replay_age", c.ReplayAge, session.DefaultReplayAge},
		{"subscriber_stall_timeout", c.SubscriberStallTimeout, session.DefaultSubscriberStallTimeout},
		{"shutdown_timeout", c.ShutdownTimeout, session.DefaultCloseTimeout},
		{"startup_timeout", c.StartupTimeout, protocol.DefaultStartupTimeout},
		{"heartbeat_interval", c.HeartbeatInterval, protocol.DefaultHeartbeatInterval},
		{"heartbeat_grace", c.HeartbeatGrace, protocol.DefaultHeartbeatGrace},
		{"heartbeat_ceiling", c.HeartbeatCeiling, protocol.DefaultHeartbeatCeiling},
		{"stream_write_timeout", c.StreamWriteTimeout, gateway.DefaultStreamWriteTimeout},
		{"max_connection_idle", c.MaxConnectionIdle, gateway.DefaultMaxConnectionIdle},
		{"credential_backoff", c.CredentialBackoff, auth.DefaultCredentialBackoff},
		{"credential_backoff_max", c.CredentialBackoffMax, auth.DefaultCredentialBackoffMax},
	}
	for _, tc := range durs {
		if tc.got != tc.want {
			t.Errorf("%s defaults to %v, the component's default is %v", tc.key, tc.got, tc.want)
		}
	}
	if string(c.SlowConsumerPolicy) != string(session.DefaultSlowConsumerPolicy) {
		t.Errorf("slow_consumer_policy defaults to %s, the session's default is %s", c.SlowConsumerPolicy, session.DefaultSlowConsumerPolicy)
	}
}
