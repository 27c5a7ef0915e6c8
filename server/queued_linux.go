package server

import "golang.org/x/sys/unix"

// queued is how many bytes wait in the socket's receive queue, or 0 if
// the connection cannot say (a wrapper gives no raw access).
func (c *conn) queued() int { return c.ioctlInt(unix.SIOCINQ) }

// unsent is how many bytes of the socket's send queue the client has not
// acknowledged yet, or 0 if the connection cannot say.
func (c *conn) unsent() int { return c.ioctlInt(unix.SIOCOUTQ) }

func (c *conn) ioctlInt(req uint) int {
	if c.raw == nil {
		return 0
	}
	n := 0
	c.raw.Control(func(fd uintptr) {
		if v, err := unix.IoctlGetInt(int(fd), req); err == nil {
			n = v
		}
	})
	return n
}
