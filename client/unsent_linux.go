package client

import (
	"crypto/tls"
	"net"

	"golang.org/x/sys/unix"

	"shout/internal/sockfd"
)

// unsent is how many bytes c has sent or queued that the server has not
// acknowledged (SIOCOUTQ), and whether c could say.
func unsent(c net.Conn) (int, bool) {
	if t, ok := c.(*tls.Conn); ok {
		c = t.NetConn()
	}
	n, ok := 0, false
	sockfd.Control(c, func(fd int) {
		if v, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ); err == nil {
			n, ok = v, true
		}
	})
	return n, ok
}
