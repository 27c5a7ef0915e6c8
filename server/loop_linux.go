package server

import (
	"bytes"
	"cmp"
	"errors"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
	"golang.org/x/text/transform"

	"shout/internal/sockfd"
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
// loop accepts from every listener, so a second core adds a second loop.
// (EPOLLEXCLUSIVE asks the kernel to wake one of them for a connection;
// it can only when a thread sleeps in epoll_wait on the set itself, and
// the loops wait in Go's netpoller, so it wakes more. Yet at churn, as
// accept takes connections, two loops made 1.12–1.14 accept4 calls per
// connection; taking them until accept4 failed, 1.93.)
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

// acceptBatch bounds the connections a loop accepts per report of a
// listener, so that accepting does not starve the connections it serves.
const acceptBatch = 16

// maxFree bounds each loop's list of connection structs kept for reuse.
const maxFree = 256

// loops are a server's event loops and the listeners they accept from.
//
// They run while there is something to serve, as a goroutine per
// connection would: once no listener is served (idle), each loop ends as
// soon as it has no connection left, so that a server whose Serves have
// returned and whose connections have closed leaves nothing running,
// Shutdown or not. The next Serve starts those again (revive).
type loops struct {
	all       []*loop                         // replaced, under Server.mu, as they end and start again
	listeners atomic.Pointer[[]*loopListener] // by id-1, copied on write under Server.mu
	serials   int32                           // listeners served so far; Server.mu
	idle      atomic.Bool                     // no listener is served; written under Server.mu
	epoch     time.Time                       // the loops' clock, which listeners' pauses share
	clock     *loopClock                      // a test's clock instead, or nil (see testClock)
	// redraining is set once a graceful stop left a listener's queue to
	// be accepted as connections close (see stopDrain).
	redraining atomic.Bool
}

// A loopClock is a test's clock for a set of loops, which only the test
// moves, so that it can tell what a loop does at which instant without
// sleeping. now stands in for the time since the loops' epoch, and waits
// for the deadline a loop gives its wait on the wall clock: the test
// ends the wait by moving now past it. A loop reads now at each wake if
// its clock is set (loop.time); unset, that costs a nil check.
type loopClock struct {
	now atomic.Int64
	// waits is told, each time l is about to wait, until when: at on
	// the clock (until something happens if at < 0). l waits on
	// l.pollFile, whose read deadline waits sets.
	waits func(l *loop, at int64)
}

// testClock, if set, is the clock of every set of loops started while it
// is; a test sets it.
var testClock *loopClock

// loopListener is one listener the loops accept from.
type loopListener struct {
	id int32
	// serial tells this Serve of the listener from every other: ids are
	// taken again, and an epoll entry can outlive its listener (see
	// loop.gone). Its events carry it.
	serial int32
	fd     int // its descriptor, while it is served
	l      net.Listener
	raw    syscall.RawConn
	local  net.Addr // every connection's local address, unless a wildcard's
	// unixNet is a Unix listener's network, "unix" or "unixpacket", for
	// its clients' addresses; "" for TCP.
	unixNet string
	// optionsUnset: setOptions could not set the options on it, and each
	// connection has them set (see loop.inherited). Written before the
	// loops are given it.
	optionsUnset bool
	// failed is closed, with err set, when accepting fails for good.
	failed   chan struct{}
	err      error
	failOnce sync.Once
	// While accepting fails for want of descriptors or memory, the
	// listener is paused, and the pause is the listener's, not each
	// loop's: however many loops find it failing, each retry is one
	// pause and one log line, as with Serve's one accept loop.
	pauseMu    sync.Mutex
	pauseDelay atomic.Int64 // the last pause, in ns; 0 once a loop accepts again (read without the lock)
	pauseEnd   int64        // when it ends, on the loops' clock
	// watchMu orders a loop watching the listener again after a pause
	// with unwatch, which takes it out of every loop's set for good.
	watchMu   sync.Mutex
	unwatched bool
	// drain is the graceful stop's drain of the listener, once its
	// accepts at the stop ran out of descriptors with clients still
	// queued: the loops accept the rest as their connections close.
	drain atomic.Pointer[stopDrain]
}

// stopDrain is a graceful stop's drain of a listener that could not
// empty its queue at once for want of descriptors (or memory): clients
// whose connect the system completed, which the listener's close would
// reset. The listener stays open, and each loop, as it closes
// connections at the stop, accepts the queued ones (see loop.redrain):
// until the queue is empty, maxDrained have been taken, the stop is
// forced, or no loop has a connection left whose close would free a
// descriptor. Then the listener is closed, and what is left is logged
// (see Server.leftQueued).
type stopDrain struct {
	taken atomic.Int32 // connections accepted at the stop
	err   error        // why clients are left queued if no loop is left to accept them: the failure that began it
	once  sync.Once
	done  chan struct{} // closed once it has ended, its listener closed
}

// lconn is one connection a loop serves: 256 bytes, with its session.
type lconn struct {
	fd     int32
	gen    int32
	state  lstate
	unix   bool   // a Unix socket: see mayHoldMore
	why    Reason // the close's reason, once closing
	marked bool   // when stopping: owed counts what lay behind an urgent mark (see stillOwedFD)
	owed   int32  // when stopping: bytes that had arrived at the stop
	sess   session
	place  place
	nc     *loopNetConn // what ConnState is given, if it is set

	lastRead int64         // loop time of the last read
	pend     *pendingReply // a reply the socket has not taken yet
	linger   *lingerAt     // when lingering: the graceful close's clock
}

// pendingReply is what a connection keeps while the socket takes no more
// of a reply, and nothing is read: the rest of one reply buffer, and the
// input not transformed yet; at most 2×ReadSize, as with the goroutine
// driver.
type pendingReply struct {
	out   *[]byte
	off   int
	in    *[]byte // nil if all of the input was transformed
	since int64   // when it began to wait, or the client last took some of it, for WriteTimeout
	from  int64   // BytesOut before the reply, for ConnReply
	// seen is the send queue at the last sweep, noLook before the first:
	// a sweep that finds the client took some since moves since on.
	seen sendLook
	err  error // the transformer's failure, which ends c once out is written
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
	eof                                 bool // the client's end of file came, replies still queued
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
	obuf   *[]byte               // the loop's reply buffer
	t      transform.Transformer // the server's, for every connection's session
	epoch  time.Time
	clock  *loopClock // set.clock
	now    int64      // nanoseconds since epoch, at the last wake (see time)

	// The loop waits for events in Go's netpoller, which watches the
	// epoll descriptor as it watches a socket: a loop with nothing to do
	// parks as a goroutine does, not in a system call the scheduler must
	// work around. The wait's callback, serve, polls without sleeping and
	// handles what it finds.
	pollFile *os.File
	poll     syscall.RawConn
	serveF   func(uintptr) bool // l.serve, made once
	pollErr  error
	more     bool  // the last batch may have left events to poll for
	parked   int64 // the loop's time (now) as it last parked: that of its last batch
	changed  int64 // the loop's time at its last new connection, hang-up, error or urgent data
	calm     bool  // the loop may nap in this wake (see serve)
	inLines  int   // lines the last batch read, in inReads reads, counted while calm
	inReads  int
	armed    int64 // the wait's deadline, or -1
	swept    int64
	paused   []pausedListener // listeners not accepted from until a time

	stopped   bool      // Shutdown has been seen
	freed     bool      // a connection closed since the stop, with a drain under way (see redrain)
	ended     bool      // run has returned, or is about to; Server.mu
	handed    []handoff // accepted by Shutdown for this loop to serve; Server.mu
	force     atomic.Bool
	acceptF   func(fd uintptr) // l.acceptFrom, made once
	accL      *loopListener    // the listener acceptF accepts from
	accMax    int              // how many acceptF is to accept: 1 or acceptBatch
	accN      int              // connections acceptF accepted
	accErr    error            // why acceptF paused the listener, if it began a pause
	accWait   time.Duration    // that pause
	accFD     [acceptBatch]int
	accSA     [acceptBatch]unix.RawSockaddrAny // their clients' addresses
	polls     uint64                           // polls made
	seen      []uint64                         // by listener id: the last of them that reported it
	inherits  []int32                          // by listener id: the serial of the one whose connections were seen to inherit its options, 0 for none (see inherited)
	goneAt    uint64                           // the last poll that reported a listener no longer served
	stale     bool                             // the epoll set holds such a listener: renew it
	renewAt   int64                            // after a renew failed, when to try again
	renewWait time.Duration                    // the wait that renewAt ends
	rsa       unix.RawSockaddrAny              // getsockname's
	ev        unix.EpollEvent                  // epoll_ctl's argument
}

// handoff is a connection that Shutdown accepted from a listener's queue
// (see drainAll), for a loop to serve as it stops.
type handoff struct {
	ll *loopListener
	fd int
	sa unix.RawSockaddrAny
}

type pausedListener struct {
	ll    *loopListener
	until int64
	wait  time.Duration // this pause: the listener's, or this loop's own once it cannot watch it
}

// serveLoop serves *lp, the listener of the Serve whose entry lp is (see
// Server.listeners), on the server's event loops, starting them if they
// are not running, until it is closed.
func (s *Server) serveLoop(lp *net.Listener) error {
	l := *lp
	ll := &loopListener{l: l, local: l.Addr(), failed: make(chan struct{})}
	sc, ok := l.(syscall.Conn)
	if !ok {
		s.untrack(lp)
		return ErrEngineUnsupported
	}
	var err error
	if ll.raw, err = sc.SyscallConn(); err != nil {
		s.untrack(lp)
		return err
	}
	if _, ok := l.(*net.UnixListener); ok {
		ll.unixNet = ll.local.Network()
	} else {
		ll.raw.Control(func(fd uintptr) {
			ll.optionsUnset = !setOptions(int(fd))
		})
	}
	if a, ok := ll.local.(*net.TCPAddr); ok && a.IP.IsUnspecified() {
		ll.local = nil // each connection's own, from getsockname
	}
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		s.untrack(lp)
		return ErrServerClosed
	}
	if s.loops == nil {
		s.loops, err = s.startLoops()
	} else {
		err = s.loops.revive(s)
	}
	if err != nil {
		s.mu.Unlock()
		s.untrack(lp)
		return err
	}
	set := s.loops
	set.add(ll)
	served := false // by another Serve, which has the loops watch it already
	cerr := ll.raw.Control(func(fd uintptr) {
		ll.fd = int(fd)
		if s.holdAccepts != nil {
			return // a test's: the loops do not watch it, and clients queue
		}
		for i, lp := range set.all {
			err = watchListener(lp.ep, int(fd), ll)
			if err == unix.EEXIST && set.servedAs(ll) {
				// The loops accept from it once, for both Serves. Undo
				// this one's watches, made where the other's are paused.
				served, err = true, nil
				for _, watched := range set.all[:i] {
					unix.EpollCtl(watched.ep, unix.EPOLL_CTL_DEL, int(fd), nil)
				}
				return
			}
			if err != nil {
				return
			}
		}
	})
	if served {
		set.remove(ll)
	}
	s.mu.Unlock()
	if err == nil && cerr != nil {
		// Closed before it was served (from outside: Server.mu orders
		// it with Shutdown and Close), worded as Accept words it.
		err = closedError(l)
	}
	if served && err == nil {
		if servedTwice != nil {
			servedTwice()
		}
		// It waits as the other does, which closes the listener, then
		// untracks its own entry (the close again does nothing).
		defer s.untrack(lp)
		return s.waitServed(ll)
	}
	forget := func() {
		s.mu.Lock()
		set.unwatch(ll)
		set.remove(ll)
		set.retireIfIdle()
		s.mu.Unlock()
		s.untrack(lp)
	}
	if err != nil {
		forget()
		return err
	}
	defer forget()
	if s.holdAccepts != nil {
		s.holdAccepts(l)
	}
	return s.waitServed(ll)
}

