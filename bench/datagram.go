package bench

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"shout/client"
	"shout/endpoint"
	"shout/internal/sockerr"
)

// seqLen is the width of the decimal sequence number that starts each
// datagram: digits, which no mode changes.
const seqLen = 20

// appendSeq appends seq to b as a datagram's tag: seqLen decimal
// digits, zeros first (the largest uint64 has 20).
func appendSeq(b []byte, seq uint64) []byte {
	return fmt.Appendf(b, "%0*d", seqLen, seq)
}

// seqOf is the sequence number that datagram d's tag names, and whether
// it has one: its first seqLen bytes, all decimal digits, of a number a
// uint64 holds. What follows is the body, which does not change it.
func seqOf(d []byte) (seq uint64, ok bool) {
	if len(d) < seqLen {
		return 0, false
	}
	seq, err := strconv.ParseUint(string(d[:seqLen]), 10, 64)
	if err != nil {
		return 0, false
	}
	return seq, true
}

// A socket remembers its recent datagrams in a ring, to match replies,
// tell duplicates and count the lost: udpRing of them at first, as many
// as it has had in flight within Timeout when an open loop outruns the
// server, up to maxUDPRing (about 85 MB, and half that again while it
// grows) or its share of udpBudget (udpRingMost), past which the oldest
// in flight count as lost (and not, if their replies come in time after
// all: see lostGone). Datagrams the
// server's socket dropped stay in flight until Timeout too: a socket
// needs about its rate times Timeout.
var udpRing = 1 << 14

// udpReadBuffer is the receive buffer each socket asks for, as a server's
// does (endpoint.UDPReadBuffer): replies that come while bench is not
// reading, on a busy machine, wait there rather than being dropped and
// counted lost.
var udpReadBuffer = endpoint.UDPReadBuffer

// udpReaderStart and udpReaderEnd, if not nil, run as each socket's
// reader starts and ends, and udpBeforeSend before each datagram's send
// (in a closed loop, before its wait for a place), given its sequence
// number (tests).
var udpReaderStart, udpReaderEnd func()
var udpBeforeSend func(seq uint64)

// readerWoken, if not nil, runs as a socket's reader has first been told
// to end, its read deadline put in the past (see wake) (tests).
var readerWoken func()

var maxUDPRing = 1 << 21 // a variable for tests

// udpBudget bounds the places of all a run's sockets' rings together:
// 8,388,608, about 320 MiB at 40 bytes each, twice the datagrams in flight
// within the default 5 s timeout at 800,000 a second (a variable for
// tests). Each socket had up to maxUDPRing whatever their number: 50
// sockets behind a server that answers none could take 4 GB, and each
// started with udpRing, 640 KB: 10,000 sockets took 6 GB before sending.
var udpBudget = 1 << 23

// udpRingMost is how many places each socket's ring may have: maxUDPRing,
// halved until the sockets' rings fit in udpBudget together, but no
// fewer than its Depth in flight (and 256), a power of two.
func (r *run) udpRingMost() int {
	floor := 256
	for floor < r.cfg.Depth {
		floor *= 2
	}
	most := maxUDPRing
	for most > floor && most > udpBudget/r.cfg.Conns {
		most /= 2
	}
	return most
}

// maxLostGone bounds the datagrams a socket remembers as lost after their
// places in the ring were taken (see lostGone): past it, a reply to the
// oldest of them is passed over, and it stays counted lost but not late.
// A socket remembers no more than an eighth of its ring's places (see
// udpRingMost; or 64), so that they too fit in udpBudget.
const maxLostGone = 1 << 10

// udpRingEnded, if not nil, gets the most places a UDP socket's ring
// had, and the most datagrams its lostGone held, as the socket ends
// (tests).
var udpRingEnded func(places, gone int)

// lostGone remembers, up to maxLostGone, the measured datagrams counted
// lost whose places in the ring later ones took, and when each was sent,
// so that a reply that comes for one even later is counted late, as one
// still in the ring is, not passed over. The ring holds less than
// Timeout's worth of datagrams at tens of thousands a second, so without
// it a reply later than Timeout was almost never known to be late. A
// datagram the ring at its largest wrapped onto was counted lost within
// its Timeout: its reply may yet come in time. It remembers too those
// not waited for (unawaited), given up after a cut, and the warm-up's
// that the ring at its largest wrapped onto, counted in WarmupLost
// within their Timeout (whose replies, come in time, stayed counted
// there: WarmupLost said the server had left them unanswered).
type lostGone struct {
	seqs  map[uint64]goneSlot
	order []uint64 // the oldest is at next, once it is full
	next  int
	most  int // how many it remembers, at most maxLostGone
	peak  int // the most it held (tests)
}

