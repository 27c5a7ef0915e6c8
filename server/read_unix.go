//go:build unix

package server

import (
	"io"
	"net"
	"syscall"

	"shout/internal/sockfd"
)

// rawRead is the state of one raw read, kept in the conn with its callback
// made once, so that a read allocates nothing.
type rawRead struct {
	buf     *[]byte
	carried int // bytes in front of the read: the session's carry
	n       int
	err     error
	fn      func(fd uintptr) bool // c.readRaw
}

// read reads after the carried-over bytes, up to c.size bytes in all, into a
// buffer from the pool that it takes only once the socket has data: the
// read callback borrows the buffer, tries one non-blocking read, and gives
// the buffer back before the runtime parks the goroutine on EAGAIN. That
// is the same one read(2) per attempt that net.Conn.Read makes, and an
// idle connection holds no buffer. The buffer, if not nil, is the
// caller's to putBuf.
func (c *conn) read() (*[]byte, int, error) {
	if c.raw == nil {
		return c.readPlain()
	}
	r := &c.rr
	if r.fn == nil {
		r.fn = c.readRaw
	}
	r.buf, r.n, r.err = nil, 0, nil
	err := c.raw.Read(r.fn)
	buf, n := r.buf, r.n
	r.buf = nil
	switch {
	case err != nil: // a deadline, or the connection closed
		return buf, 0, err
	case r.err != nil:
		return buf, 0, r.err
	case n == 0 && buf != nil:
		return buf, 0, io.EOF
	}
	return buf, n, nil
}

// readRaw is read's callback: it reports whether to stop waiting.
func (c *conn) readRaw(fd uintptr) bool {
	r := &c.rr
	r.buf = getBuf(c.size)
	r.carried = c.sess.carried(*r.buf)
	for {
		r.n, r.err = syscall.Read(int(fd), (*r.buf)[r.carried:c.size])
		if r.err != syscall.EINTR {
			break
		}
	}
	if r.err == syscall.EAGAIN {
		putBuf(r.buf)
		r.buf, r.n, r.err = nil, 0, nil
		return false // wait for data
	}
	if r.n < 0 {
		r.n = 0
	}
	return true
}

// inputWaits reports whether bytes the client sent wait unread in nc's
// socket (nc as accepted, under any wrapper, whose read met the deadline
// at the socket), by a peek, which skips what reads skip.
func inputWaits(nc net.Conn) bool {
	waits := false
	sockfd.Control(nc, func(fd int) { waits = readableFD(fd) }) // the loops' peek too
	return waits
}
