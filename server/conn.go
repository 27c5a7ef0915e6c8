package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"shout/internal/sockerr"

	"golang.org/x/text/transform"
)

// smallRead is the first read's size, the lesson's recv(1024); reads grow
// to ReadSize while the client keeps them full.
const smallRead = 1 << 10

// drainQuiet is how long a connection that is stopping waits for more
// input before it takes the client to be done: bytes a client sent just
// before the stop may still be on their way.
const drainQuiet = 50 * time.Millisecond

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

// putBuf gives a buffer from getBuf back to its pool; nil is ignored.
func putBuf(p *[]byte) {
	if p == nil {
		return
	}
	if k := bits.Len(uint(cap(*p) - 1)); k < len(bufPools) && cap(*p) == 1<<k {
		bufPools[k].Put(p)
	}
}

// conn is the goroutine-per-connection driver: one goroutine reads a
// connection, feeds its session, writes the replies, and closes it. It
// works with any net.Conn. While a reply cannot be written it reads
// nothing more, so a client that does not read holds at most 2×ReadSize:
// its read and that read's reply.
type conn struct {
	srv      *Server
	accepted net.Conn                         // as accepted: Shutdown and Close reach it there
	c        net.Conn                         // as served: accepted, or what WrapConn made of it
	wrap     func(net.Conn) (net.Conn, error) // the listener's and the server's WrapConn, if any
	obs      Observer
	sess     session
	trace    ConnTrace // nil unless the Observer is a SocketTracer
	// headerRead: the listener's wrapper reads a PROXY header before the
	// data (it Readdresses the connection), so one in the data is a
	// second.
	headerRead bool

	// raw reads without holding a buffer while the connection idles; nil
	// for anything but *net.TCPConn and *net.UnixConn, since a wrapper
	// (TLS, PROXY protocol, a buffering reader) may hold bytes of its own
	// that the socket no longer has.
	raw  syscall.RawConn
	rr   rawRead
	size int // the next read's size
	exp  int // the transformer's most bytes out per byte in

	timer timer // what the server's timeout watcher sees
	// wrapWriteErr is what a write of the wrapper's own, inside a read,
	// failed with (see wrapGuard.Write).
	wrapWriteErr error

	place place
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{srv: s, accepted: nc, c: nc, obs: s.observer(), size: smallRead, exp: s.expansion()}
	c.sess.init()
	c.sess.info.Start = time.Now()
	c.timer.lastRead.Store(s.clock.now())
	c.sess.info.Remote, c.sess.info.Local = nc.RemoteAddr(), nc.LocalAddr()
	return c
}

// errNoWrapped closes a connection whose wrapper broke its contract,
// returning neither a connection nor an error.
var errNoWrapped = errors.New("server: the connection's wrapper returned no connection and no error")

// serve serves the connection until it ends, then closes it. A wrapped
// connection is wrapped, admitted and announced here; others were on the
// accept loop.
func (c *conn) serve() {
	defer c.srv.wg.Done()
	s := c.srv
	if c.wrap != nil {
		g := &wrapGuard{Conn: c.c, c: c}
		wc, err := c.wrap(g) // the idle timeout is watched already
		g.done.Store(true)
		if wc == net.Conn(g) { // a wrapper that kept the connection as it was
			wc = g.Conn
		}
		if wc == nil && err == nil {
			err = errNoWrapped
		}
		if err != nil {
			// ReasonWrap, or the wrapper's own (ReasonHandshake,
			// ReasonProxyHeader), whatever the error (a time-out, a
			// reset): an observer tells by it that there was no open.
			r := ReasonWrap
			we := (*WrapError)(nil)
			if errors.As(err, &we) {
				r = we.Reason
				if we.Remote != nil && we.Local != nil {
					c.sess.info.Remote, c.sess.info.Local = we.Remote, we.Local
				}
			}
			leftSilent := r == ReasonEOF || r == ReasonReset
			if !leftSilent && !r.wrap() {
				r = ReasonWrap // (a wrapper's Reason that is no wrap's, nor a silent client's)
			}
			if leftSilent {
				// The client left before the wrap began (ReasonEOF,
				// ReasonReset: a health check that connects and closes):
				// no failure. It opened and closed, as over a listener
				// without a wrap.
				c.obs.ConnOpen(&c.sess.info)
				if s.ConnState != nil {
					s.ConnState(c.accepted, StateNew)
				}
				c.accepted.Close()
				c.end(r, true)
				return
			}
			cut := false // by the stop or the idle timeout: no refusal, nothing to linger for
			switch {
			case s.cutByStop(err):
				cut = true
				// No handshake failed, and observers must not count one.
				err = fmt.Errorf("%w: %w", ErrServerClosed, err)
			case c.timer.lastRead.Load() == fired && errors.Is(err, os.ErrDeadlineExceeded):
				// The idle timeout, shorter than the wrapper's own wait,
				// cut it: say which, as the wrapper cannot know.
				inner := err
				if we != nil {
					inner = we.Err
				}
				err = &WrapError{Reason: r, Err: fmt.Errorf("cut by the idle timeout (%v): %w", s.IdleTimeout, inner)}
				cut = true
			}
			c.sess.info.Err = err
			if !cut {
				// Refused at its wrapping (a PROXY header from a source
				// not trusted to send it, none or a malformed one from a
				// source that must; a failed TLS handshake, such as a
				// plain-text client's): closed as gracefully as one
				// turned away at a limit. Closed at once, what the client
				// sent past what the wrapper read (most of an untrusted
				// header, a plain-text client's line) made it a reset.
				// Its places under the limits are given back at once, as
				// a rejected one's are.
				s.release(&c.place)
				c.closeRefused(r)
				return
			}
			c.accepted.Close()
			c.end(r, false)
			return
		}
		c.c = wc
		if c.timer.lastRead.Load() == fired {
			// The idle timeout fired during the wrap, whose own deadline
			// handling (a PROXY header's) may have undone it: it closes
			// the connection now, as it would have.
			c.c.SetReadDeadline(past)
		}
		c.sess.info.Remote, c.sess.info.Local = wc.RemoteAddr(), wc.LocalAddr()
		if t, ok := wc.(interface{ ConnectionState() tls.ConnectionState }); ok {
			st := t.ConnectionState()
			c.sess.info.TLS = &st
		}
		if !c.place.ipCounted && !s.admitIP(&c.place, c.sess.info.Remote) { // (counted at accept if its address was final)
			c.rejectNow(ErrMaxConnsPerIP)
			return
		}
		c.obs.ConnOpen(&c.sess.info)
	}
	switch nc := c.c.(type) {
	case *net.TCPConn:
		c.raw, _ = nc.SyscallConn()
	case *net.UnixConn:
		c.raw, _ = nc.SyscallConn()
	}
	if s.ConnState != nil {
		s.ConnState(c.c, StateNew)
	}
	r := c.loop()
	c.c.Close()
	c.end(r, true)
}

