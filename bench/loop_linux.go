//go:build linux

package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The event-loop driver serves stream connections from a few epoll
// loops, one per core, instead of two goroutines and a buffer each. A
// connection costs its socket, a loopConn and the queue of its messages
// in flight, so 19,000 connections fit in tens of megabytes. Replies are
// read into the loop's one buffer and compared where they lie; only a
// reply split across reads is copied, and only bytes the socket would
// not take are kept to send later.

// loopsAvailable: streams have the event-loop driver here.
const loopsAvailable = true

// loops is the driver: the loops and what tells them the run has stopped.
type loops struct {
	ls      []*loop
	wake    int // an eventfd every loop watches: written as Run stops, and as a signal cuts the wait
	drainBy atomic.Int64
	wg      sync.WaitGroup
	dials   sync.WaitGroup     // reconnections being dialed
	cancel  context.CancelFunc // ends them when the run is over
}

// loop owns a share of the connections.
type loop struct {
	r       *run
	w       *worker
	ep      int
	timer   int   // a timerfd set to the next thing due
	armed   int64 // when timer fires (run.now()); 0 if not set
	conns   []*loopConn
	open    int
	nextDue int64 // open loop: the earliest loopConn.next
	// paced: an open loop, each connection on its schedule (loopConn.cad).
	paced bool
	// most is how many messages an open loop keeps in flight on a
	// connection (run.mostInFlight); unsent, how many bytes its server
	// has not taken it holds before its schedule waits (run.mostUnsent).
	most    int
	unsent  int
	rbuf    []byte
	wbuf    []byte
	events  []unix.EpollEvent
	replies int64 // counted here, added to the run's once a round
	arrived int64 // the same, for run.arrived
	sent    int64 // the same, for run.sent
	bytes   int64 // and for run.arrivedBytes
	// stopped: the loop has seen the run stop (its wake), and sent what
	// each open loop's connection had yet to of the window (sendRest).
	stopped bool

	// Reconnect: dialers hand new sockets over on inbox, and say so on
	// the eventfd inboxFD.
	inbox   chan redialed
	inboxFD int
	dial    func(ctx context.Context, i int) (net.Conn, error)
	ctx     context.Context
	dials   *sync.WaitGroup
}

// redialed is a new socket for a connection that the server closed.
type redialed struct {
	c   *loopConn
	fd  int
	err error
}

// Keys in EpollEvent.Fd besides connection indexes.
const (
	wakeKey  = -1
	timerKey = -2
	inboxKey = -3
)

// loopConn is one connection's state.
type loopConn struct {
	fd  int
	key int32 // its index in loop.conns
	i   int   // its number in the run, which picks its messages
	// pend is a reply held until the one after it says whether the
	// server skipped the messages before it, or answered wrong (see
	// pendingSkip).
	pend pendingSkip
	sent uint64 // messages sent so far (see pick)
	// unwritten: the messages from this one to sent are in q but not yet
	// handed to write (the rest of those owed at a new connection, see
	// fill); equal to sent otherwise.
	unwritten uint64
	q         ring // the messages in flight, oldest first
	in        []byte
	out       []byte // bytes the socket has not taken yet
	since     int64  // when the oldest message in flight last moved on
	outSince  int64  // when out last shrank
	// cad is an open loop's schedule on this connection, of which k
	// messages were sent (or given up); next is when the next falls due,
	// cad.due(k) (see advance).
	cad  cadence
	k    uint64
	next int64
	// behind: due (an open loop), its last round while measuring, left
	// messages that had fallen due unsent, held back by held; they are
	// never sent if the run stops before it catches up (sendRest).
	behind bool
	held   unsentWhy
	closed bool
	wrong  bool // the last reply was wrong: the next may be out of step
	// shut: the loop's last wait said the server has shut its side
	// (EPOLLRDHUP), which a read has not met yet if a reply came with it.
	shut bool
	// redialing: the server closed the connection and a new one is being
	// made (fd is -1); messages due meanwhile wait in q.
	redialing bool
	// served: a reply came on this connection since it was made. A
	// connection closed before it served one is made again only after
	// backoff, which grows from 100 ms to 5 s and is reset by a served
	// one: a server that accepts and closes at once (at its --max-conns)
	// is not dialled thousands of times a second.
	served  bool
	backoff time.Duration
	// servedMeasuring: a reply came on this connection, whichever made
	// it, while measuring; trouble (at troubleAt) is its first failure or
	// refusal, in any phase, with messages owed, since its last reply
	// before the window ended. With Reconnect, one that served no reply
	// while measuring and is in trouble carried none of the load: it was
	// refused or failing throughout (see countNeverServed). Not one with
	// nothing to send while measuring (an open loop's next message due
	// after the window) that a restart closed idle, or that was refused
	// in the warm-up and then served.
	servedMeasuring bool
	trouble         error
	troubleAt       int64
	// resend: the measured messages owed at a graceful close, counted
	// resent once the new connection is there to send them again.
	resend int64
	// straying: bytes that answer no message came, and their line has
	// not ended: more of it, in later reads, is the same wrong reply.
	straying bool
	// cut: the last reply taken was checked at its cap (see take), and
	// its line has not ended: more of it is that wrong reply's, and
	// answers no message after it.
	cut bool
	// cutLen: the bytes of that line so far, the reply's and the rest.
	cutLen int
}

