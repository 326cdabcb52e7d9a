//go:build windows && !winetest

package winsvc

import "golang.org/x/sys/windows/svc"

// isWindowsService is x/sys's check: the parent process is services.exe in
// session 0 (the .NET heuristic).
func isWindowsService() (bool, error) { return svc.IsWindowsService() }