// wrapGuard is the accepted connection as a wrapper gets it: a read
// deadline the wrapper sets once the idle timeout has put the
// connection's in the past is the past one, so that a wrapper's own
// deadline (a PROXY header's wait) cannot undo it. Once the server is
// stopping gracefully, the wrap may go on until the connection is
// newcomerWait old, as a connection that has sent nothing yet may (see
// Server.newcomer): a client that connected just before the stop, whose
// TLS handshake or PROXY header was still on its way, is answered, not
// cut. A deadline the wrapper sets is held to that, so that it cannot
// hold the stop up longer; the stop's own deadline in the past (closeAll
// wakes every read with it) is taken back while the wrap may go on (see
// Read). The check comes after the set, so a stop or an idle timeout that
// lands in between still wins. Its reads keep the idle timeout as the
// connection's own do. Once the wrap is done it guards no more: the
// server's own deadlines (a graceful close's wait) go through as set,
// and reads are the connection's loop's to time.
type wrapGuard struct {
	net.Conn
	c    *conn
	done atomic.Bool
	// deadline is the read deadline the wrapper last set, in Unix
	// nanoseconds, 0 for none: what a read the idle timeout or the stop
	// cut early waits with again.
	deadline atomic.Int64
}

// limit is the latest read deadline the wrap may have now, and whether
// there is one: the past once the idle timeout has fired; once the server
// is stopping, the time the connection is newcomerWait old. (A forced
// stop closes the connection, whatever its deadline.)
func (g *wrapGuard) limit() (time.Time, bool) {
	switch {
	case g.done.Load():
		return time.Time{}, false
	case g.c.timer.lastRead.Load() == fired:
		return past, true
	case g.c.srv.closing.Load():
		return g.c.sess.info.Start.Add(g.c.srv.newcomerWait()), true
	}
	return time.Time{}, false
}

func (g *wrapGuard) SetReadDeadline(t time.Time) error {
	g.keep(t)
	err := g.Conn.SetReadDeadline(t)
	if by, ok := g.limit(); ok && (t.IsZero() || by.Before(t)) {
		return g.Conn.SetReadDeadline(by)
	}
	return err
}

func (g *wrapGuard) SetDeadline(t time.Time) error {
	g.keep(t)
	err := g.Conn.SetDeadline(t)
	if by, ok := g.limit(); ok && (t.IsZero() || by.Before(t)) {
		return g.Conn.SetReadDeadline(by)
	}
	return err
}

// keep records t as the wrapper's read deadline.
func (g *wrapGuard) keep(t time.Time) {
	var ns int64
	if !t.IsZero() {
		ns = t.UnixNano()
	}
	g.deadline.Store(ns)
}