// measured is how many of the messages in q were sent while measuring.
func (q *ring) measured() int64 {
	n := int64(0)
	for k := range q.n {
		if q.buf[(q.head+k)%len(q.buf)].measured {
			n++
		}
	}
	return n
}

// startLoops takes the connections' sockets over from the Go runtime
// and starts the loops. It reports false if a connection is not a
// socket, and an error if the loops could not start: the run cannot.
func (r *run) startLoops(conns []net.Conn) (driver, bool, error) {
	for _, c := range conns {
		if _, ok := c.(syscall.Conn); !ok {
			return nil, false, nil
		}
	}
	d := &loops{wake: -1}
	fail := func(err error) (driver, bool, error) {
		// Unlikely (a limit reached since connecting, which
		// checkFileLimit allows for): close everything.
		err = fmt.Errorf("event loop: %w", explainLimit(err))
		for _, c := range conns {
			if c != nil { // (nil once its socket was taken)
				c.Close()
			}
		}
		for _, l := range d.ls {
			for _, c := range l.conns {
				unix.Close(c.fd)
			}
			l.closeFDs()
			if l.inboxFD >= 0 {
				unix.Close(l.inboxFD)
			}
		}
		if d.cancel != nil {
			d.cancel()
		}
		if d.wake >= 0 {
			unix.Close(d.wake)
		}
		return nil, true, err
	}
	var err error
	if d.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	dial := r.dialer()
	for range min(runtime.GOMAXPROCS(0), len(conns)) {
		l := &loop{r: r, w: r.newWorker(), ep: -1, timer: -1, inboxFD: -1, most: r.mostInFlight(), unsent: r.mostUnsent(),
			rbuf: make([]byte, 64<<10), events: make([]unix.EpollEvent, 256),
			dial: dial, ctx: ctx, dials: &d.dials}

		d.ls = append(d.ls, l)
		if l.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
			return fail(err)
		}
		if l.timer, err = unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_CLOEXEC|unix.TFD_NONBLOCK); err != nil {
			return fail(err)
		}
		// Edge-triggered: no loop reads it, and each write is an event
		// once, the stop and a cut wait after it.
		if err := l.watch(unix.EPOLL_CTL_ADD, d.wake, wakeKey, unix.EPOLLIN|unix.EPOLLET); err != nil {
			return fail(err)
		}
		if err := l.watch(unix.EPOLL_CTL_ADD, l.timer, timerKey, unix.EPOLLIN); err != nil {
			return fail(err)
		}
		if r.cfg.Reconnect {
			if l.inboxFD, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
				return fail(err)
			}
			if err := l.watch(unix.EPOLL_CTL_ADD, l.inboxFD, inboxKey, unix.EPOLLIN); err != nil {
				return fail(err)
			}
		}
	}
	for i, c := range conns {
		// One at a time, so the descriptors never number twice the
		// connections.
		fd, err := takeFD(c)
		conns[i] = nil
		if err != nil {
			return fail(err)
		}
		l := d.ls[i%len(d.ls)]
		lc := &loopConn{fd: fd, key: int32(len(l.conns)), i: i}
		if r.cfg.Rate <= 0 {
			lc.q.buf = make([]sentMsg, r.cfg.Depth)
		} else {
			lc.q.limit = l.most
		}
		l.conns = append(l.conns, lc)
		l.open++
		if err := l.watch(unix.EPOLL_CTL_ADD, fd, lc.key, unix.EPOLLIN|unix.EPOLLRDHUP); err != nil {
			return fail(err)
		}
	}
	if driversSetUp != nil {
		driversSetUp(r)
	}
	r.setWindow() // (the sockets taken: see run.start)
	for _, l := range d.ls {
		if r.cfg.Reconnect {
			// Room for each connection's one redial: a dialer never waits.
			l.inbox = make(chan redialed, len(l.conns))
		}
		d.wg.Go(func() { l.run(d) })
	}
	return d, true, nil
}

