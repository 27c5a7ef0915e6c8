//go:build !unix

package server

import "shout/upper"

// drain flushes an incomplete character as it is; without raw reads it
// cannot answer what the kernel still holds.
func (c *conn) drain(t *upper.Transformer, in []byte, carry int) string {
	c.answer(t, in[:carry], true)
	return "shutdown"
}
