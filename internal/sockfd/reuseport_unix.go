//go:build unix

package sockfd

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// ReusePort sets SO_REUSEPORT on the socket c, as the Control of a
// net.ListenConfig or a net.Dialer: sockets that all set it may share a
// port (on Linux, of one user).
func ReusePort(network, address string, c syscall.RawConn) error {
	return Setter(Option{unix.SOL_SOCKET, unix.SO_REUSEPORT, 1})(network, address, c)
}

// Setter is the Control, for a net.ListenConfig or a net.Dialer, that
// sets opts on the socket before it is bound, in order, stopping at the
// first that fails.
func Setter(opts ...Option) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) {
			for _, o := range opts {
				if err = unix.SetsockoptInt(int(fd), o.Level, o.Opt, o.Value); err != nil {
					return
				}
			}
		}); cerr != nil {
			return cerr
		}
		return err
	}
}
