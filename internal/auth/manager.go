package auth

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/internal/store"
)

// Audit actions written by the key lifecycle.
const (
	ActionCreate    = "apikey.create"
	ActionRevoke    = "apikey.revoke"
	ActionRotate    = "apikey.rotate"
	ActionBootstrap = "apikey.bootstrap"
)

// CLIActor is the audit actor of the offline apikey command.
const CLIActor = "local:cli"

// MaxNameLen caps a key's display name in bytes.
const MaxNameLen = 128

// ManagerConfig configures NewManager.
type ManagerConfig struct {
	// Store is the key store (required).
	Store *store.Store
	// Peppers hash the secrets (required).
	Peppers *Peppers
	// Logger receives lifecycle messages; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// KeyCacheTTL is how long a verified key is trusted without reading the
	// store again: a key revoked by another process (the offline apikey
	// command) keeps working for at most this long, and its open streams
	// end within this long. Revocation and rotation through this Manager
	// take effect at once. 0 means
	// DefaultKeyCacheTTL; a negative value disables the cache.
	KeyCacheTTL time.Duration
	// KeyCacheSize bounds the number of cached keys; 0 means
	// DefaultKeyCacheSize.
	KeyCacheSize int
}

// Manager verifies keys and runs the key lifecycle (create, list, rotate,
// revoke) with auditing. It is safe for concurrent use and starts nothing.
// Verified keys are cached for ManagerConfig.KeyCacheTTL. While calls are
// watched for revocation (WatchRevocation) one goroutine polls the store.
type Manager struct {
	store   *store.Store
	peppers *Peppers
	log     *slog.Logger
	now     func() time.Time
	dummy   []byte    // compared against on unknown ids, so they cost the same
	cache   *keyCache // nil when disabled
	revoked revocations
}

// NewManager validates cfg and returns a Manager.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	if cfg.Store == nil || cfg.Peppers == nil {
		return nil, errors.New("auth: manager needs a store and peppers")
	}
	m := &Manager{store: cfg.Store, peppers: cfg.Peppers, log: cfg.Logger, now: cfg.Now,
		cache: newKeyCache(cfg.KeyCacheTTL, cfg.KeyCacheSize)}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.now == nil {
		m.now = time.Now
	}
	m.dummy = make([]byte, 32)
	m.revoked.poll = DefaultKeyCacheTTL
	if cfg.KeyCacheTTL > 0 {
		m.revoked.poll = cfg.KeyCacheTTL
	}
	return m, nil
}

// Store returns the key store.
func (m *Manager) Store() *store.Store { return m.store }

// Authenticate verifies a raw key: parse (no database access for malformed
// input) → look up by id → recompute the HMAC → hmac.Equal → revocation
// check. Unknown ids and wrong secrets both give ErrInvalidKey after the
// same work. On success the key's last use is recorded in memory only.
//
// A key that verified within the cache TTL is not looked up again: its
// stored HMAC and principal come from the cache, and the presented secret's
// HMAC is still compared with hmac.Equal, so a wrong secret is never
// accepted. The returned Principal may be shared between calls; callers
// must not modify it.
func (m *Manager) Authenticate(ctx context.Context, raw string) (*Principal, error) {
	cred, err := ParseKey(raw)
	if err != nil {
		return nil, err
	}
	return m.AuthenticateCredential(ctx, cred)
}

// AuthenticateCredential is Authenticate for an already parsed key.
func (m *Manager) AuthenticateCredential(ctx context.Context, cred Credential) (*Principal, error) {
	now := m.now()
	if e, ok := m.cache.get(cred.ID, now); ok {
		mac, ok := m.peppers.MAC(e.pepperVersion, cred.secret)
		if !ok || !hmac.Equal(mac, e.mac) {
			return nil, ErrInvalidKey
		}
		m.store.TouchLastUsed(cred.ID, now)
		return e.principal, nil
	}
	gen := m.cache.generation()
	k, err := m.store.GetKey(ctx, cred.ID)
	if errors.Is(err, store.ErrNotFound) {
		mac, _ := m.peppers.MAC(m.peppers.Current(), cred.secret)
		_ = hmac.Equal(mac, m.dummy)
		return nil, ErrInvalidKey
	}
	if err != nil {
		return nil, fmt.Errorf("auth: look up key: %w", err)
	}
	mac, ok := m.peppers.MAC(k.PepperVersion, cred.secret)
	if !ok {
		m.log.Error("auth: key hashed with a pepper version that is not loaded",
			logging.KeyKeyID, k.ID, "pepper_version", k.PepperVersion)
		return nil, ErrInvalidKey
	}
	if !hmac.Equal(mac, k.SecretHMAC) {
		return nil, ErrInvalidKey
	}
	if k.Revoked() {
		return nil, ErrKeyRevoked
	}
	p := principalOf(k)
	m.cache.put(k.ID, &cachedKey{mac: k.SecretHMAC, pepperVersion: k.PepperVersion, principal: p}, gen, now)
	m.store.TouchLastUsed(k.ID, now)
	return p, nil
}

