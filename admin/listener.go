package admin

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"shout/internal/sockerr"
)

// evictGrace is how long a connection may wait on its client before a
// full listener may close it for a new one: time for a request to arrive
// on a new connection, or a keep-alive one, and for an answer to be
// handed to the kernel, which a client that reads takes at once.
// Whether it waits on its client, rather than on a process too busy to
// run its goroutine, the socket says (clientOwes) once the time is up.
var evictGrace = 100 * time.Millisecond

// limitListener is what LimitListener makes. With max connections open,
// a new one (accepted: one descriptor more, no more than one) closes the
// connection that has waited longest on its client (evictGrace or more),
// and waits, if none has, until one has or closes. A connection waits on
// its client unless it has a whole request that is being answered: while
// it has sent nothing, or a part of a request, or idles between
// requests, or sends a body (whether a handler reads it or not), and
// while an answer is being written that the client does not take.
// Without that, whoever held max connections so (idle, or a header byte
// now and then) kept every probe and scrape out for as long as the
// time-outs let them, again and again.
//
// It keeps a spare descriptor too, which it gives up for a connection
// when the process has none to spare (accept fails with EMFILE or
// ENFILE: a flood on the main port took them all): a probe is answered
// even then, where it waited unaccepted until the kubelet, its probes
// unanswered, killed a process that was only busy. Without a spare it
// closes a connection for it, as when full. It takes the spare again as
// soon as a descriptor is free.
type limitListener struct {
	net.Listener
	max     int
	pending func(d time.Duration) bool // pendingFunc's; nil: no descriptor is freed

	mu    sync.Mutex
	conns map[*limitConn]struct{}
	spare *os.File // nil while given up (or not to be had)

	changed   chan struct{} // a connection closed, or began waiting on its client (a wake-up, not a count)
	done      chan struct{} // closed by Close
	closeOnce sync.Once
}

func newLimitListener(ln net.Listener, max int) *limitListener {
	l := &limitListener{Listener: ln, max: max, pending: pendingFunc(ln), conns: make(map[*limitConn]struct{}),
		changed: make(chan struct{}, 1), done: make(chan struct{})}
	l.keepSpare()
	return l
}

// Accept accepts a connection and waits, if max are open, until one of
// them may be closed to make room, or closes.
func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.accept()
	if err != nil {
		return nil, err
	}
	for {
		now := time.Now()
		l.mu.Lock()
		if len(l.conns) < l.max {
			lc := &limitConn{Conn: c, l: l, waitingSince: now}
			l.conns[lc] = struct{}{}
			l.mu.Unlock()
			return lc, nil
		}
		victim, next := l.longestWaiting(now)
		l.mu.Unlock()
		if victim != nil {
			victim.Close()
			continue
		}
		if err := l.wait(next); err != nil {
			c.Close()
			return nil, err
		}
	}
}

// pendingPoll is how long accept waits at a time for a connection to
// come while the process is out of descriptors; then it tries again, and
// sees whether the listener has been closed.
const pendingPoll = 100 * time.Millisecond

// accept accepts a connection. If the process has no descriptor for one
// that waits to be accepted, it frees one: the spare's, or else a
// connection's as Accept does, waiting for one to have waited
// evictGrace on its client; with every connection being answered, it
// fails as the listener did. While no connection waits (accept fails all
// the same), it waits for one.
func (l *limitListener) accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			l.keepSpare()
			return c, nil
		}
		if !sockerr.OutOfFiles(err) || l.pending == nil {
			return nil, err // net/http logs it and tries again
		}
		if !l.pending(pendingPoll) {
			continue
		}
		l.mu.Lock()
		spare := l.spare
		l.spare = nil
		victim, next := l.longestWaiting(time.Now())
		l.mu.Unlock()
		switch {
		case spare != nil:
			spare.Close()
		case victim != nil:
			victim.close(false) // its descriptor is for the one waiting
		case next.IsZero():
			return nil, err
		default:
			if err := l.wait(next); err != nil {
				return nil, err
			}
		}
	}
}