// servedTwice, if set, is called when a Serve finds its listener served
// already; a test sets it.
var servedTwice func()

// waitServed waits, while the loops accept from ll, for the server to
// stop, for accepting to fail, or for the listener to be closed from
// outside, which nothing announces: Control fails once it is.
func (s *Server) waitServed(ll *loopListener) error {
	l := ll.l
	tick := time.NewTicker(closedPoll)
	defer tick.Stop()
	for {
		select {
		case <-s.done:
			s.mu.Lock() // closeAll's: its drain has begun, if it is to
			d := ll.drain.Load()
			s.mu.Unlock()
			if d != nil {
				<-d.done // the listener is the drain's until then
			}
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
				return closedError(l)
			}
		}
	}
}

// closedError is Serve's error for l closed from outside, as the
// goroutine driver's Accept gives it.
func closedError(l net.Listener) error {
	return &net.OpError{Op: "accept", Net: l.Addr().Network(), Addr: l.Addr(), Err: net.ErrClosed}
}

// closedPoll is how often Serve looks whether its listener was closed
// from outside, while the loops accept from it.
const closedPoll = 250 * time.Millisecond

func (ll *loopListener) isUnix() bool { return ll.unixNet != "" }

// add gives ll the first id free in the set; Server.mu is held.
func (set *loops) add(ll *loopListener) {
	lls := slices.Clone(*set.listeners.Load())
	i := slices.Index(lls, nil)
	if i < 0 {
		i, lls = len(lls), append(lls, ll)
	}
	set.serials++
	lls[i], ll.id, ll.serial = ll, int32(i+1), set.serials
	set.listeners.Store(&lls)
}

// remove forgets ll, once Serve is done with it; Server.mu is held. An
// event for it still in a loop's batch accepts from whichever listener
// takes its id next, which does no harm.
func (set *loops) remove(ll *loopListener) {
	lls := slices.Clone(*set.listeners.Load())
	lls[ll.id-1] = nil
	for len(lls) > 0 && lls[len(lls)-1] == nil {
		lls = lls[:len(lls)-1]
	}
	set.listeners.Store(&lls)
}

// startLoops makes one loop for each core the process may use and starts
// them; Server.mu is held.
func (s *Server) startLoops() (*loops, error) {
	set := &loops{epoch: time.Now(), clock: testClock}
	set.listeners.Store(new([]*loopListener))
	for range runtime.GOMAXPROCS(0) {
		lp, err := s.newLoop(set)
		if err != nil {
			for _, lp := range set.all {
				lp.closeFDs()
			}
			return nil, err
		}
		set.all = append(set.all, lp)
	}
	for _, lp := range set.all {
		s.wg.Add(1)
		go lp.run()
	}
	return set, nil
}

// newLoop makes a loop of set, not started yet.
func (s *Server) newLoop(set *loops) (*loop, error) {
	lp := &loop{srv: s, set: set, ep: -1, wake: -1, epoch: set.epoch, clock: set.clock,
		events: make([]unix.EpollEvent, 256), rbuf: make([]byte, s.readSize()+maxCarry), t: s.transformer()}
	lp.acceptF, lp.serveF, lp.armed = lp.acceptFrom, lp.serve, -1
	var err error
	if lp.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err == nil {
		lp.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	}
	if err == nil {
		if lp.pollFile, lp.poll, err = pollable(lp.ep); err != nil {
			lp.ep = -1 // closed by pollable
		}
	}
	if err == nil {
		err = unix.EpollCtl(lp.ep, unix.EPOLL_CTL_ADD, lp.wake, &unix.EpollEvent{Events: unix.EPOLLIN, Pad: wakeKey})
	}
	if err != nil {
		lp.closeFDs()
		return nil, errors.Join(errors.New("server: cannot start the event loops"), err)
	}
	// Replies are written a buffer at a time, as conn.replyLen sizes
	// them: a reply waiting for a slow reader keeps at most this.
	lp.obuf = getBuf(max(s.readSize(), maxCarry*s.expansion()))
	return lp, nil
}

// revive readies the loops for a listener: every loop that ended while
// none was served is started again (in its place: the same number of
// loops, on the same clock). Server.mu is held.
func (set *loops) revive(s *Server) error {
	set.idle.Store(false)
	for i, lp := range set.all {
		if !lp.ended {
			continue
		}
		lp, err := s.newLoop(set)
		if err != nil {
			set.retireIfIdle()
			return err
		}
		set.all[i] = lp
		s.wg.Add(1)
		go lp.run()
	}
	return nil
}

// retireIfIdle, once no listener is served, wakes every loop to end as
// soon as it has no connection left (see loops). Server.mu is held.
func (set *loops) retireIfIdle() {
	if slices.ContainsFunc(*set.listeners.Load(), func(ll *loopListener) bool { return ll != nil }) {
		return
	}
	set.idle.Store(true)
	for _, lp := range set.all {
		lp.wakeUp()
	}
}

// wakeAll wakes every loop to see that the server is stopping; force
// closes every connection at once. Server.mu is held.
func (set *loops) wakeAll(force bool) {
	for _, lp := range set.all {
		if force {
			lp.force.Store(true)
		}
		lp.wakeUp()
	}
}

// wakeUp makes l look at what run watches between batches. Server.mu is
// held.
func (l *loop) wakeUp() {
	if l.wake < 0 {
		return // done, its descriptors closed
	}
	one := [8]byte{1}
	unix.Write(l.wake, one[:])
}

