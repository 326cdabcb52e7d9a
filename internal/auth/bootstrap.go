package auth

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/mxgateway/mxgateway/internal/store"
)

// AdminKeyFileName is the file in the data directory that holds the
// first-run admin key, readable only by its owner.
const AdminKeyFileName = "admin.key"

// BootstrapKeyName is the display name of the first-run admin key.
const BootstrapKeyName = "bootstrap admin"

// AdminKeyPath returns the path of the first-run admin key file.
func AdminKeyPath(dataDir string) string { return filepath.Join(dataDir, AdminKeyFileName) }

// EnsureBootstrapKey creates an admin key when the store has no keys at all
// (revoked keys count, so revoking every key never resurrects one), writes it
// to dataDir/admin.key with owner-only permissions (the directory is
// restricted too) and returns it with created = true. The caller prints it
// once, with instructions. When keys exist it does nothing and returns
// created = false. The file holds the key and a newline.
func EnsureBootstrapKey(ctx context.Context, m *Manager, dataDir string) (raw RawKey, created bool, err error) {
	n, err := m.store.CountKeys(ctx, false)
	if err != nil {
		return "", false, err
	}
	if n > 0 {
		return "", false, nil
	}
	if err := store.EnsureDataDir(dataDir); err != nil {
		return "", false, err
	}
	raw, _, err = m.createKey(ctx, KeySpec{Name: BootstrapKeyName, Scopes: []Scope{ScopeAdmin}},
		Actor{KeyID: "local:serve"}, ActionBootstrap, true)
	if err != nil {
		return "", false, err
	}
	if raw == "" { // another process won the race
		return "", false, nil
	}
	if err := writeFileReplace(AdminKeyPath(dataDir), []byte(raw.Reveal()+"\n")); err != nil {
		return raw, true, fmt.Errorf("auth: write %s: %w", AdminKeyPath(dataDir), err)
	}
	return raw, true, nil
}