// kept is the wrapper's read deadline; zero for none.
func (g *wrapGuard) kept() time.Time {
	if ns := g.deadline.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// Read reads for the wrapper, under the idle timeout as the connection's
// loop reads: what it reads times the idle from now, and a read the
// idle timeout cut though the client was not idle is made again, the
// timeout taken back. A wrap (a PROXY header's parse, a TLS handshake)
// that failed there would fail for good, and the client, who had sent in
// time, read end of file or a reset.
func (g *wrapGuard) Read(p []byte) (int, error) {
	for {
		n, err := g.Conn.Read(p)
		switch {
		case g.done.Load():
		case n > 0 && g.c.noteRead():
			// The watcher took the connection for idle as it read.
			g.rearm()
		case n == 0 && err != nil && g.idleCutWrongly(err):
			continue
		case n == 0 && err != nil && g.stopCutEarly(err):
			continue
		}
		return n, err
	}
}

// idleCutWrongly reports whether a read that failed with err met the
// idle timeout's deadline though the client was not idle, and if so
// takes the timeout back: the client's bytes waited unread, as this
// goroutine ran later than the timeout (a busy machine), or the
// watcher's deadline landed after a read had timed the idle again (the
// watcher marks the timeout fired, then moves the deadline).
func (g *wrapGuard) idleCutWrongly(err error) bool {
	c := g.c
	if c.srv.IdleTimeout <= 0 || !errors.Is(err, os.ErrDeadlineExceeded) || c.srv.closing.Load() {
		return false
	}
	if d := g.kept(); !d.IsZero() && !time.Now().Before(d) {
		return false // the wrapper's own deadline
	}
	if c.timer.lastRead.Load() == fired && !inputWaits(c.accepted) {
		return false // idle indeed
	}
	g.rearm()
	return true
}

// stopCutEarly reports whether a read that failed with err met the
// graceful stop's deadline in the past, which closeAll gives every
// connection, while the wrap may still go on; if so it sets the read
// deadline the wrap has now (see limit), which is in the future.
func (g *wrapGuard) stopCutEarly(err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) || !g.c.srv.closing.Load() {
		return false
	}
	now := time.Now()
	if d := g.kept(); !d.IsZero() && !now.Before(d) {
		return false // the wrapper's own
	}
	by, ok := g.limit()
	if !ok || !now.Before(by) {
		return false // the idle timeout's, or the stop's wait for the wrap is over
	}
	g.SetReadDeadline(g.kept())
	return true
}

// rearm starts the idle timeout again from now, and puts back the
// wrapper's own read deadline (held to the stop's wait for the wrap, if
// the stop has begun meanwhile: see limit).
func (g *wrapGuard) rearm() {
	g.c.timer.lastRead.Store(g.c.srv.clock.now())
	g.SetReadDeadline(g.kept())
}

// Write writes for the wrapper. Once the wrap is done, a write of the
// wrapper's own, made inside a read rather than a reply's write (TLS's
// answer to a KeyUpdate, an alert), is timed as a reply's is: one that
// a client taking nothing held blocked, and the read around it, for
// good, past the idle timeout, whose read deadline does not wake a
// write, and past the write timeout, which saw no write under way. Timed
// out, or failed otherwise (the client's reset), it ends the read as
// well, which TLS would carry on with (the answer's error is for its
// next write), and the connection as that failure, as a reply's would
// (see wrapFailed): a reset, whose error the write took from the socket,
// ended it as the end of file the read then met, "eof", answered.
func (g *wrapGuard) Write(p []byte) (int, error) {
	c := g.c
	if !g.done.Load() || c.timer.writeSince.Load() != 0 {
		// The wrap's own, under its time limit; or a reply's, which
		// writeTimed times.
		return g.Conn.Write(p)
	}
	n, err := c.writeTimedTo(g.Conn, p)
	if err != nil {
		c.wrapWriteErr = err
		g.Conn.SetReadDeadline(past)
	}
	return n, err
}

// NetConn is the connection accepted, as tls.Conn's NetConn is.
func (g *wrapGuard) NetConn() net.Conn { return g.Conn }

// CloseWrite shuts the write side, as the connection accepted can.
func (g *wrapGuard) CloseWrite() error {
	if cw, ok := g.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// cutByStop reports whether err, met while the server is stopping, is
// the stop's doing: what a read fails with once Shutdown has put the
// connection's read deadline in the past, or once Close (or Shutdown, for
// a datagram socket) has closed it, as a stop does to every one. Anything
// else (bytes that are not TLS, a malformed PROXY header, a reset, a send
// the kernel refused) failed on its own, stop or not.
func (s *Server) cutByStop(err error) bool {
	return s.closing.Load() && (errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed))
}

// end records why the connection ended, frees its places under the
// limits, and tells the observer and the ConnState hook.
func (c *conn) end(r Reason, opened bool) {
	c.srv.forget(c)
	c.sess.info.Reason, c.sess.info.End = r, time.Now()
	if c.trace != nil {
		c.trace.Close(&c.sess.info)
	}
	c.obs.ConnClose(&c.sess.info)
	if opened && c.srv.ConnState != nil {
		c.srv.ConnState(c.c, StateClosed)
	}
}

// reject turns away a connection over a limit, on its own goroutine.
func (c *conn) reject(why error) {
	defer c.srv.wg.Done()
	if rejecting != nil {
		rejecting()
	}
	c.rejectNow(why)
}

// rejecting, if set, is called as a rejected connection's goroutine
// starts; a test sets it, to hold that goroutine back.
var rejecting func()

// rejectNow shuts the connection's write side, so the client reads end of
// file, and closes it once the client is done or Linger has passed; a
// flood of rejected connections past maxLingering is closed at once. It
// gives back at once any place the connection was counted in: one turned
// away by MaxConnsPerIP had taken a MaxConns place, which others may have
// while it lingers.
func (c *conn) rejectNow(why error) {
	c.srv.release(&c.place)
	c.sess.info.Err = why
	c.closeRefused(ReasonRejected)
}

