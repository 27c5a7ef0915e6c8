// Package sockerr tells what a socket error means, the same way on every
// system, for the packages that classify them. Windows reports a reset
// as WSAECONNRESET (or WSAECONNABORTED, when the system tore the
// connection down after one) and a refused connect as WSAECONNREFUSED,
// numbers of its own that syscall.ECONNRESET and syscall.ECONNREFUSED,
// invented ones there, do not match.
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

// Refused reports whether err says nothing accepted the connection there
// (an RST to the SYN; over UDP, an ICMP port unreachable).
func Refused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || systemRefused(err)
}

// OutOfFiles reports whether err says the process, or the whole system,
// has no file descriptor to spare (EMFILE, ENFILE): an accept, dial or
// open that may succeed once some are closed.
func OutOfFiles(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}
