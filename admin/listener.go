package admin

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// evictGrace is how long a connection may wait on its client before a
// full listener may close it for a new one: time for a request to arrive
// on a new connection, or a keep-alive one, and for an answer to be
// handed to the kernel, which a client that reads takes at once.
var evictGrace = 100 * time.Millisecond

// limitListener is what LimitListener makes. With max connections open,
// a new one (accepted: one descriptor more, no more than one) closes the
// connection that has waited longest on its client (evictGrace or more),
// and waits, if none has, until one has or closes. A connection waits on
// its client unless it has a whole request that is being answered: while
// it has sent nothing, or a part of a request, or idles between
// requests, or sends a body no handler reads, and while an answer is
// being written that the client does not take. Without that, whoever
// held max connections so (idle, or a header byte now and then) kept
// every probe and scrape out for as long as the time-outs let them, again
// and again.
type limitListener struct {
	net.Listener
	max int

	mu    sync.Mutex
	conns map[*limitConn]struct{}

	changed   chan struct{} // a connection closed, or began waiting on its client (a wake-up, not a count)
	done      chan struct{} // closed by Close
	closeOnce sync.Once
}

func newLimitListener(ln net.Listener, max int) *limitListener {
	return &limitListener{Listener: ln, max: max, conns: make(map[*limitConn]struct{}),
		changed: make(chan struct{}, 1), done: make(chan struct{})}
}

// Accept accepts a connection and waits, if max are open, until one of
// them may be closed to make room, or closes.
func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
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

// longestWaiting returns the connection that has waited longest on its
// client if that is evictGrace or more by now, or nil and when the next
// one will have (zero if none waits). l.mu is held.
func (l *limitListener) longestWaiting(now time.Time) (victim *limitConn, next time.Time) {
	var since time.Time
	for c := range l.conns {
		s := c.waitingSince
		switch {
		case s.IsZero():
		case s.Add(evictGrace).After(now):
			if next.IsZero() || s.Add(evictGrace).Before(next) {
				next = s.Add(evictGrace)
			}
		case victim == nil || s.Before(since):
			victim, since = c, s
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

// Close closes the listener.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// changing tells a waiting Accept that a connection changed.
func (l *limitListener) changing() {
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// limitConn is a connection of a limitListener, which HTTPServer's hooks
// tell when it is answering a request.
type limitConn struct {
	net.Conn
	l *limitListener

	// Under l.mu:
	waitingSince time.Time // when it began waiting on its client; zero while a request is answered
	answering    bool      // a request is read, and its handler not done
	writes       int       // Writes under way

	closeOnce sync.Once
	closeErr  error
}

// state follows the connection as net/http sees it: a request read
// (http.StateActive) is being answered; between requests
// (http.StateIdle) the connection waits on its client, as it does once
// the handler is done (done).
func (c *limitConn) state(s http.ConnState) {
	switch s {
	case http.StateActive:
		c.l.mu.Lock()
		c.answering = true
		if c.writes == 0 {
			c.waitingSince = time.Time{}
		}
		c.l.mu.Unlock()
	case http.StateIdle:
		c.done()
	}
}

// done: the handler has answered, and what is left (the rest of the
// answer handed to the kernel, a body no handler read) waits on the
// client.
func (c *limitConn) done() {
	c.l.mu.Lock()
	if c.answering {
		c.answering = false
		c.waitingSince = time.Now()
	}
	c.l.mu.Unlock()
	c.l.changing()
}

// Write writes p; while it waits for the client to take what went
// before, the connection waits on its client.
func (c *limitConn) Write(p []byte) (int, error) {
	c.l.mu.Lock()
	c.writes++
	if c.answering && c.writes == 1 {
		c.waitingSince = time.Now()
	}
	c.l.mu.Unlock()
	c.l.changing()
	n, err := c.Conn.Write(p)
	c.l.mu.Lock()
	c.writes--
	if c.answering && c.writes == 0 {
		c.waitingSince = time.Time{}
	}
	c.l.mu.Unlock()
	return n, err
}

// Close closes the connection, and makes room for another.
func (c *limitConn) Close() error {
	c.closeOnce.Do(func() {
		c.closeErr = c.Conn.Close()
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
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
