//go:build unix

package ipc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// socketName is the socket's file name inside its private directory.
const socketName = "w.sock"

// maxSocketPath is the usable length of sockaddr_un.sun_path on Linux (the
// smallest common limit; the BSDs allow 104).
const maxSocketPath = 103

type unixListener struct {
	ln   *net.UnixListener
	dir  string
	path string

	once sync.Once
	err  error
}

// Listen creates a fresh directory with mode 0700 under runtimeDir (created
// 0700 when missing; refused when it belongs to another user or is writable
// by others) and listens on a Unix socket inside it. Close removes the socket
// and the directory.
func Listen(runtimeDir, sessionID string) (Listener, error) {
	if err := validateSessionID(sessionID); err != nil {
		return nil, err
	}
	if err := ensureRuntimeDir(runtimeDir); err != nil {
		return nil, err
	}
	// A short random name keeps the socket path under sun_path's limit;
	// the session id is not needed in the path (the directory is private).
	dir, err := os.MkdirTemp(runtimeDir, "s")
	if err != nil {
		return nil, fmt.Errorf("ipc: create endpoint dir: %w", err)
	}
	// MkdirTemp already uses 0700; chmod again so a permissive umask or
	// filesystem default can never widen it.
	if err := os.Chmod(dir, 0o700); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("ipc: chmod endpoint dir: %w", err)
	}
	path := filepath.Join(dir, socketName)
	if len(path) > maxSocketPath {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("ipc: socket path %q is %d bytes, longer than %d: use a shorter runtime dir", path, len(path), maxSocketPath)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("ipc: listen: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	return &unixListener{ln: ln, dir: dir, path: path}, nil
}

// ensureRuntimeDir creates dir with mode 0700 if needed and refuses a
// directory that another user could tamper with (rename our endpoint
// directory and plant their own socket in its place).
func ensureRuntimeDir(dir string) error {
	if dir == "" {
		return fmt.Errorf("%w: empty path", ErrUnsafeRuntimeDir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("ipc: create runtime dir: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("ipc: stat runtime dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s is not a directory", ErrUnsafeRuntimeDir, dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("%w: %s is owned by uid %d", ErrUnsafeRuntimeDir, dir, st.Uid)
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0 {
		return fmt.Errorf("%w: %s is writable by others (mode %v)", ErrUnsafeRuntimeDir, dir, fi.Mode().Perm())
	}
	return nil
}

func (l *unixListener) Accept() (net.Conn, error) { return l.ln.Accept() }

func (l *unixListener) Endpoint() string { return l.path }

func (l *unixListener) Close() error {
	l.once.Do(func() {
		err := l.ln.Close()
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
		if l.dir == "" {
			// A named endpoint: the socket unlinks itself, the directory stays.
		} else if rerr := os.RemoveAll(l.dir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("ipc: remove endpoint dir: %w", rerr))
		}
		l.err = err
	})
	return l.err
}

// Dial connects to a Unix socket endpoint, retrying while the socket does
// not exist yet or refuses connections, until ctx ends (DefaultDialTimeout
// when ctx has no deadline).
func Dial(ctx context.Context, endpoint string) (net.Conn, error) {
	var d net.Dialer
	return dialRetry(ctx, func(ctx context.Context) (net.Conn, error) {
		return d.DialContext(ctx, "unix", endpoint)
	}, func(err error) bool {
		return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EAGAIN)
	})
}

// PeerPID returns the process id of the other end of a Unix socket
// connection, as recorded by the kernel when it connected.
func PeerPID(c net.Conn) (int, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return 0, fmt.Errorf("%w: %T is not a unix connection", ErrNoPeerPID, c)
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("ipc: peer pid: %w", err)
	}
	var pid int
	var perr error
	if err := rc.Control(func(fd uintptr) { pid, perr = peerPID(int(fd)) }); err != nil {
		return 0, fmt.Errorf("ipc: peer pid: %w", err)
	}
	if perr != nil {
		return 0, perr
	}
	return pid, nil
}

// ListenNamed listens on a stable endpoint, name.sock inside dir, for a
// service that outlives its clients' connections (the Galaxy runtime): a
// restarted service listens at the same address. dir is created 0700 when
// missing and must be a directory of the current user closed to everyone
// else. A socket left by a dead process is replaced; one that still accepts
// connections is refused with ErrEndpointInUse.
func ListenNamed(dir, name string) (Listener, error) {
	if err := validateSessionID(name); err != nil {
		return nil, err
	}
	if err := ensureRuntimeDir(dir); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(dir); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s is open to other users (mode %v): use a 0700 directory", ErrUnsafeRuntimeDir, dir, fi.Mode().Perm())
	}
	path := filepath.Join(dir, name+".sock")
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("ipc: socket path %q is %d bytes, longer than %d: use a shorter directory", path, len(path), maxSocketPath)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%w: %s exists and is not a socket", ErrEndpointInUse, path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("%w: %s", ErrEndpointInUse, path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("ipc: remove stale socket: %w", err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("ipc: listen: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	return &unixListener{ln: ln, path: path}, nil
}

// NamedEndpoint returns the address ListenNamed(dir, name) listens on.
func NamedEndpoint(dir, name string) string { return filepath.Join(dir, name+".sock") }

// CheckPeerUser fails unless the other end of a Unix socket connection runs
// as the current user (SO_PEERCRED).
func CheckPeerUser(c net.Conn) error {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("%w: %T is not a unix connection", ErrPeerUser, c)
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return fmt.Errorf("ipc: peer user: %w", err)
	}
	var uid int
	var perr error
	if err := rc.Control(func(fd uintptr) { uid, perr = peerUID(int(fd)) }); err != nil {
		return fmt.Errorf("ipc: peer user: %w", err)
	}
	if perr != nil {
		return perr
	}
	if uid != os.Getuid() {
		return fmt.Errorf("%w: uid %d", ErrPeerUser, uid)
	}
	return nil
}
