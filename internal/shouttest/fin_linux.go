//go:build linux

package shouttest

import (
	"net"
	"syscall"

	"shout/internal/sockfd"
)

// holdForFIN corks c (TCP_CORK): what is written on it next is held back
// until its FIN, which the kernel then sends in the same segment, so the
// peer reads the last bytes and the end of file from one arrival.
func holdForFIN(c net.Conn) {
	sockfd.Control(c, func(fd int) { syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_CORK, 1) })
}