// goneSlot is what lostGone remembers of a datagram: when it was sent,
// and whether it was counted not waited for (udpSlot.unawaited), not
// lost, or was the warm-up's, in WarmupLost.
type goneSlot struct {
	sentAt    time.Time
	unawaited bool
	warm      bool
}

func (g *lostGone) add(seq uint64, gone goneSlot) {
	if g.seqs == nil {
		g.seqs = make(map[uint64]goneSlot)
	}
	if len(g.order) < g.most {
		g.order = append(g.order, seq)
	} else {
		delete(g.seqs, g.order[g.next]) // (already gone, if its reply came)
		g.order[g.next] = seq
		g.next = (g.next + 1) % g.most
	}
	g.seqs[seq] = gone
	g.peak = max(g.peak, len(g.seqs))
}

// take reports whether seq is remembered, and when it was sent, and
// forgets it: a reply to it counts once, and a second reply is a
// duplicate, which is not counted.
func (g *lostGone) take(seq uint64) (gone goneSlot, ok bool) {
	if gone, ok = g.seqs[seq]; ok {
		delete(g.seqs, seq)
	}
	return gone, ok
}

// noSuchSeq is what a reply whose start names no datagram sent should
// have been.
var noSuchSeq = []byte("a reply that starts with the 20-digit sequence number of a datagram sent")

type udpSlot struct {
	seq      uint64
	sentAt   time.Time
	answered bool
	pending  bool
	measured bool // sent while measuring: counts if lost
	wrong    bool // a reply to it was counted wrong
	// unawaited: given up after a cut, not waited for (run.gaveUp),
	// not lost: a reply that comes after all is late, and lost, not
	// also not waited for (see udpSocket.cameAfterAll).
	unawaited bool
}

// udpWorker keeps up to Depth datagrams in flight on one socket (or sends
// at its share of Rate). Each datagram is a sequence number and a body;
// its reply must be the same number and the body's expected reply. A
// datagram unanswered after Timeout is lost and frees its place.
func (r *run) udpWorker(i int, w *worker, c net.Conn) {
	u := r.newUDPSocket(i, w, c)
	if b, ok := c.(interface{ SetReadBuffer(int) error }); ok {
		b.SetReadBuffer(udpReadBuffer) // as much as the kernel gives, or the default
	}
	go u.read()
	defer u.finish()
	if u.closedLoop {
		u.sendClosed()
		return
	}
	r.openLoop(i, u.sendDue, u.refused, &u.failedAt, nil)
}

// udpSocket is one socket of a run: its sender (udpWorker's goroutine)
// puts each datagram in the ring and sends it, and its reader (read)
// matches the replies to them there.
type udpSocket struct {
	r *run
	i int // the socket's number, which picks its bodies
	w *worker
	c net.Conn

	closedLoop bool
	slots      chan struct{} // a closed loop's free places, Depth in all
	pkt        []byte        // the datagram being sent (the sender's)
	// refused closes when the server refused the socket's datagrams
	// (ICMP port unreachable, which a connected socket reports as
	// ECONNREFUSED on its next read or write): nothing listens there. The
	// socket is done, as a reset TCP connection is, and what it had in
	// flight is lost.
	refused    chan struct{}
	refuseOnce sync.Once
	failedAt   failedWhen // when it failed for good (see afterFailure)
	// ended, once for the socket: a send that failed ends it, and a
	// refusal its reader meets after that would end it again.
	// warm: the failure was counted the warm-up's (see run.ended).
	ended func(warm bool)
	done  chan struct{} // closed when the reader is done

	mu          sync.Mutex // guards what follows, which sender and reader share
	ring        []udpSlot
	most, peak  int      // the places ring may grow to (udpRingMost), and the most it had
	next        uint64   // next sequence number to send (the sender alone changes it)
	oldest      uint64   // oldest that may still be pending
	gone        lostGone // lost, and out of the ring
	highest     int64    // highest answered, -1 before any
	inflight    int      // pending datagrams
	senderDone  bool     // the run has stopped: no more sends
	dropsBefore int64    // the socket's drops when measuring began, -1 before
	// givenUp counts the datagrams given up (lost, or the warm-up's)
	// whose replies have not come since, as far as the ring knows:
	// those the socket's drops may be of, besides the replies owed at a
	// cut; unawaited, the measured ones owed at a cut, not waited for
	// (see lostToDrops).
	givenUp, unawaited int64
	// unowed: the reader got a datagram that answers nothing owed (a
	// duplicate, one naming no datagram sent): the socket's drops may be
	// of such datagrams, not replies, and are not said to be replies.
	unowed bool
	// warmBelow: the datagrams numbered below it are the warm-up's (sent
	// before the measured ones, which come in order after them).
	warmBelow uint64
}

