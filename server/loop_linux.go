package server

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/text/transform"
)

// The event-loop driver: a fixed set of loops, one per core the process
// may use, each an epoll set with the connections it accepted. A loop
// reads a connection when epoll says it can, into the loop's one read
// buffer, feeds the connection's session, and writes the reply from the
// loop's one reply buffer; an idle connection holds its socket and a
// small struct, no goroutine and no buffer. A reply the socket cannot
// take at once is kept in a buffer of the connection's own, and the loop
// reads nothing more from it and watches for write readiness until the
// buffer drains: the goroutine driver's bound, one read's reply. Every
// loop accepts from every listener (EPOLLEXCLUSIVE wakes one of them), so
// a second core adds a second loop.
//
// Timeouts, limits, graceful stop and the observer calls are those of the
// goroutine driver (conn.go), moved to events: a loop sweeps its
// connections for timeouts and lingering closes, and wakes for Shutdown
// and Close on an eventfd.

// loopUnsupported says why the event loops cannot serve l, or "".
func loopUnsupported(l net.Listener) string {
	switch l.(type) {
	case *net.TCPListener, *net.UnixListener:
		return ""
	}
	return "the listener is not a plain TCP or Unix socket listener"
}

// Keys in EpollEvent.Pad: a connection's generation is positive (so an
// event for a descriptor closed and reused within one batch is told from
// the new connection's), a listener's id is negative.
const wakeKey = 0

// acceptBatch bounds the connections a loop accepts per wake, so that
// accepting does not starve the connections it serves.
const acceptBatch = 16

// maxFree bounds each loop's list of connection structs kept for reuse.
const maxFree = 256

// loops are a server's event loops and the listeners they accept from.
type loops struct {
	all       []*loop
	listeners atomic.Pointer[[]*loopListener] // by id-1, copied on write under Server.mu
}

// loopListener is one listener the loops accept from.
type loopListener struct {
	id    int32
	l     net.Listener
	raw   syscall.RawConn
	local net.Addr // every connection's local address, unless a wildcard's
	unix  bool
	// failed is closed, with err set, when accepting fails for good.
	failed   chan struct{}
	err      error
	failOnce sync.Once
}

// lconn is one connection a loop serves.
type lconn struct {
	fd    int
	gen   int32
	state lstate
	sess  session
	place place
	nc    net.Conn // what ConnState is given, if it is set
	why   Reason   // the close's reason, once closing

	lastRead   int64 // loop time of the last read
	writeSince int64 // when the pending reply was queued

	// pending is the part of a reply the socket has not taken yet; while
	// it is there, nothing is read. replyFrom is BytesOut before the
	// reply, for ConnReply.
	pending   *[]byte
	off       int
	replyFrom int64

	owed   int       // when stopping: bytes that had arrived at the stop
	linger *lingerAt // when lingering: the graceful close's clock
}

type lstate uint8

const (
	reading   lstate = iota // served
	eofDrain                // end of input: closes once the pending reply is written
	stopping                // the server stops: answers owed bytes, then lingers
	lingering               // write side shut, reading and discarding until end of file
)

// lingerAt is the state of one graceful close; see conn.closeGracefully.
type lingerAt struct {
	start, giveUp, lastInput, lastTaken int64
	unsent                              int
}

// loop is one event loop.
type loop struct {
	srv    *Server
	set    *loops
	ep     int
	wake   int // eventfd: Shutdown, Close
	events []unix.EpollEvent
	conns  []*lconn // by descriptor
	open   int      // connections in conns
	slow   int      // connections stopping or lingering, which need sweeps
	free   []*lconn
	gen    int32
	rbuf   []byte
	obuf   *[]byte
	epoch  time.Time
	now    int64 // nanoseconds since epoch, at the last wake
	swept  int64
	paused []pausedListener // listeners not accepted from until a time

	stopped bool // Shutdown has been seen
	force   atomic.Bool
	acceptF func(fd uintptr) // l.acceptFrom, made once
	accL    *loopListener    // the listener acceptF accepts from
	lastErr int64            // when an accept error was last logged
}

type pausedListener struct {
	ll    *loopListener
	until int64
	delay time.Duration
}

