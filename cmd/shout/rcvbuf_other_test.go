//go:build !windows

package main

import "syscall"

// setRcvbuf sets a socket's receive buffer from a syscall.RawConn's
// Control, where a descriptor is an int.
func setRcvbuf(fd uintptr, n int) {
	syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
}
