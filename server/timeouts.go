package server

import (
	"io"
	"os"
	"sync/atomic"
	"time"
)

// Timeouts of the goroutine driver's connections are watched by one
// goroutine per server (the event loops sweep their own: loop.sweep), not
// by deadlines each connection refreshes: a connection only notes, with
// an atomic store, when it last read and when a write began. The watcher
// sweeps every connection a few times per timeout and moves the deadline
// of one that has been idle or stuck too long into the past, which wakes
// its read or write. Setting a deadline goes deep into the runtime's
// timers; doing it from here keeps that cost off the path of every
// message, and keeps the stack of a connection's goroutine at its first,
// smallest size.

// clock is monotonic time in nanoseconds since the server's epoch, so that
// zero means "not set" and -1 "fired". A read or a write is stamped with
// the time it happened (a read of the monotonic clock, tens of ns beside
// the system call it follows): stamped with the time of the watcher's last
// sweep, as it once was, a connection could be closed after 7/8 of its
// timeout.
type clock struct {
	epoch time.Time
}

func (k *clock) now() int64 { return int64(time.Since(k.epoch)) + 1 }

const fired = -1

// timer is what the watcher knows of one connection.
type timer struct {
	lastRead atomic.Int64 // when it last read; fired once the idle timeout has
	// writeSince is when the write under way began, or when the watcher
	// last saw the client take some of the send queue since; 0 if none;
	// fired once it timed out.
	writeSince atomic.Int64

	// The watcher's own: the writeSince it last looked at, and the send
	// queue then.
	seenWrite int64
	seen      sendLook
}

// sendLook is what a look at a socket's send queue saw: how much of it
// the client has not taken yet, and, for TCP, how much the client has
// acknowledged in all; -1 for what the socket cannot say.
type sendLook struct {
	unsent int
	acked  int64
}

var noLook = sendLook{unsent: -1, acked: -1}

// tookSince reports whether the client took some of what was sent
// between look was and l. What it acknowledged says so whatever the
// writer did meanwhile; the queue's length alone says so only if it
// shrank, and a writer that the kernel wakes as the client takes some
// fills it again: through a small send buffer it is found as long at
// every look while the client reads all along.
func (l sendLook) tookSince(was sendLook) bool {
	return was.acked >= 0 && l.acked > was.acked ||
		was.unsent >= 0 && l.unsent >= 0 && l.unsent < was.unsent
}

// idleHeld, set by tests only, keeps the watcher from taking any
// connection for idle: a test that acts on a connection the watcher
// took once must not see it taken again because the test itself ran
// late (a busy machine).
var idleHeld atomic.Bool

// sweepEvery is how often the watcher looks: an eighth of the shortest
// timeout, within 5 ms and 1 s. A timeout fires after between all of its
// value and one sweep more (and the sweep's own delay).
func (s *Server) sweepEvery() time.Duration {
	d := time.Duration(0)
	for _, t := range []time.Duration{s.IdleTimeout, s.WriteTimeout} {
		if t > 0 && (d == 0 || t < d) {
			d = t
		}
	}
	return min(max(d/8, 5*time.Millisecond), time.Second)
}

