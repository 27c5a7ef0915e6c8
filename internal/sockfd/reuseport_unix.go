//go:build unix

package sockfd

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// ReusePort sets SO_REUSEPORT on the socket c, as the Control of a
// net.ListenConfig or a net.Dialer: sockets that all set it may share a
// port (on Linux, of one user).
func ReusePort(_, _ string, c syscall.RawConn) error {
	var err error
	if cerr := c.Control(func(fd uintptr) {
		err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); cerr != nil {
		return cerr
	}
	return err
}