func (r *run) newUDPSocket(i int, w *worker, c net.Conn) *udpSocket {
	most := r.udpRingMost()
	u := &udpSocket{
		r: r, i: i, w: w, c: c,
		closedLoop:  r.cfg.Rate <= 0,
		slots:       make(chan struct{}, r.cfg.Depth),
		pkt:         make([]byte, 0, seqLen+r.cfg.Size),
		refused:     make(chan struct{}),
		ended:       onceEnded(r),
		done:        make(chan struct{}),
		ring:        make([]udpSlot, min(udpRing, most)),
		most:        most,
		gone:        lostGone{most: min(maxLostGone, max(64, most/8))},
		highest:     -1,
		dropsBefore: -1,
	}
	u.peak = len(u.ring)
	for range r.cfg.Depth {
		u.slots <- struct{}{}
	}
	return u
}

// slot is datagram seq's place in the ring (u.mu held).
func (u *udpSocket) slot(seq uint64) *udpSlot { return &u.ring[seq%uint64(len(u.ring))] }

// release gives a datagram's place in a closed loop back.
func (u *udpSocket) release() {
	if u.closedLoop {
		u.slots <- struct{}{}
	}
}

// expire counts pending datagrams older than Timeout as lost; in a
// patient run (Config.patient), only the warm-up's and those the test
// leaves unanswered (Config.unansweredEvery).
func (u *udpSocket) expire(now time.Time) {
	u.expireAt(now, u.r.cfg.patient)
}

// expireAt is expire; if patient, a measured datagram is never older
// than Timeout, but for those the test leaves unanswered. (Sent after
// those of the warm-up, and in order, the first one pending ends the
// pass as a datagram within Timeout does: one left unanswered after it
// waits for its reply.)
func (u *udpSocket) expireAt(now time.Time, patient bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for ; u.oldest < u.next; u.oldest++ {
		s := u.slot(u.oldest)
		if s.pending && (now.Sub(s.sentAt) < u.r.cfg.Timeout || patient && s.measured && u.r.cfg.patientFor(s.seq)) {
			return
		}
		if s.pending {
			s.pending = false
			u.inflight--
			if s.measured && !u.r.gaveUp(int64(s.sentAt.Sub(u.r.epoch))) {
				u.unawaited++
				s.unawaited = true
			} else {
				u.givenUp++
				if !s.measured {
					u.r.warmGaveUp(int64(s.sentAt.Sub(u.r.epoch)))
				}
			}
			u.release()
		}
	}
}

// onceEnded is r.ended, called once at most.
func onceEnded(r *run) func(warm bool) {
	var once sync.Once
	return func(warm bool) { once.Do(func() { r.ended(warm) }) }
}

// refuse ends the socket, once, for the server's refusal err.
func (u *udpSocket) refuse(err error) {
	u.refuseOnce.Do(func() {
		r := u.r
		err = &client.ConnError{Op: "send", Addr: r.cfg.Endpoint.Address, Err: err}
		if r.refused.Add(1) == 1 {
			r.refusal.Store(&err)
		}
		warm := r.fail(err)
		u.failedAt.note(r)
		close(u.refused)
		u.ended(warm)
	})
}

