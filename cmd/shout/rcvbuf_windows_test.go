package main

import "syscall"

// setRcvbuf sets a socket's receive buffer from a syscall.RawConn's
// Control, where a socket is a Handle.
func setRcvbuf(fd uintptr, n int) {
	syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
}
