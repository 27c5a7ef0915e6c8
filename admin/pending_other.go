//go:build !unix

package admin

import (
	"net"
	"time"
)

// pendingFunc is nil where accept is not known to fail for want of a
// descriptor (as EMFILE): the listener gives up no descriptor then.
func pendingFunc(net.Listener) func(time.Duration) bool { return nil }

// socketReady is false where the socket is not asked: a connection that
// has waited evictGrace waits on its client.
func socketReady(net.Conn, bool) bool { return false }
