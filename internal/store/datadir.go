package store

import (
	"errors"
	"fmt"
	"os"
)

// DBFileName is the key store's file name inside the data directory.
const DBFileName = "mxgateway.db"

// EnsureDataDir creates dir (and its parents) when missing and restricts it
// to its owner: mode 0700 on Unix; on Windows a protected ACL granting access
// only to SYSTEM, Administrators and the current user. An existing directory
// keeps its contents; its permissions are tightened.
func EnsureDataDir(dir string) error {
	if dir == "" {
		return errors.New("store: empty data dir")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("store: create data dir: %w", err)
	}
	if err := restrictToOwner(dir); err != nil {
		return fmt.Errorf("store: restrict data dir %s: %w", dir, err)
	}
	return nil
}
