// Package auth authenticates and authorises gateway callers.
//
// API keys look like mxgw_<id>_<secret>: id is a short public lookup id and
// secret is 32 random bytes in URL-safe base64 without padding. The store
// keeps only HMAC-SHA256(pepper, secret); the pepper lives outside the
// database (a file or an environment variable). Verification is parse →
// look up by id → recompute → hmac.Equal → revocation check → Principal.
// Keys that verified are cached by id for a few seconds (the store is not
// read again, the secret's HMAC is still compared); revoking or rotating
// through the Manager drops the entry at once.
//
// One table (scopes.go) maps every gRPC method and every Invoke command kind
// to exactly one scope; anything not in it is denied. Keys may carry
// reference constraints (glob patterns for read/subscribe and for write),
// which the gateway applies per entry with CheckCommand, and sessions belong
// to the key that opened them (CanAccessSession).
//
// Guard holds the gRPC interceptors; AdminServer implements the
// mxgateway.v1.Admin service; EnsureBootstrapKey creates the first admin
// key. Secrets never reach a log: every secret-bearing type prints REDACTED.
package auth
