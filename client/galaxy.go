package client

import "errors"

// Errors of the Galaxy service (Client.Galaxy).
var (
	// ErrObjectNotFound: the selector names no object the key may see.
	ErrObjectNotFound = errors.New("client: Galaxy object not found")
	// ErrPageTokenStale: the page token was made before the last deploy;
	// start the listing again.
	ErrPageTokenStale = errors.New("client: page token stale (the Galaxy was deployed since)")
)
