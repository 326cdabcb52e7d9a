//go:build !windows

package auth

import (
	"os"
	"path/filepath"
	"testing"
)

// TestPepperPathChecked: like ssh with its keys, a pepper file is refused
// when it is a symbolic link, or when a directory on its path can be
// changed by other users (group or world writable without the sticky
// bit, or owned by another user); a sticky world-writable directory such
// as /tmp is fine.
func TestPepperPathChecked(t *testing.T) {
	write := func(t *testing.T, dir string) string {
		t.Helper()
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "pepper")
		if err := os.WriteFile(p, []byte("1:"+b64(32)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	load := func(p string) error {
		_, err := LoadPeppers(PepperConfig{File: p, Getenv: func(string) string { return "" }})
		return err
	}
	t.Run("owner-only path", func(t *testing.T) {
		if err := load(write(t, filepath.Join(t.TempDir(), "a", "b"))); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("symbolic link", func(t *testing.T) {
		dir := t.TempDir()
		real := write(t, filepath.Join(dir, "real"))
		link := filepath.Join(dir, "link")
		if err := os.Symlink(real, link); err != nil {
			t.Fatal(err)
		}
		if err := load(link); err == nil {
			t.Fatal("a symbolic link was accepted")
		}
	})
	for name, mode := range map[string]os.FileMode{"world writable": 0o777, "group writable": 0o770} {
		t.Run(name+" directory", func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "open")
			p := write(t, filepath.Join(dir, "inner"))
			if err := os.Chmod(dir, mode); err != nil {
				t.Fatal(err)
			}
			if err := load(p); err == nil {
				t.Fatalf("a pepper below a %04o directory was accepted", mode)
			}
		})
	}
	t.Run("sticky world writable directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "sticky")
		p := write(t, filepath.Join(dir, "inner"))
		if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
			t.Fatal(err)
		}
		if err := load(p); err != nil {
			t.Fatalf("a sticky directory was refused: %v", err)
		}
	})
	t.Run("directory of another user", func(t *testing.T) {
		if os.Getuid() != 0 {
			t.Skip("needs root to give a directory away")
		}
		dir := filepath.Join(t.TempDir(), "theirs")
		p := write(t, filepath.Join(dir, "inner"))
		if err := os.Chown(dir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if err := load(p); err == nil {
			t.Fatal("a pepper below another user's directory was accepted")
		}
	})
}
