package bench

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"shout/internal/deadline"
)

// readReply appends one reply to got: up to and including its newline,
// so a wrong reply shorter or longer than the right one is caught as
// wrong instead of stalling the read, or, from a server that sends no
// newline, a few times the wanted length (the rest of its line is then
// skipCut's).
func readReply(br *bufio.Reader, got []byte, wantLen int) ([]byte, error) {
	limit := 4*wantLen + 64
	for {
		frag, err := br.ReadSlice('\n')
		got = append(got, frag...)
		if err == bufio.ErrBufferFull && len(got) < limit {
			continue
		}
		if err == bufio.ErrBufferFull {
			err = nil
		}
		return got, err
	}
}

// skipCut discards the rest of a reply readReply cut at its limit (*cut,
// cleared once its newline came), up to and including its newline: part
// of that one wrong reply, it answers no message after it. Unless wait,
// only what br holds already. It returns how many bytes it discarded.
func skipCut(br *bufio.Reader, cut *bool, wait bool) (n int, err error) {
	for *cut && err == nil && (wait || br.Buffered() > 0) {
		var frag []byte
		if wait {
			frag, err = br.ReadSlice('\n')
			if err == bufio.ErrBufferFull {
				err = nil
			}
		} else {
			frag, _ = br.Peek(br.Buffered())
			if k := bytes.IndexByte(frag, '\n'); k >= 0 {
				frag = frag[:k+1]
			}
		}
		n += len(frag)
		*cut = len(frag) == 0 || frag[len(frag)-1] != '\n'
		if !wait {
			br.Discard(len(frag))
		}
	}
	return n, err
}

// refreshAtLeast moves *by with set, cheaply, as deadline.Refresh does,
// so that it is at least d away: a read or write begun now has d, as the
// event loops give it (a reply within Timeout is not a failure), and
// fails after between d and 8/7 of d without progress. Refresh for d
// itself leaves as little as 7/8 of d.
func refreshAtLeast(by *time.Time, d time.Duration, set func(time.Time) error) {
	deadline.Refresh(by, d+d/7+1, set) // 7/8 of it, rounded down, is still d
}

// strays counts the bytes br holds, read with nothing owed (with the
// last reply owed, or in an open loop's wait between messages), as the
// event loops do: a wrong reply for each line that starts in them, not
// for the rest of one begun in an earlier read (*straying; set as the
// last line is left unended). They answer no message: a message goes in
// sent before it is written (and, in a closed loop, only once the reply
// just taken frees its place), so with none owed, none sent can have
// its reply among them.
func (r *run) strays(wrong, straying *bool, br *bufio.Reader, now int64) {
	stray, _ := br.Peek(br.Buffered())
	measured := r.inWindow(now)
	r.unaskedLines(wrong, straying, measured, !measured && r.beforeWindow(now), stray)
	br.Discard(br.Buffered())
}

// noReply words a read's time-out as the event loops do, naming the
// reply and Timeout rather than "i/o timeout"; other errors as they are.
func (r *run) noReply(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("no reply within %v", r.cfg.Timeout)
	}
	return err
}

// notTaken is the error of a write of size bytes that failed having
// written n: its time-out says that the server did not take them, as
// the event loops do.
func (r *run) notTaken(n, size int, err error) error {
	switch {
	case !errors.Is(err, os.ErrDeadlineExceeded):
		return failed("send", err)
	case n == 0:
		return fmt.Errorf("send: the server took no bytes for %v", r.cfg.Timeout)
	}
	return fmt.Errorf("send: the server took %d of %d bytes, and not the rest within %v", n, size, r.cfg.Timeout)
}

// timing reports whether a goroutine-driven stream connection's reads
// and writes have Timeout each: not once stopping, when Run's deadline
// holds, nor in a patient run (Config.patient).
func (r *run) timing() bool { return !r.stopping.Load() && !r.cfg.patient }

// streamReaderStart, if not nil, runs as each goroutine-driven stream
// connection's reader starts, and sendFailed after its writer's write
// fails (tests).
var streamReaderStart, sendFailed func()

