package auth

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/mxgateway/mxgateway/internal/store"
)

// Pepper environment variables and the default file name.
const (
	// EnvPepper holds the pepper itself (same format as the file).
	EnvPepper = "MXGATEWAY_PEPPER"
	// EnvPepperFile names a file holding the pepper.
	EnvPepperFile = "MXGATEWAY_PEPPER_FILE"
	// PepperFileName is the pepper file generated in the data directory.
	PepperFileName = "pepper"
	// minPepperBytes is the shortest pepper accepted.
	minPepperBytes = 32
)

// Peppers holds the HMAC keys by version. New secrets are hashed with the
// highest version; a key remembers its version, so adding a new version
// rotates the pepper without invalidating existing keys. It prints REDACTED.
type Peppers struct {
	byVersion map[int][]byte
	current   int
	source    string
}

// Current returns the version new keys are hashed with.
func (p *Peppers) Current() int { return p.current }

// Source says where the peppers came from (for logs; no secret).
func (p *Peppers) Source() string { return p.source }

// String returns REDACTED.
func (p *Peppers) String() string { return redacted }

// LogValue logs the current version and source only.
func (p *Peppers) LogValue() slog.Value {
	return slog.GroupValue(slog.Int("current_version", p.current), slog.String("source", p.source), slog.String("pepper", redacted))
}

// MAC returns HMAC-SHA256(pepper[version], secret).
func (p *Peppers) MAC(version int, secret []byte) ([]byte, bool) {
	key, ok := p.byVersion[version]
	if !ok {
		return nil, false
	}
	h := hmac.New(sha256.New, key)
	h.Write(secret)
	return h.Sum(nil), true
}

// ParsePeppers reads the pepper format: one pepper per line as
// "<version>:<base64>", or a single bare "<base64>" line meaning version 1.
// Blank lines and lines starting with '#' are ignored. Standard or URL-safe
// base64, padded or not; each pepper must decode to at least 32 bytes.
func ParsePeppers(data []byte) (*Peppers, error) {
	p := &Peppers{byVersion: make(map[int][]byte)}
	sc := bufio.NewScanner(bytes.NewReader(data))
	line, bare := 0, 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		version := 1
		if v, rest, ok := strings.Cut(text, ":"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("auth: pepper line %d: version must be a positive number", line)
			}
			version, text = n, strings.TrimSpace(rest)
		} else {
			bare++
		}
		key, err := decodeBase64(text)
		if err != nil {
			return nil, fmt.Errorf("auth: pepper line %d: not base64", line)
		}
		if len(key) < minPepperBytes {
			return nil, fmt.Errorf("auth: pepper line %d: %d bytes, need at least %d", line, len(key), minPepperBytes)
		}
		if _, dup := p.byVersion[version]; dup {
			return nil, fmt.Errorf("auth: pepper line %d: version %d given twice", line, version)
		}
		p.byVersion[version] = key
		p.current = max(p.current, version)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("auth: read pepper: %w", err)
	}
	if len(p.byVersion) == 0 {
		return nil, errors.New("auth: pepper is empty")
	}
	if bare > 0 && len(p.byVersion) > 1 {
		return nil, errors.New("auth: pepper: give every line a version when there is more than one")
	}
	return p, nil
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.StdEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// PepperConfig says where the pepper comes from. In order: File; then the
// MXGATEWAY_PEPPER_FILE environment variable; then MXGATEWAY_PEPPER; then
// DataDir/pepper, generated (mode 0600) when missing.
type PepperConfig struct {
	// File is an explicit pepper file (config or flag); it must exist.
	File string
	// DataDir is where the default pepper file lives or is generated.
	DataDir string
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
}

// LoadPeppers loads the pepper as PepperConfig describes. A pepper file that
// other users can read or write, that is a symbolic link, or that lies in a
// directory others can change is refused (Unix), like ssh does for keys
// (see checkPepperPath).
func LoadPeppers(cfg PepperConfig) (*Peppers, error) {
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if cfg.File != "" {
		return loadPepperFile(cfg.File, "file "+cfg.File)
	}
	if f := getenv(EnvPepperFile); f != "" {
		return loadPepperFile(f, "file "+f+" (from "+EnvPepperFile+")")
	}
	if v := getenv(EnvPepper); v != "" {
		p, err := ParsePeppers([]byte(v))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvPepper, err)
		}
		p.source = "environment " + EnvPepper
		return p, nil
	}
	if cfg.DataDir == "" {
		return nil, errors.New("auth: no pepper: set a pepper file, " + EnvPepper + " or a data directory")
	}
	path := filepath.Join(cfg.DataDir, PepperFileName)
	p, err := loadPepperFile(path, "file "+path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return p, err
	}
	return generatePepper(cfg.DataDir, path)
}

func loadPepperFile(path, source string) (*Peppers, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("auth: pepper file: %w", err)
	}
	if err := checkPepperPath(path); err != nil {
		return nil, err
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("auth: pepper file %s is accessible by other users (mode %04o); run chmod 600 on it", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: pepper file: %w", err)
	}
	p, err := ParsePeppers(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	p.source = source
	return p, nil
}

func generatePepper(dir, path string) (*Peppers, error) {
	if err := store.EnsureDataDir(dir); err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("auth: generate pepper: %w", err)
	}
	content := "# mxgateway pepper: the HMAC key for API-key secrets. Keep it secret and back it\n" +
		"# up with the database: without it no stored key verifies. To rotate, add a line\n" +
		"# with a higher version; keys keep the version they were created with.\n" +
		"1:" + base64.RawURLEncoding.EncodeToString(key) + "\n"
	if err := writeFileExclusive(path, []byte(content)); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process generated it first; use theirs.
			return loadPepperFile(path, "file "+path)
		}
		return nil, fmt.Errorf("auth: create pepper file: %w", err)
	}
	p := &Peppers{byVersion: map[int][]byte{1: key}, current: 1, source: "generated file " + path}
	return p, nil
}
