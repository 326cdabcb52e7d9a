package store

import "errors"

var (
	// ErrNotFound reports that no key has the given id.
	ErrNotFound = errors.New("store: not found")
	// ErrRevoked reports that the key is already revoked.
	ErrRevoked = errors.New("store: key revoked")
	// ErrExists reports that a key with the same id already exists.
	ErrExists = errors.New("store: key id already exists")
	// ErrSchemaTooNew reports a database migrated by a newer mxgateway.
	ErrSchemaTooNew = errors.New("store: database schema is newer than this binary")
)
