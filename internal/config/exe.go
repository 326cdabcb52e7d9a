package config

import (
	"bytes"
	"debug/pe"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
)

// ErrBadWorkerExecutable is wrapped by every CheckWorkerExecutable failure.
var ErrBadWorkerExecutable = errors.New("config: bad worker executable")

// CheckWorkerExecutable checks that path can be launched as a worker for
// backend: it exists, is a regular file, and is executable. The real
// MXAccess worker must be a Windows PE image for 386 (machine 0x14c),
// because MXAccess is a 32-bit in-process COM server; that is checked on
// every OS, so a wrong build is caught before deployment. On Windows, any
// worker must be a PE image. Elsewhere a non-PE file needs an execute bit.
//
// The error wraps ErrBadWorkerExecutable and says what is wrong in words
// an operator can act on.
func CheckWorkerExecutable(path string, backend Backend) error {
	return checkWorkerExecutable(path, backend, runtime.GOOS)
}

func checkWorkerExecutable(path string, backend Backend, goos string) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadWorkerExecutable, fmt.Sprintf(format, args...))
	}
	if path == "" {
		return fail("no path given")
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fail("%s does not exist", path)
		}
		return fail("%s cannot be opened: %v", path, errors.Unwrap(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fail("%s: %v", path, err)
	}
	if !st.Mode().IsRegular() {
		return fail("%s is not a regular file", path)
	}

	var magic [2]byte
	n, _ := io.ReadFull(f, magic[:])
	isPE := n == 2 && bytes.Equal(magic[:], []byte("MZ"))

	if backend == BackendMXAccess {
		if !isPE {
			return fail("%s is not a Windows executable; the mxaccess backend needs mxworker.exe built for windows/386", path)
		}
		m, err := peMachine(f)
		if err != nil {
			return fail("%s: %v", path, err)
		}
		if m != pe.IMAGE_FILE_MACHINE_I386 {
			return fail("%s is built for %s (PE machine %#x); the mxaccess backend needs windows/386 (PE machine 0x14c) because MXAccess is 32-bit COM", path, machineName(m), m)
		}
		return nil
	}

	if goos == "windows" {
		if !isPE {
			return fail("%s is not a Windows executable", path)
		}
		if _, err := peMachine(f); err != nil {
			return fail("%s: %v", path, err)
		}
		return nil
	}
	if st.Mode().Perm()&0o111 == 0 {
		return fail("%s is not executable (no execute permission)", path)
	}
	return nil
}

// peMachine reads the machine field of the PE image in r.
func peMachine(r io.ReaderAt) (uint16, error) {
	pf, err := pe.NewFile(r)
	if err != nil {
		return 0, fmt.Errorf("not a valid PE image: %v", err)
	}
	defer pf.Close()
	return pf.Machine, nil
}

func machineName(m uint16) string {
	switch m {
	case pe.IMAGE_FILE_MACHINE_I386:
		return "386"
	case pe.IMAGE_FILE_MACHINE_AMD64:
		return "amd64"
	case pe.IMAGE_FILE_MACHINE_ARM64:
		return "arm64"
	case pe.IMAGE_FILE_MACHINE_ARMNT:
		return "arm"
	default:
		return "an unknown machine"
	}
}
