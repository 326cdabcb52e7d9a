package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// EnvDataDir is the environment variable that overrides the data directory.
const EnvDataDir = "MXGATEWAY_DATA_DIR"

// DBFileName is the key store's file name inside the data directory.
const DBFileName = "mxgateway.db"

// DefaultDataDir returns the directory serve and the apikey command use when
// none is configured: $MXGATEWAY_DATA_DIR when set; on Windows
// %ProgramData%\mxgateway; elsewhere $XDG_STATE_HOME/mxgateway, falling back
// to ~/.local/state/mxgateway.
func DefaultDataDir() (string, error) {
	return defaultDataDir(runtime.GOOS, os.Getenv, os.UserHomeDir)
}

func defaultDataDir(goos string, getenv func(string) string, home func() (string, error)) (string, error) {
	if d := getenv(EnvDataDir); d != "" {
		return d, nil
	}
	if goos == "windows" {
		if d := getenv("ProgramData"); d != "" {
			return filepath.Join(d, "mxgateway"), nil
		}
		return `C:\ProgramData\mxgateway`, nil
	}
	if d := getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "mxgateway"), nil
	}
	h, err := home()
	if err != nil {
		return "", fmt.Errorf("store: default data dir: %w", err)
	}
	if h == "" {
		return "", errors.New("store: default data dir: no home directory")
	}
	return filepath.Join(h, ".local", "state", "mxgateway"), nil
}

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
