package runtime_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/mxgateway/mxgateway/internal/galaxy/runtime"
	"github.com/mxgateway/mxgateway/internal/galaxy/wire"
)

func TestWriteKey(t *testing.T) {
	dir := t.TempDir()
	k, err := runtime.WriteKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(k) != 32 {
		t.Fatalf("key of %d bytes, want 32", len(k))
	}
	fi, err := os.Stat(filepath.Join(dir, wire.KeyFileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", fi.Mode().Perm(), err)
	}
	got, err := wire.ReadKey(dir)
	if err != nil || !bytes.Equal(got, k) || !wire.KeyEqual(got, k) {
		t.Fatalf("ReadKey = %x, %v; want %x", got, err, k)
	}
	again, err := runtime.WriteKey(dir)
	if err != nil || bytes.Equal(again, k) {
		t.Fatalf("a second key %x (%v) equals the first", again, err)
	}
}
