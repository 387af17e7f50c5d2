//go:build linux

package syslog

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerAckSupported: ack: peer reads the send queue with SIOCOUTQ.
const peerAckSupported = true

// sendQueue returns the bytes the kernel holds for the socket that the peer
// has not acknowledged yet (sent or not): SIOCOUTQ, see tcp(7).
func sendQueue(rc syscall.RawConn) (int, error) {
	var n int
	var ioErr error
	if err := rc.Control(func(fd uintptr) { n, ioErr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); err != nil {
		return 0, fmt.Errorf("socket send queue: %w", err)
	}
	if ioErr != nil {
		return 0, fmt.Errorf("socket send queue (SIOCOUTQ): %w", ioErr)
	}
	return n, nil
}