// serveLoop serves l on the server's event loops, starting them if they
// are not running, until l is closed.
func (s *Server) serveLoop(l net.Listener) error {
	ll := &loopListener{l: l, local: l.Addr(), failed: make(chan struct{})}
	sc, ok := l.(syscall.Conn)
	if !ok {
		s.untrack(l)
		return ErrEngineUnsupported
	}
	var err error
	if ll.raw, err = sc.SyscallConn(); err != nil {
		s.untrack(l)
		return err
	}
	_, ll.unix = l.(*net.UnixListener)
	if a, ok := ll.local.(*net.TCPAddr); ok && a.IP.IsUnspecified() {
		ll.local = nil // each connection's own, from getsockname
	}
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		s.untrack(l)
		return ErrServerClosed
	}
	if s.loops == nil {
		if s.loops, err = s.startLoops(); err != nil {
			s.mu.Unlock()
			s.untrack(l)
			return err
		}
	}
	set := s.loops
	old := *set.listeners.Load()
	ll.id = int32(len(old) + 1)
	set.listeners.Store(ptr(append(old[:len(old):len(old)], ll)))
	cerr := ll.raw.Control(func(fd uintptr) {
		for _, lp := range set.all {
			if err = lp.watchListener(int(fd), ll); err != nil {
				return
			}
		}
	})
	s.mu.Unlock()
	if err == nil {
		err = cerr
	}
	if err != nil {
		s.untrack(l)
		return err
	}
	defer s.untrack(l)
	// The loops accept; this waits for the server to stop, for accepting
	// to fail, or for the listener to be closed from outside, which
	// nothing announces: Control fails once it is.
	tick := time.NewTicker(closedPoll)
	defer tick.Stop()
	for {
		select {
		case <-s.done:
			return ErrServerClosed
		case <-ll.failed:
			return ll.err
		case <-tick.C:
			if err := ll.raw.Control(func(uintptr) {}); err != nil {
				if s.closing.Load() {
					// Shutdown or Close closed it: s.done is closed too,
					// but select may have taken the tick first.
					return ErrServerClosed
				}
				return &net.OpError{Op: "accept", Net: l.Addr().Network(), Addr: l.Addr(), Err: net.ErrClosed}
			}
		}
	}
}

// closedPoll is how often Serve looks whether its listener was closed
// from outside, while the loops accept from it.
const closedPoll = 250 * time.Millisecond

func ptr[T any](v T) *T { return &v }

// startLoops makes one loop for each core the process may use and starts
// them; Server.mu is held.
func (s *Server) startLoops() (*loops, error) {
	set := &loops{}
	set.listeners.Store(new([]*loopListener))
	n := runtime.GOMAXPROCS(0)
	epoch := time.Now()
	rsize := s.readSize() + maxCarry
	for range n {
		lp := &loop{srv: s, set: set, ep: -1, wake: -1, epoch: epoch,
			events: make([]unix.EpollEvent, 256), rbuf: make([]byte, rsize)}
		lp.acceptF = lp.acceptFrom
		set.all = append(set.all, lp)
		var err error
		if lp.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err == nil {
			lp.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
		}
		if err == nil {
			err = unix.EpollCtl(lp.ep, unix.EPOLL_CTL_ADD, lp.wake, &unix.EpollEvent{Events: unix.EPOLLIN, Pad: wakeKey})
		}
		if err != nil {
			for _, lp := range set.all {
				lp.closeFDs()
			}
			return nil, errors.Join(errors.New("server: cannot start the event loops"), err)
		}
	}
	for _, lp := range set.all {
		s.wg.Add(1)
		go lp.run()
	}
	return set, nil
}

// wakeAll wakes every loop to see that the server is stopping; force
// closes every connection at once. Server.mu is held.
func (set *loops) wakeAll(force bool) {
	for _, lp := range set.all {
		if force {
			lp.force.Store(true)
		}
		one := [8]byte{1}
		unix.Write(lp.wake, one[:])
	}
}

func (l *loop) watchListener(fd int, ll *loopListener) error {
	return unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd,
		&unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: int32(fd), Pad: -ll.id})
}

func (l *loop) closeFDs() {
	if l.ep >= 0 {
		unix.Close(l.ep)
	}
	if l.wake >= 0 {
		unix.Close(l.wake)
	}
}

