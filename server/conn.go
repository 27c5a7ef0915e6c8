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

// smallRead is what an idle connection holds (the lesson's recv size):
// reads start here and move to a pooled buffer of ReadSize while the client
// keeps them full.
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
}

// serve is the connection's loop: one read, one transform, one write.
func (c *conn) serve() {
	s := c.srv
	t := s.transformer()
	log := s.logger()
	remote := c.c.RemoteAddr().String()
	debug := log.Enabled(context.Background(), slog.LevelDebug)
	if s.ConnState != nil {
		s.ConnState(c.c, StateNew)
	}

	small := make([]byte, smallRead)
	in := small
	var big *[]byte // borrowed while reads fill the small buffer
	carry := 0      // bytes of an incomplete character kept from the last read
	reason := ""
	for reason == "" {
		// Refresh first, then look: Shutdown sets closing before it moves
		// the deadline, so a deadline set here cannot hide a shutdown.
		c.refreshReadDeadline()
		if s.closing.Load() {
			reason = c.drain(t, in, carry)
			break
		}
		n, err := c.c.Read(in[carry:])
		if n > 0 {
			c.bytesIn += int64(n)
			filled := carry + n // of len(in)
			if debug {
				msg := in[carry : carry+n]
				log.Debug("message", "remote", remote, "bytes", n, "data", string(msg[:min(len(msg), logPrefix)]))
			}
			var werr error
			carry, werr = c.answer(t, in[:carry+n], false)
			if werr != nil {
				reason = c.reason(werr, true)
				break
			}
			// Grow to a pooled buffer while the client keeps reads full,
			// and give it back as soon as a read comes up short.
			switch {
			case filled == len(in) && big == nil && len(in) < s.readSize():
				big = getBuf(s.readSize())
				copy(*big, in[:carry])
				in = *big
			case filled < len(small) && big != nil:
				copy(small, in[:carry])
				putBuf(big)
				big, in = nil, small
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				// End of input or half-close: answer what is left, then close.
				if _, werr := c.answer(t, in[:carry], true); werr != nil {
					reason = c.reason(werr, true)
				} else {
					reason = "eof"
				}
				break
			}
			if s.closing.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
				reason = c.drain(t, in, carry)
				break
			}
			reason = c.reason(err, false)
		}
	}
	if big != nil {
		putBuf(big)
	}
	c.c.Close()
	log.Info("close", "remote", remote, "reason", reason, "duration", time.Since(c.start).Round(time.Microsecond),
		"bytes_in", c.bytesIn, "bytes_out", c.bytesOut)
	if s.ConnState != nil {
		s.ConnState(c.c, StateClosed)
	}
	s.forget(c)
}

// answer transforms src, writes the result and returns how many bytes at
// the end of src were left for the next read (an incomplete character),
// moved to the front of src.
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
			c.refreshWriteDeadline()
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
