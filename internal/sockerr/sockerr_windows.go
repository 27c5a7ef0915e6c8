package sockerr

import (
	"errors"
	"syscall"

	"golang.org/x/sys/windows"
)

func systemReset(err error) bool {
	return errors.Is(err, windows.WSAECONNRESET) || errors.Is(err, windows.WSAECONNABORTED)
}

func systemRefused(err error) bool { return errors.Is(err, windows.WSAECONNREFUSED) }

func systemAddrInUse(err error) bool { return errors.Is(err, windows.WSAEADDRINUSE) }

func systemAddrNotAvail(err error) bool { return errors.Is(err, windows.WSAEADDRNOTAVAIL) }

// systemBrokenPipe: a send after the write side was shut is WSAESHUTDOWN;
// one to a peer that is gone, WSAECONNRESET or WSAECONNABORTED (Reset).
func systemBrokenPipe(err error) bool { return errors.Is(err, windows.WSAESHUTDOWN) }

// systemICMP: what a UDP read reports of an ICMP error, WSAECONNRESET
// for port unreachable.
func systemICMP(errno syscall.Errno) bool {
	switch errno {
	case windows.WSAEMSGSIZE, windows.WSAENETUNREACH, windows.WSAENETRESET, windows.WSAECONNRESET, windows.WSAEHOSTUNREACH:
		return true
	}
	return false
}