// closeRefused closes a connection refused before it was served: it shuts
// the write side, so the client reads end of file, and closes once the
// client is done or Linger has passed, reading and discarding meanwhile
// so that closing finds no unread input (which would send a reset); past
// maxLingering such connections at once it closes at once. The observers
// are told that it ended for r once the client can read its end of file,
// not once the linger is done: a client that keeps its end open would
// hold the count back for up to Linger. A connection rejected at a limit
// is StateRejected to the ConnState hook; one refused at its wrapping
// was never opened, and the hook hears nothing of it.
func (c *conn) closeRefused(r Reason) {
	tell := func() {
		c.sess.info.Reason, c.sess.info.End = r, time.Now()
		c.obs.ConnClose(&c.sess.info)
		if r == ReasonRejected && c.srv.ConnState != nil {
			c.srv.ConnState(c.c, StateRejected)
		}
	}
	select {
	case c.srv.lingering <- struct{}{}:
		lingers := c.shutWrite()
		tell()
		if lingers {
			c.linger()
		}
		<-c.srv.lingering
		c.c.Close()
	default:
		c.c.Close()
		tell()
	}
	c.srv.forget(c)
	if c.trace != nil {
		c.trace.Close(&c.sess.info)
	}
}

// loop is one read, one transform, one write, until the connection ends;
// it returns why it ended.
func (c *conn) loop() Reason {
	s := c.srv
	for {
		if s.closing.Load() {
			return c.stop()
		}
		n, err, werr := c.step()
		if werr != nil {
			return c.reasonOf(werr, true, ReasonError)
		}
		if n > 0 && c.noteRead() {
			// The watcher took the connection for idle while it answered
			// what it read (a reply the client took slowly, a slow
			// Observer): it was not, and what it sent since is answered.
			c.rearm()
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			// End of input or half-close: answer what is left, then close
			// once the client has taken the replies (eofQueued).
			// Replies reset away after it, the client having taken none
			// for WriteTimeout, end it as a write timeout does, and
			// replies the client's own reset threw away as the reset:
			// the log and metrics do not count it answered.
			return c.closeAtEOF(ReasonEOF)
		case errors.Is(err, os.ErrDeadlineExceeded) && s.closing.Load():
			return c.stop()
		case errors.Is(err, os.ErrDeadlineExceeded) && c.lateIdleDeadline():
			// Not idle: read on.
		case errors.Is(err, os.ErrDeadlineExceeded) && inputWaits(c.accepted):
			// Not idle either: the client sent before the timeout fired,
			// but this goroutine ran too late to read it. Answer it, and
			// time the idle from now.
			c.rearm()
		case errors.Is(err, os.ErrDeadlineExceeded):
			return c.flushThenClose(ReasonIdleTimeout)
		default:
			return c.reasonOf(err, false, ReasonError)
		}
	}
}

// step reads once and answers what it read: it returns the read's count
// and error, and the error that writing the reply met (see wrapFailed).
func (c *conn) step() (n int, err, werr error) {
	if c.trace != nil {
		return c.stepTraced()
	}
	buf, n, err := c.read()
	if n > 0 {
		werr = c.answer(buf, n)
		c.adapt(c.rr.carried + n)
	}
	putBuf(buf)
	return n, err, c.wrapFailed(werr)
}

// wrapFailed is werr, what writing a step's reply met, or, where that
// was nothing, what a write the wrapper made of its own inside the
// step's read failed with (see wrapGuard.Write): the connection ends as
// one whose reply met it does, in the loop or in a stop's reads alike;
// the write timeout's, the client taking none of what its wrapper wrote
// for it, with a reset. (A stop read on past it, and closed gracefully,
// leaving what was queued to the kernel.)
func (c *conn) wrapFailed(werr error) error {
	if werr == nil {
		return c.wrapWriteErr
	}
	return werr
}

// stepTraced is step with its ConnTrace told. It is a function of its
// own, not a branch in step, so that step's stack frame stays as small as
// it was: every connection's goroutine stack is sized by its deepest
// call, and 2 KiB rather than 4 while it idles.
func (c *conn) stepTraced() (n int, err, werr error) {
	buf, n, err := c.read()
	c.traceRead(buf, n, err)
	if n > 0 {
		werr = c.answer(buf, n)
		c.adapt(c.rr.carried + n)
		if c.sess.held > 0 {
			c.trace.Held(c.sess.carry())
		}
	}
	putBuf(buf)
	return n, err, c.wrapFailed(werr)
}

// traceRead tells the ConnTrace of the read that put n bytes in buf,
// after the carried ones, or failed with err.
func (c *conn) traceRead(buf *[]byte, n int, err error) {
	k := c.rr.carried
	var p []byte
	if buf != nil {
		p = (*buf)[k : k+n]
	}
	if n == 0 && err == nil {
		err = io.EOF // (a raw read's end of file comes back as io.EOF already)
	}
	c.trace.Read(c.size-k, p, err)
}

// adapt sizes the next read after one that filled filled bytes of its
// region: larger while the client keeps reads full, and small again once
// a read brings less than a small one would hold.
func (c *conn) adapt(filled int) {
	switch {
	case filled == c.size:
		c.size = c.srv.readSize()
	case filled < smallRead:
		c.size = smallRead
	}
}

// replyLen is the reply buffer for src: room for all of its reply, up to
// ReadSize; a longer reply is written in parts. The product is taken in
// int64: where int is 32 bits, a 32 KiB read times MaxExpansionLimit
// wrapped to a negative size.
func (c *conn) replyLen(src int) int {
	most := max(c.srv.readSize(), maxCarry*c.exp)
	return int(min(int64(src)*int64(c.exp), int64(most)))
}