// replyTaken, if not nil, runs as a goroutine-driven stream connection's
// reader has taken reply k (from 0); sendStarts as its writer begins a
// send whose first message is its k-th, and sendEnds as that send has
// written its batch or held it back (tests).
var replyTaken, sendStarts, sendEnds func(k uint64)

// idleCloseFound, if not nil, runs as a goroutine-driven stream
// connection's reader, in its wait for reply k (from 0) with nothing
// owed, has found the connection failed, before it counts the failure;
// idleBytesFound as it has found bytes there, still with nothing owed,
// before it counts them (tests).
var idleCloseFound, idleBytesFound func(k uint64)

// readerClosed, if not nil, runs as a goroutine-driven stream
// connection's reader, having found the connection failed, has closed it
// or left its close to the writer's write under way (tests); sendRefused
// as its writer's send is refused, begun after that (tests); sendWrote as
// its writer has ended a send's write, before it acts on its fate (tests).
var readerClosed, sendRefused, sendWrote func()

// sendFate is what became of the batch of messages a send was given
// (openLoop).
type sendFate int

const (
	batchSent    sendFate = iota // written
	batchFailed                  // its write failed: the connection is gone, and the batch owed (lost, if it counts)
	batchHeld                    // not sent: the connection was gone before it (never sent, as what falls due after)
	batchRefused                 // not sent: the reader had found the connection failed (never sent, as what falls due after: see afterFailure)
	batchCut                     // its write failed once the reader had found the connection failed (cut short: see flight.fail): the batch owed, lost, as the event loops count their buffer; what falls due after never sent, on the failed connection
)

// sentMsg is a message on its way: when it was sent (or due), and whether
// it counts.
type sentMsg struct {
	at       int64 // run.now()
	measured bool  // it fell due (was sent) in the window: it counts (run.inWindow)
}

// errIdleClose is a connection that the server closed with no reply
// owed on it. Through a proxy whose idle timeout closed it (HAProxy's
// timeout client or server, between an open loop's messages), "the
// server closed the connection" alone read as the server's doing.
var errIdleClose = errors.New("receive: the server closed the connection while no reply was owed (as an idle timeout does, the server's or a proxy's)")

// owed counts a message whose reply will not come as lost (see gaveUp),
// if it counts; one of the warm-up's still owed as the run stops, in
// WarmupLost (see warmGaveUp), as a UDP socket's: a closed loop whose
// every connection waited for such a reply (a proxy that took the
// messages and stalled) sent nothing while measuring, and its report
// said the window was too short for one exchange.
func (r *run) owed(m sentMsg) {
	switch {
	case m.measured:
		r.gaveUp(m.at)
	case r.stopping.Load():
		r.warmGaveUp(m.at)
	}
}

// stuckTLS is a TLS connection over a stuckConn, which it keeps: the
// handshake's own wrapping (see client.Handshake) hides it from NetConn.
type stuckTLS struct {
	*tls.Conn
	sc *stuckConn
}

// stuckConnOf is c's stuckConn, under TLS or not, or nil.
func stuckConnOf(c net.Conn) *stuckConn {
	if t, ok := c.(*stuckTLS); ok {
		return t.sc
	}
	sc, _ := c.(*stuckConn)
	return sc
}

