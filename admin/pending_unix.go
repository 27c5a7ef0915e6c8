//go:build unix

package admin

import (
	"net"
	"syscall"
	"time"

	xunix "golang.org/x/sys/unix" // admin has a transport named unix

	"shout/internal/sockfd"
)

// pendingFunc returns a function that waits up to d for a connection to
// wait on ln to be accepted, and reports whether one does; nil if ln has
// no socket to ask. It polls the socket itself: accept fails with EMFILE
// whether or not a connection waits, and Go's poller, edge-triggered,
// says nothing of those that already did.
func pendingFunc(ln net.Listener) func(d time.Duration) bool {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return func(d time.Duration) bool {
		waiting := false
		rc.Control(func(fd uintptr) {
			fds := []xunix.PollFd{{Fd: int32(fd), Events: xunix.POLLIN}}
			for end := time.Now().Add(d); ; {
				n, err := xunix.Poll(fds, int(time.Until(end).Milliseconds()))
				if err == xunix.EINTR && time.Now().Before(end) {
					continue
				}
				waiting = err == nil && n > 0 && fds[0].Revents&xunix.POLLIN != 0
				return
			}
		})
		return waiting
	}
}

// socketReady reports whether c's socket would take bytes now (out), or
// has bytes (or an end) to give (not out): whether the client owes
// nothing to an operation on it. False if c has no socket to ask.
func socketReady(c net.Conn, out bool) bool {
	events := int16(xunix.POLLIN)
	if out {
		events = xunix.POLLOUT
	}
	ready := false
	sockfd.Control(c, func(fd int) {
		fds := []xunix.PollFd{{Fd: int32(fd), Events: events}}
		n, err := xunix.Poll(fds, 0)
		ready = err == nil && n > 0 && fds[0].Revents&(events|xunix.POLLHUP|xunix.POLLERR) != 0
	})
	return ready
}