// run serves the loop's connections until the server has stopped and
// they are all closed.
func (l *loop) run() {
	s := l.srv
	defer s.wg.Done()
	defer l.closeFDs()
	for {
		n, err := unix.EpollWait(l.ep, l.events, l.waitMillis())
		l.now = int64(time.Since(l.epoch))
		if err != nil && err != unix.EINTR {
			s.logger().Error("event loop failed; closing its connections", "err", err)
			l.closeEvery()
			return
		}
		for i := range max(n, 0) {
			ev := &l.events[i]
			switch key := ev.Pad; {
			case key > 0:
				if c := l.at(int(ev.Fd)); c != nil && c.gen == key {
					l.ready(c, ev.Events)
				}
			case key < 0:
				l.accept(-key)
			default:
				var b [8]byte
				unix.Read(l.wake, b[:])
			}
		}
		if l.force.Load() {
			l.closeEvery()
			return
		}
		if s.closing.Load() && !l.stopped {
			l.stop()
		}
		if l.now-l.swept >= int64(l.sweepEvery()) || len(l.paused) > 0 {
			l.sweep()
		}
		if l.stopped && l.open == 0 {
			return
		}
	}
}

func (l *loop) at(fd int) *lconn {
	if fd < len(l.conns) {
		return l.conns[fd]
	}
	return nil
}

// sweepEvery is how often the loop looks at its connections' clocks:
// as the timeout watcher does, and while any linger, an eighth of Linger.
func (l *loop) sweepEvery() time.Duration {
	s := l.srv
	d := time.Duration(-1)
	if s.IdleTimeout > 0 || s.WriteTimeout > 0 {
		d = s.sweepEvery()
	}
	if l.slow > 0 {
		g := min(max(s.linger()/8, 5*time.Millisecond), time.Second)
		if d < 0 || g < d {
			d = g
		}
	}
	return d
}

// waitMillis is epoll_wait's timeout: until the next sweep, or for ever.
func (l *loop) waitMillis() int {
	d := l.sweepEvery()
	for _, p := range l.paused {
		if left := time.Duration(p.until - l.now); d < 0 || left < d {
			d = max(left, 0)
		}
	}
	if d < 0 {
		return -1
	}
	return int((d + time.Millisecond - 1) / time.Millisecond)
}

// accept takes new connections from listener id, up to acceptBatch.
func (l *loop) accept(id int32) {
	lls := *l.set.listeners.Load()
	if int(id) > len(lls) {
		return
	}
	l.accL = lls[id-1]
	l.accL.raw.Control(l.acceptF) // fails once the listener is closed: nothing to do
	l.accL = nil
}

// acceptFrom is accept's work, with the listener's descriptor held open.
func (l *loop) acceptFrom(lfd uintptr) {
	ll := l.accL
	for range acceptBatch {
		fd, sa, err := unix.Accept4(int(lfd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch {
		case err == nil:
			l.admit(ll, fd, sa)
			continue
		case err == unix.EAGAIN:
		case err == unix.EINTR || err == unix.ECONNABORTED || err == unix.EPROTO || err == unix.EPERM:
			continue // that connection is gone; the next may not be
		case temporary(err):
			l.pause(ll, int(lfd), err)
		default:
			// As Accept's error ends Serve. Other loops may fail too.
			unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, int(lfd), nil)
			ll.failOnce.Do(func() {
				ll.err = &net.OpError{Op: "accept", Net: ll.l.Addr().Network(), Addr: ll.l.Addr(), Err: err}
				close(ll.failed)
			})
		}
		return
	}
}

// pause stops accepting from a listener that failed with a temporary
// error (out of descriptors or memory), as Serve's accept loop does: it
// logs, and tries again after 5 ms, doubling to 1 s while it fails. The
// listener stays readable meanwhile, so it leaves the epoll set.
func (l *loop) pause(ll *loopListener, lfd int, err error) {
	delay := 5 * time.Millisecond
	for i, p := range l.paused {
		if p.ll == ll {
			delay = min(2*p.delay, time.Second)
			l.paused = append(l.paused[:i], l.paused[i+1:]...)
			break
		}
	}
	unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, lfd, nil)
	l.paused = append(l.paused, pausedListener{ll: ll, until: l.now + int64(delay), delay: delay})
	l.srv.logger().Error("accept failed; retrying", "listener", ll.l.Addr().String(), "err", err, "retry_in", delay)
}