// streamWorker drives one stream connection: the writer sends batches of
// messages (up to Depth in flight, or as the open-loop schedule falls
// due) in one write each, and the reader checks each reply in order.
func (r *run) streamWorker(i int, w *worker, c net.Conn) {
	// sent carries each message's start time (closed loop) or due time
	// (open loop) from the writer to the reader, in order. In a closed
	// loop no more than Depth are ever in flight.
	most := 0 // closed loop: the slots bound it
	if r.cfg.Rate > 0 {
		most = r.mostInFlight()
	}
	sent := newFlight(r.cfg.Depth, most)
	sc := stuckConnOf(c)
	if sc != nil {
		sc.stuck = sent.stuck
	}
	slots := make(chan struct{}, r.cfg.Depth) // closed loop: free window
	for range r.cfg.Depth {
		slots <- struct{}{}
	}
	done := make(chan struct{})
	// dead closes when the reader has failed: the writer stops. failed
	// says one side has counted the connection's failure, and its end
	// (ended): the other's, of the same reset or stall (a write's broken
	// pipe, a read's reset), is not a second error, as the event loops
	// count one.
	dead := make(chan struct{})
	var failed atomic.Bool
	var gone failedWhen // (noted by the side that counted the failure)
	go func() {
		defer close(done)
		if streamReaderStart != nil {
			streamReaderStart()
		}
		br := bufio.NewReaderSize(c, min(64<<10, max(4<<10, 2*r.cfg.Size)))
		var readBy time.Time
		got := make([]byte, 0, min(4*r.cfg.Size, 64<<10)) // grows to a large reply
		wrong := false                                    // the last reply was wrong: the next may be out of step
		straying := false                                 // bytes that answer no message end mid-line (see strays)
		cut := false                                      // the last reply was cut at readReply's limit, its line unended (see skipCut)
		skipped := 0                                      // bytes of that line skipped since, before its next reply was read
		// skipBuffered skips the rest of a cut reply's line in what br
		// holds: bytes that came back all the same, counted in the
		// replies' throughput.
		skipBuffered := func(now int64) {
			n, _ := skipCut(br, &cut, false)
			r.arriveBytes(n, now)
			if skipped += n; !cut {
				skipped = 0
			}
		}
		// pend is a reply held (see skippedTo) until the one after it
		// says whether the server skipped the messages before it, or
		// answered wrong; flushed, wrong, with none after.
		var pend pendingSkip
		// lostConn ends the connection after a read failed (first: the
		// reader counted the failure, not the writer): what is owed
		// is lost.
		// warm: the failure was counted the warm-up's (see run.ended).
		lostConn := func(first, warm bool) {
			pend.flush(r, i, &wrong)
			if first {
				gone.note(r)
			}
			close(dead)
			// Not under a send begun: its messages, counted owed
			// below, are written, or the close refused them and
			// they were counted all the same (see flight.fail). A
			// write under way that waits for the server to take its
			// bytes is cut short (a deadline now): left to wait, it
			// held the connection, and the run, until its deadline.
			// Its messages, handed over, are owed all the same, as the
			// event loops count their buffer.
			if sent.fail(sc.interrupt) { // (only a stuckConn's write is stuck)
				c.Close()
			}
			if readerClosed != nil {
				readerClosed()
			}
			// Ended (which may stop the run: see flight.cutEnded) once
			// the cut write has.
			sent.cutEnded()
			if first {
				r.ended(warm)
			}
			for m, ok := sent.pop(); ok; m, ok = sent.pop() {
				r.owed(m)
			}
		}
		idle := watcher{
			arm: func() {
				if r.timing() {
					refreshAtLeast(&readBy, r.cfg.Timeout, c.SetReadDeadline)
				}
			},
			// (The writer's: readBy is the reader's, which takes this.)
			reply: func() time.Time {
				if r.cfg.patient {
					return time.Time{} // Run's deadline alone
				}
				by := time.Now().Add(r.cfg.Timeout + r.cfg.Timeout/7 + 1) // as refreshAtLeast sets
				c.SetReadDeadline(by)
				return by
			},
			unblock: func() { c.SetReadDeadline(time.Now()) },
		}
		for k := uint64(0); ; k++ {
			// An open loop's connection may owe nothing for a while: the
			// reader waits on the connection then (see flight.watch).
			// Its close is an error, nothing owed wrong or lost, as
			// the event loops count it; the goroutine driver counted
			// the next message sent wrong, closed before its reply.
			// armed: the reply read next has its deadline, from its
			// message's push, not to be moved on (no reply came since).
			armed := false
			for r.cfg.Rate > 0 && sent.watch(idle) {
				_, err := br.Peek(1)
				owed, by := sent.unwatch(err != nil && !errors.Is(err, os.ErrDeadlineExceeded))
				if owed {
					readBy, armed = by, true
					break // a message sent: its reply is read below
				}
				if err == nil {
					// Bytes with none owed, as an event loop reads
					// them: they answer no message (a reply sent
					// twice, its copy later). Read with the next
					// message sent, they were taken for its reply,
					// wrong, and every later reply on the connection
					// was out of step.
					if idleBytesFound != nil {
						idleBytesFound(k)
					}
					if cut {
						skipBuffered(r.now())
					}
					r.strays(&wrong, &straying, br, r.now())
					continue
				}
				if errors.Is(err, os.ErrDeadlineExceeded) {
					continue // nothing owed, nothing came: watch on
				}
				if idleCloseFound != nil {
					idleCloseFound(k)
				}
				first := failed.CompareAndSwap(false, true)
				warm := false
				switch {
				case !first:
				case errors.Is(err, io.EOF) && !wasReset(c):
					warm = r.fail(errIdleClose)
				case errors.Is(err, io.EOF):
					warm = r.fail(&stepError{"receive", syscall.ECONNRESET}) // (failed's, said as shout connect says it)
				default:
					warm = r.fail(&stepError{"receive", err})
				}
				lostConn(first, warm)
				return
			}
			m, ok := sent.pop()
			if !ok {
				pend.flush(r, i, &wrong)
				return
			}
			want := r.wants[pick(i, k)]
			if r.timing() && !armed {
				refreshAtLeast(&readBy, r.cfg.Timeout, c.SetReadDeadline)
			}
			var err error
			line := 0 // the cut reply's line, as far as it came
			if cut {  // the rest of the last reply's line first
				var n int
				if n, err = skipCut(br, &cut, true); n > 0 {
					r.hear()
					r.arriveBytes(n, r.now())
				}
				line, skipped = len(got)+skipped+n, 0
			}
			got = got[:0]
			if err == nil {
				got, err = readReply(br, got, len(want))
			}
			if len(got) > 0 {
				r.hear()
			}
			if err != nil {
				pend.flush(r, i, &wrong)
				// The connection closed before the whole reply came: the
				// reply is wrong, not late. Any other failure, a time-out
				// included, is an error. Either way no more replies come.
				// A reset the writer met first leaves the reader only the
				// end of file: that is the writer's failure, or, if it
				// has yet to count it, a reset all the same.
				first := failed.CompareAndSwap(false, true)
				if errors.Is(err, io.EOF) && first && wasReset(c) {
					err = syscall.ECONNRESET
				}
				warm := false
				if errors.Is(err, io.EOF) && first {
					warm = r.streamMismatch(&wrong, m, got, want, true)
				} else {
					switch {
					case !first:
					case cut:
						warm = r.fail(cutLate(line, r.noReply(err)))
					default:
						warm = r.fail(replyLate(len(got), r.noReply(err)))
					}
					r.owed(m)
				}
				lostConn(first, warm)
				return
			}
			now := r.now()
			r.arrive(len(got), now)
			right := bytes.Equal(got, want)
			held := false
			if pend.j > 0 {
				// The reply after a held one (see held): in step with
				// the message it named, the server skipped those
				// before that; else the held reply was wrong.
				if j := pend.j; !right && pend.confirms(r, i, k, sent.queued(), got) {
					ms := append([]sentMsg{m}, sent.skip(j)...)
					r.skipped(pend.m)
					for _, p := range ms[:j-1] {
						r.skipped(p)
					}
					if a := ms[j-1]; a.measured && r.onTime(time.Duration(pend.at-a.at)) {
						w.record(r, time.Duration(pend.at-a.at))
					}
					m, k, right = ms[j], k+uint64(j), true
					if r.cfg.Rate <= 0 { // (the room they held)
						for range j {
							slots <- struct{}{}
						}
					}
					pend.j = 0
				} else {
					pend.flush(r, i, &wrong)
				}
			}
			if !right {
				// The right reply to a later message queued: the server
				// answered nothing to those before it, if the reply
				// after it is in step too (see skippedTo): held till
				// then.
				held = pend.hold(r, i, m, k, sent.queued(), now, got)
			}
			switch {
			case held:
			case !right:
				r.streamMismatch(&wrong, m, got, want, false)
			default:
				wrong = false // a right reply: the stream is in step
			}
			straying = false
			cut = got[len(got)-1] != '\n' // at readReply's limit: its line goes on
			if d := time.Duration(now - m.at); !held && m.measured && r.onTime(d) {
				w.record(r, d)
			}
			if sent.replied(now) && br.Buffered() > 0 {
				if cut {
					skipBuffered(now)
				}
				r.strays(&wrong, &straying, br, now)
			}
			if replyTaken != nil {
				replyTaken(k)
			}
			if r.cfg.Rate <= 0 {
				slots <- struct{}{}
			}
		}
	}()
	defer func() {
		sent.close()
		<-done
		if ringEnded != nil {
			ringEnded(sent.q.size())
		}
	}()

	var batch []byte
	var writeBy time.Time
	stopDeadline := false // a write as the run stops has set its own deadline
	k := uint64(0)        // messages sent (see pick)
	// hold holds a batch back, never sent, on a connection gone: it waits
	// for the reader to count the failure and end (dead).
	hold := func() sendFate {
		if sendEnds != nil {
			sendEnds(k)
		}
		select {
		case <-dead:
		case <-r.stop: // (stopping: the close counts for nothing)
		}
		return batchHeld
	}
	// sendBatch writes n messages in one write: those of cad from first
	// on, at now (run.now), within a send begun (see send).
	sendBatch := func(n int, cad cadence, first uint64, now int64) sendFate {
		if sendStarts != nil {
			sendStarts(k)
		}
		if r.cfg.Rate > 0 && sent.idle(now) && serverClosed(c) {
			// An open loop's server closed the connection with nothing
			// owed, between messages, and the reader, held up on a busy
			// machine, has yet to read the close (see flight.watch).
			// Written, the batch was owed at the close: the reader
			// counted its first wrong, "closed before the reply began",
			// as if the server had closed on it, though the close came
			// first. Held back, it is never sent, as the event loops,
			// which read a close before they send, count it; the reader
			// counts the close, an error, and ends (dead), while the
			// queue is open. (Bytes answering nothing that came before
			// the close it counts first, as the event loops do; it
			// waited for a message to read them with, and the writer
			// here for the stop.) Looked at only once nothing has been
			// owed for idleLook, as the event loops look (closedIdle),
			// or the reply just taken freed the room the writer was
			// held back for (see flight.idle): a connection sent to
			// more often pays nothing; looked at before every send made
			// with nothing owed, it paid a system call a send.
			return hold()
		}
		k0 := k
		batch = batch[:0]
		for j := range n {
			due := cad.due(first + uint64(j))
			m := sentMsg{due, r.inWindow(due)}
			if !sent.push(m) {
				// The reader found the connection failed, and counted
				// what was owed then: sent, this was owed past the count,
				// lost (a stall had the writer, woken for it, send after
				// the close the reader read). Only a batch's first (see
				// flight.push): none is written yet.
				return hold()
			}
			batch = append(batch, r.msgs[pick(i, k)]...)
			if m.measured {
				r.sent.Add(1)
			}
			if sentNoted != nil {
				sentNoted(r, m.at, m.measured)
			}
			k++
		}
		if sendEnds != nil {
			defer sendEnds(k0)
		}
		if r.timing() {
			refreshAtLeast(&writeBy, r.cfg.Timeout, c.SetWriteDeadline)
		} else if r.stopping.Load() && !stopDeadline {
			// An open loop's write as the run stops (see openLoop): the
			// deadline set while measuring may have passed, if the
			// writer slept past it; Run's, Timeout from the stop, may
			// not be set yet.
			stopDeadline = true
			c.SetWriteDeadline(time.Now().Add(r.cfg.giveUpAfter()))
		}
		if unsentHeld != nil {
			unsentHeld(r, i, len(batch)) // (held until the server takes it)
		}
		n, err := c.Write(batch)
		if err == nil {
			return batchSent
		}
		counted := failed.CompareAndSwap(false, true) // not the reader's, counted
		if counted {
			warm := r.fail(r.notTaken(n, len(batch), err))
			gone.note(r)
			r.ended(warm)
		}
		if sendFailed != nil {
			sendFailed()
		}
		if !counted && !errors.Is(err, net.ErrClosed) {
			// Ended by the reader's failure (cut short, if it waited
			// for the server: see flight.fail): what falls due after
			// is never sent, on the failed connection. (Closed by
			// bench, as the time to wait for replies is up, or on a
			// signal: a write failed, as before.)
			return batchCut
		}
		return batchFailed
	}
	// send is sendBatch, unless the reader found the connection failed;
	// a failure it finds meanwhile leaves the close to it, once its
	// write has ended (see flight.fail).
	send := func(n int, cad cadence, first uint64, now int64) sendFate {
		if !sent.begin() {
			if sendRefused != nil {
				sendRefused()
			}
			return batchRefused
		}
		fate := sendBatch(n, cad, first, now)
		if sent.wrote() {
			c.Close()
		}
		if sendWrote != nil {
			sendWrote()
		}
		return fate
	}
	if r.cfg.Rate > 0 {
		r.openLoop(i, send, dead, &gone, sent)
		return
	}
	for {
		select {
		case <-slots:
		case <-r.stop:
			return
		case <-dead:
			return
		}
		at := time.Now() // before stopping is looked at (see haltEarly)
		if sendTimed != nil {
			sendTimed(r)
		}
		if r.stopping.Load() { // (a free slot and stop may be ready at once)
			return
		}
		if at.Sub(r.epoch) >= time.Duration(r.windowUntil.Load()) {
			return // the window is over: the server would serve it, in no count
		}
		n := 1
	more:
		for n < r.cfg.Depth {
			select {
			case <-slots:
				n++
			default:
				break more
			}
		}
		now := int64(at.Sub(r.epoch))
		if send(n, sentAt(now), 0, now) != batchSent {
			return
		}
	}
}

