package auth

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func b64(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func TestParsePeppers(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		current int
		ok      bool
	}{
		{"bare std base64", b64(32), 1, true},
		{"bare url raw", base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 40)), 1, true},
		{"versions", "# c\n1:" + b64(32) + "\n\n3:" + b64(48) + "\n", 3, true},
		{"too short", b64(16), 0, false},
		{"empty", "# nothing\n", 0, false},
		{"bad version", "x:" + b64(32), 0, false},
		{"zero version", "0:" + b64(32), 0, false},
		{"dup version", "2:" + b64(32) + "\n2:" + b64(32), 0, false},
		{"bare plus versioned", b64(32) + "\n2:" + b64(32), 0, false},
		{"not base64", "1:!!!!" + strings.Repeat("a", 50), 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePeppers([]byte(tc.in))
			if !tc.ok {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Current() != tc.current {
				t.Fatalf("current = %d, want %d", p.Current(), tc.current)
			}
		})
	}
}

func TestPepperVersionsHashDifferently(t *testing.T) {
	p, err := ParsePeppers([]byte("1:" + b64(32) + "\n2:" + b64(32)))
	if err != nil {
		t.Fatal(err)
	}
	a, ok1 := p.MAC(1, []byte("s"))
	b, ok2 := p.MAC(2, []byte("s"))
	if !ok1 || !ok2 || bytes.Equal(a, b) {
		t.Fatal("versions must give different MACs")
	}
	if _, ok := p.MAC(3, []byte("s")); ok {
		t.Fatal("unknown version hashed")
	}
}

func TestLoadPeppersGeneratesOnceAndReuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	noenv := func(string) string { return "" }
	p1, err := LoadPeppers(PepperConfig{DataDir: dir, Getenv: noenv})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, PepperFileName)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("pepper mode %v, want 0600", fi.Mode().Perm())
	}
	p2, err := LoadPeppers(PepperConfig{DataDir: dir, Getenv: noenv})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := p1.MAC(1, []byte("x"))
	b, _ := p2.MAC(1, []byte("x"))
	if !bytes.Equal(a, b) {
		t.Fatal("second load generated a new pepper")
	}
	if !strings.Contains(p2.Source(), path) {
		t.Fatalf("source %q", p2.Source())
	}
}

func TestLoadPeppersPrecedence(t *testing.T) {
	dir := t.TempDir()
	fileA := filepath.Join(dir, "a")
	fileB := filepath.Join(dir, "b")
	for _, f := range []string{fileA, fileB} {
		if err := os.WriteFile(f, []byte("1:"+b64(32)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	envVal := "1:" + b64(32)
	env := map[string]string{EnvPepperFile: fileB, EnvPepper: envVal}
	getenv := func(k string) string { return env[k] }
	mac := func(p *Peppers) []byte { m, _ := p.MAC(1, []byte("x")); return m }
	load := func(cfg PepperConfig) *Peppers {
		t.Helper()
		cfg.Getenv = getenv
		p, err := LoadPeppers(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	fromA := load(PepperConfig{File: fileA, DataDir: dir})
	fromB := load(PepperConfig{DataDir: dir})
	delete(env, EnvPepperFile)
	fromEnv := load(PepperConfig{DataDir: dir})
	if bytes.Equal(mac(fromA), mac(fromB)) || bytes.Equal(mac(fromB), mac(fromEnv)) {
		t.Fatal("precedence File > MXGATEWAY_PEPPER_FILE > MXGATEWAY_PEPPER not honoured")
	}
	want, _ := ParsePeppers([]byte(envVal))
	if !bytes.Equal(mac(fromEnv), mac(want)) {
		t.Fatal("MXGATEWAY_PEPPER not used")
	}
	if _, err := os.Stat(filepath.Join(dir, PepperFileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("a pepper was generated although one was configured")
	}
	// An explicit file that does not exist is an error, never generated.
	if _, err := LoadPeppers(PepperConfig{File: filepath.Join(dir, "missing"), DataDir: dir, Getenv: getenv}); err == nil {
		t.Fatal("missing explicit pepper file accepted")
	}
}

func TestLoadPeppersRefusesSharedFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix permissions")
	}
	f := filepath.Join(t.TempDir(), "pepper")
	if err := os.WriteFile(f, []byte("1:"+b64(32)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPeppers(PepperConfig{File: f}); err == nil {
		t.Fatal("world-readable pepper accepted")
	}
}
