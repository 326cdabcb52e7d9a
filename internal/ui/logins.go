package ui

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"sync"
	"time"

	"github.com/mxgateway/mxgateway/internal/auth"
)

// tokenBytes is the entropy of a session cookie and of a CSRF token.
const tokenBytes = 32

// errLoginsFull refuses a login while the table is at its bound.
var errLoginsFull = errors.New("too many dashboard logins; try again when one ends")

// login is one entry of the server-side session table: who logged in and
// with what, and the CSRF token its forms carry. The credential is kept
// (never the raw key) so that every request can verify the key again.
type login struct {
	id       [sha256.Size]byte // sha256 of the cookie value
	keyID    string
	keyName  string
	cred     auth.Credential
	csrf     string
	created  time.Time
	lastSeen time.Time

	mu      sync.Mutex
	watch   *watcher // the watch panel's session, nil until used
	streams int      // live streams open (at most MaxStreamsPerLogin)
}

// logins is the bounded session table.
type logins struct {
	idle, max time.Duration
	limit     int
	now       func() time.Time

	mu sync.Mutex
	m  map[[sha256.Size]byte]*login
}

func newLogins(idle, max time.Duration, limit int, now func() time.Time) *logins {
	return &logins{idle: idle, max: max, limit: limit, now: now, m: make(map[[sha256.Size]byte]*login)}
}

func randomToken() string {
	b := make([]byte, tokenBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashToken(tok string) [sha256.Size]byte { return sha256.Sum256([]byte(tok)) }

// add creates a login and returns its cookie value. Expired entries are
// swept first; a full table refuses with errLoginsFull.
func (l *logins) add(keyID, keyName string, cred auth.Credential) (string, *login, []*login, error) {
	now := l.now()
	tok := randomToken()
	lg := &login{id: hashToken(tok), keyID: keyID, keyName: keyName, cred: cred, csrf: randomToken(), created: now, lastSeen: now}
	l.mu.Lock()
	defer l.mu.Unlock()
	ended := l.sweepLocked(now)
	if len(l.m) >= l.limit {
		return "", nil, ended, errLoginsFull
	}
	l.m[lg.id] = lg
	return tok, lg, ended, nil
}

// get returns the live login of a cookie value and marks it used; an
// expired one is removed and returned in ended.
func (l *logins) get(tok string) (lg *login, ended *login) {
	if tok == "" {
		return nil, nil
	}
	id := hashToken(tok)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	lg = l.m[id]
	if lg == nil {
		return nil, nil
	}
	if l.expiredLocked(lg, now) {
		delete(l.m, id)
		return nil, lg
	}
	lg.lastSeen = now
	return lg, nil
}

// remove ends a login (logout, revoked key); it returns it, or nil.
func (l *logins) remove(lg *login) *login {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m[lg.id] != lg {
		return nil
	}
	delete(l.m, lg.id)
	return lg
}

// removeKey ends every login of a key and returns them.
func (l *logins) removeKey(keyID string) []*login {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*login
	for id, lg := range l.m {
		if lg.keyID == keyID {
			delete(l.m, id)
			out = append(out, lg)
		}
	}
	return out
}

// sweep removes expired logins and returns them.
func (l *logins) sweep() []*login {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sweepLocked(l.now())
}

func (l *logins) sweepLocked(now time.Time) []*login {
	var out []*login
	for id, lg := range l.m {
		if l.expiredLocked(lg, now) {
			delete(l.m, id)
			out = append(out, lg)
		}
	}
	return out
}

func (l *logins) expiredLocked(lg *login, now time.Time) bool {
	return now.Sub(lg.lastSeen) >= l.idle || now.Sub(lg.created) >= l.max
}

// all returns every login, for Close.
func (l *logins) all() []*login {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*login, 0, len(l.m))
	for id, lg := range l.m {
		delete(l.m, id)
		out = append(out, lg)
	}
	return out
}

// len is the number of logins held.
func (l *logins) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// tokenEqual compares two tokens in constant time; an empty one never
// matches.
func tokenEqual(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// peek reports whether lg is still held and live, marking it used (a live
// page counts as use); an expired one is removed and returned in ended.
func (l *logins) peek(lg *login) (live *login, ended *login) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m[lg.id] != lg {
		return nil, nil
	}
	if l.expiredLocked(lg, now) {
		delete(l.m, lg.id)
		return nil, lg
	}
	lg.lastSeen = now
	return lg, nil
}
