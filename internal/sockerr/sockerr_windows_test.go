package sockerr_test

import (
	"syscall"
	"testing"

	"golang.org/x/sys/windows"

	"shout/internal/sockerr"
)

// Windows' own numbers, which package syscall's ECONNRESET, EADDRINUSE
// and the others (invented there) do not match, are told as the others
// are told theirs.
func TestWindowsErrnos(t *testing.T) {
	for _, tc := range []struct {
		name  string
		is    func(error) bool
		errno syscall.Errno
	}{
		{"Reset", sockerr.Reset, windows.WSAECONNRESET},
		{"Reset", sockerr.Reset, windows.WSAECONNABORTED},
		{"Refused", sockerr.Refused, windows.WSAECONNREFUSED},
		{"AddrInUse", sockerr.AddrInUse, windows.WSAEADDRINUSE},
		{"AddrNotAvail", sockerr.AddrNotAvail, windows.WSAEADDRNOTAVAIL},
		{"BrokenPipe", sockerr.BrokenPipe, windows.WSAESHUTDOWN},
		{"FromICMP", sockerr.FromICMP, windows.WSAECONNRESET},
		{"FromICMP", sockerr.FromICMP, windows.WSAEHOSTUNREACH},
		{"FromICMP", sockerr.FromICMP, windows.WSAEMSGSIZE},
	} {
		if !tc.is(udpRead(tc.errno)) { // (wrapped as any socket call's error is)
			t.Errorf("%s(%v, %d) = false, want true", tc.name, tc.errno, tc.errno)
		}
	}
}