// take counts reply, which came at now, and reports whether the socket is
// done: the sender is, and nothing is owed.
func (u *udpSocket) take(reply []byte, now time.Time) (drained bool) {
	r := u.r
	r.hear()
	at := int64(now.Sub(r.epoch))
	seq, tagged := seqOf(reply)
	u.mu.Lock()
	if !tagged || seq >= u.next {
		u.mu.Unlock()
		u.unowed = true
		// Which datagram it answers is unknown, or it answers
		// none sent: count it if it came while measuring, or in the
		// warm-up, the warm-up's.
		switch {
		case r.inWindow(at):
			r.mismatch(reply, noSuchSeq, false)
		case r.beforeWindow(at):
			r.warmupWrong(reply, noSuchSeq, false)
		}
		return false
	}
	s := u.slot(seq)
	// (An empty slot, in a ring grown since, has seq 0 too: it
	// knows nothing of datagram 0.)
	known := s.seq == seq && !s.sentAt.IsZero()
	// Every reply is checked, a duplicate too: a wrong one after a
	// right one is wrong. A datagram is counted wrong once, so a
	// wrong reply sent twice is one wrong and one duplicate. (A
	// warm-up datagram's, in WarmupWrong.)
	if known && !s.wrong {
		s.wrong = u.checkBody(seq, reply, s.measured)
	}
	var gone goneSlot
	wasGone := false
	if !known {
		gone, wasGone = u.gone.take(seq)
	}
	switch {
	case wasGone && gone.warm:
		// The warm-up's, given up as the ring wrapped onto it: in no
		// measured count, and out of WarmupLost if its reply came in
		// time after all.
		u.givenUp--
		r.arrive(len(reply), at)
		if now.Sub(gone.sentAt) < r.cfg.Timeout {
			r.warmLost.Add(-1)
			u.highest = max(u.highest, int64(seq))
		}
		u.checkBody(seq, reply, false)
	case wasGone && gone.unawaited:
		r.arrive(len(reply), at)
		u.cameAfterAll()
		u.checkBody(seq, reply, true)
	case wasGone: // answered after it was counted lost and left the ring
		u.givenUp--
		r.arrive(len(reply), at)
		if d := now.Sub(gone.sentAt); d < r.cfg.Timeout || r.cfg.patientFor(seq) { // (expire counts one lost at Timeout)
			// In time: the ring at its largest wrapped onto it,
			// and counted it lost early. It was not.
			r.lost.Add(-1)
			u.inTime(seq, d)
			u.highest = max(u.highest, int64(seq))
		} else {
			r.late.Add(1)
		}
		u.checkBody(seq, reply, true) // and wrong, as one still in the ring is
	case !known:
		// So old it has left the ring, and answered or forgotten:
		// a duplicate, or a late reply, not known to be unowed nor
		// counted. Its body is checked all the same, while
		// measuring, as a reply naming no datagram is: a wrong
		// reply is never passed over. (Had its datagram's first
		// reply been wrong too, the datagram counts wrong twice.)
		// A warm-up datagram's counts in no measured figure, as one
		// still in the ring does not, but in WarmupWrong if wrong.
		switch {
		case seq < u.warmBelow:
			u.checkBody(seq, reply, false)
		case r.inWindow(at):
			u.checkBody(seq, reply, true)
		}
	case s.answered:
		u.unowed = true
		if s.measured {
			r.dups.Add(1)
		}
	case s.pending:
		s.answered, s.pending = true, false
		u.inflight--
		r.arrive(len(reply), at)
		// A reply later than Timeout is lost and late, and not
		// also reordered, as one that came after its expiry is
		// not: the counts are apart.
		if d := now.Sub(s.sentAt); s.measured && r.onTimeIf(d, r.cfg.patientFor(seq)) {
			u.inTime(seq, d)
		}
		u.highest = max(u.highest, int64(seq))
		u.release()
	case s.unawaited:
		s.answered = true
		r.arrive(len(reply), at)
		u.cameAfterAll()
	default: // answered after it was counted lost: late
		s.answered = true
		u.givenUp--
		r.arrive(len(reply), at) // it came, as a late stream reply does
		if s.measured {
			r.late.Add(1)
		}
	}
	drained = u.senderDone && u.inflight == 0
	u.mu.Unlock()
	return drained
}

// cameAfterAll counts the reply to a datagram given up, not waited for,
// after a cut (udpSlot.unawaited), that came all the same, before the
// reader ended (an open loop's sender, in sendRest as the cut came,
// expires what it sends after): later than its Timeout, it is late, and
// lost, and no longer not waited for. It was counted both, late and not
// waited for: one message in two counts, and Lost less Late one short.
// (u.mu held.)
func (u *udpSocket) cameAfterAll() {
	u.unawaited--
	u.r.unawaited.Add(-1)
	u.r.lost.Add(1)
	u.r.late.Add(1)
}

