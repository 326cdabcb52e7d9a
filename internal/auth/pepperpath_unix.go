//go:build !windows

package auth

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// checkPepperPath checks the whole path of a pepper file the way ssh
// checks its keys: the file is no symbolic link and is owned by this user
// (or root), and no directory on the way to it, as written or with its
// symbolic links resolved, can be changed by anybody else: each is owned
// by this user or root and writable by neither its group nor others,
// unless it has the sticky bit (like /tmp), which keeps others from
// replacing what they do not own.
func checkPepperPath(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("auth: pepper file: %w", err)
	}
	fi, err := os.Lstat(abs)
	if err != nil {
		return fmt.Errorf("auth: pepper file: %w", err)
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("auth: pepper file %s is a symbolic link; name the file itself", path)
	}
	if err := checkOwner(abs, fi); err != nil {
		return err
	}
	dirs := []string{filepath.Dir(abs)}
	if real, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil && real != dirs[0] {
		dirs = append(dirs, real)
	}
	for _, dir := range dirs {
		for d := dir; ; d = filepath.Dir(d) {
			if err := checkPepperDir(d, path); err != nil {
				return err
			}
			if parent := filepath.Dir(d); parent == d {
				break
			}
		}
	}
	return nil
}

// checkPepperDir checks one directory on the way to the pepper file.
func checkPepperDir(dir, pepper string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("auth: pepper file %s: %w", pepper, err)
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return nil // its target is checked with the resolved path, its directory next
	}
	if err := checkOwner(dir, fi); err != nil {
		return fmt.Errorf("%w (on the way to the pepper file %s)", err, pepper)
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0 {
		return fmt.Errorf("auth: directory %s on the way to the pepper file %s is writable by other users (mode %04o); run chmod go-w on it",
			dir, pepper, fi.Mode().Perm())
	}
	return nil
}

// checkOwner refuses a file or directory owned by somebody other than this
// user or root.
func checkOwner(path string, fi os.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uid := uint32(os.Getuid()); st.Uid != 0 && st.Uid != uid {
		return fmt.Errorf("auth: %s is owned by user %d, not by this user (%d) or root", path, st.Uid, uid)
	}
	return nil
}
