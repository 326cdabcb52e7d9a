// Package shared is the Go SDK for mxgateway's shared subscriptions on NATS
// (docs/nats.md): values of references that the gateway advises once,
// whatever the number of consumers, delivered over NATS with the same typed
// values (client.Value, client.Quality) as the gRPC API, and writes through
// the gateway's request/reply subjects.
//
// A Client is one NATS connection authenticated with an mxgateway API key.
// Subscribe subscribes to the value subjects first, then declares a lease
// (so the first value after the gateway's advise is not missed), delivers
// each reference's last known value from the lease reply, then every new
// one, and renews the lease at half its length until Close.
//
// It is a package of its own so that programs using only the gRPC API
// (package client) do not link nats.go.
package shared
