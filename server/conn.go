package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/bits"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/text/transform"

	"shout/internal/deadline"
	"shout/upper"
)

// smallRead is the first read's size, the lesson's recv(1024); reads grow
// to ReadSize while the client keeps them full.
const smallRead = 1 << 10

// logPrefix is how much of each message is logged at debug level.
const logPrefix = 96

// bufPools holds buffers by size class: class k holds capacity 1<<k, up
// to 16 MiB, so a request never draws a buffer too small for it.
var bufPools [25]sync.Pool

// getBuf returns a buffer of length n from the pool of its size class.
func getBuf(n int) *[]byte {
	k := bits.Len(uint(max(n, 1) - 1))
	if k >= len(bufPools) {
		b := make([]byte, n)
		return &b
	}
	if p, ok := bufPools[k].Get().(*[]byte); ok {
		*p = (*p)[:n]
		return p
	}
	b := make([]byte, n, 1<<k)
	return &b
}

// putBuf gives a buffer from getBuf back to its pool.
func putBuf(p *[]byte) {
	if k := bits.Len(uint(cap(*p) - 1)); k < len(bufPools) && cap(*p) == 1<<k {
		bufPools[k].Put(p)
	}
}

// conn is one stream connection being served.
type conn struct {
	srv   *Server
	c     net.Conn
	start time.Time

	bytesIn, bytesOut int64
	readBy, writeBy   time.Time // deadlines set, zero if none

	raw syscall.RawConn // nil where the connection gives none: see read
	rr  rawRead
	// carry holds an incomplete character from the last read (at most 3
	// bytes, more for a look-ahead tailoring) between reads.
	carry    []byte
	carryBuf [8]byte
}

// serve serves the connection until it ends, then closes it. The loop and
// the logging live in functions of their own, so the frames on the stack
// while a connection idles in Read stay small enough for the goroutine's
// first 2 KiB stack: a stack that grows stays grown, on every connection.
func (c *conn) serve() {
	if c.srv.ConnState != nil {
		c.srv.ConnState(c.c, StateNew)
	}
	c.finish(c.loop())
}

// loop is one read, one transform, one write, until the connection ends;
// it returns why it ended. A read buffer is borrowed from the pool only
// once data has arrived (see read), so an idle connection holds none.
func (c *conn) loop() (reason string) {
	s := c.srv
	t := s.transformer()
	debug := s.logger().Enabled(context.Background(), slog.LevelDebug)
	if sc, ok := c.c.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	c.carry = c.carryBuf[:0]
	size := smallRead
	for {
		// Refresh first, then look: Shutdown sets closing before it moves
		// the deadline, so a deadline set here cannot hide a shutdown.
		c.refreshReadDeadline()
		if s.closing.Load() {
			return c.drain(t)
		}
		buf, n, err := c.read(size, true)
		if n > 0 {
			c.refreshWriteDeadline()
			if werr := c.handle(t, buf, n, debug); werr != nil {
				putBuf(buf)
				return c.reason(werr, true)
			}
			// Read more at once while the client keeps reads full, and
			// go back to small reads as soon as one comes up short.
			switch filled := len(c.carry) + n; {
			case n == size:
				size = s.readSize()
			case filled < smallRead:
				size = smallRead
			}
		}
		if buf != nil {
			putBuf(buf)
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			// End of input or half-close: answer what is left, then close.
			return c.flush(t, "eof")
		case s.closing.Load() && errors.Is(err, os.ErrDeadlineExceeded):
			return c.drain(t)
		default:
			return c.reason(err, false)
		}
	}
}

// handle answers the n bytes a read put in buf after the carried-over ones
// and keeps what is left of an incomplete character for the next read.
// Callers refresh the write deadline first: setting it from here would be
// deep enough to grow every connection's stack to 4 KiB.
func (c *conn) handle(t *upper.Transformer, buf *[]byte, n int, debug bool) error {
	c.bytesIn += int64(n)
	in := (*buf)[:len(c.carry)+n]
	if debug {
		c.logMessage(in[len(c.carry):])
	}
	k, err := c.answer(t, in, false)
	c.carry = append(c.carry[:0], in[:k]...)
	return err
}

