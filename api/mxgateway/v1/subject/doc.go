// Package subject names the NATS subjects, inbox and key-value bucket of
// shared subscriptions (docs/nats.md), and maps Galaxy references to subject
// tokens and back: every byte outside [A-Za-z0-9_-] of a dot-separated part
// becomes =XX (two upper-case hex digits), "=" itself included, so the
// mapping is reversible and its output is also a valid JetStream KV key.
//
// It is the one home of these names for the gateway (internal/natsbus) and
// the Go SDK (client.Shared).
package subject
