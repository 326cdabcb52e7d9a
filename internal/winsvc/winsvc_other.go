//go:build !windows

package winsvc

import (
	"context"
	"log/slog"
)

// IsWindowsService reports whether the process runs under the Windows
// service control manager: never, on this system.
func IsWindowsService() (bool, error) { return false, nil }

// Install returns ErrNotSupported on this system.
func Install(name, exePath string, args []string) error { return ErrNotSupported }

// Uninstall returns ErrNotSupported on this system.
func Uninstall(name string) error { return ErrNotSupported }

// Start returns ErrNotSupported on this system.
func Start(name string) error { return ErrNotSupported }

// Stop returns ErrNotSupported on this system.
func Stop(name string) error { return ErrNotSupported }

// Run returns ErrNotSupported on this system.
func Run(name string, run func(ctx context.Context) error) error { return ErrNotSupported }

// OpenEventLog returns ErrNotSupported on this system.
func OpenEventLog(source string, level slog.Leveler) (*EventLog, error) { return nil, ErrNotSupported }
