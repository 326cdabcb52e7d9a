//go:build windows

package auth

// checkPepperPath checks nothing on Windows: the data directory's ACL
// (store.EnsureDataDir) protects the generated pepper, and an explicit
// pepper file's ACL is the operator's.
func checkPepperPath(string) error { return nil }
