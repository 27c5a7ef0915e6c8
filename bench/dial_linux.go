//go:build linux

package bench

import (
	"net"

	"golang.org/x/sys/unix"

	"shout/internal/sockfd"
)

// bindNoPort lets a socket bound to a source address take its port at
// connect, not at bind: bind would have to find a port free for any
// destination, and with thousands in use that search, not the server,
// sets how fast a run connects.
var bindNoPort = sockfd.Setter(sockfd.Option{Level: unix.IPPROTO_IP, Opt: unix.IP_BIND_ADDRESS_NO_PORT, Value: 1})

// wasReset reports whether c's TCP connection was reset: closed, though
// this side has not closed it. A reset that one goroutine's write met
// leaves another's read only the end of file, as if the server had
// closed; the state tells them apart.
func wasReset(c net.Conn) bool { return tcpState(c) == unix.BPF_TCP_CLOSE }

// serverClosed reports whether c's server has closed its side of the
// TCP connection, its close come (CLOSE_WAIT), whether or not a read has
// met it yet.
func serverClosed(c net.Conn) bool { return tcpState(c) == unix.BPF_TCP_CLOSE_WAIT }

// tcpState is the state of c's TCP connection (unix.BPF_TCP_*), or 0 if
// it has none to tell: not TCP, or closed by this side.
func tcpState(c net.Conn) uint8 {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok { // TLS
		c = nc.NetConn()
	}
	var state uint8
	sockfd.Control(c, func(fd int) { state = fdTCPState(fd) })
	return state
}

// fdTCPState is tcpState of a socket by its descriptor.
func fdTCPState(fd int) uint8 {
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return 0
	}
	return info.State
}
