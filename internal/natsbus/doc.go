// Package natsbus publishes shared subscriptions on NATS: one MXAccess advise
// per reference, held by a gateway-owned session, fanned out to any number of
// NATS consumers (docs/nats.md).
//
// The gateway either embeds a NATS server with JetStream (mode embedded) or
// connects to an existing NATS system (mode external). In the embedded
// server, NATS clients authenticate with mxgateway API keys through the
// server's custom authentication hook, and a key's scopes and reference
// constraints become its subject permissions (Permissions), so NATS opens
// no way around what the gRPC API enforces.
//
// Consumers declare interest with leases (request/reply on
// mxgw.v1.<galaxy>.subscribe.<key id>); the Bus reference-counts leases per
// reference, advises a reference once while any lease holds it, and releases
// it when the last one lapses. Each OnDataChange becomes one core-NATS
// publish on mxgw.v1.<galaxy>.tag.<Tag>.<Attribute...> (Subjects) and, off the
// event path, one put into the last-value key-value bucket. The worker is
// never back-pressured by NATS: publishing only appends to the connection's
// buffer, the session subscription conflates per item, and slow NATS
// consumers are cut by the NATS server.
//
// Subject tokens escape every byte outside [A-Za-z0-9_-] as =XX (two
// upper-case hex digits), "=" itself included (EscapeReference,
// UnescapeReference).
package natsbus
