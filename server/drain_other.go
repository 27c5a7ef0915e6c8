//go:build !unix

package server

import "net"

// drainable reports whether Serve can empty l of queued connections at a
// graceful stop: not here, where it cannot look at a listener's queue.
func drainable(net.Listener) bool { return false }

func queuedConn(net.Listener) bool { return false }
