//go:build !linux

package server

import "net"

// queued is 0 where the receive queue is not looked at: a stopping
// connection answers what arrives within its quiet period.
func (c *conn) queued() int { return 0 }

// stillOwed is owed where the receive queue is not looked at.
func (c *conn) stillOwed(owed int) int { return owed }

// unsent is 0 where the send queue is not looked at.
func (c *conn) unsent() int { return 0 }

// sendQueue says nothing where the send queue is not looked at: a
// write's time alone counts for its timeout.
func sendQueue(net.Conn) sendLook { return noLook }