// resume watches paused listeners again once their time has come.
func (l *loop) resume() {
	keep := l.paused[:0]
	for _, p := range l.paused {
		if p.until > l.now {
			keep = append(keep, p)
			continue
		}
		p.ll.raw.Control(func(fd uintptr) { l.watchListener(int(fd), p.ll) })
		// A failure again pauses it again, with the delay doubled.
		keep = append(keep, pausedListener{ll: p.ll, until: 1<<63 - 1, delay: p.delay})
	}
	l.paused = keep
	// Entries kept at "never" only remember the delay for the next failure;
	// one that accepts a connection is forgotten.
}

// admit serves a connection just accepted, or turns it away over a limit.
func (l *loop) admit(ll *loopListener, fd int, sa unix.Sockaddr) {
	s := l.srv
	if s.closing.Load() {
		unix.Close(fd)
		return
	}
	for i, p := range l.paused {
		if p.ll == ll { // it accepts again: forget its backoff
			l.paused = append(l.paused[:i], l.paused[i+1:]...)
			break
		}
	}
	c := l.newConn(fd)
	info := &c.sess.info
	info.Start = time.Now()
	info.Remote, info.Local = addrOf(sa, ll.unix), ll.local
	if info.Local == nil {
		if lsa, err := unix.Getsockname(fd); err == nil {
			info.Local = addrOf(lsa, ll.unix)
		}
	}
	c.lastRead = l.now
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd), Pad: c.gen}); err != nil {
		s.logger().Error("accept failed: cannot watch the connection", "listener", ll.l.Addr().String(), "err", err)
		unix.Close(fd)
		l.recycle(c)
		return
	}
	l.conns[fd] = c
	l.open++
	if s.ConnState != nil {
		c.nc = &loopNetConn{remote: info.Remote, local: info.Local}
	}
	var why error
	if s.MaxConns > 0 {
		s.mu.Lock()
		if s.active >= s.MaxConns {
			why = ErrMaxConns
		} else {
			s.active++
			c.place.admitted = true
		}
		s.mu.Unlock()
	}
	if why == nil && !s.admitIP(&c.place, info.Remote) {
		why = ErrMaxConnsPerIP
	}
	if why != nil {
		l.reject(c, why)
		return
	}
	c.why = ReasonNone
	s.obs.ConnOpen(info)
	if s.ConnState != nil {
		s.ConnState(c.nc, StateNew)
	}
	if s.closing.Load() { // Shutdown came during the accept: stop this one too
		l.stopConn(c)
	}
}

func (l *loop) newConn(fd int) *lconn {
	var c *lconn
	if n := len(l.free); n > 0 {
		c, l.free = l.free[n-1], l.free[:n-1]
	} else {
		c = new(lconn)
	}
	if l.gen++; l.gen <= 0 {
		l.gen = 1
	}
	c.fd, c.gen = fd, l.gen
	c.sess.init(l.srv.transformer())
	for fd >= len(l.conns) {
		l.conns = append(l.conns, nil)
	}
	l.conns = l.conns[:cap(l.conns)]
	return c
}

func (l *loop) recycle(c *lconn) {
	if len(l.free) < maxFree {
		*c = lconn{}
		l.free = append(l.free, c)
	}
}

// addrOf is the net.Addr of a socket address, as net's accepted
// connections give it.
func addrOf(sa unix.Sockaddr, isUnix bool) net.Addr {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)))
	case *unix.SockaddrInet6:
		a := netip.AddrFrom16(sa.Addr)
		if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				a = a.WithZone(ifi.Name)
			}
		}
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, uint16(sa.Port)))
	case *unix.SockaddrUnix:
		return &net.UnixAddr{Name: sa.Name, Net: "unix"}
	}
	if isUnix {
		return &net.UnixAddr{Net: "unix"}
	}
	return nil
}

// ready handles epoll's events for c.
func (l *loop) ready(c *lconn, ev uint32) {
	if c.pending != nil {
		if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			l.drain(c)
		}
		return
	}
	if c.state == lingering {
		l.discard(c)
		return
	}
	l.read(c)
}

// read reads once and answers what it read.
func (l *loop) read(c *lconn) {
	s := l.srv
	k := c.sess.carried(l.rbuf)
	n, err := readFD(c.fd, l.rbuf[k:])
	switch {
	case err == unix.EAGAIN:
		return
	case err != nil:
		l.fail(c, err, false)
		return
	case n == 0:
		l.eof(c)
		return
	}
	c.lastRead = l.now
	info := &c.sess.info
	info.BytesIn += int64(n)
	s.obs.ConnRead(info, l.rbuf[k:k+n])
	c.replyFrom = info.BytesOut
	err = l.reply(c, l.rbuf[:k+n])
	if c.pending == nil || err != nil {
		l.replied(c, err)
	}
	if err != nil {
		l.fail(c, err, true)
		return
	}
	if c.state == stopping {
		if c.owed -= n; c.owed <= 0 && c.pending == nil {
			l.stopNow(c)
		}
	}
}

