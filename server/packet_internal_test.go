package server

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
)

// Which failed reads the worker reads on from at once (an ICMP error for
// an earlier reply, which a client can cause at will) and which it waits
// after: Windows reports port unreachable as WSAECONNRESET, whose number
// is not syscall.ECONNRESET's there.
func TestFromICMP(t *testing.T) {
	read := func(errno syscall.Errno) error {
		return &net.OpError{Op: "read", Net: "udp", Err: os.NewSyscallError("recvfrom", errno)}
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{read(syscall.ECONNREFUSED), true},
		{read(syscall.EHOSTUNREACH), true},
		{read(syscall.EMSGSIZE), true},
		{read(syscall.EACCES), true},
		{read(syscall.Errno(10054)), true}, // WSAECONNRESET
		{read(syscall.Errno(10065)), true}, // WSAEHOSTUNREACH
		{read(syscall.EBADF), false},
		{read(syscall.ENOMEM), false},
		{os.ErrDeadlineExceeded, false},
		{errors.New("something else"), false},
	} {
		if got := fromICMP(tc.err); got != tc.want {
			t.Errorf("fromICMP(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
