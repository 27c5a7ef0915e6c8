//go:build !unix

package server

// rawRead is unused without raw reads.
type rawRead struct{}

// read reads up to size bytes after the carried-over bytes, holding a
// pooled buffer while it waits: without raw reads there is no waiting for
// data without one.
func (c *conn) read(size int, wait bool) (*[]byte, int, error) {
	return c.readPlain(size)
}