// answer feeds the n bytes a read put in buf, after the k carried ones,
// to the session and writes the reply, telling the observers of both.
func (c *conn) answer(buf *[]byte, n int) error {
	k := c.rr.carried
	if v := c.sess.read((*buf)[k : k+n]); v != 0 {
		c.srv.proxyHeaderRead(&c.sess.info, v, c.headerRead)
	}
	c.obs.ConnRead(&c.sess.info, (*buf)[k:k+n])
	before := c.sess.info.BytesOut
	err := c.reply((*buf)[:k+n])
	if c.srv.replies != nil {
		c.srv.replies.ConnReply(&c.sess.info, int(c.sess.info.BytesOut-before), err)
	}
	return err
}

// reply transforms in and writes the result, from a buffer of its own
// that it borrows only now, sized for it.
func (c *conn) reply(in []byte) error {
	out := getBuf(c.replyLen(len(in)))
	defer func() { putBuf(out) }() // out may be replaced below
	t := c.srv.transformer()
	for len(in) > 0 {
		nDst, nSrc, err := c.sess.feed(t, *out, in)
		if nDst > 0 {
			if werr := c.write((*out)[:nDst]); werr != nil {
				return werr
			}
		}
		in = in[nSrc:]
		if err != transform.ErrShortDst {
			return err
		}
		if nDst == 0 && nSrc == 0 { // a transformer that wants more room
			if len(*out) >= 4*c.srv.readSize() {
				return errNoProgress
			}
			n := 2 * len(*out)
			putBuf(out)
			out = getBuf(n)
		}
	}
	return nil
}

// flushThenClose answers an incomplete character held at the end of
// input as it is (answerHeld), then, if the answer did not fail, closes
// gracefully (closeGracefully), and returns r, or why the answer failed.
// One that failed ends the connection at once, as the event loops end it
// (loop.closeGracefully): a write the write timeout cut has reset it (see
// reasonOf), and a linger would only wait behind a reply the client took
// none of, for as long as Linger where that is longer than WriteTimeout.
// The failure is told by its error, not its reason: at a stop, both are
// ReasonShutdown.
func (c *conn) flushThenClose(r Reason) Reason {
	if err := c.answerHeld(); err != nil {
		return c.reasonOf(err, true, ReasonError)
	}
	c.closeGracefully()
	return r
}

// answerHeld answers an incomplete character held at the end of input as
// it is, and returns why that failed: the transformer's error, or the
// write's.
func (c *conn) answerHeld() error {
	if c.sess.held == 0 {
		return nil
	}
	buf := getBuf(maxCarry * c.exp)
	defer putBuf(buf)
	n, err := c.sess.flush(c.srv.transformer(), *buf)
	if n > 0 {
		if werr := c.write((*buf)[:n]); werr != nil {
			err = werr
		}
	}
	if c.srv.replies != nil {
		c.srv.replies.ConnReply(&c.sess.info, n, err)
	}
	return err
}

func (c *conn) write(p []byte) error {
	if c.trace != nil {
		return c.writeTraced(p) // apart, as stepTraced is
	}
	n, err := c.writeTimed(p)
	c.sess.info.BytesOut += int64(n)
	return err
}

func (c *conn) writeTraced(p []byte) error {
	n, err := c.writeTimed(p)
	c.sess.info.BytesOut += int64(n)
	c.trace.Write(p, n, err)
	return err
}

// stop ends a connection when the server stops: it answers every byte
// that had arrived, then closes gracefully. Where the system says how
// many bytes wait in the socket's receive queue, those are what arrived;
// elsewhere (a wrapper, a system other than Linux) it answers until the
// client pauses for drainQuiet, for up to Linger. A connection that has
// sent nothing yet, younger than a second, waits for its first message
// until it is that old (see newcomer), and where the queue is not
// counted, for drainQuiet at least.
func (c *conn) stop() Reason {
	owed, retries, marked := c.queued(), 0, false
	known := c.raw != nil && queueLooked // elsewhere queued says 0, not that nothing waits
	end := time.Now().Add(c.srv.linger())
	newcomer := (!known || owed <= 0) && c.srv.newcomer(&c.sess.info)
	for first := true; ; first = false {
		now := time.Now()
		if known {
			owed = c.stillOwed(owed, &marked) // SIOCINQ's count is not always what reads return
		}
		if known && owed <= 0 && !newcomer || !known && !first && !now.Before(end) {
			break
		}
		if newcomer {
			by := c.sess.info.Start.Add(c.srv.newcomerWait())
			if quiet := now.Add(drainQuiet); !known && by.Before(quiet) {
				by = quiet // nearly that old: it waits for what is on its way, as any does
			}
			c.c.SetReadDeadline(by)
		} else if known {
			// The bytes are there: a deadline of drainQuiet could pass
			// before a goroutine that was not scheduled in time reads.
			c.c.SetReadDeadline(now.Add(max(c.srv.linger(), drainQuiet)))
		} else {
			c.c.SetReadDeadline(now.Add(drainQuiet))
		}
		n, err, werr := c.step()
		if newcomer && n > 0 {
			newcomer = false
			owed = c.queued() + n // what came with it
		}
		owed -= n
		if werr != nil {
			return c.reasonOf(werr, true, ReasonError)
		}
		if errors.Is(err, io.EOF) {
			// The client is done: nothing more to read, but its replies
			// still queued are waited for, as at any end of file, and the
			// close is the stop's.
			return c.closeAtEOF(ReasonShutdown)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			switch {
			case known && owed > 0 && c.queued() > 0:
				continue // there to read: the goroutine ran too late for the deadline
			case (known && owed > 0 || newcomer && time.Since(c.sess.info.Start) < c.srv.newcomerWait()) && retries < 3:
				retries++ // Shutdown moved the deadline after we set it
				continue
			}
			break
		}
		if err != nil {
			return c.reasonOf(err, false, ReasonError)
		}
	}
	return c.flushThenClose(ReasonShutdown)
}

