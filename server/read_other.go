//go:build !unix

package server

// rawRead is unused without raw reads.
type rawRead struct{ carried int }

// read reads with net.Conn.Read, holding a pooled buffer while it waits:
// without raw reads there is no waiting for data without one.
func (c *conn) read(wait bool) (*[]byte, int, error) {
	return c.readPlain()
}
