package runtime

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mxgateway/mxgateway/internal/galaxy/wire"
)

// WriteKey creates a fresh credential in dir (file mode 0600, named
// wire.KeyFileName) and returns it. It lives with the runtime, which owns
// its directory, rather than in package wire, which every sim worker links:
// a worker only reads keys, and crypto/rand would bring the FIPS module's
// DRBG, AES, SHA-2 and SHA-3 into it (docs/performance.md, "Lean
// workers").
func WriteKey(dir string) ([]byte, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	p := filepath.Join(dir, wire.KeyFileName)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("galaxy: write key: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return nil, fmt.Errorf("galaxy: write key: %w", err)
	}
	return key, nil
}