func readFD(fd int, p []byte) (int, error) {
	for {
		n, err := unix.Read(fd, p)
		if err != unix.EINTR {
			return max(n, 0), err
		}
	}
}

// replied tells a ReplyObserver of the reply just written, or cut short.
func (l *loop) replied(c *lconn, err error) {
	if r := l.srv.replies; r != nil {
		r.ConnReply(&c.sess.info, int(c.sess.info.BytesOut-c.replyFrom), err)
	}
}

// reply transforms in into the loop's reply buffer and writes it; what
// the socket does not take now waits in c.pending.
func (l *loop) reply(c *lconn, in []byte) error {
	s := l.srv
	exp := s.expansion()
	if l.obuf == nil {
		l.obuf = getBuf(max(len(l.rbuf)*exp, maxCarry*exp))
	}
	out := l.obuf
	defer func() {
		if out != l.obuf {
			putBuf(out)
		}
	}()
	for len(in) > 0 {
		nDst, nSrc, err := c.sess.feed(*out, in)
		if nDst > 0 {
			if werr := l.write(c, (*out)[:nDst]); werr != nil {
				return werr
			}
		}
		in = in[nSrc:]
		if err != transform.ErrShortDst {
			return err
		}
		if nDst == 0 && nSrc == 0 { // a transformer that wants more room
			if len(*out) >= 4*len(l.rbuf)*exp {
				return errNoProgress
			}
			n := 2 * len(*out)
			if out != l.obuf {
				putBuf(out)
			}
			out = getBuf(n)
		}
	}
	return nil
}

// write writes p, or queues what the socket does not take (after what
// is queued already) and watches for write readiness.
func (l *loop) write(c *lconn, p []byte) error {
	n := 0
	if c.pending == nil {
		var err error
		n, err = writeFD(c.fd, p)
		c.sess.info.BytesOut += int64(n)
		if err != nil && err != unix.EAGAIN {
			return err
		}
		if n == len(p) {
			return nil
		}
	}
	rest := p[n:]
	if c.pending == nil {
		c.pending, c.off = getBuf(len(rest)), 0
		copy(*c.pending, rest)
		c.writeSince = l.now
		return l.watch(c, unix.EPOLLOUT)
	}
	q := c.pending
	have := len(*q) - c.off
	nq := getBuf(have + len(rest))
	copy(*nq, (*q)[c.off:])
	copy((*nq)[have:], rest)
	putBuf(q)
	c.pending, c.off = nq, 0
	return nil
}

func writeFD(fd int, p []byte) (int, error) {
	for {
		n, err := unix.Write(fd, p)
		if err != unix.EINTR {
			return max(n, 0), err
		}
	}
}

// watch sets what epoll reports for c: EPOLLIN or EPOLLOUT.
func (l *loop) watch(c *lconn, events uint32) error {
	return unix.EpollCtl(l.ep, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: events, Fd: int32(c.fd), Pad: c.gen})
}

// drain writes what is pending; once it is all written, the connection
// reads again, or goes on with what it was doing when it had to wait.
func (l *loop) drain(c *lconn) {
	q := c.pending
	n, err := writeFD(c.fd, (*q)[c.off:])
	c.sess.info.BytesOut += int64(n)
	c.off += n
	if err != nil && err != unix.EAGAIN {
		l.replied(c, err)
		l.fail(c, err, true)
		return
	}
	if c.off < len(*q) {
		return
	}
	putBuf(q)
	c.pending, c.off, c.writeSince = nil, 0, 0
	l.replied(c, nil)
	switch c.state {
	case eofDrain:
		l.close(c, c.why)
		return
	case stopping:
		if c.owed <= 0 {
			l.stopNow(c)
			return
		}
	case lingering:
		l.lingerNow(c)
		return
	}
	if err := l.watch(c, unix.EPOLLIN); err != nil {
		l.fail(c, err, false)
	}
}