// unwatch takes ll out of every loop's epoll set, before it is closed;
// Server.mu is held. Closing it does that too, but only once nothing
// else holds its socket: systemd, which passed it, still does, as does
// a File taken from it, and the loops would be handed its queued clients
// with nothing to accept them (at Shutdown, over and over). A listener
// closed from outside cannot be taken out, as its descriptor is gone:
// its entries stay until its socket is released, or until a loop finds
// it queuing and leaves it (see loop.gone).
func (set *loops) unwatch(ll *loopListener) {
	ll.watchMu.Lock()
	defer ll.watchMu.Unlock()
	ll.unwatched = true
	ll.raw.Control(func(fd uintptr) {
		for _, lp := range set.all {
			if lp.ep >= 0 { // not done yet: Server.mu orders its close
				unix.EpollCtl(lp.ep, unix.EPOLL_CTL_DEL, int(fd), nil)
			}
		}
	})
}

// servedAs reports whether another of the listeners the loops serve has
// ll's descriptor, which it holds open: ll is the same listener, served
// twice. (An epoll entry left by one closed from outside is not.)
// Server.mu is held.
func (set *loops) servedAs(ll *loopListener) bool {
	for _, o := range *set.listeners.Load() {
		if o != nil && o != ll && o.fd == ll.fd {
			return true
		}
	}
	return false
}

// drainAll accepts, at a graceful stop, what has queued on the listeners
// the loops serve, up to maxDrained from each, until it finds each queue
// empty: clients whose connect the system completed, which closing the
// listener would reset, whatever they had sent. It hands them to the
// loops in turn, each to be served as the stop serves a connection,
// answering what it sent (see loop.stop). Out of descriptors (or
// memory) with clients still queued on a listener, it leaves the rest to
// a stopDrain: the loops accept them as their connections close.
// Server.mu is held, from before closeAll set the server closing until
// it is done: a loop that sees the stop takes them under it, so none is
// missed.
func (set *loops) drainAll() {
	var live []*loop
	for _, lp := range set.all {
		if !lp.ended {
			live = append(live, lp)
		}
	}
	if len(live) == 0 {
		return
	}
	next := 0
	for _, ll := range *set.listeners.Load() {
		if ll == nil {
			continue
		}
		taken, short := 0, error(nil)
		ll.raw.Control(func(lfd uintptr) {
			for range maxDrained {
				q := handoff{ll: ll}
				fd, err := drainFD(int(lfd), &q.sa) // (a Unix client's is zero: see addrOf)
				if aborted(err) {
					continue // that one is gone
				}
				if err != nil {
					if outOfResources(err) {
						short = noneToClose(acceptError(ll, err)) // said if no loop is left to accept
					}
					return // none left (EAGAIN), or none to be had now
				}
				q.fd = fd
				lp := live[next%len(live)]
				lp.handed = append(lp.handed, q)
				next++
				taken++
			}
		})
		if short != nil {
			// The rest as descriptors come free: the listener stays
			// open (see keeps), and the loops accept from it.
			d := &stopDrain{err: short, done: make(chan struct{})}
			d.taken.Store(int32(taken))
			ll.drain.Store(d)
			set.redraining.Store(true)
		}
	}
}

// drainFD accepts, at a graceful stop, from listening socket lfd, as
// acceptFD does, but reports an empty queue (EAGAIN) where the accept
// failed for want of a descriptor with none queued (Linux takes the
// descriptor first): that listener is closed at once, freeing its own,
// not kept open for a drain with nothing to take.
func drainFD(lfd int, rsa *unix.RawSockaddrAny) (int, error) {
	fd, err := acceptFD(lfd, rsa)
	if err != nil && outOfResources(err) && !pollsIn(lfd) {
		return -1, unix.EAGAIN
	}
	return fd, err
}

// aborted reports whether err, from accept4, says that the connection it
// was taking is gone: the next may not be.
func aborted(err error) bool {
	return err == unix.EINTR || err == unix.ECONNABORTED || err == unix.EPROTO || err == unix.EPERM
}

// keeps reports whether the loops still drain listener l of what queued
// on it at a graceful stop, out of descriptors (see stopDrain): it is to
// stay open, and the drain closes it. Server.mu is held.
func (set *loops) keeps(l net.Listener) bool {
	for _, ll := range *set.listeners.Load() {
		if ll != nil && ll.l == l && ll.draining() {
			return true
		}
	}
	return false
}

// draining reports whether a graceful stop's drain of ll is under way.
func (ll *loopListener) draining() bool {
	d := ll.drain.Load()
	if d == nil {
		return false
	}
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// endDrains ends every drain under way, as the stop is forced or no loop
// is left to accept (then why is the accept's failure that began each),
// logging what each left queued, and closes their listeners.
func (set *loops) endDrains(s *Server, why error) {
	for _, ll := range *set.listeners.Load() {
		if ll != nil {
			if d := ll.drain.Load(); d != nil {
				ll.endDrain(s, cmp.Or(why, d.err))
			}
		}
	}
}

// endDrain ends ll's drain at the stop, if one is under way: it logs
// what is left queued, if why is not nil (see Server.leftQueued), and
// closes the listener.
func (ll *loopListener) endDrain(s *Server, why error) {
	d := ll.drain.Load()
	if d == nil {
		return
	}
	d.once.Do(func() {
		if why != nil {
			s.leftQueued(ll.l, why)
		}
		ll.l.Close()
		close(d.done)
	})
}

// redrain accepts, after the loop closed connections at the stop, from
// each listener a drain is under way on (see stopDrain), and serves what
// it takes as the stop serves a connection: until the queue is empty or
// descriptors run out again (the next close tries again), as drainAll
// takes them.
func (l *loop) redrain() {
	for _, ll := range *l.set.listeners.Load() {
		if ll != nil && ll.draining() {
			l.drainFrom(ll, ll.drain.Load())
		}
	}
}

func (l *loop) drainFrom(ll *loopListener, d *stopDrain) {
	sa := &l.accSA[0]
	for range maxDrained {
		if d.taken.Load() >= maxDrained {
			ll.endDrain(l.srv, errDrainedMax)
			return
		}
		*sa = unix.RawSockaddrAny{} // (a Unix client's address is zero: see addrOf)
		fd, err := -1, error(nil)
		if ll.raw.Control(func(lfd uintptr) { fd, err = drainFD(int(lfd), sa) }) != nil {
			ll.endDrain(l.srv, nil) // closed from outside
			return
		}
		switch {
		case err == nil:
			d.taken.Add(1)
			l.admit(ll, fd, sa, true) // stopped as it is admitted
		case aborted(err):
		case outOfResources(err):
			return // the next close tries again
		case err == unix.EAGAIN:
			ll.endDrain(l.srv, nil) // empty
			return
		default:
			ll.endDrain(l.srv, acceptError(ll, err))
			return
		}
	}
}

// lastLoop reports whether every loop of the set but l has ended: none
// is left to accept once l ends. Server.mu is held.
func (set *loops) lastLoop(l *loop) bool {
	for _, o := range set.all {
		if o != l && !o.ended {
			return false
		}
	}
	return true
}

// unwatchAll unwatches every listener the loops serve; Server.mu is held.
func (set *loops) unwatchAll() {
	for _, ll := range *set.listeners.Load() {
		if ll != nil {
			set.unwatch(ll)
		}
	}
}

// rewatch watches ll again after a pause, unless it has been unwatched
// for good (then it reports net.ErrClosed).
func (l *loop) rewatch(fd int, ll *loopListener) error {
	ll.watchMu.Lock()
	defer ll.watchMu.Unlock()
	if ll.unwatched {
		return net.ErrClosed
	}
	return watchListener(l.ep, fd, ll)
}

// watchListener adds listener ll, whose descriptor is fd, to epoll set
// ep.
func watchListener(ep, fd int, ll *loopListener) error {
	return epollCtl(ep, unix.EPOLL_CTL_ADD, fd,
		&unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: ll.serial, Pad: -ll.id})
}

