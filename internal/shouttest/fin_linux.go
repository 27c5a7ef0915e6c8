//go:build linux

package shouttest

import (
	"net"
	"syscall"
)

// holdForFIN corks c (TCP_CORK): what is written on it next is held back
// until its FIN, which the kernel then sends in the same segment, so the
// peer reads the last bytes and the end of file from one arrival.
func holdForFIN(c net.Conn) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK, 1) })
}
