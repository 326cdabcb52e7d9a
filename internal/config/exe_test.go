package config

import (
	"debug/pe"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// fakePE returns the smallest image debug/pe accepts: a DOS header whose
// e_lfanew points at "PE\0\0" and a COFF file header for machine, with no
// optional header, sections or symbols.
func fakePE(machine uint16) []byte {
	const lfanew = 0x80
	b := make([]byte, lfanew+4+20)
	copy(b, "MZ")
	binary.LittleEndian.PutUint32(b[0x3c:], lfanew)
	copy(b[lfanew:], "PE\x00\x00")
	binary.LittleEndian.PutUint16(b[lfanew+4:], machine)
	return b
}

func TestCheckWorkerExecutable(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask-proof
			t.Fatal(err)
		}
		return p
	}
	pe386 := file("mxworker386.exe", fakePE(pe.IMAGE_FILE_MACHINE_I386), 0o755)
	peAMD64 := file("mxworker64.exe", fakePE(pe.IMAGE_FILE_MACHINE_AMD64), 0o755)
	elf := file("worker-elf", []byte("\x7fELF\x02\x01\x01rest-of-an-elf"), 0o755)
	noExec := file("worker-noexec", []byte("\x7fELF\x02\x01\x01"), 0o644)
	truncatedPE := file("broken.exe", []byte("MZ\x00\x00"), 0o755)
	empty := file("empty", nil, 0o755)

	tests := []struct {
		name    string
		path    string
		backend Backend
		goos    string
		ok      bool
		want    string // substring of the error
	}{
		{"mxaccess 386 PE", pe386, BackendMXAccess, "linux", true, ""},
		{"mxaccess 386 PE on windows", pe386, BackendMXAccess, "windows", true, ""},
		{"mxaccess amd64 PE", peAMD64, BackendMXAccess, "windows", false, "built for amd64"},
		{"mxaccess ELF", elf, BackendMXAccess, "linux", false, "not a Windows executable"},
		{"mxaccess truncated PE", truncatedPE, BackendMXAccess, "windows", false, "not a valid PE image"},
		{"mxaccess empty file", empty, BackendMXAccess, "windows", false, "not a Windows executable"},
		{"sim ELF", elf, BackendSim, "linux", true, ""},
		{"sim without execute bit", noExec, BackendSim, "linux", false, "not executable"},
		{"sim amd64 PE on windows", peAMD64, BackendSim, "windows", true, ""},
		{"sim ELF on windows", elf, BackendSim, "windows", false, "not a Windows executable"},
		{"missing", filepath.Join(dir, "nope"), BackendSim, "linux", false, "does not exist"},
		{"directory", dir, BackendSim, "linux", false, "not a regular file"},
		{"empty path", "", BackendSim, "linux", false, "no path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if runtime.GOOS == "windows" && tc.goos != "windows" && tc.backend == BackendSim {
				t.Skip("Windows files have no execute bit")
			}
			err := checkWorkerExecutable(tc.path, tc.backend, tc.goos)
			if tc.ok {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrBadWorkerExecutable) {
				t.Fatalf("err = %v, want ErrBadWorkerExecutable", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %q does not say %q", err, tc.want)
			}
		})
	}
}

// TestCheckWorkerExecutableSelf checks the test binary itself, the way the
// gateway checks its own executable for sim workers.
func TestCheckWorkerExecutableSelf(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	if err := CheckWorkerExecutable(self, BackendSim); err != nil {
		t.Fatal(err)
	}
}