// takeFD returns a socket of its own for c's connection and closes c,
// so that the Go runtime no longer watches it.
func takeFD(c net.Conn) (int, error) {
	defer c.Close()
	raw, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	cerr := raw.Control(func(s uintptr) {
		fd, err = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	})
	if cerr != nil {
		return -1, cerr
	}
	if err != nil {
		return -1, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func (d *loops) drain(by time.Time, cut <-chan struct{}) {
	r := d.ls[0].r
	d.drainBy.Store(int64(by.Sub(r.epoch)))
	d.wakeLoops()
	select {
	case <-waited(&d.wg):
	case <-cut:
		d.drainBy.Store(r.cutWait()) // each loop reads it as it wakes
		d.wakeLoops()
		d.wg.Wait()
	}
	d.countNeverServed()
	// Redials still under way end now; what they made is closed.
	d.cancel()
	d.dials.Wait()
	for _, l := range d.ls {
		for len(l.inbox) > 0 {
			if rd := <-l.inbox; rd.err == nil {
				unix.Close(rd.fd)
			}
		}
		if l.inboxFD >= 0 {
			unix.Close(l.inboxFD)
		}
	}
	unix.Close(d.wake)
}

// wakeLoops tells every loop to read drainBy: the run has stopped, or
// the wait for the replies owed is cut.
func (d *loops) wakeLoops() {
	one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	for {
		if _, err := unix.Write(d.wake, one); err != unix.EINTR {
			break
		}
	}
}

func (l *loop) watch(op, fd int, key int32, events uint32) error {
	return unix.EpollCtl(l.ep, op, fd, &unix.EpollEvent{Events: events, Fd: key})
}

func (l *loop) closeFDs() {
	for _, fd := range []int{l.ep, l.timer} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// run serves the loop's connections until the run stops and every reply
// owed has come or is late.
func (l *loop) run(d *loops) {
	r, cfg := l.r, l.r.cfg
	defer l.closeFDs()
	if cfg.Rate > 0 && openLoopStarts != nil {
		openLoopStarts()
	}
	now := r.now()
	if cfg.Rate > 0 {
		l.paced = true
		for _, c := range l.conns {
			c.cad = r.scheduleOf(c.i)
			c.next = c.cad.first
			r.scheduleBegan(c.cad)
		}
		l.nextDue = now
	} else {
		for _, c := range l.conns {
			l.send(c, cfg.Depth, sentAt(now), 0, now)
		}
	}
	check := int64(max(cfg.Timeout/8, time.Millisecond))
	nextCheck := now + check
	stopping := false
	drainBy := int64(math.MaxInt64)
	for l.open > 0 {
		// Until the run stops: the next check for late replies, and the
		// next message due. Then only the end of the wait for replies owed.
		wakeAt := nextCheck
		switch {
		case stopping:
			wakeAt = drainBy
		case l.paced:
			wakeAt = min(wakeAt, l.nextDue)
		}
		if openLoopWaits != nil && l.paced && !stopping {
			openLoopWaits(r)
		}
		if err := l.arm(wakeAt); err != nil {
			l.abort(fmt.Errorf("event loop: %w", err))
			return
		}
		n, err := unix.EpollWait(l.ep, l.events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			l.abort(fmt.Errorf("event loop: %w", err))
			return
		}
		// The time, before stopping is looked at (send, due: see
		// haltEarly).
		now = r.now()
		if sendTimed != nil {
			sendTimed(r)
		}
		for _, ev := range l.events[:n] {
			switch ev.Fd {
			case wakeKey:
				drainBy = d.drainBy.Load() // (a cut wait's, from the second on)
				if stopping {
					break
				}
				stopping = true
				l.stopped = true
				for _, c := range l.conns {
					l.sendRest(c, now)
					if !c.closed && c.q.n == 0 {
						l.closeConn(c, false) // nothing owed
					}
				}
				if loopSawStop != nil {
					loopSawStop(r)
				}
			case timerKey:
				var b [8]byte
				unix.Read(l.timer, b[:])
				l.armed = 0
			case inboxKey:
				var b [8]byte
				unix.Read(l.inboxFD, b[:])
				l.takeRedialed(now)
			default:
				c := l.conns[ev.Fd]
				c.shut = !c.redialing && ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0
				if !c.closed && !c.redialing && ev.Events&unix.EPOLLOUT != 0 {
					l.flush(c, now)
				}
				// (A failed flush may have closed c, or begun a redial.)
				if !c.closed && !c.redialing && ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
					l.readable(c, now)
				}
			}
		}
		if l.paced && !stopping {
			l.due(now)
		}
		if now >= nextCheck && !stopping {
			l.expire(now)
			nextCheck = now + check
		}
		if stopping && now >= drainBy {
			for _, c := range l.conns {
				if !c.closed {
					l.owe(c)
					l.closeConn(c, false)
				}
			}
		}
		if l.replies > 0 || l.arrived > 0 || l.sent > 0 {
			r.replies.Add(l.replies)
			r.arrived.Add(l.arrived)
			r.arrivedBytes.Add(l.bytes)
			r.sent.Add(l.sent)
			l.replies, l.arrived, l.bytes, l.sent = 0, 0, 0, 0
		}
	}
	r.sent.Add(l.sent) // (of a first send whose every connection failed: no round counted it)
}

// record times the reply to m, come at at (run.now), if it counts: m
// measured, and the reply within the timeout. The loop's count goes to
// the run's once a round, as worker.record's goes at once.
func (l *loop) record(m sentMsg, at int64) {
	if d := time.Duration(at - m.at); m.measured && l.r.onTime(d) {
		l.w.mu.Lock()
		put(l.w.hist, d.Microseconds())
		l.w.mu.Unlock()
		l.replies++
	}
}

// arm sets the timer to fire at run.now() == at, unless it already does.
func (l *loop) arm(at int64) error {
	if at == l.armed {
		return nil
	}
	l.armed = at
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(max(1, at-l.r.now()))}
	return unix.TimerfdSettime(l.timer, 0, &spec, nil)
}

// abort ends the loop on a failure of the loop itself.
func (l *loop) abort(err error) {
	warm := l.r.fail(err)
	for _, c := range l.conns {
		if !c.closed {
			l.owe(c)
			l.closeConn(c, warm)
		}
	}
	l.r.replies.Add(l.replies)
	l.r.arrived.Add(l.arrived)
	l.r.arrivedBytes.Add(l.bytes)
	l.r.sent.Add(l.sent)
}

// send sends n messages in one write: those of cad from first on.
// Nothing is sent at or past the window's end: the server would serve
// it, in no count.
func (l *loop) send(c *loopConn, n int, cad cadence, first uint64, now int64) {
	if c.closed || l.r.stopping.Load() || cad.due(first) >= l.r.windowUntil.Load() {
		return
	}
	l.hand(c, n, cad, first, now)
}

// hand is send, as the run stops too (see sendRest).
func (l *loop) hand(c *loopConn, n int, cad cadence, first uint64, now int64) {
	if c.q.n == 0 {
		c.since = now
	}
	l.wbuf = l.wbuf[:0]
	backlog := c.unwritten < c.sent
	for j := range n {
		l.wbuf = append(l.wbuf, l.r.msgs[pick(c.i, c.sent)]...)
		due := cad.due(first + uint64(j))
		m := sentMsg{due, l.r.inWindow(due)}
		c.q.push(m)
		if m.measured {
			l.sent++
		}
		if sentNoted != nil {
			sentNoted(l.r, m.at, m.measured)
		}
		c.sent++
	}
	switch {
	case c.redialing:
		return // sent once the new connection is made
	case backlog:
		l.fill(c, now) // after those waiting
		return
	}
	c.unwritten = c.sent
	l.write(c, l.wbuf, now)
}

// fill writes the messages in q not yet written, from c.unwritten on,
// a batch (run.mostDue) at a time while c holds less than l.unsent
// unwritten: the rest wait for flush. A new connection is owed every message in flight
// on the old one, up to mostInFlight of them, and written all at once
// they took their size each: in an open loop at a high rate of large
// messages, gigabytes, in the loop's buffer for the rest of the run.
func (l *loop) fill(c *loopConn, now int64) {
	for c.unwritten < c.sent && len(c.out) < l.unsent && !c.closed && !c.redialing {
		l.wbuf = l.wbuf[:0]
		for n := l.r.mostDue(); c.unwritten < c.sent && n > 0; n-- {
			l.wbuf = append(l.wbuf, l.r.msgs[pick(c.i, c.unwritten)]...)
			c.unwritten++
		}
		l.write(c, l.wbuf, now)
	}
	if loopBuffers != nil {
		loopBuffers(cap(l.wbuf), cap(c.out))
	}
}

// loopSawStop, if not nil, runs as an event loop has taken the run's
// stop, before it waits for the replies owed (tests).
var loopSawStop func(r *run)

// loopBuffers, if not nil, gets the capacity of a loop's write buffer
// and of a connection's bytes unwritten after each fill (tests).
var loopBuffers func(wbuf, out int)

// write writes b, keeping what the socket will not take for later.
func (l *loop) write(c *loopConn, b []byte, now int64) {
	if len(c.out) > 0 {
		c.out = append(c.out, b...)
		if unsentHeld != nil {
			unsentHeld(l.r, c.i, len(c.out))
		}
		return
	}
	k, err := unix.Write(c.fd, b)
	if err != nil && err != unix.EAGAIN && err != unix.EINTR {
		l.broken(c, failed("send", err))
		return
	}
	if k = max(k, 0); k < len(b) {
		c.out = append(c.out, b[k:]...)
		if unsentHeld != nil {
			unsentHeld(l.r, c.i, len(c.out))
		}
		c.outSince = now
		l.watch(unix.EPOLL_CTL_MOD, c.fd, c.key, unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLOUT)
	}
}

// flush writes what the socket would not take before.
func (l *loop) flush(c *loopConn, now int64) {
	if len(c.out) == 0 {
		return
	}
	k, err := unix.Write(c.fd, c.out)
	if err == unix.EAGAIN || err == unix.EINTR {
		return
	}
	if err != nil {
		l.broken(c, failed("send", err))
		return
	}
	full := len(c.out) >= l.unsent
	c.out = c.out[:copy(c.out, c.out[k:])]
	c.outSince = now
	if c.unwritten < c.sent {
		l.fill(c, now) // (a write that fails closes c, or redials it)
		if c.closed || c.redialing {
			return
		}
	}
	if full && len(c.out) < l.unsent {
		l.nextDue = now // its schedule, held by due, goes on
	}
	if len(c.out) == 0 {
		if cap(c.out) > 64<<10 {
			c.out = nil
		}
		l.watch(unix.EPOLL_CTL_MOD, c.fd, c.key, unix.EPOLLIN|unix.EPOLLRDHUP)
	}
}

func (l *loop) readable(c *loopConn, now int64) {
	n, err := unix.Read(c.fd, l.rbuf)
	switch {
	case n > 0:
		l.r.hear()
		l.take(c, l.rbuf[:n], now)
	case err == unix.EAGAIN || err == unix.EINTR:
	case err != nil:
		l.broken(c, c.late(err)) // a reply begun, if it was
	default:
		l.eof(c)
	}
}

// take checks the replies in data, in order: a reply is the bytes up to
// and including a newline, checked once four times the wanted length
// and a little came, so a wrong reply of any length, or one from a
// server that sends no newline, is caught as wrong instead of stalling;
// the rest of its line (cut) is skipped, not taken for the replies
// after it.
func (l *loop) take(c *loopConn, data []byte, now int64) {
	r := l.r
	freed := 0
	measuring := r.inWindow(now) // (as the replies' throughput, by the clock: see arrive)
	if c.cut {
		data = l.skipCut(c, data, measuring)
	}
	// A send that fails here may close c or, with Reconnect, redial it:
	// the rest of data belonged to the old connection.
	for len(data) > 0 && !c.closed && !c.redialing {
		if c.q.n == 0 {
			// Bytes that answer no message: a wrong reply for each line
			// that starts in them (one begun in an earlier read goes on).
			// In a closed loop too: they came before the messages that
			// the replies taken free are sent, below, so they answer
			// none of those either.
			r.unaskedLines(&c.wrong, &c.straying, measuring, !measuring && r.beforeWindow(now), data)
			break
		}
		want := r.wants[pick(c.i, c.sent-uint64(c.q.n))]
		take, complete, cut := len(data), false, false
		if k := bytes.IndexByte(data, '\n'); k >= 0 {
			take, complete = k+1, true
		}
		if room := 4*len(want) + 64 - len(c.in); take >= room {
			take, complete, cut = room, true, data[room-1] != '\n'
		}
		reply := data[:take]
		if len(c.in) > 0 || !complete {
			c.in = append(c.in, reply...)
			reply = c.in
		}
		data = data[take:]
		if !complete {
			break
		}
		right := bytes.Equal(reply, want)
		owed := c.sent - uint64(c.q.n)
		written := int(c.unwritten-owed) - 1 // after the owed one
		if j := c.pend.j; j > 0 {
			// The reply after a held one (see pendingSkip): in step
			// with the message it named, the server skipped those
			// before that; else the held reply was wrong.
			if !right && c.pend.confirms(r, c.i, owed, written, reply) {
				r.skipped(c.pend.m)
				for range j - 1 {
					r.skipped(c.q.front())
					c.q.pop()
				}
				l.record(c.q.front(), c.pend.at) // the held reply's
				c.q.pop()
				right, freed, c.pend.j = true, freed+j, 0
			} else {
				c.pend.flush(r, c.i, &c.wrong)
			}
		}
		held := false
		if !right {
			// The right reply to a later message written: the server
			// answered nothing to those before it, if the reply after
			// it is in step too (see skippedTo): held till then.
			held = c.pend.hold(r, c.i, c.q.front(), owed, written, now, reply)
		}
		m := c.q.front()
		c.q.pop()
		if measuring {
			l.arrived++
			l.bytes += int64(len(reply))
		}
		switch {
		case held:
		case !right:
			r.streamMismatch(&c.wrong, m, reply, want, false)
		default:
			c.wrong = false // a right reply: the stream is in step
		}
		if !held {
			l.record(m, now)
		}
		c.in = c.in[:0]
		c.since = now
		c.served = true
		c.servedMeasuring = c.servedMeasuring || measuring
		if now < r.windowUntil.Load() {
			// Out of trouble before the window ended, by the clock. Not
			// a reply after it, in the wait at the end (a server at its
			// connection limit serves the refused ones then, as the
			// others close) or before a late clock stopped the run.
			c.trouble = nil
		}
		c.straying = false
		if cut {
			c.cut, c.cutLen = true, len(reply)
			data = l.skipCut(c, data, measuring)
		}
		freed++
	}
	switch {
	case c.closed, c.redialing:
	case l.stopped:
		// (Not before: the loop has yet to send what c had not of the
		// window, seeing the stop, nor count what it could not.)
		if c.q.n == 0 {
			l.closeConn(c, false)
		}
	case freed > 0 && r.cfg.Rate <= 0:
		l.send(c, freed, sentAt(now), 0, now)
	}
}

// skipCut drops from data the rest of the line of a reply checked at its
// cap (c.cut, cleared once its newline came), up to and including its
// newline, and returns what follows: that one wrong reply's, it answers
// no message after it. Its bytes came back all the same: measuring, the
// replies' throughput counts them.
func (l *loop) skipCut(c *loopConn, data []byte, measuring bool) []byte {
	n := len(data)
	if k := bytes.IndexByte(data, '\n'); k >= 0 {
		n, c.cut = k+1, false
	}
	c.cutLen += n
	if measuring {
		l.bytes += int64(n)
	}
	return data[n:]
}

// late is the error of the reply owed on c that did not come whole (err:
// a time-out, a reset): begun, or behind a cut reply's line not ended.
func (c *loopConn) late(err error) error {
	if c.cut {
		return cutLate(c.cutLen, err)
	}
	return replyLate(len(c.in), err)
}

// eof: the server closed the connection. A reply it cut short, or never
// began, is wrong; the rest owed are lost.
func (l *loop) eof(c *loopConn) {
	r := l.r
	c.pend.flush(l.r, c.i, &c.wrong)
	if r.cfg.Reconnect && (!r.stopping.Load() || c.q.n > 0) {
		// A graceful close: the server answered all it had read. What is
		// still owed was on its way when it closed; it goes again on the
		// new connection, and its latency counts from the first send. At
		// the end of the run too, while the replies owed are awaited. A
		// reply it began and cut short is wrong all the same: a graceful
		// close answers whole what it read.
		if len(c.in) > 0 && c.q.n > 0 {
			l.cutShort(c)
		}
		if !c.served {
			if r.inWindow(r.now()) {
				r.unserved.Add(1) // closed without serving a reply: service refused
			}
			l.troubled(c, errServedNone)
		}
		c.resend = c.q.measured() // as every count, of messages sent while measuring
		l.redial(c)
		return
	}
	warm := false
	if c.q.n > 0 {
		warm = l.cutShort(c)
		l.owe(c)
	} else if !r.stopping.Load() {
		warm = r.fail(errIdleClose)
	}
	l.closeConn(c, warm)
}

// cutShort counts the reply c's server closed before ending (c.in, what
// came of it, perhaps nothing) as wrong, and takes its message off c's
// queue. It reports whether it counted an error the warm-up's (see
// run.fail).
func (l *loop) cutShort(c *loopConn) (warm bool) {
	warm = l.r.streamMismatch(&c.wrong, c.q.front(), c.in, l.r.wants[pick(c.i, c.sent-uint64(c.q.n))], true)
	c.q.pop()
	return warm
}

// broken ends a connection on a failure: what it still owed is lost.
func (l *loop) broken(c *loopConn, err error) {
	c.pend.flush(l.r, c.i, &c.wrong)
	warm := l.r.fail(err)
	l.troubled(c, err)
	l.owe(c)
	if l.r.cfg.Reconnect && !l.r.stopping.Load() && !c.redialing {
		l.redial(c)
		return
	}
	l.closeConn(c, warm)
}

// redial closes c's socket and makes a new connection in the background;
// takeRedialed puts it in place.
func (l *loop) redial(c *loopConn) {
	c.pend.flush(l.r, c.i, &c.wrong)
	unix.Close(c.fd)
	c.fd, c.redialing = -1, true
	c.since = l.r.now() // when the new connection is made, its replies are timed from it
	c.in, c.out = c.in[:0], nil
	c.wrong, c.straying, c.cut = false, false, false // a new connection: its replies start in step
	if c.served {
		c.backoff = 0
	} else {
		c.backoff = nextBackoff(c.backoff)
	}
	c.served = false
	wait := c.backoff
	l.dials.Go(func() {
		rd := redialed{c: c, fd: -1}
		if wait > 0 {
			select {
			case <-time.After(wait):
			case <-l.ctx.Done(): // the run is over, and its loops
				return
			}
		}
		// A server restarting, or a balancer between replicas, may refuse
		// for a moment: try again, backing off as above, for up to
		// ConnectTimeout.
		ctx, cancel := context.WithTimeout(l.ctx, l.r.cfg.ConnectTimeout)
		defer cancel()
		for delay := nextBackoff(0); ; delay = nextBackoff(delay) {
			var nc net.Conn
			if nc, rd.err = l.dial(ctx, c.i); rd.err == nil {
				rd.fd, rd.err = takeFD(nc)
				break
			}
			select {
			case <-time.After(delay):
				continue
			case <-ctx.Done():
			}
			break
		}
		l.inbox <- rd
		one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
		unix.Write(l.inboxFD, one)
	})
}

// takeRedialed puts new connections in place of closed ones and sends
// them what was waiting.
func (l *loop) takeRedialed(now int64) {
	r := l.r
	for len(l.inbox) > 0 {
		rd := <-l.inbox
		c := rd.c
		switch {
		case c.closed:
			if rd.err == nil {
				unix.Close(rd.fd)
			}
			continue
		case rd.err != nil:
			warm := r.fail(rd.err)
			l.troubled(c, rd.err)
			l.owe(c) // not sent again: lost
			// Still marked as being made again: given up as the run
			// stops (in the wait for the replies owed), closeConn counts
			// it unmade, as the loops' end does one they close so.
			l.closeConn(c, warm)
			continue
		}
		c.fd, c.redialing, c.shut = rd.fd, false, false
		if err := l.watch(unix.EPOLL_CTL_ADD, c.fd, c.key, unix.EPOLLIN|unix.EPOLLRDHUP); err != nil {
			l.broken(c, fmt.Errorf("event loop: %w", err))
			continue
		}
		if !r.warmNow() { // not the warm-up's: counts are the measured part's
			r.reconnects.Add(1)
		}
		r.resent.Add(c.resend)
		c.resend = 0
		c.since = now
		// What was owed or fell due meanwhile, in order.
		c.unwritten = c.sent - uint64(c.q.n)
		l.fill(c, now)
		if r.cfg.Rate <= 0 && !c.closed && c.q.n < r.cfg.Depth {
			l.send(c, r.cfg.Depth-c.q.n, sentAt(now), 0, now)
		}
	}
}

// troubled notes why c failed or was refused, if it is c's first trouble
// since its last reply and c owed messages: an idle connection closed
// (by a restart) was refused nothing.
func (l *loop) troubled(c *loopConn, why error) {
	if c.trouble == nil && c.q.n > 0 {
		c.trouble, c.troubleAt = why, l.r.now()
	}
}

// errServedNone is the trouble of a connection the server closed before
// it served a reply.
var errServedNone = errors.New("the server closed the connection before it served a reply")

// countNeverServed counts, with Reconnect, the connections that served
// no reply while measuring and failed or were refused: made again and
// again, or waiting to be, they carried none of the load asked for.
// (Without Reconnect such a connection failed for good, which the counts
// of the failure say.) The loops have ended.
func (d *loops) countNeverServed() {
	r := d.ls[0].r
	if !r.cfg.Reconnect {
		return
	}
	first := int64(math.MaxInt64)
	for _, l := range d.ls {
		for _, c := range l.conns {
			if c.servedMeasuring || c.trouble == nil {
				continue
			}
			r.neverServed++
			if c.troubleAt < first {
				first, r.neverServedWhy = c.troubleAt, c.trouble
			}
		}
	}
}

// owe counts the messages in flight on c as lost.
func (l *loop) owe(c *loopConn) {
	c.pend.flush(l.r, c.i, &c.wrong)
	for ; c.q.n > 0; c.q.pop() {
		l.r.owed(c.q.front())
	}
	c.resend = 0 // lost, not to be counted resent by a later connection
}

// closeConn closes c for good: no new connection is made for it. warm:
// its failure was counted the warm-up's (see run.ended).
func (l *loop) closeConn(c *loopConn, warm bool) {
	c.pend.flush(l.r, c.i, &c.wrong)
	if c.fd >= 0 {
		unix.Close(c.fd)
	}
	if c.redialing && l.r.stopping.Load() {
		l.r.unmade.Add(1) // given up at the end while being made again
	}
	switch {
	case !l.paced:
	case !l.r.stopping.Load(), !l.stopped:
		// Its share of the rate is not sent: what falls due on it while
		// measuring is never sent; so is what fell due in the window and
		// was not sent, if the run stopped and the loop has yet to see
		// it (a failure in the round the wake came in, before it). Why,
		// by when it failed: past the window's end (the wait for the
		// replies owed, or a loop woken late), as the window left it.
		past := l.r.pastWindow(l.r.now())
		l.r.scheduleEnded(c.cad, c.k, afterFailure(past, c.behind, c.held))
	}
	if ringEnded != nil {
		ringEnded(c.q.size())
	}
	c.closed = true
	c.in, c.out, c.q = nil, nil, ring{}
	l.open--
	l.r.ended(warm)
}

// sendRest sends, as the run stops, what of c's schedule (an open loop)
// fell due before the window's end and was not sent yet, each timed from
// when it fell due, as due sends it for a loop that woke late while
// measuring: its replies are awaited with the rest owed. A timer that
// woke late (a busy machine), or a loop held up, left it in no count;
// counted never sent, it made a busy machine's run at a high rate not all
// right over a message or two at the window's edge. What it cannot send
// is never sent: held back by the replies owed (its most in flight), or
// by bytes the server has not taken (l.unsent), as due holds them, or on
// a connection that fails as it is written; and what a connection behind
// its schedule at its last round had yet to send, held back (c.held).
func (l *loop) sendRest(c *loopConn, now int64) {
	if !l.paced || c.closed {
		return
	}
	until := l.r.windowUntil.Load() // (as the run stopped: earlier, if it ended early)
	if c.next < until && !l.r.cfg.Reconnect && l.closedIdle(c, now) {
		// Closed by its server with nothing owed (see due): the close
		// is read after this, and counts for nothing as the run stops.
		// (With Reconnect, what is sent on it goes again on a new one.)
		l.r.scheduleEnded(c.cad, c.k, connFailed)
		return
	}
	if c.behind && c.next < until && c.q.n < l.most {
		// Held back by bytes the server had not taken or by replies
		// owed (see due): not only when it is held back now, as a reply
		// in this round, or one before from which due has yet to catch
		// up, leaves the rest held. (Full, it is unanswered, below.)
		l.r.scheduleEnded(c.cad, c.k, c.held)
		return
	}
	for c.next < until {
		room := l.most - c.q.n
		switch {
		case c.closed: // (its write failed as the run stopped: see afterFailure)
			l.r.scheduleEnded(c.cad, c.k, afterFailure(true, c.behind, c.held))
			return
		case room <= 0:
			l.r.scheduleEnded(c.cad, c.k, unanswered)
			return
		case len(c.out) >= l.unsent:
			l.r.scheduleEnded(c.cad, c.k, untaken)
			return
		}
		first, n := c.k, 0
		for c.next < until && n < min(l.r.mostDue(), room) {
			c.advance()
			n++
		}
		l.hand(c, n, c.cad, first, now)
	}
}

// closedIdle reports whether c's server has closed its side of c with
// nothing owed on it, whether or not a read has met the close yet: one
// system call, before a send (see due, sendRest), paid only by a
// connection that has owed nothing for idleLook. A server closes a
// connection for being idle after a quiet time longer than that; a
// connection sent to more often than every idleLook pays nothing. Paid
// on every send, the looks of the connections falling due in one round
// delay the sends after them: 50 connections at 200 msg/s each took
// bench's p99 from 140 µs to 240–425 µs with a look after 1 ms.
// A close that the loop's wait reported with the last reply (c.shut) is
// known without a look: after a stall the reply was taken late, just as
// the next message fell due, and that message was sent on the closed
// connection, and counted wrong.
func (l *loop) closedIdle(c *loopConn, now int64) bool {
	return c.q.n == 0 && c.fd >= 0 && (c.shut || now-c.since >= int64(idleLook) && fdTCPState(c.fd) == unix.BPF_TCP_CLOSE_WAIT)
}

// advance moves c's schedule on by a message.
func (c *loopConn) advance() {
	c.k++
	c.next = c.cad.due(c.k)
}

// due sends each connection's messages that have fallen due (before the
// window's end: none after it is sent). A connection holding l.unsent
// bytes or more that its socket would not take falls behind instead: its
// messages are sent when the server takes more (see flush), each timed
// from when it fell due, as the goroutine driver's blocked writes do;
// bench's memory does not grow with the backlog. So does one with l.most
// messages in flight (run.mostInFlight): its messages are sent as replies
// free room (take, then due again).
func (l *loop) due(now int64) {
	l.nextDue = math.MaxInt64
	if l.r.stopping.Load() {
		return // what is due now is sent as the loop sees the stop (sendRest)
	}
	until := l.r.windowUntil.Load()
	for _, c := range l.conns {
		if c.closed {
			continue
		}
		switch {
		case c.next >= until:
			// The window is over: nothing more is sent.
		case len(c.out) >= l.unsent:
			c.held = untaken
			// (flush wakes the schedule when it has room)
		case c.q.n >= l.most:
			c.held = unanswered
		case c.next <= now && l.closedIdle(c, now):
			// Its server closed it with nothing owed, the close come
			// since the loop waited: read first, in the next round, it
			// is the connection's error, and what falls due never sent
			// on a failed connection. Sent, the message was owed at the
			// close and counted wrong ("closed before the reply began"),
			// as if the server had closed on it.
			c.held = connFailed
		case c.next <= now:
			first, n := c.k, 0
			room := l.most - c.q.n
			most := min(l.r.mostDue(), room) // in one write, and room
			for c.next <= now && c.next < until && n < most {
				c.advance()
				n++
			}
			if n == room {
				c.held = unanswered
			}
			// Not send: the run stopping since due looked (the clock's
			// goroutine), it sent nothing of what the schedule moved
			// past, due in the window, and sendRest goes on after it:
			// they were in no count.
			l.hand(c, n, c.cad, first, now)
		}
		// Behind its schedule, for c.held: it catches up a write at a
		// time, or when a reply frees room, or the server takes bytes.
		// Judged while measuring only: a round past the window's end
		// (the loop woken late, before it saw the stop) is the stop's,
		// and what fell due before the end is sent as the run stops
		// (sendRest), as for a loop that saw the stop first. Judged in
		// it, the rest was never sent if a write's worth had fallen due,
		// by which of the loop and the clock ran first.
		if now < until {
			if c.behind = c.next <= now; !c.behind { // (so before until)
				c.held = untaken
			}
		}
		if c.next < until && len(c.out) < l.unsent && c.q.n < l.most { // (else flush, or a reply: the loop calls due after each)
			l.nextDue = min(l.nextDue, c.next)
		}
	}
}

// expire ends connections whose reply, or whose server's reading, is
// later than Timeout; in a patient run (Config.patient), none.
func (l *loop) expire(now int64) {
	if l.r.cfg.patient {
		return
	}
	timeout := int64(l.r.cfg.Timeout)
	for _, c := range l.conns {
		switch {
		case c.closed, c.redialing: // a redial has ConnectTimeout of its own
		case len(c.out) > 0 && now-c.outSince > timeout:
			// First: a server that reads nothing sends no reply either,
			// and that is the lesser part of what is wrong.
			l.broken(c, fmt.Errorf("send: the server took no bytes for %v", l.r.cfg.Timeout))
		case c.q.n > 0 && now-c.since > timeout:
			l.broken(c, c.late(fmt.Errorf("no reply within %v", l.r.cfg.Timeout)))
		}
	}
}
