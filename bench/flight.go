package bench

import (
	"sync"
	"time"
)

// ring is a queue of messages in flight. It grows as needed, to at most
// limit places if limit is set (the caller keeps n within it: see
// run.mostInFlight), and gives back what a burst made it take once it is
// a quarter full, so that its size follows what is in flight now, not
// the most there ever was.
type ring struct {
	buf     []sentMsg
	head, n int
	limit   int // the most places it grows to; 0: no limit
	peak    int // the most places it has had (tests)
}

// ringEnded, if not nil, gets the most places a stream connection's ring
// of messages in flight had, as the connection ends (tests).
var ringEnded func(places int)

// size is the most places q has had.
func (q *ring) size() int { return max(q.peak, len(q.buf)) }

// ringKeep is the size a ring shrinks no further below: 16 KiB.
const ringKeep = 1024

func (q *ring) push(m sentMsg) {
	if q.n == len(q.buf) {
		size := max(4, 2*len(q.buf))
		if q.limit > 0 {
			size = max(q.n+1, min(size, q.limit))
		}
		q.resize(size)
	}
	q.buf[(q.head+q.n)%len(q.buf)] = m
	q.n++
}

// resize moves the messages in flight to a buffer of size places.
func (q *ring) resize(size int) {
	nb := make([]sentMsg, size)
	for k := range q.n {
		nb[k] = q.buf[(q.head+k)%len(q.buf)]
	}
	q.buf, q.head = nb, 0
	q.peak = max(q.peak, size)
}

func (q *ring) front() sentMsg { return q.buf[q.head] }

func (q *ring) pop() {
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	// Halved at a quarter full, not at a half: a queue that goes up and
	// down around a size is not copied back and forth.
	if len(q.buf) > ringKeep && q.n <= len(q.buf)/4 {
		q.resize(len(q.buf) / 2)
	}
}

// flight is a goroutine-driven stream connection's messages in flight,
// oldest first, from its writer to its reader. A push never waits for the
// reader: in an open loop the writer sends what falls due whatever the
// reader has still to check (it waited once 1,024 were in flight, so that
// bench's own slow reading held back messages the server had answered,
// counted as the server's: Unsent), as the event loops' ring does, up to
// most (run.mostInFlight), which the writer asks room for; in a closed
// loop the writer's slots bound it at Depth. The message the reader has
// taken off the queue (pop) is in flight until its reply is taken
// (replied), as in the event loops' ring.
type flight struct {
	mu     sync.Mutex
	q      ring
	closed bool
	// gone: the reader found the connection failed with nothing owed
	// (unwatch), and takes no more: push refuses what the writer would
	// send on it.
	gone  bool
	ready chan struct{} // a message was pushed, or the queue closed
	most  int           // open loop: the most in flight; 0 in a closed loop
	freed chan struct{} // a reply made room below most
	// reading: the reader took a message off the queue (pop) and has yet
	// to take its reply (replied); it counts in flight.
	reading bool
	// afterFull: the last reply taken made room in a flight that had
	// most in it, and nothing was pushed since: the writer, held back,
	// sends at once what fell due meanwhile (see idle).
	afterFull bool
	// skippedFull: the flight had most in it as the reader passed over
	// messages (skip): the reply taken next made room, if none did since.
	skippedFull bool
	// watching: the reader, with nothing owed, waits on the connection
	// (see watch) as w says; replyBy, the deadline the first push
	// meanwhile gave its reply.
	watching bool
	w        watcher
	replyBy  time.Time
	// since: when the reader last took a reply (run.now), as an event
	// loop's connection keeps it (loopConn.since): with nothing owed,
	// when the connection last owed something (see idle).
	since int64
	// writing: the writer has begun a send (begin) and has yet to end its
	// write (wrote). failed: the reader found the connection failed
	// (fail): the writer begins no send after, and closes the
	// connection after the send under way.
	writing, failed bool
	// blocked: the send's write waits for the server to take its bytes
	// (stuck): the reader's failure ends the wait (fail).
	blocked bool
	// cut closes as the write that fail cut short ends (wrote).
	cut chan struct{}
}

// watcher is what the reader's wait on the connection does to the read
// deadline (see flight.watch); each is called with the flight locked.
type watcher struct {
	arm     func()           // the wait begins: its deadline, Timeout of silence
	reply   func() time.Time // a message is pushed: its reply's deadline, Timeout from now
	unblock func()           // the queue closed: the wait is over (a deadline now)
}

