//go:build !linux

package server

import (
	"net"
	"syscall"
)

// queueLooked is false: queued and unsent are 0 here, which says
// nothing of what waits, so a stopping connection answers what arrives
// within its quiet period, as a wrapped one does on Linux. (Taken for
// "nothing waits", it closed at once and dropped what had arrived
// unread, against the README's promise.)
const queueLooked = false

// queued is 0 where the receive queue is not looked at: a stopping
// connection answers what arrives within its quiet period.
func (c *conn) queued() int { return 0 }

// stillOwed is owed where the receive queue is not looked at.
func (c *conn) stillOwed(owed int, _ *bool) int { return owed }

// unsent is 0 where the send queue is not looked at.
func (c *conn) unsent() int { return 0 }

// eofGone is nothing where the send queue is not looked at: a close
// after the client's end of file is "eof", as ever.
func (c *conn) eofGone() syscall.Errno { return 0 }

// eofLook says nothing queued, and nothing gone, where the send queue is
// not looked at.
func (c *conn) eofLook() (unsent int, gone syscall.Errno) { return 0, 0 }

// sendQueue says nothing where the send queue is not looked at: a
// write's time alone counts for its timeout.
func sendQueue(net.Conn) sendLook { return noLook }

// queueLen says nothing here of how many connections wait in a
// listener's accept queue.
func queueLen(net.Listener) (n int, known bool) { return 0, false }
