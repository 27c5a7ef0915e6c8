//go:build !unix

package server

import (
	"net"
	"time"
)

// drainable reports whether Serve can empty l of queued connections at a
// graceful stop: not here, where it cannot look at a listener's queue.
func drainable(net.Listener) bool { return false }

// setAcceptDeadline is never called here: no listener is drainable.
func setAcceptDeadline(net.Listener, time.Time) {}

func queuedConn(net.Listener) bool { return false }

// acceptsFrom is never called here: no listener is drainable.
func acceptsFrom(net.Listener) net.Listener { return nil }
