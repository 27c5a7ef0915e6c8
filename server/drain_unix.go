//go:build unix

package server

import (
	"net"
	"time"

	"golang.org/x/sys/unix"

	"shout/internal/sockfd"
)

// drainable reports whether Serve, with a goroutine per connection, can
// empty l of queued connections at a graceful stop: a listener of net's
// own, whose socket it can look at, or a ConnWrapper whose Accept is
// one's (see ConnWrapper). Any other wrapper's Accept may do more than
// accept (tls.NewListener's), and is not second-guessed.
func drainable(l net.Listener) bool {
	return acceptsFrom(l) != nil
}

// acceptsFrom is the listener of net's own whose socket l's Accept takes
// connections from, or nil if there is none that Serve may look at.
func acceptsFrom(l net.Listener) net.Listener {
	if _, ok := l.(ConnWrapper); ok {
		if u, ok := l.(interface{ Unwrap() net.Listener }); ok {
			l = u.Unwrap()
		}
	}
	switch l.(type) {
	case *net.TCPListener, *net.UnixListener:
		return l
	}
	return nil
}

// setAcceptDeadline sets the deadline of Accept on drainable listener l.
func setAcceptDeadline(l net.Listener, t time.Time) {
	acceptsFrom(l).(interface{ SetDeadline(time.Time) error }).SetDeadline(t)
}

// queuedConn reports whether a connection waits on drainable listener l
// to be accepted: its socket polls readable.
func queuedConn(l net.Listener) bool {
	ready := false
	sockfd.Control(acceptsFrom(l), func(fd int) { ready = pollsIn(fd) })
	return ready
}

// pollsIn reports whether fd polls readable now: a listening socket's
// queue holds a connection.
func pollsIn(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0 && fds[0].Revents&unix.POLLIN != 0
}