// closeGracefully shuts the write side, so the client reads end of file
// after every reply, then lingers (linger) so that closing finds no
// unread input. The caller closes.
func (c *conn) closeGracefully() {
	if c.shutWrite() {
		c.linger()
	}
}

// shutWrite shuts the write side, so the client reads end of file after
// every reply, and reports whether a linger is to follow: the side is
// shut, and Linger is not off.
func (c *conn) shutWrite() bool {
	cw, ok := c.c.(interface{ CloseWrite() error })
	if !ok {
		return false
	}
	err := cw.CloseWrite()
	if c.trace != nil {
		c.trace.CloseWrite(err)
	}
	return err == nil && c.srv.linger() > 0
}

// linger reads and discards until the client's end of file, so that
// closing finds no unread input: that would make the kernel reset the
// connection and drop the replies still in its send queue. It waits
// while input keeps coming (a client still sending has not read our end
// of file yet), Linger after it stops, and while replies are still
// queued, as long as the client takes some within WriteTimeout (or
// Linger, without one), looking at them every lingerEvery; in all,
// maxLingerRounds×Linger at most.
func (c *conn) linger() {
	linger := c.srv.linger()
	stuck := linger // how long a client may take no reply
	if c.srv.WriteTimeout > 0 {
		stuck = max(c.srv.WriteTimeout, linger)
	}
	buf := getBuf(4 << 10)
	defer putBuf(buf)
	giveUp := time.Now().Add(lingerBound(linger))
	unsent, lastInput, lastTaken := c.unsent(), time.Now(), time.Now()
	var by time.Time
	wait := func(until time.Time) bool {
		if by = until; by.After(giveUp) {
			by = giveUp
		}
		return c.c.SetReadDeadline(by) == nil
	}
	if !wait(lastInput.Add(linger)) {
		return
	}
	for {
		n, err := c.c.Read(*buf)
		if c.trace != nil && (n > 0 || !errors.Is(err, os.ErrDeadlineExceeded)) {
			c.trace.Discard(n, err)
		}
		if err == nil {
			// Move the deadline coarsely, as the timeout watcher does;
			// held at giveUp, it moves no more.
			lastInput = time.Now()
			if by.Before(giveUp) && by.Sub(lastInput) < linger-linger/8 && !wait(lastInput.Add(linger)) {
				return
			}
			continue
		}
		now := time.Now()
		if errors.Is(err, io.EOF) {
			// The client is done sending, but may not have taken every
			// reply: with a write timeout they are waited for as long as
			// it takes some within it, 30 Lingers or not, with nothing
			// more to read (without, or over a Unix socket, whose queue
			// is the client's own to read, closed as ever).
			if c.srv.WriteTimeout > 0 && c.overTCP() {
				c.lingerQueued(unsent, lastTaken, stuck, linger)
			}
			return
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) || now.After(giveUp) {
			// A failed connection, or too long: a client that still takes
			// its replies gets them after a FIN, as ever; one that took
			// none for WriteTimeout has them reset away.
			c.resetStuck(unsent, lastTaken)
			return
		}
		// Whatever woke the read (this deadline, or Shutdown's or the
		// watcher's, which moved it), the deadline is set again below to
		// this linger's own end, not a Linger from the wake.
		if inputWaits(c.accepted) {
			// The client sent in time, but this goroutine ran later than
			// the deadline (a busy machine): its input is read, and
			// lingered after, as any other.
			lastInput = now
			if !wait(now.Add(linger)) {
				return
			}
			continue
		}
		left := c.unsent()
		if left < unsent {
			unsent, lastTaken = left, now
		}
		// Replies queued, the client takes some: look again as often as
		// the event loops do, so that the close comes as soon after the
		// client takes the last one (or stops taking any) as theirs.
		next := now.Add(lingerEvery(linger))
		switch {
		case now.Sub(lastInput) < linger:
			next = lastInput.Add(linger)
		case left == 0:
			return // every reply delivered, and a Linger without input
		case now.Sub(lastTaken) >= stuck:
			// Replies queued, but the client takes none: reset away if it
			// took none for WriteTimeout; without one, closed as ever.
			if c.srv.WriteTimeout > 0 {
				c.reset()
			}
			return
		}
		if !wait(next) {
			return
		}
	}
}

// closeAtEOF answers what is held once the client's end of file has come,
// then waits for the replies still queued (eofQueued), and returns the
// reason the connection ends for: r (ReasonEOF, or the stop's
// ReasonShutdown) as eofQueued names it, or why the answer failed.
func (c *conn) closeAtEOF(r Reason) Reason {
	if err := c.answerHeld(); err != nil {
		return c.reasonOf(err, true, ReasonError)
	}
	return c.eofQueued(r)
}