// maxUnsent bounds the bytes an open loop holds for a connection whose
// server takes them slower than they fall due (mostUnsent, which may be
// less): a write of the messages due is at most that (or one message),
// and the event loops let a connection's schedule wait while it holds
// that much unwritten (see loop.due); the goroutine driver's write blocks
// instead. An event loop's connection so holds less than twice it (a
// write begun just under it), or it and a message, whether the write is
// due's, fill's or, as the run stops, sendRest's.
const maxUnsent = 1 << 20

// unsentBudget bounds the bytes an open loop's connections hold, in
// all, that their servers have not taken: MaxHeld, what a closed loop's
// may hold at most (a variable for tests). See mostUnsent.
var unsentBudget int64 = MaxHeld

// mostUnsent is what maxUnsent says for one connection of r: maxUnsent,
// or less, its share of unsentBudget (half of it: a connection holds less
// than twice it), but at least a message. So all connections hold less
// than unsentBudget or, where a message is more than the share, less than
// Conns × 2 × Size, which check bounds by MaxHeld. Each held up to
// maxUnsent alone: 19,000 connections to a server that read nothing,
// 38 GB.
func (r *run) mostUnsent() int {
	share := unsentBudget / int64(2*r.cfg.Conns)
	return max(r.cfg.Size, int(min(maxUnsent, share)))
}

