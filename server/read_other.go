//go:build !unix

package server

import "net"

// rawRead is unused without raw reads.
type rawRead struct{ carried int }

// read reads with net.Conn.Read, holding a pooled buffer while it waits:
// without raw reads there is no waiting for data without one.
func (c *conn) read() (*[]byte, int, error) {
	return c.readPlain()
}

// inputWaits is false without raw access: an idle timeout cannot tell
// whether bytes wait unread.
func inputWaits(net.Conn) bool { return false }
