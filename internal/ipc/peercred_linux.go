//go:build linux

package ipc

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// peerPID reads SO_PEERCRED: the credentials the kernel captured when the
// peer called connect, which the peer cannot forge.
func peerPID(fd int) (int, error) {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return 0, fmt.Errorf("ipc: SO_PEERCRED: %w", err)
	}
	if cred.Pid <= 0 {
		return 0, fmt.Errorf("%w: kernel reported pid %d", ErrNoPeerPID, cred.Pid)
	}
	return int(cred.Pid), nil
}

// peerUID reads the peer's user id from SO_PEERCRED.
func peerUID(fd int) (int, error) {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return 0, fmt.Errorf("%w: SO_PEERCRED: %v", ErrPeerUser, err)
	}
	return int(cred.Uid), nil
}
