package auth

import (
	"context"
	"slices"
)

// AnonymousKeyID is the key id of the principal used when auth is disabled.
const AnonymousKeyID = "anonymous"

// Constraints restricts the references a key may use. An empty list allows
// every reference.
type Constraints struct {
	// AllowRead holds the patterns allowed for AddItem, AddItem2,
	// AddBufferedItem, AddItemBulk, SubscribeBulk and ReadBulk.
	AllowRead []string
	// AllowWrite holds the patterns allowed for Write, Write2, WriteSecured,
	// WriteSecured2 and their bulk forms.
	AllowWrite []string
}

// Principal is an authenticated caller: the key and what it may do.
type Principal struct {
	// KeyID is the key's public id (AnonymousKeyID when auth is off).
	KeyID string
	// Name is the key's display name.
	Name string
	// Scopes are the granted scopes.
	Scopes []Scope
	// Constraints restrict the references the key may use.
	Constraints Constraints
	// Anonymous is true when auth is disabled (auth=none).
	Anonymous bool

	read, write patternSet
}

// NewPrincipal builds a principal, compiling its constraints.
func NewPrincipal(keyID, name string, scopes []Scope, c Constraints) *Principal {
	return &Principal{
		KeyID:       keyID,
		Name:        name,
		Scopes:      slices.Clone(scopes),
		Constraints: Constraints{AllowRead: slices.Clone(c.AllowRead), AllowWrite: slices.Clone(c.AllowWrite)},
		read:        compileSet(c.AllowRead),
		write:       compileSet(c.AllowWrite),
	}
}

// anonymousPrincipal is the admin principal of auth=none.
func anonymousPrincipal() *Principal {
	p := NewPrincipal(AnonymousKeyID, "anonymous (auth=none)", []Scope{ScopeAdmin}, Constraints{})
	p.Anonymous = true
	return p
}

// Has reports whether p holds scope s; admin holds every scope. A nil
// principal holds none.
func (p *Principal) Has(s Scope) bool {
	if p == nil || s == "" {
		return false
	}
	return slices.Contains(p.Scopes, s) || slices.Contains(p.Scopes, ScopeAdmin)
}

// IsAdmin reports whether p holds the admin scope.
func (p *Principal) IsAdmin() bool { return p.Has(ScopeAdmin) }

// AllowRead reports whether p may add, subscribe to or read ref.
func (p *Principal) AllowRead(ref string) bool {
	return p != nil && p.read.allows(ref)
}

// AllowWrite reports whether p may write to ref.
func (p *Principal) AllowWrite(ref string) bool {
	return p != nil && p.write.allows(ref)
}

// HasWriteConstraints reports whether p's writes are restricted, that is
// whether the gateway must resolve item handles to references for writes.
func (p *Principal) HasWriteConstraints() bool { return p != nil && len(p.write) > 0 }

// HasReadConstraints reports whether p's reads are restricted.
func (p *Principal) HasReadConstraints() bool { return p != nil && len(p.read) > 0 }

// CanAccessSession reports whether p may invoke on, stream or close a
// session opened by the key ownerKeyID: its owner and admin keys may.
func CanAccessSession(p *Principal, ownerKeyID string) bool {
	if p == nil {
		return false
	}
	return p.IsAdmin() || (ownerKeyID != "" && p.KeyID == ownerKeyID)
}

type principalKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal the interceptors put on ctx.
func FromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}