// mostDue is how many messages an open loop writes at once: up to 1024,
// and no more than mostUnsent bytes of them (but at least one).
func (r *run) mostDue() int { return max(1, min(1024, r.mostUnsent()/r.cfg.Size)) }

// flightBudget bounds the messages an open loop's connections hold in
// flight in all: 8,388,608, 128 MiB at 16 bytes each (a variable for
// tests). It is twice the Timeout's worth of 1M msg/s at the default 5 s
// timeout, split over the connections: see mostInFlight.
var flightBudget = 1 << 23

// mostInFlight is how many messages an open loop keeps in flight on one
// connection, written or not, unanswered: twice Timeout's worth of its
// share of Rate, and a write's more (mostDue), but no more than its share
// of flightBudget. A server that answers every message within Timeout
// never has twice Timeout's worth: n in flight were due at least (n-1)
// intervals apart, so at that many the oldest is a Timeout past lost,
// whatever comes. The budget's share binds first where Rate × Timeout
// passes about half of flightBudget (4M msg/s at 1 s, 800,000 at the
// default 5 s; less with thousands of connections, mostDue each): there
// a server answering within Timeout, but later than about flightBudget
// ÷ Rate, meets it. Past it the connection falls behind its schedule, as
// it does for bytes the server has not taken (maxUnsent): what falls due
// is sent as replies free room, timed from when it fell due, and what is
// still held back at the end is never sent (UnsentUnanswered). Without
// it, against a server that reads all and answers slower than the rate,
// bench grew by 16 bytes a message sent: a gigabyte a minute at 1M msg/s.
func (r *run) mostInFlight() int {
	if r.cfg.oneInFlight {
		return 1
	}
	share := max(1, flightBudget/r.cfg.Conns)
	perSec := r.cfg.Rate / float64(r.cfg.Conns)
	worth := 2*r.cfg.Timeout.Seconds()*perSec + float64(r.mostDue())
	return int(min(worth, float64(share))) // (worth, in float64: Timeout × Rate may pass an int)
}