// checkBody counts reply, to datagram seq, wrong if its body is, and
// says so: measured, or the warm-up's (a datagram not measured was sent
// before the window, as in WarmupLost).
func (u *udpSocket) checkBody(seq uint64, reply []byte, measured bool) bool {
	body, want := reply[seqLen:], u.r.bodyWants[pick(u.i, seq)]
	if bytes.Equal(body, want) {
		return false
	}
	if measured {
		u.r.mismatch(body, want, false)
	} else {
		u.r.warmupWrong(body, want, false)
	}
	return true
}

// inTime records the latency d of measured datagram seq's reply (u.mu
// held).
func (u *udpSocket) inTime(seq uint64, d time.Duration) {
	u.w.record(u.r, d)
	if int64(seq) < u.highest {
		u.r.reordered.Add(1)
	}
}

// read is the socket's reader: it takes each reply until the socket is
// done, refused, or Run's deadline.
func (u *udpSocket) read() {
	defer close(u.done)
	if udpReaderEnd != nil {
		defer udpReaderEnd()
	}
	if udpReaderStart != nil {
		udpReaderStart()
	}
	r := u.r
	buf := make([]byte, 1<<17)
	for {
		n, err := u.c.Read(buf)
		if err != nil {
			select {
			case <-u.refused: // a refused write: the socket is closed
				return
			default:
			}
			if r.stopping.Load() { // Run's deadline: the rest is lost
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return // set when the sender is done and nothing is owed, or refused
			}
			if sockerr.Refused(err) {
				u.refuse(err)
				return
			}
			r.fail(failed("receive", err))
			time.Sleep(10 * time.Millisecond) // ICMP errors come fast; do not spin
			continue
		}
		if u.take(buf[:n], time.Now()) {
			return
		}
	}
}

// finish waits for the replies still owed, up to Run's deadline; what has
// not come by then is lost. A refusal (the server went away) ends the
// wait: what was in flight got no reply, and is lost as a reset
// connection's messages are.
func (u *udpSocket) finish() {
	c := u.c
	u.mu.Lock()
	u.senderDone = true
	idle := u.inflight == 0
	u.mu.Unlock()
	closed := false // by wake: its drops can no longer be read
	select {
	case <-u.refused: // (a refused write: the reader may wait yet)
		wake(c, u.done)
	default:
		if idle {
			// Not a deadline put in the past once: Run's drain,
			// setting every socket's to the end of the wait,
			// could put it back before the reader woke, and the
			// reader waited out Timeout, owed nothing.
			closed = wake(c, u.done)
		} else if u.r.cfg.unansweredEvery != 0 {
			closed = u.giveUpUnanswered()
		}
	}
	<-u.done
	wasRefused := false
	select {
	case <-u.refused:
		// The kernel tells a refusal before the replies queued ahead
		// of it: they came, and are counted (as of now), not lost.
		wasRefused = true
		c.SetReadDeadline(time.Time{})
		buf := make([]byte, 1<<17)
		readQueued(c, buf, len(u.ring), func(n int) bool { return u.take(buf[:n], time.Now()) })
	default:
	}
	// The drops as the reader ended: a reply the socket dropped after
	// that came when bench no longer read, and was not waited for.
	// (A refused socket is done, and its drops are not counted.)
	counted := !wasRefused && !closed && u.dropsBefore >= 0 && !u.unowed // (the reader is done: done is closed)
	var dropped int64
	if counted {
		dropped = socketDrops(c) - u.dropsBefore
	}
	if all := u.r.cfg.allDrops; all != nil && !closed {
		all.Add(socketDrops(c))
	}
	u.expireAt(time.Now().Add(u.r.cfg.Timeout), false) // Run's deadline has passed, or a signal cut the wait: all that is owed is lost (or not waited for: gaveUp)
	if udpRingEnded != nil {
		udpRingEnded(u.peak, u.gone.peak)
	}
	if counted {
		u.r.droppedHere.Add(dropped)
		u.lostToDrops(dropped)
	}
	u.noteAnswered()
}