// eofQueued waits, once the client is done sending and every reply is
// written, for those still queued in a TCP socket to be taken, with the
// write side shut at once so that the client reads end of file right
// after them (lingerQueued). Without a write timeout, or with Linger off,
// or over a Unix socket, it does not wait: the connection closes at once.
// It returns the reason the connection ends for, r named by what became
// of the replies (see eofReason): for ReasonEOF, ReasonWriteTimeout if
// they were reset away, ReasonReset if the client's reset threw them
// away (see eofLookFD), ReasonError if the kernel did, ReasonEOF
// otherwise; the stop's ReasonShutdown
// stays as it is, as the event loops' does. The send queue is looked at
// once before the wait, and once more after one (the client may have
// reset meanwhile).
func (c *conn) eofQueued(r Reason) Reason {
	if !c.overTCP() {
		return r // (a Unix socket's queue is the client's own to read)
	}
	linger := c.srv.linger()
	if c.srv.WriteTimeout <= 0 || linger <= 0 {
		return eofReason(&c.sess.info, r, c.eofGone()) // nothing would ever be reset: closed as ever
	}
	start := time.Now()
	unsent, gone := c.eofLook()
	if unsent == 0 {
		return eofReason(&c.sess.info, r, gone)
	}
	// The replies are waited for even if the write side could not be
	// shut: TLS's close_notify, queued behind them in a full send buffer,
	// fails once crypto/tls's 5 s deadline passes, and the connection
	// closed then would leave them to the kernel. (The client then reads
	// end of file once they are taken, at the close.)
	if eofShutting != nil {
		eofShutting()
	}
	c.shutWrite()
	if c.lingerQueued(unsent, start, max(c.srv.WriteTimeout, linger), linger) && r == ReasonEOF {
		return ReasonWriteTimeout
	}
	return eofReason(&c.sess.info, r, c.eofGone())
}

// eofShutting, if set, is called after the client's end of file, once
// the look at the send queue has found replies queued, before the write
// side is shut, in both drivers; a test sets it, to have the client
// reset in between, as may happen, and the shutdown fail.
var eofShutting func()

// eofReason is the reason a connection closing for r ends for after the
// client's end of file, every reply written, in both drivers, given gone,
// what ended it with replies still queued (see eofLookFD): an end of
// file's ReasonEOF (answered) is ReasonReset if the client's reset threw
// them away; ReasonError, its error in info, if the server's kernel gave
// up on the client (ETIMEDOUT), as such an error is at any other time.
// Any other reason (the stop's) stays as it is.
func eofReason(info *ConnInfo, r Reason, gone syscall.Errno) Reason {
	switch {
	case r != ReasonEOF || gone == 0:
		return r
	case gone == syscall.ECONNRESET || gone == syscall.EPIPE:
		return ReasonReset
	}
	info.Err = fmt.Errorf("replies still queued after the client's end of file were dropped: %w", os.NewSyscallError("tcp", gone))
	return ReasonError
}

// lingerQueued waits, after the client's end of file, for the replies
// still queued (unsent bytes of them when the client last took some, at
// lastTaken) to be taken, looking every lingerEvery: until none is left,
// or the client takes none for stuck (at least WriteTimeout, which is
// set), and then they are reset away (see reset). A client that sends,
// shuts its write side and never reads would otherwise leave them to the
// kernel, on a socket no limit counts. There is no bound of 30 Lingers:
// a client that keeps taking its replies holds its place among
// MaxConns until it has them all. A forced close ends the wait at once.
// It reports whether it reset them.
func (c *conn) lingerQueued(unsent int, lastTaken time.Time, stuck, linger time.Duration) (reset bool) {
	for {
		left, now := c.unsent(), time.Now()
		if left < unsent {
			unsent, lastTaken = left, now
		}
		switch {
		case left == 0:
			return false
		case now.Sub(lastTaken) >= stuck:
			c.reset()
			return true
		}
		t := time.NewTimer(queuedEvery(linger))
		select {
		case <-t.C:
		case <-c.srv.killed:
			// Closed under it (Close, or Shutdown past its context):
			// nothing is left to wait for, and the stop waits for this
			// goroutine.
			t.Stop()
			return false
		}
	}
}

// queuedEvery is how often lingerQueued looks: lingerEvery; a test makes
// it longer, to see a forced close end the wait.
var queuedEvery = lingerEvery

// overTCP reports whether the connection is over TCP, wrapped (TLS, the
// PROXY protocol) or not.
func (c *conn) overTCP() bool { return tcpUnder(c.accepted) != nil }

// tcpUnder is the TCP socket under nc, however wrapped (see
// socketUnder), or nil if there is none.
func tcpUnder(nc net.Conn) *net.TCPConn {
	tc, _ := socketUnder(nc).(*net.TCPConn)
	return tc
}

// socketUnder is the connection under nc's wrappers, nc itself if it has
// none: a wrapper is one that gives its connection through NetConn
// (*tls.Conn, wrapGuard). The walk is bounded: a wrapper that gives
// itself must not hang the timeout watcher or a close; and it stops at a
// wrapper that gives none (nil), which Close closes then.
func socketUnder(nc net.Conn) net.Conn {
	for range 8 {
		w, ok := nc.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		under := w.NetConn()
		if under == nil {
			break
		}
		nc = under
	}
	return nc
}