// eof: the client is done sending. What is held is answered as it is,
// and the connection closes once every reply is written.
func (l *loop) eof(c *lconn) {
	r := ReasonEOF
	if c.state == stopping {
		r = ReasonShutdown
	}
	if err := l.flush(c); err != nil {
		l.fail(c, err, true)
		return
	}
	if c.pending != nil {
		l.setState(c, eofDrain)
		c.why = r
		return
	}
	l.close(c, r)
}

// flush answers an incomplete character held at the end of input.
func (l *loop) flush(c *lconn) error {
	if len(c.sess.carry) == 0 {
		return nil
	}
	exp := l.srv.expansion()
	buf := getBuf(maxCarry * exp)
	defer putBuf(buf)
	c.replyFrom = c.sess.info.BytesOut
	n, err := c.sess.flush(*buf)
	if n > 0 && err == nil {
		err = l.write(c, (*buf)[:n])
	}
	if c.pending == nil || err != nil {
		l.replied(c, err)
	}
	return err
}

// fail closes c after err, named as conn.reasonOf names it.
func (l *loop) fail(c *lconn, err error, writing bool) {
	l.close(c, l.reasonOf(c, err, writing))
}

func (l *loop) reasonOf(c *lconn, err error, writing bool) Reason {
	switch {
	case errors.Is(err, unix.ECONNRESET):
		return ReasonReset
	case errors.Is(err, unix.EPIPE):
		return ReasonBrokenPipe
	}
	if c.sess.info.Err == nil {
		c.sess.info.Err = err
	}
	return ReasonError
}

// closeGracefully starts c's graceful close (see conn.closeGracefully)
// for reason r, once what is held is answered.
func (l *loop) closeGracefully(c *lconn, r Reason) {
	if err := l.flush(c); err != nil {
		l.fail(c, err, true)
		return
	}
	c.why = r
	if c.state != lingering {
		l.setState(c, lingering)
		c.linger = &lingerAt{}
	}
	if c.pending == nil {
		l.lingerNow(c)
	}
}

// lingerNow shuts c's write side and starts reading and discarding until
// the client's end of file.
func (l *loop) lingerNow(c *lconn) {
	s := l.srv
	linger := int64(s.linger())
	if err := unix.Shutdown(c.fd, unix.SHUT_WR); err != nil || linger <= 0 {
		l.close(c, c.why)
		return
	}
	g := c.linger
	g.start, g.giveUp = l.now, l.now+maxLingerRounds*linger
	g.lastInput, g.lastTaken, g.unsent = l.now, l.now, ioctlFD(c.fd, unix.SIOCOUTQ)
	if err := l.watch(c, unix.EPOLLIN); err != nil {
		l.close(c, c.why)
	}
}

// discard reads and drops a lingering connection's input.
func (l *loop) discard(c *lconn) {
	n, err := readFD(c.fd, l.rbuf)
	switch {
	case err == unix.EAGAIN:
	case err != nil || n == 0:
		l.close(c, c.why) // end of file, or a failed connection
	default:
		c.linger.lastInput = l.now
	}
}

// lingered reports whether a lingering close is done waiting.
func (l *loop) lingered(c *lconn) bool {
	s := l.srv
	g := c.linger
	if g.start == 0 { // still writing its last reply
		return false
	}
	linger := int64(s.linger())
	stuck := linger
	if s.WriteTimeout > 0 {
		stuck = max(int64(s.WriteTimeout), linger)
	}
	if l.now > g.giveUp {
		return true
	}
	left := ioctlFD(c.fd, unix.SIOCOUTQ)
	if left < g.unsent {
		g.unsent, g.lastTaken = left, l.now
	}
	switch {
	case l.now-g.lastInput < linger:
		return false
	case left == 0:
		return true // every reply delivered, and a Linger without input
	}
	return l.now-g.lastTaken >= stuck // replies queued, but the client takes none
}

func ioctlFD(fd int, req uint) int {
	n, err := unix.IoctlGetInt(fd, req)
	if err != nil {
		return 0
	}
	return n
}

// reject turns c away over a limit: it lingers as a graceful close,
// within the server's bound on rejected connections lingering at once,
// and is closed at once past it.
func (l *loop) reject(c *lconn, why error) {
	c.sess.info.Err = why
	c.why = ReasonRejected
	select {
	case l.srv.lingering <- struct{}{}:
		l.setState(c, lingering)
		c.linger = &lingerAt{}
		l.lingerNow(c)
	default:
		l.close(c, ReasonRejected)
	}
}

