//go:build unix

package server

import (
	"errors"
	"syscall"
	"time"

	"shout/upper"
)

// maxDrainReads bounds how long drain answers a client that keeps sending.
const maxDrainReads = 64

// drain is the end of a connection at shutdown: it answers what the client
// sent before and the kernel still holds, reading without waiting, and
// flushes an incomplete character as it is.
func (c *conn) drain(t *upper.Transformer, in []byte, carry int) string {
	sc, ok := c.c.(syscall.Conn)
	if !ok {
		c.answer(t, in[:carry], true)
		return "shutdown"
	}
	rc, err := sc.SyscallConn()
	if err != nil || c.c.SetReadDeadline(time.Time{}) != nil {
		return "shutdown"
	}
	for range maxDrainReads {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, rerr = syscall.Read(int(fd), in[carry:])
			return true // never wait for more
		})
		if err == nil {
			err = rerr
		}
		if n <= 0 {
			if err != nil && !errors.Is(err, syscall.EAGAIN) {
				return c.reason(err, false)
			}
			break
		}
		c.bytesIn += int64(n)
		c.refreshWriteDeadline()
		if carry, err = c.answer(t, in[:carry+n], false); err != nil {
			return c.reason(err, true)
		}
	}
	c.refreshWriteDeadline()
	if _, err := c.answer(t, in[:carry], true); err != nil {
		return c.reason(err, true)
	}
	return "shutdown"
}
