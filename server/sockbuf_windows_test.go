package server_test

import "syscall"

// setSockBuf sets a socket's buffer opt (SO_SNDBUF, SO_RCVBUF) to n bytes
// from a syscall.RawConn's Control, where a socket is a Handle.
func setSockBuf(fd uintptr, opt, n int) error {
	return syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, opt, n)
}