// unsentHeld, if not nil, gets the bytes connection (socket) i of r
// holds that its server has not taken yet, each time they grow: an event
// loop's bytes unwritten, or the goroutine driver's write under way
// (tests).
var unsentHeld func(r *run, i, bytes int)

// openLoopWaits, if not nil, runs as an open loop's connection (socket),
// or an event loop with an open loop's connections, begins each wait for
// the next message due (tests).
var openLoopWaits func(r *run)

// openLoop calls send for the messages of one connection's share of Rate
// as they fall due, each with its due time (and with the round's time,
// now), so a stalled server shows in the latency instead of slowing the
// schedule (no coordinated omission).
// It sends no more than sent has room for (run.mostInFlight): past that
// it falls behind, and sends what fell due as replies free room. It sends
// nothing that falls due at or past the window's end: the server would
// serve it, in no count. It returns when the run stops, a send fails, or
// dead closes; what is due after, while measuring, on a connection that
// failed is counted never sent (scheduleEnded). As the run stops it sends
// what fell due before the window's end and was not sent yet (sendRest),
// unless it was behind its schedule: then that is never sent, held back.
// A nil sent bounds nothing (UDP: a datagram's place never waits for a
// reply; see udpRingMost). A batch that send held back (batchHeld) is
// never sent, with what falls due after: its connection had failed.
// gone says when the connection failed (see afterFailure): one that
// failed past the window's end changes nothing already due.
func (r *run) openLoop(i int, send func(n int, cad cadence, first uint64, now int64) sendFate, dead <-chan struct{}, gone *failedWhen, sent *flight) {
	if openLoopStarts != nil {
		openLoopStarts()
	}
	cad := r.scheduleOf(i)
	r.scheduleBegan(cad)
	var next uint64 // the next message of cad to send
	most := r.mostDue()
	// ended: nothing more is sent from next on, of what falls due.
	ended := func(why unsentWhy) { r.scheduleEnded(cad, next, why) }
	room := func() int {
		if sent == nil {
			return math.MaxInt // (UDP: a send never waits for a reply)
		}
		return sent.room()
	}
	until := r.windowUntil.Load() // (fixed before the first message)
	// behind: the last round while measuring left messages that had
	// fallen due unsent, held back by room or by more than a write's
	// worth (held): bench (or the server) could not keep the schedule.
	behind, held := false, untaken
	// failed: what is left is never sent, the connection gone.
	failed := func() { ended(afterFailure(gone.past(r), behind, held)) }
	for {
		now := r.now()
		if sendTimed != nil {
			sendTimed(r)
		}
		if r.stopping.Load() { // (after now: see haltEarly)
			break
		}
		first, room := next, room()
		n := fellDue(cad, next, now, until, min(most, room))
		next += uint64(n)
		if now < until { // judged while measuring only (see loop.due)
			behind = fellDue(cad, next, now, until, 1) == 1
			switch {
			case !behind:
				held = untaken
			case n == room:
				held = unanswered
			}
		}
		if n > 0 {
			fate := send(n, cad, first, now)
			ok := fate == batchSent
			switch {
			case fate == batchHeld:
				// (Its server closed it, when bench does not know.)
				next = first // (none of them was sent)
				ended(connFailed)
				return
			case fate == batchRefused:
				next = first // (none of them was sent)
				failed()
				return
			case fate == batchCut:
				// The reader found the connection failed, stopping or
				// not: what falls due after is never sent, as the event
				// loops count what falls due on a connection whose
				// failure they read.
				failed()
				return
			case !ok && !r.stopping.Load():
				failed()
				return
			case !ok:
				// The time was up while the write was under way, and it
				// failed: the server had not taken its bytes by Run's
				// deadline, and held back what fell due meanwhile.
				ended(untaken)
				return
			case r.stopping.Load() && !behind:
				// The time was up while the send was under way: what fell
				// due meanwhile is sent as the run stops (sendRest), but
				// not a write's worth or more: then bench (or the server
				// taking its bytes) could not keep the schedule, and it
				// is held back, as a round that found it due would have.
				// (A sender too slow for the rate sent it all at the end,
				// and the run was all right.)
				behind = fellDue(cad, next, r.now(), until, most) == most
			}
		}
		// Full: the next to send waits for a reply to free room, not
		// for its time. Asked again, not room-n: a reply the reader
		// took while this send went out freed a place, and signalled
		// nothing, as the queue was not full then.
		// Past the window's end, nothing more: it waits for the stop.
		var wake <-chan time.Time
		var freed <-chan struct{}
		switch {
		case sent != nil && sent.room() <= 0:
			freed = sent.freed
		case cad.due(next) < until:
			wake = time.After(time.Duration(cad.due(next) - r.now()))
		}
		if openLoopWaits != nil {
			openLoopWaits(r)
		}
		select {
		case <-wake:
		case <-freed:
		case <-r.stop:
		case <-dead:
			if !r.stopping.Load() {
				failed()
				return
			}
		}
	}
	if behind {
		ended(held)
		return
	}
	r.sendRest(send, dead, gone, room, cad, &next, ended)
}

