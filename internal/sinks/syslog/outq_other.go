//go:build !linux

package syslog

import (
	"errors"
	"syscall"
)

// peerAckSupported: the send queue can be read on Linux only.
const peerAckSupported = false

func sendQueue(syscall.RawConn) (int, error) {
	return 0, errors.New("the socket send queue cannot be read on this system")
}