// stop begins the graceful stop of every connection, as Shutdown asks.
func (l *loop) stop() {
	l.stopped = true
	for _, c := range l.conns {
		if c != nil {
			l.stopConn(c)
		}
	}
}

// stopConn: c answers every byte that had arrived at the stop (or, if
// they do not come within Linger, what did), then closes gracefully. A
// connection writing finishes its reply first.
func (l *loop) stopConn(c *lconn) {
	if c.state != reading {
		return // closing already
	}
	l.setState(c, stopping)
	c.owed = ioctlFD(c.fd, unix.SIOCINQ)
	c.lastRead = l.now // the time the owed bytes have
	if c.owed <= 0 && c.pending == nil {
		l.stopNow(c)
	}
}

// stopNow closes a stopping connection gracefully.
func (l *loop) stopNow(c *lconn) {
	l.closeGracefully(c, ReasonShutdown)
}

// setState moves c to st, counting the connections that need sweeps.
func (l *loop) setState(c *lconn, st lstate) {
	if c.state.slow() {
		l.slow--
	}
	if st.slow() {
		l.slow++
	}
	c.state = st
}

func (s lstate) slow() bool { return s == stopping || s == lingering }

// sweep closes the connections whose timeouts have passed and the
// lingering closes that are done, and resumes paused listeners.
func (l *loop) sweep() {
	s := l.srv
	l.swept = l.now
	if len(l.paused) > 0 {
		l.resume()
	}
	idle, write := int64(s.IdleTimeout), int64(s.WriteTimeout)
	stopWait := int64(max(s.linger(), drainQuiet))
	for _, c := range l.conns {
		switch {
		case c == nil:
		case c.pending != nil && write > 0 && l.now-c.writeSince > write:
			l.replied(c, os.ErrDeadlineExceeded) // as the goroutine driver's deadline says
			l.close(c, ReasonWriteTimeout)
		case c.pending != nil:
		case c.state == lingering:
			if l.lingered(c) {
				l.close(c, c.why)
			}
		case c.state == stopping:
			if l.now-c.lastRead > stopWait {
				l.stopNow(c) // the owed bytes did not come
			}
		case c.state == reading && idle > 0 && l.now-c.lastRead > idle:
			l.closeGracefully(c, ReasonIdleTimeout)
		}
	}
}

// close closes c for reason r and tells the observers.
func (l *loop) close(c *lconn, r Reason) {
	s := l.srv
	unix.Close(c.fd)
	l.conns[c.fd] = nil
	l.open--
	if c.state.slow() {
		l.slow--
	}
	putBuf(c.pending)
	c.pending = nil
	rejected := r == ReasonRejected
	if rejected && c.linger != nil {
		<-s.lingering
	}
	s.release(&c.place)
	info := &c.sess.info
	info.Reason, info.End = r, time.Now()
	s.obs.ConnClose(info)
	if s.ConnState != nil {
		st := StateClosed
		if rejected {
			st = StateRejected
		}
		s.ConnState(c.nc, st)
	}
	l.recycle(c)
}

// closeEvery closes every connection at once: Close, or a failed loop.
func (l *loop) closeEvery() {
	for _, c := range l.conns {
		if c != nil {
			r := ReasonShutdown
			if c.state == lingering {
				r = c.why
			}
			l.close(c, r)
		}
	}
}

// loopNetConn is the net.Conn a ConnState hook is given for a connection
// the loops serve: its addresses, nothing to read or write through.
type loopNetConn struct{ remote, local net.Addr }

var errLoopConn = errors.New("server: the connection is served by an event loop")

func (c *loopNetConn) Read([]byte) (int, error)         { return 0, errLoopConn }
func (c *loopNetConn) Write([]byte) (int, error)        { return 0, errLoopConn }
func (c *loopNetConn) Close() error                     { return errLoopConn }
func (c *loopNetConn) LocalAddr() net.Addr              { return c.local }
func (c *loopNetConn) RemoteAddr() net.Addr             { return c.remote }
func (c *loopNetConn) SetDeadline(time.Time) error      { return errLoopConn }
func (c *loopNetConn) SetReadDeadline(time.Time) error  { return errLoopConn }
func (c *loopNetConn) SetWriteDeadline(time.Time) error { return errLoopConn }
