//go:build !linux

package bench

import (
	"net"
	"syscall"
)

func bindNoPort(_, _ string, _ syscall.RawConn) error { return nil }

// wasReset reports whether c was reset; only Linux's TCP state says so
// for a socket that has met end of file, so here it is never known.
func wasReset(net.Conn) bool { return false }

// serverClosed reports whether c's server has closed its side before a
// read met it; only Linux's TCP state says so, so here it is never known
// (an open loop's writer then sends to it: see streamWorker's send).
func serverClosed(net.Conn) bool { return false }