// watch sweeps the connections for timeouts until the server closes,
// or serves nothing (no listener, no connection; the next Serve starts
// another), and for write timeouts until its last connection has
// closed: a stop
// answers what each client sent, and a client that takes none of those
// replies must not hold the stop for good (a Shutdown whose context has
// no deadline). A stop's reads are the stop's to time, not the idle
// timeout's.
func (s *Server) watch() {
	defer s.wg.Done()
	tick := time.NewTicker(s.sweepEvery())
	defer tick.Stop()
	idle, write := int64(s.IdleTimeout), int64(s.WriteTimeout)
	done := s.done
	for {
		select {
		case <-done:
			done = nil
		case <-s.drained:
		case <-tick.C:
		}
		now := s.clock.now()
		s.mu.Lock()
		closing := s.closing.Load()
		takeIdle := !closing && idle > 0 && !idleHeld.Load()
		if closing && (len(s.conns) == 0 || write <= 0) || s.servesNothing() {
			s.watching = false // the next Serve starts another
			s.mu.Unlock()
			return
		}
		for c := range s.conns {
			t := &c.timer
			if at := t.lastRead.Load(); takeIdle && at > 0 && now-at > idle && t.lastRead.CompareAndSwap(at, fired) {
				c.accepted.SetReadDeadline(past)
			}
			if at := t.writeSince.Load(); write > 0 && at > 0 && c.writeStuck(at, now, write) && t.writeSince.CompareAndSwap(at, fired) {
				c.accepted.SetWriteDeadline(past)
			}
		}
		s.mu.Unlock()
	}
}

// writeStuck reports whether the write under way since at has gone on
// for the write timeout without the client taking any of the send queue,
// as far as the watcher's sweeps saw. A client that reads slowly takes
// some all along, while its write may still wait: the kernel wakes a
// blocked write only once a third of a send buffer is free, which can be
// megabytes. Where the queue cannot be looked at, the write's time alone
// counts. Only the watcher calls it.
func (c *conn) writeStuck(at, now, timeout int64) bool {
	t := &c.timer
	look := sendQueue(c.accepted)
	if at != t.seenWrite { // a write not seen before
		t.seenWrite, t.seen = at, look
		return now-at > timeout
	}
	took := look.tookSince(t.seen)
	t.seen = look
	if took && t.writeSince.CompareAndSwap(at, now) {
		t.seenWrite = now
		return false
	}
	return now-at > timeout
}

// past is a deadline that has passed: it wakes a blocked read or write.
var past = time.Unix(1, 0)

// noteRead records that the connection read, unless its idle timeout has
// fired; it reports whether it had.
func (c *conn) noteRead() (timedOut bool) {
	if c.srv.IdleTimeout <= 0 {
		return false
	}
	t := &c.timer
	at := t.lastRead.Load()
	return at == fired || !t.lastRead.CompareAndSwap(at, c.srv.clock.now())
}

// rearm starts the idle timeout again from now, after it fired while
// the connection was not idle: the read deadline the watcher moved into
// the past is taken back. (Shutdown's is not lost: the server is closing
// before it sets one, and the connection's loop looks at that next.)
func (c *conn) rearm() {
	c.timer.lastRead.Store(c.srv.clock.now())
	c.accepted.SetReadDeadline(time.Time{})
}

// lateIdleDeadline reports whether a read that failed on its deadline met
// the watcher's idle deadline after rearm had taken the timeout back, and
// if so takes the deadline back too: the watcher marks the timeout fired
// before it moves the deadline, and a rearm can come between.
func (c *conn) lateIdleDeadline() bool {
	if c.srv.IdleTimeout <= 0 || c.timer.lastRead.Load() == fired {
		return false
	}
	c.accepted.SetReadDeadline(time.Time{})
	return true
}

// writeTimed writes p with the write timeout watched: a write that the
// watcher found stuck fails with os.ErrDeadlineExceeded, even if it
// completed meanwhile (its deadline is in the past now). The watcher may
// move writeSince on while the client takes the reply.
func (c *conn) writeTimed(p []byte) (int, error) {
	return c.writeTimedTo(c.c, p)
}

// writeTimedTo is writeTimed writing to w: the connection as served, or
// beneath its wrapper (wrapGuard.Write).
func (c *conn) writeTimedTo(w io.Writer, p []byte) (int, error) {
	if c.srv.WriteTimeout <= 0 {
		return w.Write(p)
	}
	t := &c.timer
	at := c.srv.clock.now()
	t.writeSince.Store(at)
	n, err := w.Write(p)
	if t.writeSince.Swap(0) == fired && err == nil {
		err = os.ErrDeadlineExceeded
	}
	return n, err
}