// noteAnswered counts the socket, spread over the source addresses, as
// one from 127.0.0.1 or another that got a reply or none at all (see
// run.unansweredSources); one that sent nothing (an open loop's, at a
// low Rate), as neither.
func (u *udpSocket) noteAnswered() {
	if !u.r.cfg.spread() {
		return
	}
	u.mu.Lock()
	sent, answered := u.next > 0, u.highest >= 0
	u.mu.Unlock()
	switch first := u.i%u.r.cfg.SourceIPs == 0; {
	case !sent:
	case first && answered:
		u.r.answeredFirst.Add(1)
	case first:
		u.r.silentFirst.Add(1)
	case !answered:
		u.r.silentOthers.Add(1)
	}
}

// lostToDrops counts lost, not waited for, as many of the replies owed
// at a cut as the socket's dropped replies (dropped of them) must have
// been: those beyond the datagrams given up with no reply. A reply the
// socket dropped will never come, and is bench's doing (DroppedByBench),
// not the server's; counted not waited for, it was said to be one that
// might have come, and DroppedByBench, at most Lost, left it out. Only
// those it must have been: a drop may be of a reply to one given up
// (lost in the window, or the warm-up's, late), and which it was the
// kernel does not say.
func (u *udpSocket) lostToDrops(dropped int64) {
	u.mu.Lock()
	n := min(max(dropped-u.givenUp, 0), u.unawaited)
	u.unawaited -= n
	u.mu.Unlock()
	if n > 0 {
		u.r.unawaited.Add(-n)
		u.r.lost.Add(n)
	}
}

// giveUpUnanswered gives up, in Run's final wait, the datagrams a
// patient run's test leaves unanswered (Config.unansweredEvery) at Timeout,
// as the sender does while measuring, and ends the reader once nothing
// is owed: the wait, patient for the rest, would hold them for
// patientWait. It returns once the reader is done, and whether wake
// closed the socket.
func (u *udpSocket) giveUpUnanswered() (closed bool) {
	tick := time.NewTicker(max(u.r.cfg.Timeout/8, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-u.done:
			return false
		case now := <-tick.C:
			u.expire(now)
			u.mu.Lock()
			owed := u.inflight
			u.mu.Unlock()
			if owed == 0 {
				return wake(u.c, u.done)
			}
		}
	}
}

// put makes the next datagram's place in the ring, as sent now, and
// returns its sequence number; it counts if measured.
func (u *udpSocket) put(measured bool) (seq uint64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	seq = u.next
	s := u.slot(seq)
	if s.pending && len(u.ring) < u.most {
		// The ring wrapped onto a datagram still within its Timeout
		// (expire has taken the rest): make room, not a loss.
		u.ring = grownRing(u.ring)
		u.peak = max(u.peak, len(u.ring))
		s = u.slot(seq)
	}
	// warm: the warm-up's, counted in WarmupLost within its Timeout.
	warm := false
	if s.pending { // the ring, at its largest, wrapped onto an unanswered datagram
		u.inflight--
		u.givenUp++
		if s.measured {
			u.r.lost.Add(1)
		} else {
			warm = u.r.warmGaveUp(int64(s.sentAt.Sub(u.r.epoch)))
		}
		u.release() // its place in the loop, as expire gives back a lost one's
	}
	if !s.sentAt.IsZero() && !s.answered && (s.measured || warm) { // counted lost (or unawaited): its reply may come yet
		u.gone.add(s.seq, goneSlot{s.sentAt, s.unawaited, warm})
	}
	// An open loop's latency is from the send, not from when it fell
	// due, as it is over a stream: a datagram's send never waits for
	// the server, so a send later than due is bench's own lateness (a
	// timer that woke late, about half a millisecond here), which
	// counted from due was put on the server.
	*s = udpSlot{seq: seq, sentAt: time.Now(), pending: true, measured: measured}
	if measured {
		u.r.sent.Add(1)
	}
	if sentNoted != nil {
		sentNoted(u.r, int64(s.sentAt.Sub(u.r.epoch)), measured)
	}
	if !measured {
		u.warmBelow = seq + 1
	}
	if s.measured && u.dropsBefore < 0 {
		u.dropsBefore = socketDrops(u.c) // what the warm-up's replies lost is not the run's
	}
	u.next++
	u.inflight++
	return seq
}

