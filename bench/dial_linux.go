//go:build linux

package bench

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// bindNoPort lets a socket bound to a source address take its port at
// connect, not at bind: bind would have to find a port free for any
// destination, and with thousands in use that search, not the server,
// sets how fast a run connects.
func bindNoPort(_, _ string, c syscall.RawConn) error {
	var err error
	if cerr := c.Control(func(fd uintptr) {
		err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	}); cerr != nil {
		return cerr
	}
	return err
}
