// Package sockerr tells what a socket error means, the same way on every
// system, for the packages that classify them. Windows reports a reset
// as WSAECONNRESET (or WSAECONNABORTED, when the system tore the
// connection down after one), a refused connect as WSAECONNREFUSED, a
// taken address as WSAEADDRINUSE and so on: numbers of its own that
// syscall.ECONNRESET, syscall.EADDRINUSE and the others, invented ones
// there that no call returns, do not match.
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

// AddrInUse reports whether err says another socket has the address
// (EADDRINUSE): a bind, or a listen, where something listens already.
func AddrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || systemAddrInUse(err)
}

// AddrNotAvail reports whether err says the address cannot be had
// (EADDRNOTAVAIL): a bind to an address not of this machine, or a
// connect with no ephemeral port left to it.
func AddrNotAvail(err error) bool {
	return errors.Is(err, syscall.EADDRNOTAVAIL) || systemAddrNotAvail(err)
}

// BrokenPipe reports whether err says a write found the connection's
// sending side closed (EPIPE): the peer is gone, or the write side was
// shut. (A reset the write learnt of is Reset.)
func BrokenPipe(err error) bool {
	return errors.Is(err, syscall.EPIPE) || systemBrokenPipe(err)
}

// FromICMP reports whether err is how a datagram socket's read reports an
// ICMP error that came back for a datagram sent earlier: one that a
// client can cause at will, and that says nothing of the socket itself.
func FromICMP(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EHOSTUNREACH, syscall.ENETUNREACH,
		syscall.EHOSTDOWN, syscall.ENETDOWN, syscall.EMSGSIZE, syscall.EPROTO,
		syscall.EACCES, syscall.ENOPROTOOPT, syscall.EOPNOTSUPP: // ICMP(v6) prohibited, parameter problems
		return true
	}
	return systemICMP(errno)
}