func principalOf(k store.Key) *Principal {
	scopes := make([]Scope, 0, len(k.Scopes))
	for _, s := range k.Scopes {
		scopes = append(scopes, Scope(s))
	}
	return NewPrincipal(k.ID, k.Name, scopes, Constraints{AllowRead: k.AllowRead, AllowWrite: k.AllowWrite})
}

// KeySpec describes a key to create.
type KeySpec struct {
	// Name is the display name (required, at most MaxNameLen bytes).
	Name string
	// Scopes to grant (at least one; duplicates are dropped).
	Scopes []Scope
	// AllowRead and AllowWrite are the reference constraints.
	Constraints Constraints
}

// Actor identifies who runs a lifecycle operation, for the audit log.
type Actor struct {
	// KeyID is the acting key (CLIActor for the offline command).
	KeyID string
	// RemoteAddr is the caller's address, when remote.
	RemoteAddr string
}

// normalize validates spec and returns it cleaned up.
func (spec KeySpec) normalize() (KeySpec, error) {
	var errs []error
	name := strings.TrimSpace(spec.Name)
	switch {
	case name == "":
		errs = append(errs, fmt.Errorf("%w: name is required", ErrInvalidSpec))
	case len(name) > MaxNameLen:
		errs = append(errs, fmt.Errorf("%w: name longer than %d bytes", ErrInvalidSpec, MaxNameLen))
	case !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl):
		errs = append(errs, fmt.Errorf("%w: name has control characters or bad UTF-8", ErrInvalidSpec))
	}
	var scopes []Scope
	for _, s := range spec.Scopes {
		sc, err := ParseScope(string(s))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	if len(spec.Scopes) == 0 {
		errs = append(errs, fmt.Errorf("%w: at least one scope is required", ErrInvalidSpec))
	}
	for label, list := range map[string][]string{"allow-read": spec.Constraints.AllowRead, "allow-write": spec.Constraints.AllowWrite} {
		if len(list) > MaxPatterns {
			errs = append(errs, fmt.Errorf("%w: more than %d %s patterns", ErrInvalidSpec, MaxPatterns, label))
		}
		for _, p := range list {
			if err := ValidatePattern(p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return KeySpec{}, err
	}
	return KeySpec{
		Name:   name,
		Scopes: scopes,
		Constraints: Constraints{
			AllowRead:  slices.Clone(spec.Constraints.AllowRead),
			AllowWrite: slices.Clone(spec.Constraints.AllowWrite),
		},
	}, nil
}

// newMaterial returns a fresh id, secret and HMAC.
func (m *Manager) newMaterial() (id string, raw RawKey, mac []byte, err error) {
	id, err = NewKeyID()
	if err != nil {
		return "", "", nil, err
	}
	secret, err := newSecret()
	if err != nil {
		return "", "", nil, err
	}
	mac, ok := m.peppers.MAC(m.peppers.Current(), secret)
	if !ok {
		return "", "", nil, errors.New("auth: current pepper missing")
	}
	return id, FormatKey(id, secret), mac, nil
}

// CreateKey creates a key and returns the raw key, which exists nowhere
// else: show it once. The creation is audited in the same transaction.
func (m *Manager) CreateKey(ctx context.Context, spec KeySpec, actor Actor) (RawKey, store.Key, error) {
	return m.createKey(ctx, spec, actor, ActionCreate, false)
}

func (m *Manager) createKey(ctx context.Context, spec KeySpec, actor Actor, action string, onlyFirst bool) (RawKey, store.Key, error) {
	spec, err := spec.normalize()
	if err != nil {
		m.audit(ctx, actor, action, "", store.OutcomeFailed, err.Error())
		return "", store.Key{}, err
	}
	id, raw, mac, err := m.newMaterial()
	if err != nil {
		return "", store.Key{}, err
	}
	scopes := make([]string, len(spec.Scopes))
	for i, s := range spec.Scopes {
		scopes[i] = string(s)
	}
	k := store.Key{
		ID:            id,
		Name:          spec.Name,
		SecretHMAC:    mac,
		PepperVersion: m.peppers.Current(),
		Scopes:        scopes,
		AllowRead:     spec.Constraints.AllowRead,
		AllowWrite:    spec.Constraints.AllowWrite,
		CreatedAt:     time.UnixMilli(m.now().UnixMilli()).UTC(),
	}
	ev := &store.AuditEvent{
		Time: k.CreatedAt, ActorKeyID: actor.KeyID, Action: action, Target: id,
		Outcome: store.OutcomeOK, RemoteAddr: actor.RemoteAddr,
		Detail: fmt.Sprintf("name=%q scopes=%s allow_read=%d allow_write=%d", k.Name, strings.Join(scopes, ","), len(k.AllowRead), len(k.AllowWrite)),
	}
	if onlyFirst {
		created, err := m.store.CreateFirstKey(ctx, k, ev)
		if err != nil {
			return "", store.Key{}, err
		}
		if !created {
			return "", store.Key{}, nil
		}
	} else if err := m.store.CreateKey(ctx, k, ev); err != nil {
		return "", store.Key{}, err
	}
	m.log.Info("auth: API key created", logging.KeyKeyID, id, "name", k.Name, "scopes", scopes, "actor", actor.KeyID)
	return raw, k, nil
}

// RotateKey replaces key id with a new key (new id and secret, same name,
// scopes and constraints, RotatedFrom = id) and revokes id at once. It
// returns the new raw key: show it once.
func (m *Manager) RotateKey(ctx context.Context, id string, actor Actor) (RawKey, store.Key, error) {
	nid, raw, mac, err := m.newMaterial()
	if err != nil {
		return "", store.Key{}, err
	}
	now := time.UnixMilli(m.now().UnixMilli()).UTC()
	ev := &store.AuditEvent{
		Time: now, ActorKeyID: actor.KeyID, Action: ActionRotate, Target: id,
		Outcome: store.OutcomeOK, RemoteAddr: actor.RemoteAddr, Detail: "replaced by " + nid,
	}
	k, err := m.store.RotateKey(ctx, id, store.Key{ID: nid, SecretHMAC: mac, PepperVersion: m.peppers.Current(), CreatedAt: now}, ev)
	m.cache.invalidate(id) // after the store: a concurrent lookup then sees the revocation
	m.fireRevoked(id)
	if err != nil {
		err = lifecycleErr(err)
		m.audit(ctx, actor, ActionRotate, id, store.OutcomeFailed, err.Error())
		return "", store.Key{}, err
	}
	m.log.Info("auth: API key rotated", logging.KeyKeyID, id, "new_key_id", nid, "actor", actor.KeyID)
	return raw, k, nil
}

// RevokeKey revokes key id at once. Revoking a revoked key returns the key
// and an error matching ErrAlreadyRevoked.
func (m *Manager) RevokeKey(ctx context.Context, id string, actor Actor) (store.Key, error) {
	now := m.now()
	ev := &store.AuditEvent{
		Time: now, ActorKeyID: actor.KeyID, Action: ActionRevoke, Target: id,
		Outcome: store.OutcomeOK, RemoteAddr: actor.RemoteAddr,
	}
	k, err := m.store.RevokeKey(ctx, id, now, ev)
	m.cache.invalidate(id) // after the store: a concurrent lookup then sees the revocation
	if err == nil || errors.Is(err, store.ErrRevoked) {
		m.fireRevoked(id) // its open streams end now
	}
	if err != nil {
		err = lifecycleErr(err)
		if !errors.Is(err, ErrAlreadyRevoked) {
			m.audit(ctx, actor, ActionRevoke, id, store.OutcomeFailed, err.Error())
		}
		return k, err
	}
	m.log.Info("auth: API key revoked", logging.KeyKeyID, id, "actor", actor.KeyID)
	return k, nil
}

// lifecycleErr maps store errors to auth sentinels.
func lifecycleErr(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: %w", ErrKeyNotFound, err)
	case errors.Is(err, store.ErrRevoked):
		return fmt.Errorf("%w: %w", ErrAlreadyRevoked, err)
	}
	return err
}

// ListKeys returns every key, oldest first.
func (m *Manager) ListKeys(ctx context.Context) ([]store.Key, error) {
	return m.store.ListKeys(ctx)
}

// ListAudit returns audit events.
func (m *Manager) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
	return m.store.ListAudit(ctx, f)
}

// audit appends a row outside any transaction; failures are logged.
func (m *Manager) audit(ctx context.Context, actor Actor, action, target, outcome, detail string) {
	err := m.store.AppendAudit(context.WithoutCancel(ctx), store.AuditEvent{
		Time: m.now(), ActorKeyID: actor.KeyID, Action: action, Target: target,
		Outcome: outcome, Detail: detail, RemoteAddr: actor.RemoteAddr,
	})
	if err != nil {
		m.log.Warn("auth: audit write failed", "action", action, logging.KeyErr, err)
	}
}

// Audit appends one audit row for an action taken outside the key
// lifecycle (the dashboard's logins, session closes and worker kills);
// a failed write is logged, not returned.
func (m *Manager) Audit(ctx context.Context, actor Actor, action, target, outcome, detail string) {
	m.audit(ctx, actor, action, target, outcome, detail)
}
