package auth

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"log/slog"
)

// Key format constants.
const (
	// KeyPrefix starts every API key.
	KeyPrefix = "mxgw_"
	// KeyIDLen is the length of the public id: 10 random bytes in lowercase
	// base32 (a-z, 2-7).
	KeyIDLen = 16
	// SecretBytes is the size of the random secret.
	SecretBytes = 32
	// secretLen is SecretBytes in unpadded base64.
	secretLen = 43
	// KeyLen is the length of a whole key.
	KeyLen = len(KeyPrefix) + KeyIDLen + 1 + secretLen
)

var (
	idEncoding     = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
	secretEncoding = base64.RawURLEncoding.Strict()
)

// redacted is what every secret-bearing type prints.
const redacted = "REDACTED"

// RawKey is a complete API key, mxgw_<id>_<secret>. Printing, logging or
// JSON-encoding it yields REDACTED; Reveal returns the key itself for the
// single place that must show it.
type RawKey string

// Reveal returns the key text. Call it only to show the key once.
func (k RawKey) Reveal() string { return string(k) }

// String returns REDACTED.
func (k RawKey) String() string { return redacted }

// GoString returns REDACTED.
func (k RawKey) GoString() string { return redacted }

// LogValue returns REDACTED.
func (k RawKey) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText returns REDACTED, so encoders never leak the key.
func (k RawKey) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Credential is a parsed key: its public id and its secret.
type Credential struct {
	// ID is the public key id.
	ID     string
	secret []byte
}

// String returns REDACTED.
func (c Credential) String() string { return redacted }

// GoString returns REDACTED.
func (c Credential) GoString() string { return redacted }

// LogValue logs the key id only.
func (c Credential) LogValue() slog.Value {
	return slog.GroupValue(slog.String("key_id", c.ID), slog.String("secret", redacted))
}

// ParseKey checks that raw is a well-formed key and splits it. It touches no
// database, so malformed input is rejected cheaply. The error never contains
// any part of raw.
func ParseKey(raw string) (Credential, error) {
	if len(raw) != KeyLen || raw[:len(KeyPrefix)] != KeyPrefix {
		return Credential{}, ErrMalformedKey
	}
	id := raw[len(KeyPrefix) : len(KeyPrefix)+KeyIDLen]
	if raw[len(KeyPrefix)+KeyIDLen] != '_' {
		return Credential{}, ErrMalformedKey
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return Credential{}, ErrMalformedKey
		}
	}
	// The id must be canonical base32 of 10 bytes (16 chars, no spare bits).
	if b, err := idEncoding.DecodeString(id); err != nil || len(b) != 10 {
		return Credential{}, ErrMalformedKey
	}
	secret, err := secretEncoding.DecodeString(raw[len(KeyPrefix)+KeyIDLen+1:])
	if err != nil || len(secret) != SecretBytes {
		return Credential{}, ErrMalformedKey
	}
	return Credential{ID: id, secret: secret}, nil
}

// FormatKey assembles a key from its id and secret.
func FormatKey(id string, secret []byte) RawKey {
	return RawKey(KeyPrefix + id + "_" + secretEncoding.EncodeToString(secret))
}

// NewKeyID returns a fresh random public key id.
func NewKeyID() (string, error) {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("auth: key id: %w", err)
	}
	return idEncoding.EncodeToString(b[:]), nil
}

// newSecret returns SecretBytes random bytes.
func newSecret() ([]byte, error) {
	b := make([]byte, SecretBytes)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("auth: key secret: %w", err)
	}
	return b, nil
}

// IsKeyID reports whether id has the form of a key id.
func IsKeyID(id string) bool {
	if len(id) != KeyIDLen {
		return false
	}
	b, err := idEncoding.DecodeString(id)
	return err == nil && len(b) == 10 && idEncoding.EncodeToString(b) == id
}