// pollable hands epoll descriptor ep to Go's netpoller, for a loop to
// wait on. The file returned owns ep; if pollable fails, ep is closed.
func pollable(ep int) (*os.File, syscall.RawConn, error) {
	if err := unix.SetNonblock(ep, true); err != nil {
		unix.Close(ep)
		return nil, nil, err
	}
	f := os.NewFile(uintptr(ep), "epoll")
	rc, err := f.SyscallConn()
	// os.NewFile falls back to blocking reads if the netpoller refuses
	// the descriptor; then a deadline cannot be set, and the loop could
	// not wake for its sweeps.
	if err == nil {
		err = f.SetReadDeadline(time.Time{})
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, rc, nil
}

func (l *loop) closeFDs() {
	if l.pollFile != nil {
		l.pollFile.Close()
	} else if l.ep >= 0 {
		unix.Close(l.ep)
	}
	if l.wake >= 0 {
		unix.Close(l.wake)
	}
	l.pollFile, l.ep, l.wake = nil, -1, -1
}

// run serves the loop's connections until the server has stopped and
// they are all closed.
func (l *loop) run() {
	s := l.srv
	defer s.wg.Done()
	defer func() {
		// Under Server.mu, as wakeAll writes to l.wake: once closed, the
		// numbers may be anything else's.
		s.mu.Lock()
		l.end()
		if l.set.redraining.Load() && l.set.lastLoop(l) {
			// No connection is left whose close would free a
			// descriptor: what is still queued is left.
			l.set.endDrains(s, nil)
		}
		s.mu.Unlock()
		putBuf(l.obuf)
	}()
	for {
		l.arm()
		l.pollErr = nil
		err := l.poll.Read(l.serveF) // serves until there is other work, parking in Go's netpoller while there is none
		if err == nil {
			err = l.pollErr
		}
		if err != nil && err != unix.EINTR && !errors.Is(err, os.ErrDeadlineExceeded) {
			s.logger().Error("event loop failed; closing its connections", "err", err)
			l.closeEvery()
			return
		}
		l.now = l.time()
		if l.force.Load() {
			l.closeEvery()
			return
		}
		if s.closing.Load() && !l.stopped {
			l.stop()
		}
		if len(l.paused) > 0 {
			l.resume()
		}
		if l.stale {
			l.renew()
		}
		if d := l.sweepEvery(); d >= 0 && l.now-l.swept >= int64(d) {
			l.sweep()
		}
		for l.freed { // (one turned away at once frees its descriptor again)
			l.freed = false
			l.redrain()
		}
		if l.stopped && l.open == 0 || l.open == 0 && l.set.idle.Load() && l.retire() {
			return
		}
	}
}

// retire ends the loop, which has no connection, if still no listener
// is served: under Server.mu, which Serve holds as it revives the loops
// and watches its listener, so that the listener is watched by this
// loop only if it goes on.
func (l *loop) retire() bool {
	s := l.srv
	if retiring != nil {
		retiring()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !l.set.idle.Load() {
		return false
	}
	l.end()
	return true
}

// retiring, if set, is called as a loop that found nothing served is
// about to end, before it takes Server.mu; a test sets it, to let a
// Serve come in between.
var retiring func()

// end closes the loop's descriptors and marks it ended, for revive to
// replace. Server.mu is held.
func (l *loop) end() {
	l.closeFDs()
	l.ended = true
	for _, q := range l.handed { // Close came before the loop took them
		closeFD(q.fd)
	}
	l.handed = nil
}

// serve is the callback of the loop's wait. It polls without sleeping
// and handles what it finds, batch after batch, until it finds nothing
// (it reports false, and the loop parks until the epoll set is ready) or
// run has work to do between batches (true).
//
// The wait's callback runs first each time the loop enters the wait, and
// that entry forgets any readiness the netpoller had seen, so serve must
// poll then. Within one wait the netpoller's readiness is kept, and every
// event that arrives after a poll makes the epoll set ready again; so
// after a batch that left nothing behind it (fewer events than there is
// room for, and no socket read only in part) serve parks at once rather
// than make the poll that would find nothing, which saves a system call
// each time the loop runs out of work.
//
// A loop whose clients keep many messages in flight naps instead of
// parking after a batch (see nap), and polls for what came meanwhile,
// until a poll finds nothing or a batch says the clients no longer do:
// then it parks. Parking costs a wake for each time the loop runs out of
// work (the park, the runtime's two polls of its own epoll set, the
// scheduler's round, the loop's poll), and with many messages in flight
// on each connection the clients send on while the loop sleeps, so a nap
// has the next batch find more connections ready for the same one wake.
// A client with one message in flight, or a few, would wait for the nap
// instead. The loop goes by lines, the messages of most clients: it naps
// after a batch whose reads averaged more than napLines lines (see
// napLines); a client that sends no newlines never has it nap. It also
// naps only when woken within napSoon of its last batch before it
// parked, fed about as fast as it answers, and after napCalm without a
// new connection, a hang-up, an error or urgent data, so that
// connections that come and go (churn) are answered at once. (A nap
// lasts longer than napSoon, so the wake after one that ended in a poll
// that found nothing does not nap.) While each batch says so the loop
// naps on without parking, and holds its P all along (see nap).
func (l *loop) serve(uintptr) bool {
	woke := true
	l.calm = false
	for {
		n, err := pollNow(l.ep, l.events)
		if err != nil {
			l.pollErr = err
			return true
		}
		l.polls++
		if n == 0 {
			if parking != nil {
				parking(true)
			}
			l.parked = l.now
			return false
		}
		l.now = l.time()
		if woke {
			woke = false
			l.calm = l.now-l.parked < int64(napSoon) && l.now-l.changed > int64(napCalm)
		}
		l.more = n == len(l.events)
		l.inLines, l.inReads = 0, 0
		for i := range n {
			ev := &l.events[i]
			switch key := ev.Pad; {
			case key > 0:
				if ev.Events&^(unix.EPOLLIN|unix.EPOLLOUT) != 0 {
					l.calm, l.changed = false, l.now // a hang-up, an error or urgent data
				}
				if c := l.at(int(ev.Fd)); c != nil && c.gen == key {
					l.ready(c, ev.Events)
				}
			case key < 0:
				l.calm, l.changed = false, l.now // a connection comes
				l.accept(-key, ev.Fd)
			default:
				l.calm = false
				var b [8]byte
				unix.Read(l.wake, b[:])
			}
		}
		if l.chores() {
			return true
		}
		if !l.more {
			if l.calm && l.inLines > napLines*l.inReads {
				nap()
				continue
			}
			if parking != nil {
				parking(false)
			}
			l.parked = l.now
			return false
		}
	}
}

// napLines is how many lines a read must average, over a batch, for the
// loop to nap after it (see serve). Timed on the peers' benchmark (50
// connections, BENCHMARKS, stop 61), a loop that napped after reads of
// 32 lines of 64 bytes (32 in flight) answered 1.7 times as many a second
// for 2.3 times as many a CPU-second, and one that napped after reads of
// 8 lines of 256 bytes (8 in flight, the same 2,048 bytes a read) lost
// 14% and 5% of them: so between 8 and 32.
const napLines = 16

// newline ends a line (see napLines).
var newline = []byte{'\n'}

// napSoon is how soon after its park a wake must come for the loop to
// nap rather than park, napCalm how long since its last new connection,
// hang-up or error (see serve); napFor is how long a nap is asked to
// last (Linux adds its timer slack, 50 µs for most threads).
var (
	napSoon = 50 * time.Microsecond
	napCalm = time.Millisecond
	napFor  = unix.NsecToTimespec(int64(20 * time.Microsecond))
)

// nap sleeps for napFor without telling the scheduler, so that the loop
// keeps its P, where a sleep the scheduler is told of would hand the P
// to another thread on the same core after 20 µs. The goroutines that
// share the P (the goroutine engine's connections, UDP, timers) wait
// for the loop's naps and batches until it parks, not for one batch as
// they otherwise do, or until the runtime preempts it after 10 ms: at
// 32 in flight the loop naps about ten times a wake (BENCHMARKS, stop
// 61).
func nap() {
	syscall.RawSyscall(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&napFor)), 0, 0)
	if napped != nil {
		napped()
	}
}

// napped, if set, is called on the loop's goroutine after each nap; a
// test sets it before the loops start and clears it after they end.
var napped func()

// parking, if set, is called on the loop's goroutine as serve parks the
// loop, told whether the poll just before found nothing; a test sets it
// before the loops start and clears it after they end.
var parking func(emptyPoll bool)

// chores reports whether run has work to do before the loop waits again:
// the server is closing and the loop is to stop, or to end as its last
// connection has closed; a listener is paused; the wait's deadline has
// passed or must move. (A stopped loop whose connections linger waits
// as any other does: returning after every batch, it would poll without
// a pause while an entry it cannot take out reports, see gone.)
func (l *loop) chores() bool {
	if l.force.Load() || l.srv.closing.Load() && (!l.stopped || l.open == 0) || len(l.paused) > 0 || l.stale || l.freed ||
		l.open == 0 && l.set.idle.Load() {
		return true
	}
	at := l.deadline()
	return at != l.armed || at >= 0 && l.now >= at
}

func (l *loop) at(fd int) *lconn {
	if fd < len(l.conns) {
		return l.conns[fd]
	}
	return nil
}

// sweepEvery is how often the loop looks at its connections' clocks:
// as the timeout watcher does, and while any linger, every lingerEvery.
func (l *loop) sweepEvery() time.Duration {
	s := l.srv
	d := time.Duration(-1)
	if s.IdleTimeout > 0 || s.WriteTimeout > 0 {
		d = s.sweepEvery()
	}
	if l.slow > 0 {
		g := lingerEvery(s.linger())
		if d < 0 || g < d {
			d = g
		}
	}
	return d
}