// write sends datagram seq, and reports whether the socket serves on.
// Once the run is stopping a failure is no error (Run's deadline for
// the replies owed has passed, or the socket was refused), but the
// socket serves no more all the same: taken for served, an open loop's
// sendRest went on through every datagram due, each counted lost.
func (u *udpSocket) write(seq uint64) (ok bool) {
	r := u.r
	u.pkt = appendSeq(u.pkt[:0], seq)
	u.pkt = append(u.pkt, r.bodies[pick(u.i, seq)]...)
	_, err := u.c.Write(u.pkt)
	switch {
	case err == nil:
		return true
	case r.stopping.Load():
	case sockerr.Refused(err):
		u.refuse(err)
	default:
		warm := r.fail(failed("send", err))
		u.failedAt.note(r)
		u.ended(warm) // no more sends: the socket serves no more
	}
	return false
}

// sendClosed is a closed loop's sender: a datagram each time a place is
// free, until the run stops or the socket is refused.
func (u *udpSocket) sendClosed() {
	r := u.r
	tick := time.NewTicker(max(r.cfg.Timeout/8, time.Millisecond))
	defer tick.Stop()
	for !r.stopping.Load() {
		if udpBeforeSend != nil {
			udpBeforeSend(u.next) // (the sender alone changes next)
		}
		select { // expire even while replies keep places free
		case now := <-tick.C:
			u.expire(now)
		default:
		}
		select {
		case <-u.slots:
		case now := <-tick.C:
			u.expire(now)
			continue
		case <-r.stop:
			return
		case <-u.refused:
			return
		}
		at := r.now() // before stopping is looked at (see haltEarly)
		if sendTimed != nil {
			sendTimed(r)
		}
		if r.stopping.Load() { // (a free slot and stop may be ready at once)
			return
		}
		if at >= r.windowUntil.Load() {
			return // the window is over: the server would serve it, in no count
		}
		if !u.write(u.put(r.inWindow(at))) {
			return
		}
	}
}

// sendDue is an open loop's send (openLoop), as a stream's is: it sends
// the n datagrams that have fallen due, those of cad from first on, a write
// each, and counts those that fell due while measuring and were not sent
// when the time was up (behind the rate: a socket sends about 70,000 a
// second here), or once the socket failed, never sent. (Sending one a
// pass, on its own schedule, it left what it was behind by in no count.)
// (The round's time, which a stream's send looks for an idle close by,
// it needs not: a datagram socket has no close to look for.)
func (u *udpSocket) sendDue(n int, cad cadence, first uint64, _ int64) sendFate {
	r := u.r
	u.expire(time.Now())
	// measured: datagram j counts, by when it fell due.
	measured := func(j int) bool { return r.inWindow(cad.due(first + uint64(j))) }
	for j := range n {
		if udpBeforeSend != nil {
			udpBeforeSend(u.next) // (the sender alone changes next)
		}
		if !u.write(u.put(measured(j))) {
			// The rest of the batch counts as the one that failed
			// does, lost, as a stream's batch whose write failed:
			// each if it fell due while measuring. (With the failed
			// one's, those in the window of a batch that began in
			// the warm-up were in no count.)
			for k := j + 1; k < n; k++ {
				u.put(measured(k))
			}
			return batchFailed
		}
	}
	return batchSent
}

// wake ends a socket's reader, which ends on an error once the socket is
// refused, or owed nothing once the sender is done, by a read deadline
// in the past: set again until the reader is done, since Run's drain may
// put a later one in its place before the reader wakes. A reader that
// waits still after a second is woken by closing the socket; wake
// reports whether it did.
func wake(c net.Conn, done <-chan struct{}) (closed bool) {
	for i := range wakeTries {
		c.SetReadDeadline(time.Now())
		if i == 0 && readerWoken != nil {
			readerWoken()
		}
		select {
		case <-done:
			return false
		case <-time.After(time.Millisecond):
		}
	}
	c.Close()
	<-done
	return true
}

// wakeTries is how many times, a millisecond apart, wake puts a reader's
// deadline in the past before it closes the socket (a variable for
// tests).
var wakeTries = 1000

// grownRing returns ring at twice the size, each datagram it remembers
// in its place there. They are the last len(ring) sent, so no two share
// a place.
func grownRing(ring []udpSlot) []udpSlot {
	g := make([]udpSlot, 2*len(ring))
	for _, s := range ring {
		if !s.sentAt.IsZero() { // sent: pending, answered or lost
			g[s.seq%uint64(len(g))] = s
		}
	}
	return g
}
