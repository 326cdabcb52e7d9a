//go:build unix && !linux

package ipc

import "fmt"

// peerPID is not implemented on Unix systems other than Linux: the product
// supports Linux and Windows, and other systems fail the peer check closed.
func peerPID(int) (int, error) {
	return 0, fmt.Errorf("%w: not implemented on this platform", ErrNoPeerPID)
}

// peerUID is not implemented either: the check fails closed.
func peerUID(int) (int, error) {
	return 0, fmt.Errorf("%w: not implemented on this platform", ErrPeerUser)
}
