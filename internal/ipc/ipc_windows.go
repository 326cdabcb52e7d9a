//go:build windows

package ipc

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/Microsoft/go-winio"
	"golang.org/x/sys/windows"
)

// pipeBufferBytes sizes the pipe's kernel buffers; large enough for typical
// frames to pass without a reader round trip.
const pipeBufferBytes = 64 << 10

type pipeListener struct {
	ln   net.Listener
	path string

	once sync.Once
	err  error
}

// Listen creates the named pipe \\.\pipe\mxgateway-<gatewayPID>-<sessionID>.
// runtimeDir is not used on Windows (pipes live in the pipe namespace).
//
// Unlike a Unix socket, a pipe needs no private directory: its security
// descriptor is the access control. We always pass an explicit SDDL that
// grants GENERIC_ALL to the current user only (the default pipe ACL also
// admits Everyone and anonymous read), and go-winio creates the first
// instance with FILE_CREATE, so if another process already owns the name
// (name squatting) Listen fails instead of sharing the pipe. go-winio also
// sets FILE_PIPE_REJECT_REMOTE_CLIENTS, so only local processes connect.
func Listen(runtimeDir, sessionID string) (Listener, error) {
	_ = runtimeDir
	if err := validateSessionID(sessionID); err != nil {
		return nil, err
	}
	sddl, err := currentUserSDDL()
	if err != nil {
		return nil, err
	}
	path := fmt.Sprintf(`\\.\pipe\mxgateway-%d-%s`, os.Getpid(), sessionID)
	ln, err := winio.ListenPipe(path, &winio.PipeConfig{
		SecurityDescriptor: sddl,
		InputBufferSize:    pipeBufferBytes,
		OutputBufferSize:   pipeBufferBytes,
	})
	if err != nil {
		return nil, fmt.Errorf("ipc: listen %s: %w", path, err)
	}
	return &pipeListener{ln: ln, path: path}, nil
}

// currentUserSDDL builds D:P(A;;GA;;;<SID>): a protected DACL with a single
// entry granting the current process user full access.
func currentUserSDDL() (string, error) {
	user, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return "", fmt.Errorf("ipc: read process user: %w", err)
	}
	return "D:P(A;;GA;;;" + user.User.Sid.String() + ")", nil
}

func (l *pipeListener) Accept() (net.Conn, error) { return l.ln.Accept() }

func (l *pipeListener) Endpoint() string { return l.path }

func (l *pipeListener) Close() error {
	l.once.Do(func() {
		err := l.ln.Close()
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
		l.err = err
	})
	return l.err
}

// Dial connects to a named pipe endpoint. go-winio itself retries only
// ERROR_PIPE_BUSY; we also retry ERROR_FILE_NOT_FOUND (the pipe is not
// created yet, or between instances) until ctx ends (DefaultDialTimeout when
// ctx has no deadline).
func Dial(ctx context.Context, endpoint string) (net.Conn, error) {
	return dialRetry(ctx, func(ctx context.Context) (net.Conn, error) {
		return winio.DialPipeContext(ctx, endpoint)
	}, func(err error) bool {
		return errors.Is(err, windows.ERROR_FILE_NOT_FOUND) || errors.Is(err, windows.ERROR_PIPE_BUSY)
	})
}

// PeerPID returns the process id of the client end of a named pipe accepted
// by a Listener, via GetNamedPipeClientProcessId on the server handle.
func PeerPID(c net.Conn) (int, error) {
	f, ok := c.(interface{ Fd() uintptr })
	if !ok {
		return 0, fmt.Errorf("%w: %T has no pipe handle", ErrNoPeerPID, c)
	}
	var pid uint32
	if err := windows.GetNamedPipeClientProcessId(windows.Handle(f.Fd()), &pid); err != nil {
		return 0, fmt.Errorf("ipc: GetNamedPipeClientProcessId: %w", err)
	}
	if pid == 0 {
		return 0, fmt.Errorf("%w: system reported pid 0", ErrNoPeerPID)
	}
	return int(pid), nil
}

// ListenNamed creates the named pipe NamedEndpoint(dir, name), a stable
// endpoint for a service that outlives its clients' connections (the Galaxy
// runtime), with the same current-user-only security descriptor as Listen.
// dir only names the pipe on Windows.
func ListenNamed(dir, name string) (Listener, error) {
	if err := validateSessionID(name); err != nil {
		return nil, err
	}
	sddl, err := currentUserSDDL()
	if err != nil {
		return nil, err
	}
	path := NamedEndpoint(dir, name)
	ln, err := winio.ListenPipe(path, &winio.PipeConfig{
		SecurityDescriptor: sddl,
		InputBufferSize:    pipeBufferBytes,
		OutputBufferSize:   pipeBufferBytes,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: listen %s: %v", ErrEndpointInUse, path, err)
	}
	return &pipeListener{ln: ln, path: path}, nil
}

// NamedEndpoint returns the address ListenNamed(dir, name) listens on:
// \\.\pipe\mxgateway-<name>-<hash of dir>, so services of different
// directories (two gateways' runtimes) never share a pipe name.
func NamedEndpoint(dir, name string) string {
	h := fnv.New64a()
	h.Write([]byte(strings.ToLower(filepath.Clean(dir))))
	return fmt.Sprintf(`\\.\pipe\mxgateway-%s-%016x`, name, h.Sum64())
}

// CheckPeerUser succeeds for every pipe client: the pipe's security
// descriptor admits only the current user.
func CheckPeerUser(c net.Conn) error {
	_ = c
	return nil
}