// resetStuck resets the connection if replies are still queued in its
// socket and the client took none of them for WriteTimeout (unsent bytes
// were queued when it last took some, at lastTaken), so that closing
// frees them (see reset) rather than leaving them to the kernel on a
// socket no limit counts, for as long as the client's window stays shut.
// A client that still takes them, or a server without a write timeout,
// has them sent after a FIN, as a close always did.
func (c *conn) resetStuck(unsent int, lastTaken time.Time) {
	wt := c.srv.WriteTimeout
	if wt <= 0 {
		return
	}
	left := c.unsent()
	if left < unsent {
		return // taken just now
	}
	if left > 0 && time.Since(lastTaken) >= wt {
		c.reset()
	}
}

// lingerEvery is how often a lingering close looks at its replies still
// queued, in both drivers: an eighth of Linger, within 5 ms and 1 s.
func lingerEvery(linger time.Duration) time.Duration {
	return min(max(linger/8, 5*time.Millisecond), time.Second)
}

// maxLingerRounds bounds, in Lingers, how long a graceful close waits for
// a client that keeps sending.
const maxLingerRounds = 30

// lingerBound is how long a graceful close waits at most: maxLingerRounds
// Lingers, or about 146 years for a Linger of more than 4: the product
// would overflow into the past and close at once, and the event loops
// add the bound to their clock.
func lingerBound(linger time.Duration) time.Duration {
	const most = 1 << 62
	if linger > most/maxLingerRounds {
		return most
	}
	return maxLingerRounds * linger
}

// reasonOf names why a connection ended with err, keeping err for the
// observer when no reason names it; other is the reason then. A write
// timeout resets the connection too (see reset).
func (c *conn) reasonOf(err error, writing bool, other Reason) Reason {
	timeout := errors.Is(err, os.ErrDeadlineExceeded)
	if timeout && writing {
		// Only the watcher sets a write deadline: the client took none of
		// its reply for WriteTimeout, and is dropped (even at a stop,
		// which names it so).
		c.reset()
	}
	switch {
	case c.srv.cutByStop(err):
		return ReasonShutdown
	case timeout && writing:
		return ReasonWriteTimeout
	case timeout:
		return ReasonIdleTimeout
	case sockerr.Reset(err):
		return ReasonReset
	case sockerr.BrokenPipe(err):
		return brokenPipe(err, tcpUnder(c.accepted) != nil)
	}
	c.sess.info.Err = err
	return other
}

// brokenPipe is the reason a write that failed with EPIPE ends for. Over
// TCP it is ReasonReset: a client's close (FIN) leaves the server free to
// write, and only a reset breaks the pipe; the kernel says EPIPE rather
// than ECONNRESET to a write on a connection reset after the client's end
// of file (Linux's tcp_reset in CLOSE_WAIT), and to any write after the
// reset's error was told once. The log said "broken pipe" of a client
// that had reset. Over a Unix socket the client's close does it; and
// Windows' WSAESHUTDOWN, a send after the write side was shut, is none of
// the client's doing.
func brokenPipe(err error, tcp bool) Reason {
	if tcp && errors.Is(err, syscall.EPIPE) {
		return ReasonReset
	}
	return ReasonBrokenPipe
}

// reset ends a TCP connection, however wrapped, with a reset: a normal
// close sends FIN after the replies queued, so a client that reads them
// later takes a reply cut short for a whole one, and the kernel holds
// them, up to the send buffer, on a socket no limit counts any more, for
// as long as the client's window stays shut. SO_LINGER with a zero time
// makes the close send RST and free them at once. A wrapped socket is
// closed here, beneath its wrapper: the wrapper's own goodbye (TLS's
// close_notify) would wait up to 5 s to be written to a client that takes
// nothing, and cannot follow a record cut short anyway; the caller's
// close still releases the wrapper. A Unix socket has no reset: what was
// queued waits in the client's receive queue, the client's to read (then
// end of file, or on Linux ECONNRESET if it sent more than was read).
func (c *conn) reset() {
	if tc := tcpUnder(c.accepted); tc != nil {
		tc.SetLinger(0)
		if net.Conn(tc) != c.c {
			tc.Close()
		}
	}
}

// temporary reports whether an accept error may pass: out of file
// descriptors, buffers or memory, a connection aborted before it was
// accepted, a timeout, or a listener that says so.
func temporary(err error) bool {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
			syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN, syscall.EPROTO, syscall.EPERM:
			return true
		}
		return false
	}
	var t interface{ Temporary() bool }
	if errors.As(err, &t) && t.Temporary() {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// outOfResources reports whether err, from an accept, says the process
// or the system is out of descriptors or of memory for the connection:
// it stays queued, and an accept after a connection has closed may take
// it.
func outOfResources(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM:
		return true
	}
	return false
}

// readPlain reads with net.Conn.Read, for connections that give no raw
// access (wrappers, and systems without raw reads): it holds its buffer
// while it waits.
func (c *conn) readPlain() (*[]byte, int, error) {
	buf := getBuf(c.size)
	c.rr.carried = c.sess.carried(*buf)
	n, err := c.c.Read((*buf)[c.rr.carried:c.size])
	return buf, n, err
}