// newFlight makes a queue of size places, which in an open loop (most
// above 0) holds up to most.
func newFlight(size, most int) *flight {
	f := &flight{q: ring{buf: make([]sentMsg, max(size, 1))}, ready: make(chan struct{}, 1), most: most}
	if most > 0 {
		f.q.limit = most
		f.freed = make(chan struct{}, 1)
	}
	return f
}

// room is how many more messages may go in flight (open loop).
func (f *flight) room() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.most - f.inFlight()
}

// push adds m, the newest, and reports whether it did: not once the
// reader found the connection failed with nothing owed (unwatch), as the
// event loops send nothing on a connection whose failure they have read.
// Pushed, it was owed at the failure, lost; refused, it is never sent.
// Only a batch's first can be refused: unwatch ends the queue only with
// none owed, and the reader waits for the reply of a batch's first before
// it can find the queue empty again. (A reader that failed otherwise, with
// messages owed, takes every push of a send begun before (see fail), and
// refuses the sends begun after (begin): owed, lost.)
func (f *flight) push(m sentMsg) bool {
	f.mu.Lock()
	if f.gone {
		f.mu.Unlock()
		return false
	}
	f.q.push(m)
	f.afterFull = false
	if f.watching { // the first owed in the reader's wait: see watch
		f.watching = false
		f.replyBy = f.w.reply()
	}
	f.mu.Unlock()
	f.wake()
	return true
}

// begin reports whether the writer may send (push, and write what it
// pushed): not once the reader found the connection failed (fail).
func (f *flight) begin() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writing = !f.failed
	return f.writing
}

// writeWaits, if not nil, runs as a goroutine-driven stream connection's
// write waits for its server to take bytes (stuck), before the reader has
// found the connection failed (tests).
var writeWaits func()

// stuck reports whether the send's write, which must wait for the server
// to take more of its bytes, gives up instead: once the reader has found
// the connection failed. Else it waits, and the reader's failure ends the
// wait (fail). Only a write that waits is cut short: one about to begin
// as the failure is found, its messages pushed (handed over, owed), writes
// what the socket takes (cut before it began, it wrote none of them, and
// the server was blamed for messages it never had: see fail). A write
// outside a send (under TLS, the reader's read answers a server's
// KeyUpdate) is no send's to cut: cut, cutEnded waited for a wrote that
// never came.
func (f *flight) stuck() (giveUp bool) {
	f.mu.Lock()
	giveUp, f.blocked = f.failed, !f.failed && f.writing
	f.mu.Unlock()
	if !giveUp && writeWaits != nil {
		writeWaits()
	}
	return giveUp
}

// wrote ends the send begun, and reports whether the reader found the
// connection failed meanwhile: the writer closes it then.
func (f *flight) wrote() (closeIt bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writing, f.blocked = false, false
	if f.cut != nil {
		close(f.cut)
		f.cut = nil
	}
	return f.failed
}

// fail notes that the reader found the connection failed, and reports
// whether it closes the connection now: not under a send begun, whose
// writer closes it once its write has ended (wrote). Else the close
// refused a write that had yet to start, and what it pushed, in flight,
// was counted owed at the failure (lost, or wrong, closed before the
// reply began) though the server never had it; the event loops send
// nothing they count on a connection they closed. A write that waits for
// the server to take its bytes (stuck) is ended with interrupt: left
// to wait, it held the connection, and the run, until its deadline
// (Timeout: a run of 1.2 s ended after 20.9 s).
func (f *flight) fail(interrupt func()) (closeNow bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = true
	if f.blocked {
		f.cut = make(chan struct{})
		interrupt()
	}
	return !f.writing
}

// cutEnded waits for the write that fail cut short, if it did, to end.
// The connection's end may stop the run, whose drain sets every
// connection's deadline later again: a write woken by the cut but yet to
// run then waited on, to that deadline (the poller takes a deadline moved
// on before its waiter ran for none come). On Unix the socket keeps its cut
// past a later deadline (stuckConn.interrupt), which also covers a run
// stopped for another reason as the cut comes; this wait stays a second
// guard, so that the connection ends after its cut write has.
func (f *flight) cutEnded() {
	f.mu.Lock()
	cut := f.cut
	f.mu.Unlock()
	if cut != nil {
		<-cut
	}
}

// close says no message comes after those pushed.
func (f *flight) close() {
	f.mu.Lock()
	f.closed = true
	if f.watching { // nothing owed: the reader's wait is over
		f.w.unblock()
	}
	f.mu.Unlock()
	f.wake()
}

