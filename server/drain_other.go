//go:build !unix

package server

import "shout/upper"

// drain flushes an incomplete character as it is; without raw reads it
// cannot answer what the kernel still holds without waiting for more.
func (c *conn) drain(t *upper.Transformer) string {
	return c.flush(t, "shutdown")
}
