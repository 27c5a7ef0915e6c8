//go:build unix

package server

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// drainable reports whether Serve, with a goroutine per connection, can
// empty l of queued connections at a graceful stop: a listener of net's
// own, whose socket it can look at. A wrapper's Accept may do more than
// accept (a TLS listener's), and is not second-guessed.
func drainable(l net.Listener) bool {
	switch l.(type) {
	case *net.TCPListener, *net.UnixListener:
		return true
	}
	return false
}

// queuedConn reports whether a connection waits on listener l to be
// accepted: its socket polls readable.
func queuedConn(l net.Listener) bool {
	rc, err := l.(syscall.Conn).SyscallConn()
	if err != nil {
		return false
	}
	ready := false
	rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		ready = err == nil && n > 0 && fds[0].Revents&unix.POLLIN != 0
	})
	return ready
}