// deadline is when the loop must wake if nothing happens: the next
// sweep, or the next paused listener's retry; -1 for never.
func (l *loop) deadline() int64 {
	d := l.sweepEvery()
	at := int64(-1)
	if d >= 0 {
		at = l.swept + int64(d)
	}
	for _, p := range l.paused {
		if at < 0 || p.until < at {
			at = p.until
		}
	}
	return at
}

// arm sets the wait's deadline; it moves it only when that changes.
func (l *loop) arm() {
	at := l.deadline()
	if l.clock != nil {
		// A test's clock sets the deadline, and is told of every wait:
		// the test waits for the one after a wake it made.
		l.armed = at
		l.clock.waits(l, at)
		return
	}
	if at == l.armed {
		return
	}
	l.armed = at
	var t time.Time
	if at >= 0 {
		t = l.epoch.Add(time.Duration(at))
	}
	l.pollFile.SetReadDeadline(t)
}

// accept takes new connections from listener id, and admits them once
// the listener is no longer held: Shutdown and Close close listeners
// under Server.mu, which admitting takes, and a listener's Close waits
// until no Control holds it.
//
// It takes one, and the next poll reports the listener again if more
// wait; only when the poll before this one reported it too, so that
// connections are queuing, does it take up to acceptBatch, until accept4
// finds none. Most wakes find one connection, and the accept4 that finds
// none is dear: Linux makes the new socket and its file before it looks
// at the backlog and frees them when it is empty, 3.7–5 µs here against
// 0.25 µs for a poll that finds nothing (BenchmarkEmptyBacklog). A busy
// loop, whose polls each hand it many connections to serve, must still
// take a queue of new ones in a few polls, not one per poll
// (TestLoopAcceptsBurstWhileBusy).
func (l *loop) accept(id, serial int32) {
	lls := *l.set.listeners.Load()
	if int(id) > len(lls) || lls[id-1] == nil || lls[id-1].serial != serial {
		l.gone()
		return
	}
	ll := lls[id-1]
	for int(id) >= len(l.seen) {
		l.seen = append(l.seen, 0)
	}
	l.accMax = 1
	if l.seen[id] == l.polls-1 {
		l.accMax = acceptBatch
	}
	l.seen[id] = l.polls
	l.accL, l.accN, l.accErr = ll, 0, nil
	if ll.raw.Control(l.acceptF) != nil {
		l.gone() // closed, and Serve has not seen it yet
	}
	l.accL = nil
	if err := l.accErr; err != nil {
		l.accErr = nil
		l.srv.logger().Error("accept failed; retrying", "listener", ll.l.Addr().String(), "err", err, "retry_in", l.accWait)
	}
	for i := range l.accN {
		l.admit(ll, l.accFD[i], &l.accSA[i], true)
	}
}

// gone notes that a poll reported a listener the loops no longer serve,
// or one closed from outside. Closing a listener takes it out of every
// epoll set only if nothing else holds its socket, and one closed from
// outside cannot be taken out, its descriptor gone. If something does
// hold the socket (systemd, which passed it; a File taken from it), its
// entry stays, and is reported at every poll while clients queue on it:
// a wasted event each time, and if its id is taken again an accept4 on
// the new listener that finds nothing (dear; see accept). Linux 6.18
// wakes the loop no more often for it (a second of it cost 156 µs of
// CPU); a kernel that woke the netpoller again after each report would
// spin the loop (not seen).
// An entry reported in two polls in a row is such a one, not an event
// the poll took just before the listener went, and the loop renews its
// epoll set without it.
func (l *loop) gone() {
	if l.goneAt != 0 && l.goneAt+1 == l.polls && l.now >= l.renewAt {
		l.stale = true
	}
	l.goneAt = l.polls
}

// renew moves the loop to a new epoll set that holds what it serves, and
// no entry left by a listener it no longer does (see gone); it costs a
// system call for each connection, once. If it cannot (out of
// descriptors, or of the watches epoll may hold), the loop keeps the set
// it has and tries again after a second, then twice as long each time,
// up to a minute: each try costs as much as one that works.
func (l *loop) renew() {
	l.stale = false
	ep, err := epollCreate(unix.EPOLL_CLOEXEC)
	var f *os.File
	var poll syscall.RawConn
	if err == nil {
		f, poll, err = pollable(ep) // f owns ep from here
	}
	if err == nil {
		if err = l.fill(ep); err == nil {
			err = l.swap(f, poll, ep)
		}
		if err != nil {
			f.Close()
		}
	}
	if err == nil {
		l.renewWait = 0
		return
	}
	l.renewWait = min(max(2*l.renewWait, time.Second), time.Minute)
	l.renewAt = l.now + int64(l.renewWait)
	l.srv.logger().Error("event loop: cannot leave a listener closed while its socket is held elsewhere; retrying", "err", err, "retry_in", l.renewWait)
}

// fill adds to epoll set ep the loop's wake-up and its connections, as
// they are watched now.
func (l *loop) fill(ep int) error {
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, l.wake, &unix.EpollEvent{Events: unix.EPOLLIN, Pad: wakeKey}); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	for _, c := range l.conns {
		if c == nil {
			continue
		}
		ev := unix.EpollEvent{Events: readEvents, Fd: c.fd, Pad: c.gen}
		if c.pend != nil {
			ev.Events = unix.EPOLLOUT // as send watches it
		}
		if err := ctlFD(ep, unix.EPOLL_CTL_ADD, int(c.fd), &ev); err != nil {
			return os.NewSyscallError("epoll_ctl", err)
		}
	}
	return nil
}

// swap adds to epoll set ep, which f holds for Go's netpoller, the
// listeners the loop accepts from, and makes ep the loop's set, closing
// the one it had. Server.mu orders this with Serve and unwatch, which
// change the loops' sets.
func (l *loop) swap(f *os.File, poll syscall.RawConn, ep int) error {
	s := l.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ll := range *l.set.listeners.Load() {
		if ll == nil || l.pausing(ll) {
			continue // a paused one is watched again by resume, in the set the loop has then
		}
		select {
		case <-ll.failed:
			continue
		default:
		}
		var err error
		ll.watchMu.Lock()
		if !ll.unwatched && ll.raw.Control(func(fd uintptr) { err = watchListener(ep, int(fd), ll) }) != nil {
			err = nil // closed: left out
		}
		ll.watchMu.Unlock()
		if err != nil && err != unix.EEXIST { // EEXIST: one listener served twice, watched once (see resume)
			return os.NewSyscallError("epoll_ctl", err)
		}
	}
	l.pollFile.Close()
	l.pollFile, l.poll, l.ep, l.armed = f, poll, ep, -1
	return nil
}

// pausing reports whether the loop holds ll paused.
func (l *loop) pausing(ll *loopListener) bool {
	for _, p := range l.paused {
		if p.ll == ll {
			return true
		}
	}
	return false
}

// acceptFrom is accept's work, with the listener's descriptor held open:
// it accepts, and does nothing that may wait.
func (l *loop) acceptFrom(lfd uintptr) {
	ll := l.accL
	for range acceptBatch {
		if ll.isUnix() {
			l.accSA[l.accN] = unix.RawSockaddrAny{} // the kernel writes only the name: see addrOf
		}
		fd, err := acceptFD(int(lfd), &l.accSA[l.accN])
		switch {
		case err == nil:
			l.accFD[l.accN] = fd
			l.accN++
			ll.accepting()
			if l.accN < l.accMax {
				continue
			}
			l.more = true // more may wait: polling finds the listener still ready
		case err == unix.EAGAIN:
		case err == unix.EINTR || err == unix.ECONNABORTED || err == unix.EPROTO || err == unix.EPERM:
			continue // that connection is gone; the next may not be
		case temporary(err):
			if wait, began := l.pause(ll, int(lfd)); began {
				l.accErr, l.accWait = acceptError(ll, err), wait
			}
		default:
			// As Accept's error ends Serve. Other loops may fail too.
			unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, int(lfd), nil)
			ll.failOnce.Do(func() {
				ll.err = acceptError(ll, err)
				close(ll.failed)
			})
		}
		return
	}
	l.more = true // a whole batch, or aborted ones: there may be more waiting
}

// acceptError is err from accept4 on ll, worded as net's Accept words it.
func acceptError(ll *loopListener, err error) error {
	return &net.OpError{Op: "accept", Net: ll.l.Addr().Network(), Addr: ll.l.Addr(), Err: os.NewSyscallError("accept4", err)}
}

// pause stops accepting from a listener that failed with a temporary
// error (out of descriptors or memory), as Serve's accept loop does: it
// tries again after the listener's backoff. The listener stays readable
// meanwhile, so it leaves the epoll set. began reports whether this
// loop began the pause, and is to log it, or joined another loop's.
func (l *loop) pause(ll *loopListener, lfd int) (wait time.Duration, began bool) {
	unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, lfd, nil)
	end, wait, began := ll.backOff(l.now)
	l.paused = append(l.paused, pausedListener{ll: ll, until: end, wait: wait})
	return wait, began
}

