// Package sockerr tells what a socket error means the same way on every
// system. On Windows a reset is WSAECONNRESET (or WSAECONNABORTED, when
// the system tore the connection down after one), numbers of its own
// that syscall.ECONNRESET, an invented one there, does not match.
package sockerr

import (
	"errors"
	"syscall"
)

// Reset reports whether err says the peer reset the connection (it sent
// an RST: it was killed, or closed with data unread).
func Reset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || systemReset(err)
}