// keepSpare opens the spare descriptor if it is not open (and the
// listener is not closed).
func (l *limitListener) keepSpare() {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.done:
		return
	default:
	}
	if l.spare == nil {
		l.spare, _ = os.Open(os.DevNull) // nil while the process has none to spare
	}
}

// longestWaiting returns the connection that has waited longest on its
// client if that is evictGrace or more by now, or nil and when the next
// one will have (zero if none waits). l.mu is held.
//
// One whose socket says the client does not owe it (clientOwes) has not
// waited on its client: it waits from now. A process so busy that the
// goroutine of a connection being answered had not run for evictGrace
// (a write under way, the kernel never asked to take its bytes; or the
// client's next request come and not read) closed it under a client that
// took every byte.
func (l *limitListener) longestWaiting(now time.Time) (victim *limitConn, next time.Time) {
	var since time.Time
	for c := range l.conns {
		s := c.waitingSince
		if s.IsZero() {
			continue
		}
		due := s.Add(evictGrace)
		switch {
		case due.After(now):
		case !c.clientOwes():
			c.waitingSince, due = now, now.Add(evictGrace)
		default:
			if victim == nil || s.Before(since) {
				victim, since = c, s
			}
			continue
		}
		if next.IsZero() || due.Before(next) {
			next = due
		}
	}
	return victim, next
}

// wait waits until a connection changes, or next (if not zero), or the
// listener closes.
func (l *limitListener) wait(next time.Time) error {
	var at <-chan time.Time
	if !next.IsZero() {
		t := time.NewTimer(time.Until(next))
		defer t.Stop()
		at = t.C
	}
	select {
	case <-l.changed:
	case <-at:
	case <-l.done:
		return net.ErrClosed
	}
	return nil
}

// Close closes the listener and gives up the spare descriptor.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		l.mu.Lock()
		if l.spare != nil {
			l.spare.Close()
			l.spare = nil
		}
		l.mu.Unlock()
	})
	return l.Listener.Close()
}