// fellDue is how many messages of cad, up to most, fell due from next on
// by now and before until.
func fellDue(cad cadence, next uint64, now, until int64, most int) int {
	n := 0
	for ; n < most && cad.due(next) <= now && cad.due(next) < until; next++ {
		n++
	}
	return n
}

// sendRest sends, as the run stops, what of an open loop's schedule fell
// due before the window's end from *next on and was not sent yet, by a
// sender on its schedule at its last round (not behind), each timed from
// when it fell due, as a sender that woke late while measuring sends it:
// its replies are awaited with the rest owed. A timer that woke late (a
// busy machine), or a write that ended as the time was up, left it in no
// count; counted never sent, it made a busy machine's run at a high rate
// not all right over a message or two at the window's edge. What it
// cannot send is never sent (ended): held back by the replies owed (its
// most in flight, room), on a connection gone (dead), or past a write
// the server had not taken by Run's deadline.
func (r *run) sendRest(send func(n int, cad cadence, first uint64, now int64) sendFate, dead <-chan struct{}, gone *failedWhen, room func() int,
	cad cadence, next *uint64, ended func(unsentWhy)) {
	<-r.stop                      // the window's end stored (see haltEarly)
	until := r.windowUntil.Load() // (as the run stopped: earlier, if it ended early)
	most := r.mostDue()
	for cad.due(*next) < until {
		select {
		case <-dead:
			ended(afterFailure(gone.past(r), false, untaken))
			return
		default:
		}
		first := *next
		n := fellDue(cad, first, math.MaxInt64, until, min(most, room()))
		*next += uint64(n)
		if n == 0 {
			ended(unanswered)
			return
		}
		switch send(n, cad, first, r.now()) {
		case batchHeld:
			*next = first
			ended(connFailed) // (its server closed it, when bench does not know: see openLoop)
			return
		case batchRefused:
			*next = first
			ended(afterFailure(gone.past(r), false, untaken))
			return
		case batchCut:
			ended(afterFailure(gone.past(r), false, untaken))
			return
		case batchFailed:
			ended(untaken)
			return
		}
	}
}
