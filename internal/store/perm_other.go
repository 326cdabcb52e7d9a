//go:build !windows

package store

import "os"

// restrictToOwner makes dir accessible to its owner only.
func restrictToOwner(dir string) error {
	return os.Chmod(dir, 0o700)
}