// backOff pauses ll from now (on the loops' clock) until end: retryDelay
// after the last pause, as the goroutine engine's accept loop waits. A loop that
// finds ll paused already joins that pause (began is false).
func (ll *loopListener) backOff(now int64) (end int64, wait time.Duration, began bool) {
	ll.pauseMu.Lock()
	defer ll.pauseMu.Unlock()
	last := time.Duration(ll.pauseDelay.Load())
	if now < ll.pauseEnd {
		return ll.pauseEnd, last, false
	}
	wait = retryDelay(last)
	ll.pauseDelay.Store(int64(wait))
	ll.pauseEnd = now + int64(wait)
	return ll.pauseEnd, wait, true
}

// accepting forgets ll's backoff: a loop has accepted from it again.
func (ll *loopListener) accepting() {
	if ll.pauseDelay.Load() == 0 {
		return
	}
	ll.pauseMu.Lock()
	ll.pauseDelay.Store(0)
	ll.pauseEnd = 0
	ll.pauseMu.Unlock()
}

// resume watches paused listeners again once their time has come. A
// listener this loop cannot watch stays paused, for twice as long each
// time, until it can.
func (l *loop) resume() {
	keep := l.paused[:0]
	for _, p := range l.paused {
		if p.until > l.now {
			keep = append(keep, p)
			continue
		}
		var err error
		if p.ll.raw.Control(func(fd uintptr) { err = l.rewatch(int(fd), p.ll) }) != nil || err == net.ErrClosed {
			continue // closed: forgotten
		}
		if err != nil && err != unix.EEXIST { // the kernel's memory for epoll, or the user's share of it, is spent: try again later
			// This loop's own failure, so its own backoff: twice the
			// pause it comes from, which other loops' accepts do not
			// reset, and a line of its own.
			wait := retryDelay(p.wait)
			l.srv.logger().Error("accept paused: cannot watch the listener; retrying", "listener", p.ll.l.Addr().String(),
				"err", os.NewSyscallError("epoll_ctl", err), "retry_in", wait)
			keep = append(keep, pausedListener{ll: p.ll, until: l.now + int64(wait), wait: wait})
		}
	}
	l.paused = keep
}

// epollCtl is unix.EpollCtl, and epollCreate renew's unix.EpollCreate1;
// tests make them fail.
var (
	epollCtl    = unix.EpollCtl
	epollCreate = unix.EpollCreate1
)

// admit serves a connection just accepted, or turns it away over a limit.
// own says whether l accepted it itself, not handed it by drainAll.
func (l *loop) admit(ll *loopListener, fd int, rsa *unix.RawSockaddrAny, own bool) {
	s := l.srv
	if l.force.Load() {
		closeFD(fd)
		return
	}
	if !ll.isUnix() && !l.inherited(ll, fd, own) {
		setOptions(fd)
	}
	c := l.newConn(fd)
	c.unix = ll.isUnix()
	info := &c.sess.info
	info.Start = time.Now()
	info.Remote, info.Local = addrOf(fd, rsa, ll.unixNet), ll.local
	if info.Local == nil {
		n := uint32(unix.SizeofSockaddrAny)
		if _, _, e := syscall.RawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&l.rsa)), uintptr(unsafe.Pointer(&n))); e == 0 {
			info.Local = addrOf(fd, &l.rsa, ll.unixNet)
		}
	}
	c.lastRead = l.now
	l.ev = unix.EpollEvent{Events: readEvents, Fd: int32(fd), Pad: c.gen}
	if err := ctlFD(l.ep, unix.EPOLL_CTL_ADD, fd, &l.ev); err != nil {
		s.logger().Error("accept failed: cannot watch the connection", "listener", ll.l.Addr().String(), "err", err)
		closeFD(fd)
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
	l.tick()
	if s.closing.Load() { // Shutdown came during the accept: stop this one too
		l.stopConn(c)
	}
}

// connOptions are what net sets on every TCP connection it accepts: no
// delay, and keep-alive probes (sockfd.KeepAlive), so that a client that
// vanished gives its place up where IdleTimeout is longer or none.
var connOptions = append([]sockfd.Option{{Level: unix.IPPROTO_TCP, Opt: unix.TCP_NODELAY, Value: 1}}, sockfd.KeepAlive[:]...)

// setOptions sets connOptions on a TCP socket, and reports whether every
// one was set. Set on a listener, Linux gives them to every connection
// it accepts, which then needs no system call of its own for them: a
// short connection costs about ten.
func setOptions(fd int) bool {
	ok := true
	for _, o := range connOptions {
		ok = setInt(fd, o.Level, o.Opt, o.Value) && ok
	}
	return ok
}

// inherited reports whether connection fd, accepted from ll, has the
// connOptions ll was given. One may have none, queued before ll had them
// (a client of serve's first moments, a passed listener's queue), so l
// looks at its connections from ll (a system call an option) until one
// has them; were they never passed on, a connection costs one look more
// (the first option's). After one that had them, l looks no more, where
// each connection once cost five system calls: ll's queue is in the
// order its connections were made, each a copy of ll as it was then, and
// l accepts in that order. The loops among themselves do not: where one
// loop's answer stood for every loop, a later connection that another
// loop looked at first answered for an earlier one without the options,
// which was served without them (Nagle's waits). So the answer is l's
// own, and a connection drainAll accepted (!own) is looked at and
// answers for none. (Two exceptions. Linux copies ll and queues the copy
// without ll's lock (tcp_check_req), so a connection copied on another
// CPU as setOptions runs may be queued behind one copied after it: a
// window of microseconds at Serve's start, left open. And, not met by
// default, tcp_migrate_req appends the queue of a closed SO_REUSEPORT
// listener, another process's, to ll's, its connections copies of that
// listener.)
func (l *loop) inherited(ll *loopListener, fd int, own bool) bool {
	id := int(ll.id)
	if own && id < len(l.inherits) && l.inherits[id] == ll.serial {
		return true
	}
	if ll.optionsUnset {
		return false
	}
	for _, o := range connOptions {
		if v, err := unix.GetsockoptInt(fd, o.Level, o.Opt); err != nil || v != o.Value {
			return false // the next is looked at: this one may have come before ll had them
		}
	}
	if own {
		for id >= len(l.inherits) {
			l.inherits = append(l.inherits, 0)
		}
		l.inherits[id] = ll.serial
	}
	return true
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
	c.fd, c.gen = int32(fd), l.gen
	c.sess.init()
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

// readEvents are what a loop watches a connection for while it reads:
// input; the end of it, which a read of the input before it leaves for
// the next poll to report; and out-of-band data (TCP's urgent byte, a
// Unix socket's MSG_OOB), at whose mark a read stops short with input
// left behind it.
const readEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLPRI

// mayHoldMore reports whether c's socket may still hold input after a
// read of n bytes into room, which the kernel will not announce again
// (serve's wait): the read filled the buffer, or c is a Unix socket,
// whose reads stop short after a message that passed descriptors or
// came from another writer than the one before. A TCP read returns all
// it has but at an urgent mark (EPOLLPRI) or an end of input (EPOLLRDHUP).
func (c *lconn) mayHoldMore(n, room int) bool {
	return n == room || n > 0 && c.unix
}

// ready handles epoll's events for c. An end of input, an error or
// input past an out-of-band mark may be left behind by a read of what
// came before it, for a later read that epoll, having reported it, will
// not announce again (serve's wait): the loop polls again for it, unless
// c was closed meanwhile, which leaves nothing behind (at churn, a client's
// reset read and closed: a poll that would find nothing a connection).
func (l *loop) ready(c *lconn, ev uint32) {
	fd := c.fd
	l.handle(c, ev)
	if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR|unix.EPOLLPRI) != 0 && l.conns[fd] == c {
		l.more = true
	}
}

