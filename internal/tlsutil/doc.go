// Package tlsutil provides the gateway's TLS material: certificate and key
// files given by the operator, or a self-signed certificate (ECDSA P-256)
// generated into the data directory on first use, reused across restarts and
// regenerated when it expires, nears expiry or no longer covers the
// configured names. Clients pin that certificate (or any CA file) with
// ClientConfig.
package tlsutil