// changing tells a waiting Accept that a connection changed.
func (l *limitListener) changing() {
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// canOpenFile reports whether the process can open a file now: not when
// it is out of descriptors.
func canOpenFile() bool {
	f, err := os.Open(os.DevNull)
	if err != nil {
		return !sockerr.OutOfFiles(err)
	}
	f.Close()
	return true
}

// limitConn is a connection of a limitListener, which HTTPServer's hooks
// tell when it is answering a request.
type limitConn struct {
	net.Conn
	l *limitListener

	// Under l.mu:
	waitingSince time.Time // when it began waiting on its client; zero while a request is answered
	answering    bool      // a request is read, and its handler not done
	finishing    bool      // its handler is done, and net/http has not read from the client since, nor gone idle
	bodyGivenUp  bool      // its handler is done, and net/http reads from the client no more
	writing      int       // Writes under way
	reading      int       // reads of a request's body under way

	closeOnce sync.Once
	closeErr  error
}

// state follows the connection as net/http sees it: a request read
// (http.StateActive) is being answered; between requests
// (http.StateIdle) the connection waits on its client.
func (c *limitConn) state(s http.ConnState) {
	switch s {
	case http.StateActive:
		c.l.mu.Lock()
		c.answering, c.finishing = true, false
		if c.writing+c.reading == 0 {
			c.waitingSince = time.Time{}
		}
		c.l.mu.Unlock()
	case http.StateIdle:
		c.l.mu.Lock()
		c.waitOnClient()
		c.l.mu.Unlock()
		c.l.changing()
	}
}

// done: the handler has answered. What net/http does next waits on the
// client once it reads from it (a body no handler read: Read) or goes
// idle (state); handing the rest of the answer to the kernel is part of
// answering, as the handler's writes are. Counted from here, a process
// too busy to run the goroutine on to its last write closed it under a
// client that waited for the answer's end.
//
// But if net/http gives up the request's body (bodyGivenUp: more of it
// unread than maxPostHandlerReadBytes), it neither reads nor goes idle:
// it closes the connection half a second after the answer (its
// rstAvoidanceDelay), and c waits on its client from now, whatever the
// client sends. Counted from a read or idle, clients that declared a
// body and sent none held a full listener's places, none to be closed,
// for that half second each: a probe behind 400 of them waited 1.7 s
// where it had waited 0.37 s.
func (c *limitConn) done(bodyGivenUp bool) {
	c.l.mu.Lock()
	if c.answering {
		c.answering, c.finishing = false, true
	}
	if bodyGivenUp {
		c.waitOnClient()
		c.bodyGivenUp = true
	}
	c.l.mu.Unlock()
	if bodyGivenUp {
		c.l.changing()
	}
}

// maxPostHandlerReadBytes is net/http's: how much of a request's body,
// declared longer, it reads once the handler is done, so as to read the
// next request; with more unread, it gives the body up and closes the
// connection.
const maxPostHandlerReadBytes = 256 << 10

// waitOnClient: c waits on its client from now, if it did not already.
// l.mu is held.
func (c *limitConn) waitOnClient() {
	c.answering, c.finishing = false, false
	if c.waitingSince.IsZero() {
		c.waitingSince = time.Now()
	}
}

// Read reads from the client; once the handler is done, that is waiting
// on it.
func (c *limitConn) Read(p []byte) (int, error) {
	c.l.mu.Lock()
	finishing := c.finishing
	if finishing {
		c.waitOnClient()
	}
	c.l.mu.Unlock()
	if finishing {
		c.l.changing()
	}
	return c.Conn.Read(p)
}

// Write writes p; while it waits for the client to take what went
// before, the connection waits on its client.
func (c *limitConn) Write(p []byte) (int, error) {
	c.blocking(&c.writing)
	defer c.unblocked(&c.writing)
	return c.Conn.Write(p)
}

// blocking: a write, or a read of a request's body, begins (n counts
// them); while it is being answered, the connection waits on its client
// until it ends (unblocked).
func (c *limitConn) blocking(n *int) {
	c.l.mu.Lock()
	*n++
	if (c.answering || c.finishing) && c.writing+c.reading == 1 {
		c.waitingSince = time.Now()
	}
	c.l.mu.Unlock()
	c.l.changing()
}

// unblocked: a write, or a read of a body, has ended.
func (c *limitConn) unblocked(n *int) {
	c.l.mu.Lock()
	*n--
	if (c.answering || c.finishing) && c.writing+c.reading == 0 {
		c.waitingSince = time.Time{}
	}
	c.l.mu.Unlock()
}

// clientOwes reports whether c waits on its client, as its socket tells:
// with a write under way, the client has not made room for it; else (a
// read of the client's under way or to come) the client has sent nothing
// that waits to be read; none is to come once net/http gives up the
// body. Where the socket cannot be asked, it does. l.mu is held.
func (c *limitConn) clientOwes() bool {
	if c.writing > 0 {
		return !socketReady(c.Conn, true)
	}
	return c.bodyGivenUp || !socketReady(c.Conn, false)
}

// body is a request's body on c: while a handler reads it, and it has
// not all come, c waits on its client (a body sent a byte now and then
// held a full listener's place, being answered, for ReadTimeout).
type body struct {
	io.ReadCloser
	c *limitConn
	n int64 // bytes read
}

func (b *body) Read(p []byte) (int, error) {
	b.c.blocking(&b.c.reading)
	defer b.c.unblocked(&b.c.reading)
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// Close closes the connection, makes room for another, and takes the
// spare descriptor again if it was given up.
func (c *limitConn) Close() error { return c.close(true) }

// close closes the connection, and takes the spare descriptor again if
// spare (not when its descriptor is wanted for another connection).
func (c *limitConn) close(spare bool) error {
	c.closeOnce.Do(func() {
		c.closeErr = c.Conn.Close()
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		if spare {
			c.l.keepSpare()
		}
		c.l.changing()
	})
	return c.closeErr
}

// connKey is the context key of a request's *limitConn.
type connKey struct{}

// connContext is http.Server.ConnContext: it keeps a *limitConn where the
// handler finds it.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if lc, ok := c.(*limitConn); ok {
		return context.WithValue(ctx, connKey{}, lc)
	}
	return ctx
}

// connOf is the *limitConn that r came on, or nil.
func connOf(r *http.Request) *limitConn {
	lc, _ := r.Context().Value(connKey{}).(*limitConn)
	return lc
}