// handle is ready's work.
func (l *loop) handle(c *lconn, ev uint32) {
	if c.pend != nil {
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
	buf := l.rbuf[k:s.readSize()] // at most ReadSize with the carried bytes, as conn.read
	n, err := readFD(int(c.fd), buf)
	if c.mayHoldMore(n, len(buf)) {
		l.more = true // epoll says so only when polled
	}
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
	if l.calm {
		l.inLines += bytes.Count(l.rbuf[k:k+n], newline)
		l.inReads++
	}
	first := c.waitsFirst() // (before the reply, which may pend)
	info := &c.sess.info
	if v := c.sess.read(l.rbuf[k : k+n]); v != 0 {
		s.proxyHeaderRead(info, v, false) // (the loops serve no wrapped listener)
	}
	s.obs.ConnRead(info, l.rbuf[k:k+n])
	l.tick()
	c.lastRead = l.now
	from := info.BytesOut
	if err = l.reply(c, l.rbuf[:k+n], from); err != nil {
		l.replied(c, from, err)
		l.fail(c, err, true)
		return
	}
	if c.pend == nil {
		l.replied(c, from, nil)
	}
	if c.state == stopping {
		owed := int(c.owed) - n
		if first {
			// A newcomer's first message: what came with it is owed too.
			owed = ioctlFD(int(c.fd), unix.SIOCINQ)
		}
		c.owed = int32(stillOwedFD(int(c.fd), owed, &c.marked))
		if c.owed <= 0 && c.pend == nil {
			l.stopNow(c)
		}
	}
}

// replied tells a ReplyObserver of the reply written since BytesOut was
// from, or cut short by err.
func (l *loop) replied(c *lconn, from int64, err error) {
	if r := l.srv.replies; r != nil {
		r.ConnReply(&c.sess.info, int(c.sess.info.BytesOut-from), err)
		l.tick()
	}
}

// tick takes the loop's time again after an Observer's call (or the
// ConnState hook's), which may have been slow: the times stamped after it
// in this batch (a read, a reply's wait, a connection accepted, the
// moment a waiting reply is written and the wait for input begins, a
// linger's start) are now, not the wake's. Stamped with the wake's time,
// a connection served after a slow call looked idle or stuck for as long
// as the call took already, and the next sweep closed it early.
func (l *loop) tick() { l.now = l.time() }

// time is the loops' clock: the time since their epoch, or a test's. It
// is small enough to be inlined where the loop reads it at each wake.
func (l *loop) time() int64 {
	if l.clock != nil {
		return l.clock.now.Load()
	}
	return int64(time.Since(l.epoch))
}

// reply transforms in and writes it, a reply buffer at a time. When the
// socket takes no more, the rest of the buffer and of in wait in c.pend.
func (l *loop) reply(c *lconn, in []byte, from int64) error {
	out := l.obuf
	defer func() {
		if out != l.obuf {
			putBuf(out)
		}
	}()
	for len(in) > 0 {
		nDst, nSrc, err := c.sess.feed(l.t, *out, in)
		in = in[nSrc:]
		if nDst > 0 {
			rest := in
			if err != nil && err != transform.ErrShortDst {
				rest = nil // not answered, as conn.reply answers no more
			}
			if waits, werr := l.send(c, (*out)[:nDst], rest, from); werr != nil {
				return werr
			} else if waits {
				if rest == nil {
					c.pend.err = err // as conn.reply's, once what it wrote is
				}
				return nil
			}
		}
		if err != transform.ErrShortDst {
			return err
		}
		if nDst == 0 && nSrc == 0 { // a transformer that wants more room
			if len(*out) >= 4*l.srv.readSize() { // as conn.reply
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

// send writes p. What the socket does not take waits in c.pend, with
// rest, the input not transformed yet, and the loop watches for write
// readiness; send reports whether it waits.
func (l *loop) send(c *lconn, p, rest []byte, from int64) (waits bool, err error) {
	n, err := writeFD(int(c.fd), p)
	c.sess.info.BytesOut += int64(n)
	if err != nil && err != unix.EAGAIN {
		return false, err
	}
	if n == len(p) {
		return false, nil
	}
	pr := &pendingReply{out: getBuf(len(p) - n), since: l.now, from: from, seen: noLook}
	copy(*pr.out, p[n:])
	if len(rest) > 0 {
		pr.in = getBuf(len(rest))
		copy(*pr.in, rest)
	}
	c.pend = pr
	return true, l.watch(c, unix.EPOLLOUT)
}

// watch sets what epoll reports for c: readEvents or EPOLLOUT.
func (l *loop) watch(c *lconn, events uint32) error {
	l.ev = unix.EpollEvent{Events: events, Fd: c.fd, Pad: c.gen}
	l.more = true // a socket ready already is found by polling, not by a wake-up
	return ctlFD(l.ep, unix.EPOLL_CTL_MOD, int(c.fd), &l.ev)
}

// drain writes what is pending and transforms the input that waited;
// once the reply is all written, the connection reads again, or goes on
// with what it was doing when it had to wait.
func (l *loop) drain(c *lconn) {
	pr := c.pend
	n, err := writeFD(int(c.fd), (*pr.out)[pr.off:])
	c.sess.info.BytesOut += int64(n)
	pr.off += n
	if err != nil && err != unix.EAGAIN {
		l.replied(c, pr.from, err)
		l.fail(c, err, true)
		return
	}
	if pr.off < len(*pr.out) {
		return
	}
	putBuf(pr.out)
	c.pend = nil
	if pr.err != nil {
		l.replied(c, pr.from, pr.err)
		l.fail(c, pr.err, true)
		return
	}
	if pr.in != nil {
		err := l.reply(c, *pr.in, pr.from) // may wait again, in a new c.pend
		putBuf(pr.in)
		if err != nil {
			l.replied(c, pr.from, err)
			l.fail(c, err, true)
			return
		}
		if c.pend != nil {
			return
		}
	}
	// The wait for input (the idle timeout, a stopping connection's wait
	// for what it owes) starts now that it can read again, as the
	// goroutine driver's read deadline is set only after its write.
	c.lastRead = l.now
	l.replied(c, pr.from, nil)
	switch c.state {
	case eofDrain:
		l.eofClose(c, c.why)
		return
	case stopping:
		if c.owed <= 0 {
			l.stopNow(c)
			return
		}
		c.lastRead = l.now // the owed bytes are read from now on, as conn.stop's deadline
	case lingering:
		l.lingerNow(c)
		return
	}
	if err := l.watch(c, readEvents); err != nil {
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
	if c.pend != nil {
		l.setState(c, eofDrain)
		c.why = r
		return
	}
	l.eofClose(c, r)
}

// eofClose closes, for reason r, a connection whose client is done
// sending, every reply written; or, over TCP, has it wait for the
// replies still queued in its socket to be taken, as conn.eofQueued
// does: its write side shut, it lingers with nothing more to read, and
// the sweeps close it once they are taken, or reset it once the client
// takes none (lingered); not with Linger off. The send queue is looked
// at once: what that look found names the close (eof, or the client's
// reset), where close would look again.
func (l *loop) eofClose(c *lconn, r Reason) {
	linger := int64(l.srv.linger())
	if c.unix || linger <= 0 || l.srv.WriteTimeout <= 0 {
		l.close(c, r) // closed as ever: nothing would be reset
		return
	}
	fd := int(c.fd)
	unsent, gone := eofLookFD(fd)
	if unsent == 0 {
		l.closeAs(c, eofReason(&c.sess.info, r, gone))
		return
	}
	if eofShutting != nil {
		eofShutting()
	}
	if unix.Shutdown(fd, unix.SHUT_WR) != nil || ctlFD(l.ep, unix.EPOLL_CTL_DEL, fd, nil) != nil {
		l.close(c, r) // looks again: a reset since may have made the shutdown fail
		return
	}
	c.why = r
	l.setState(c, lingering)
	c.linger = &lingerAt{start: l.now, giveUp: l.now + int64(lingerBound(time.Duration(linger))),
		lastInput: l.now, lastTaken: l.now, unsent: unsent, eof: true}
}

// flush answers an incomplete character held at the end of input.
func (l *loop) flush(c *lconn) error {
	if c.sess.held == 0 {
		return nil
	}
	buf := getBuf(maxCarry * l.srv.expansion())
	defer putBuf(buf)
	from := c.sess.info.BytesOut
	n, err := c.sess.flush(l.t, *buf)
	if n > 0 { // written even if the transformer failed, as conn.answerHeld does
		if waits, werr := l.send(c, (*buf)[:n], nil, from); werr != nil {
			err = werr
		} else if waits {
			c.pend.err = err // told, and failing c, once written
			return nil
		}
	}
	l.replied(c, from, err)
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
		return brokenPipe(err, !c.unix)
	}
	if info := &c.sess.info; info.Err == nil {
		var errno syscall.Errno
		if errors.As(err, &errno) && info.Local != nil {
			// Worded as net's errors are, for the log.
			op := "read"
			if writing {
				op = "write"
			}
			err = &net.OpError{Op: op, Net: info.Local.Network(), Source: info.Local, Addr: info.Remote, Err: os.NewSyscallError(op, errno)}
		}
		info.Err = err
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
	if c.pend == nil {
		l.lingerNow(c)
	}
}

// lingerNow shuts c's write side and starts reading and discarding until
// the client's end of file.
func (l *loop) lingerNow(c *lconn) {
	s := l.srv
	linger := int64(s.linger())
	if err := unix.Shutdown(int(c.fd), unix.SHUT_WR); err != nil || linger <= 0 {
		l.close(c, c.why)
		return
	}
	g := c.linger
	g.start, g.giveUp = l.now, l.now+int64(lingerBound(time.Duration(linger)))
	g.lastInput, g.lastTaken, g.unsent = l.now, l.now, unsentFD(int(c.fd))
	if err := l.watch(c, readEvents); err != nil {
		l.close(c, c.why)
	}
}

// discard reads and drops a lingering connection's input.
func (l *loop) discard(c *lconn) {
	n, err := readFD(int(c.fd), l.rbuf)
	if c.mayHoldMore(n, len(l.rbuf)) {
		l.more = true
	}
	switch {
	case err == unix.EAGAIN:
	case n == 0 && err == nil && !c.unix && l.srv.WriteTimeout > 0 && unsentFD(int(c.fd)) > 0 && ctlFD(l.ep, unix.EPOLL_CTL_DEL, int(c.fd), nil) == nil:
		// The client is done sending, but has not taken every reply:
		// the sweeps wait for them (lingered), with nothing more to
		// read, as long as it takes some within the write timeout (30
		// Lingers or not). Without one, or over a Unix socket (the
		// queue is the client's own to read), closed as ever.
		c.linger.eof = true
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
	left := unsentFD(int(c.fd))
	if left < g.unsent {
		g.unsent, g.lastTaken = left, l.now
	}
	if g.eof { // no more input: only the replies are waited for, unbounded
		return left == 0 || l.now-g.lastTaken >= stuck
	}
	switch {
	case l.now > g.giveUp:
		return true
	case l.now-g.lastInput < linger:
		return false
	case readableFD(int(c.fd)):
		// Input came before the loop could read it (a busy loop): it
		// reads it next, and lingers after it; closed now, the input
		// unread would make a reset.
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

// writeStuck reports whether pr has waited for the write timeout without
// the client taking any of the send queue, as far as the sweeps saw: as
// conn.writeStuck, for a client that reads slowly while the kernel, which
// wakes a writer only once a third of its send buffer is free, keeps the
// reply waiting.
func (l *loop) writeStuck(pr *pendingReply, fd int, timeout int64) bool {
	look := sendQueueFD(fd)
	if look.tookSince(pr.seen) {
		pr.since = l.now
	}
	pr.seen = look
	return l.now-pr.since > timeout
}

// reject turns c away over a limit: it lingers as a graceful close,
// within the server's bound on rejected connections lingering at once,
// and is closed at once past it.
func (l *loop) reject(c *lconn, why error) {
	s := l.srv
	s.release(&c.place) // as the goroutine driver does: others may have it while c lingers
	c.why = ReasonRejected
	info := &c.sess.info
	info.Err, info.Reason, info.End = why, ReasonRejected, time.Now()
	// Told now, not once the linger below is done: a client that keeps
	// its end open would hold the count back for up to Linger.
	s.obs.ConnClose(info)
	if s.ConnState != nil {
		s.ConnState(c.nc, StateRejected)
	}
	l.tick()
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
	l.srv.mu.Lock()
	handed := l.handed
	l.handed = nil
	l.srv.mu.Unlock()
	for i := range handed {
		l.admit(handed[i].ll, handed[i].fd, &handed[i].sa, false) // stopped as it is admitted
	}
	// Under Server.mu, drainAll has run: if it ran out of descriptors,
	// the loop accepts once now, for those freed since without a close
	// that said so (one of its connections closed before it saw the
	// stop, or a listener or packet socket the stop closed).
	l.freed = l.freed || l.set.redraining.Load()
}

// stopConn: c answers every byte that had arrived at the stop (or, if
// they do not come within Linger, what did), then closes gracefully. A
// connection writing finishes its reply first.
func (l *loop) stopConn(c *lconn) {
	if c.state != reading {
		return // closing already
	}
	l.setState(c, stopping)
	c.owed = int32(stillOwedFD(int(c.fd), ioctlFD(int(c.fd), unix.SIOCINQ), &c.marked))
	if c.owed <= 0 && c.pend == nil && l.srv.newcomer(&c.sess.info) {
		// It waits for its first message until it is newcomerWait old:
		// its lastRead, never moved, is its accept (see sweep).
		return
	}
	c.lastRead = l.now // the time the owed bytes have
	if c.owed <= 0 && c.pend == nil {
		l.stopNow(c)
	}
}

// waitsFirst reports whether c is a newcomer that waits for its first
// message at the stop (see stopConn). Only such a stopping connection
// owes nothing with no reply pending: stopConn and the reply's end stop
// the others at once.
func (c *lconn) waitsFirst() bool {
	return c.state == stopping && c.owed <= 0 && c.pend == nil
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
// lingering closes that are done.
func (l *loop) sweep() {
	s := l.srv
	l.swept = l.now
	idle, write := int64(s.IdleTimeout), int64(s.WriteTimeout)
	stopWait := int64(max(s.linger(), drainQuiet))
	firstWait := int64(s.newcomerWait())
	for _, c := range l.conns {
		switch {
		case c == nil:
		case c.pend != nil && write > 0 && l.writeStuck(c.pend, int(c.fd), write):
			l.replied(c, c.pend.from, os.ErrDeadlineExceeded) // as the goroutine driver's deadline says
			// Once the server stops too: a client that takes none of the
			// replies a stop owes it must not hold the stop for good. Then
			// it ends with the stop's reason, as with the goroutine driver.
			r := ReasonWriteTimeout
			if l.stopped {
				r = ReasonShutdown
			}
			if !c.unix {
				// Reset, not closed: a close would send FIN after the
				// replies queued, and the client, reading them later,
				// would take a reply cut short for a whole one; the
				// kernel would hold them, up to the send buffer, on a
				// socket no limit counts any more.
				resetOnClose(int(c.fd))
			}
			l.close(c, r)
		case c.pend != nil:
		case c.state == lingering:
			if l.lingered(c) {
				if wt := int64(l.srv.WriteTimeout); !c.unix && wt > 0 && l.now-c.linger.lastTaken >= wt && unsentFD(int(c.fd)) > 0 {
					// Replies still queued, the client taking none for
					// the write timeout: reset away, as at a write
					// timeout, not left to the kernel on a socket no
					// limit counts. One that still takes them (30
					// Lingers passed) gets them after a FIN, as ever.
					// After its end of file it ends as a write timeout
					// does, not as answered (as conn.loop says).
					resetOnClose(int(c.fd))
					if c.why == ReasonEOF {
						c.why = ReasonWriteTimeout
					}
				}
				l.close(c, c.why)
			}
		case c.state == stopping:
			// The owed bytes did not come, unless they are there: a loop
			// kept from running past the wait (a busy machine) has yet to
			// read them.
			wait := stopWait
			if c.waitsFirst() {
				wait = firstWait // from its accept
			}
			if l.now-c.lastRead > wait && !readableFD(int(c.fd)) {
				l.stopNow(c)
			}
		case c.state == reading && idle > 0 && l.now-c.lastRead > idle && !readableFD(int(c.fd)):
			// (Input that waits came before the loop could read it: the
			// client was not idle, and the loop reads it next.)
			l.closeGracefully(c, ReasonIdleTimeout)
		}
	}
}

// close closes c for reason r and tells the observers. A close after
// the client's end of file looks at the send queue first, to name it
// (see eofLookFD).
func (l *loop) close(c *lconn, r Reason) {
	if r == ReasonEOF && !c.unix { // (the look clears the socket's error: only where it names the close)
		_, gone := eofLookFD(int(c.fd))
		r = eofReason(&c.sess.info, r, gone)
	}
	l.closeAs(c, r)
}

// closeAs closes c for reason r as it is, and tells the observers.
func (l *loop) closeAs(c *lconn, r Reason) {
	s := l.srv
	closeFD(int(c.fd))
	l.conns[c.fd] = nil
	l.open--
	if l.stopped && l.set.redraining.Load() {
		l.freed = true // its descriptor is free for a queued client
	}
	if c.state.slow() {
		l.slow--
	}
	if pr := c.pend; pr != nil {
		putBuf(pr.out)
		putBuf(pr.in)
		c.pend = nil
	}
	if r == ReasonRejected { // told at the rejection
		if c.linger != nil {
			<-s.lingering
		}
		l.recycle(c)
		return
	}
	s.release(&c.place)
	info := &c.sess.info
	info.Reason, info.End = r, time.Now()
	s.obs.ConnClose(info)
	if s.ConnState != nil {
		s.ConnState(c.nc, StateClosed)
	}
	l.tick()
	l.recycle(c)
}

// closeEvery closes every connection at once: Close, or a failed loop.
func (l *loop) closeEvery() {
	for _, c := range l.conns {
		if c != nil {
			r := ReasonShutdown
			if c.pend != nil {
				// As the goroutine driver's write fails on the closed
				// connection: the reply is cut short, even the last one
				// of a graceful close.
				l.replied(c, c.pend.from, net.ErrClosed)
			} else if c.state == lingering {
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