// watch reports whether nothing is owed and the queue is open, and if so
// arms the reader's wait on the connection instead of the queue, until
// unwatch, so that a server's close between an open loop's messages is
// seen as it comes, as the event loops see it, and not with the next
// message, as a close that message met. The first push meanwhile gives
// its reply a deadline Timeout from then (w.reply), as the event loops
// time a reply owed by a connection that owed none, and does not end the
// wait: the reply ends it, or that deadline. (Else the reply had what was
// left of the wait's deadline and a whole Timeout more.) close ends it
// with w.unblock. Armed and ended under the lock, no push or close
// comes between the wait's deadline and a check of what is owed.
func (f *flight) watch(w watcher) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.q.n > 0 || f.closed {
		return false
	}
	w.arm()
	f.watching, f.w, f.replyBy = true, w, time.Time{}
	return true
}

// unwatch ends the reader's wait on the connection and reports whether a
// message is owed now, and if so the deadline its push set for its reply.
// failed says the wait ended in the connection's failure: with nothing
// owed, the queue takes no more (push) from the same look, so that no push comes
// between the look and the failure's count, owed then, lost (a stall had
// the writer send the next message due there).
func (f *flight) unwatch(failed bool) (owed bool, replyBy time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.watching = false
	if failed && f.q.n == 0 {
		f.gone = true
	}
	return f.q.n > 0, f.replyBy
}

func (f *flight) wake() {
	select {
	case f.ready <- struct{}{}:
	default: // the reader is woken already
	}
}

// pop takes the oldest message, waiting for one; false once the queue
// is closed and empty.
func (f *flight) pop() (sentMsg, bool) {
	for {
		f.mu.Lock()
		if f.q.n > 0 {
			m := f.q.front()
			f.q.pop()
			f.reading = true // (in flight still: no room made)
			f.mu.Unlock()
			return m, true
		}
		closed := f.closed
		f.mu.Unlock()
		if closed {
			return sentMsg{}, false
		}
		<-f.ready
	}
}

// queued is how many messages are queued behind the one the reader
// waits on the reply of: sent, or about to be.
func (f *flight) queued() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.q.n
}

// skip takes the j oldest queued messages (j at most queued) off the
// queue, and returns them: the reader passes over the one it waits on
// the reply of and the j-1 first, which the server answered with
// nothing, for the last (see run.skippedTo). The reply it takes then
// makes room for them too (replied).
func (f *flight) skip(j int) []sentMsg {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.skippedFull = f.skippedFull || f.most > 0 && f.inFlight() >= f.most
	ms := make([]sentMsg, j)
	for k := range ms {
		ms[k] = f.q.front()
		f.q.pop()
	}
	return ms
}

// replied notes that the reader took a reply at now (run.now), the
// message it popped last no longer in flight, and reports whether no
// message is in flight.
func (f *flight) replied(now int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.since = now
	f.afterFull = f.reading && f.most > 0 && (f.inFlight() >= f.most || f.skippedFull)
	f.skippedFull = false
	if f.afterFull { // (the writer may be waiting for room)
		select {
		case f.freed <- struct{}{}:
		default:
		}
	}
	f.reading = false
	return f.q.n == 0
}

// idle reports whether no message is in flight and none has been owed
// for idleLook by now (run.now), or the reply just taken freed room the
// writer was held back for (afterFull): an open loop's send looks for an
// idle close only then, as the event loops do (loop.closedIdle, where a
// close that came with that reply is known from the loop's wait). The
// writer, woken by the reply, sent what had fallen due before the reader
// looked past the reply, and a close that came with it found the message
// owed: counted wrong, "closed before the reply began". That reply
// leaves none owed only where one is the most in flight (OneInFlight, or
// a connection's share of a budget spread over thousands): elsewhere
// the look waits for idleLook.
func (f *flight) idle(now int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inFlight() == 0 && (now-f.since >= int64(idleLook) || f.afterFull)
}

// inFlight is how many messages are in flight: those queued, and the one
// the reader waits on the reply of. f.mu is held.
func (f *flight) inFlight() int {
	if f.reading {
		return f.q.n + 1
	}
	return f.q.n
}

// idleLook is how long a connection owes nothing before an open loop's
// sends on it look for its server's close first (loop.closedIdle, and
// the goroutine driver's send). A server closes a connection for being
// idle after a quiet time longer than that; a connection sent to more
// often than every idleLook pays nothing. Each look is a system call:
// made before every send, the looks of 50 connections at 200 msg/s
// each took an event loop's p99 from 140 µs to 240–425 µs with a look
// after 1 ms (BENCHMARKS.md, stop 43).
const idleLook = 50 * time.Millisecond
