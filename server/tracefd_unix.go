//go:build unix

package server

import (
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"shout/internal/sockfd"
)

// sockFD is the file descriptor of x's socket, or -1 if x gives no raw
// access (a TLS connection, a wrapper that does not pass it on).
func sockFD(x any) int {
	fd := -1
	sockfd.Control(x, func(f int) { fd = f })
	return fd
}

// sockFacts reads what the kernel says of the socket fd: its family and
// type in the C names the lesson's socket.AF_INET and socket.SOCK_STREAM
// stand for, and whether SO_REUSEADDR is set.
func sockFacts(fd int) (family, typ string, reuse bool) {
	family, typ = "?", "?"
	if fd < 0 {
		return
	}
	if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR); err == nil {
		reuse = v != 0
	}
	if sa, err := unix.Getsockname(fd); err == nil {
		switch sa.(type) {
		case *unix.SockaddrInet4:
			family = "AF_INET"
		case *unix.SockaddrInet6:
			family = "AF_INET6"
		case *unix.SockaddrUnix:
			family = "AF_UNIX"
		}
	}
	if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err == nil {
		switch v {
		case unix.SOCK_STREAM:
			typ = "SOCK_STREAM"
		case unix.SOCK_DGRAM:
			typ = "SOCK_DGRAM"
		}
	}
	return
}

// somaxconn is the backlog Go's net package passes to listen(2): on
// Linux the kernel's net.core.somaxconn, read from the same file Go reads
// it from; elsewhere, or if that cannot be read, the C library's SOMAXCONN.
func somaxconn() (n int, where string) {
	b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && v > 0 {
			return v, "net.core.somaxconn"
		}
	}
	return syscall.SOMAXCONN, "SOMAXCONN"
}
