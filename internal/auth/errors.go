package auth

import "errors"

var (
	// ErrNoKey reports a call without credentials.
	ErrNoKey = errors.New("auth: missing API key")
	// ErrMalformedKey reports credentials that are not a well-formed key.
	ErrMalformedKey = errors.New("auth: malformed API key")
	// ErrInvalidKey reports an unknown key id or a wrong secret; the two are
	// deliberately indistinguishable.
	ErrInvalidKey = errors.New("auth: invalid API key")
	// ErrKeyRevoked reports a revoked key (only a caller holding the right
	// secret can learn this).
	ErrKeyRevoked = errors.New("auth: API key revoked")
	// ErrPermissionDenied reports a valid key that lacks the needed scope.
	ErrPermissionDenied = errors.New("auth: permission denied")
	// ErrReferenceNotAllowed reports a reference outside the key's
	// constraints.
	ErrReferenceNotAllowed = errors.New("auth: reference not allowed")
	// ErrNotSessionOwner reports access to a session opened by another key.
	ErrNotSessionOwner = errors.New("auth: session belongs to another key")
	// ErrInvalidSpec reports a bad key name, scope or pattern.
	ErrInvalidSpec = errors.New("auth: invalid key specification")
	// ErrKeyNotFound reports an admin operation on an unknown key id.
	ErrKeyNotFound = errors.New("auth: key not found")
	// ErrAlreadyRevoked reports revoking or rotating a revoked key.
	ErrAlreadyRevoked = errors.New("auth: key already revoked")
)