// readPlain reads with net.Conn.Read, for connections that give no raw
// access (and systems without raw reads): it holds its buffer while it
// waits.
func (c *conn) readPlain(size int) (*[]byte, int, error) {
	buf := getBuf(len(c.carry) + size)
	k := copy(*buf, c.carry)
	n, err := c.c.Read((*buf)[k:])
	return buf, n, err
}

// flush answers the bytes carried over as they are, at the end of input,
// and returns reason, or why writing failed.
func (c *conn) flush(t *upper.Transformer, reason string) string {
	if len(c.carry) == 0 {
		return reason
	}
	c.refreshWriteDeadline()
	if _, err := c.answer(t, c.carry, true); err != nil {
		return c.reason(err, true)
	}
	c.carry = c.carry[:0]
	return reason
}

// logMessage logs what the client sent, at debug level, escaped by the
// handler and cut to logPrefix bytes.
//
//go:noinline
func (c *conn) logMessage(msg []byte) {
	c.srv.logger().Debug("message", "remote", c.c.RemoteAddr().String(), "bytes", len(msg), "data", string(msg[:min(len(msg), logPrefix)]))
}

// finish closes the connection and logs why it ended.
//
//go:noinline
func (c *conn) finish(reason string) {
	c.c.Close()
	c.srv.logger().Info("close", "remote", c.c.RemoteAddr().String(), "reason", reason,
		"duration", time.Since(c.start).Round(time.Microsecond), "bytes_in", c.bytesIn, "bytes_out", c.bytesOut)
	if c.srv.ConnState != nil {
		c.srv.ConnState(c.c, StateClosed)
	}
	c.srv.forget(c)
}

// answer transforms src, writes the result and returns how many bytes at
// the end of src were left for the next read (an incomplete character),
// moved to the front of src. Callers refresh the write deadline first.
func (c *conn) answer(t *upper.Transformer, src []byte, atEOF bool) (carry int, err error) {
	if len(src) == 0 {
		return 0, nil
	}
	buf := src
	out := getBuf(t.MaxExpansion() * len(src))
	defer func() { putBuf(out) }() // out may be replaced below
	for len(src) > 0 {
		nDst, nSrc, terr := t.Transform(*out, src, atEOF)
		if nDst > 0 {
			n, err := c.c.Write((*out)[:nDst])
			c.bytesOut += int64(n)
			if err != nil {
				return 0, err
			}
		}
		src = src[nSrc:]
		if terr != transform.ErrShortDst { // nil, or ErrShortSrc: keep the rest
			break
		}
		if nDst == 0 && nSrc == 0 { // cannot happen within MaxExpansion; never spin
			putBuf(out)
			out = getBuf(2 * len(*out))
		}
	}
	return copy(buf, src), nil
}

// refreshReadDeadline keeps the idle deadline IdleTimeout ahead.
func (c *conn) refreshReadDeadline() {
	deadline.Refresh(&c.readBy, c.srv.IdleTimeout, c.c.SetReadDeadline)
}

// refreshWriteDeadline keeps the write deadline WriteTimeout ahead.
func (c *conn) refreshWriteDeadline() {
	deadline.Refresh(&c.writeBy, c.srv.WriteTimeout, c.c.SetWriteDeadline)
}

// reason names why a connection ended, for the close log line.
func (c *conn) reason(err error, writing bool) string {
	switch {
	case c.srv.closing.Load() && (errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded)):
		return "shutdown"
	case errors.Is(err, os.ErrDeadlineExceeded) && writing:
		return "write timeout"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "idle timeout"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	}
	return "error: " + err.Error()
}
