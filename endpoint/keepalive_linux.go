package endpoint

import (
	"golang.org/x/sys/unix"

	"shout/internal/sockfd"
)

// listenerKeepAlive says whether a TCP listener is given keep-alive for
// its connections to inherit. Linux copies a listener's options to each
// connection it accepts, so net's default, which sets keep-alive on each
// (four setsockopt a connection: SO_KEEPALIVE, TCP_KEEPIDLE,
// TCP_KEEPINTVL, TCP_KEEPCNT), is left for one set on the listener.
// Elsewhere net sets it on each connection as before: which of the four
// the BSDs, macOS and Windows copy was not looked at.
const listenerKeepAlive = true

// setKeepAlive sets sockfd.KeepAlive on socket fd, stopping at the first
// option that fails, as net does.
var setKeepAlive = func(fd uintptr) error {
	for _, o := range sockfd.KeepAlive {
		if err := unix.SetsockoptInt(int(fd), o.Level, o.Opt, o.Value); err != nil {
			return err
		}
	}
	return nil
}
