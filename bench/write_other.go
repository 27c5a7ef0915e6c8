//go:build !unix

package bench

import (
	"net"
	"time"
)

// stuckConn is a goroutine-driven stream connection's TCP socket, under
// TLS or not. Here its write never asks stuck whether to give up (see
// write_unix.go): a write that the server takes none of waits for its
// deadline, though the reader found the connection failed.
type stuckConn struct {
	*net.TCPConn
	stuck func() (giveUp bool) // (never asked here)
}

// interrupt is never called here: no write asks stuck (see flight.fail).
func (c *stuckConn) interrupt() { c.TCPConn.SetWriteDeadline(time.Now()) }
