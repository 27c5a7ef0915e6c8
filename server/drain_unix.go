//go:build unix

package server

import (
	"errors"
	"io"
	"time"

	"shout/upper"
)

// maxDrainReads bounds how long drain answers a client that keeps sending.
const maxDrainReads = 64

// drain is the end of a connection at shutdown: it answers what the client
// sent before and the kernel still holds, reading without waiting, and
// flushes an incomplete character as it is.
func (c *conn) drain(t *upper.Transformer) string {
	if c.raw == nil || c.c.SetReadDeadline(time.Time{}) != nil {
		return c.flush(t, "shutdown")
	}
	for range maxDrainReads {
		buf, n, err := c.read(c.srv.readSize(), false)
		var werr error
		if n > 0 {
			c.refreshWriteDeadline()
			werr = c.handle(t, buf, n, false)
		}
		if buf != nil {
			putBuf(buf)
		}
		switch {
		case werr != nil:
			return c.reason(werr, true)
		case errors.Is(err, io.EOF), err == nil && n == 0: // the client is done, or nothing more waits
			return c.flush(t, "shutdown")
		case err != nil:
			return c.reason(err, false)
		}
	}
	return c.flush(t, "shutdown")
}
