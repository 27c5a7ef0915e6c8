package bench

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// UseGoroutines makes runs use the goroutine driver until the returned
// function is called, so tests cover both drivers.
func UseGoroutines() (restore func()) {
	forceGoroutines = true
	return func() { forceGoroutines = false }
}

// SetUDPRing makes each UDP socket start remembering n datagrams, until
// the returned function is called.
func SetUDPRing(n int) (restore func()) {
	was := udpRing
	udpRing = n
	return func() { udpRing = was }
}

// SetMessagesHeld bounds a run's distinct messages to n bytes, until the
// returned function is called.
func SetMessagesHeld(n int) (restore func()) {
	was := messagesHeld
	messagesHeld = n
	return func() { messagesHeld = was }
}

// PauseUDPReaders makes each UDP socket's reader wait for release before
// it first reads, until the returned function is called.
func PauseUDPReaders(release <-chan struct{}) (restore func()) {
	udpReaderStart = func() { <-release }
	return func() { udpReaderStart = nil }
}

// SetUDPReadBuffer asks for n bytes of receive buffer on each UDP socket,
// until the returned function is called.
func SetUDPReadBuffer(n int) (restore func()) {
	was := udpReadBuffer
	udpReadBuffer = n
	return func() { udpReadBuffer = was }
}

// SocketDrops is how many datagrams pc's socket has dropped since it was
// made, its receive buffer full, as the kernel reports them (Linux), or 0.
func SocketDrops(pc net.PacketConn) int64 {
	if c, ok := pc.(net.Conn); ok { // (a *net.UDPConn is both)
		return socketDrops(c)
	}
	return 0
}

// PauseStreamReadersUntilSendFails makes each goroutine-driven stream
// connection's reader wait, before it first reads, until a write has
// failed or wait has passed, until the returned function is called.
func PauseStreamReadersUntilSendFails(wait time.Duration) (restore func()) {
	failed := make(chan struct{})
	streamReaderStart = func() {
		select {
		case <-failed:
		case <-time.After(wait):
		}
	}
	sendFailed = sync.OnceFunc(func() { close(failed) })
	return func() { streamReaderStart, sendFailed = nil, nil }
}

// DelayFirstUDPSend makes the first datagram of a run's first socket wait
// d past when it falls due, as a timer that wakes late would, until the
// returned function is called.
func DelayFirstUDPSend(d time.Duration) (restore func()) {
	sleep := sync.OnceFunc(func() { time.Sleep(d) })
	udpBeforeSend = func(uint64) { sleep() }
	return func() { udpBeforeSend = nil }
}

// SlowUDPSends makes each datagram's send wait d first, as a sender too
// slow for the rate would, until the returned function is called.
func SlowUDPSends(d time.Duration) (restore func()) {
	udpBeforeSend = func(uint64) { time.Sleep(d) }
	return func() { udpBeforeSend = nil }
}

// SetUDPRingMax makes each UDP socket's ring grow to at most n datagrams,
// until the returned function is called.
func SetUDPRingMax(n int) (restore func()) {
	was := maxUDPRing
	maxUDPRing = n
	return func() { maxUDPRing = was }
}

// HoldUDPSocket makes a run's one UDP socket's reader wait before it first
// reads, and the socket's datagram gone send only once gone is closed;
// before the next datagram's, the reader starts, and the sender waits
// until the reader has ended. Until the returned function is called.
func HoldUDPSocket(gone <-chan struct{}, goneSeq uint64) (restore func()) {
	release, ended := make(chan struct{}), make(chan struct{})
	udpReaderStart = func() { <-release }
	udpReaderEnd = func() { close(ended) }
	udpBeforeSend = func(seq uint64) {
		switch seq {
		case goneSeq:
			<-gone
		case goneSeq + 1:
			close(release)
			<-ended
		}
	}
	return func() { udpReaderStart, udpReaderEnd, udpBeforeSend = nil, nil, nil }
}

// AtWindowEnd runs f as measuring ends, once sending has stopped, until
// the returned function is called.
func AtWindowEnd(f func()) (restore func()) {
	windowEnded = f
	return func() { windowEnded = nil }
}

// PauseStreamReaders makes each goroutine-driven stream connection's
// reader wait, before it first reads, until release is closed, until the
// returned function is called.
func PauseStreamReaders(release <-chan struct{}) (restore func()) {
	streamReaderStart = func() { <-release }
	return func() { streamReaderStart = nil }
}

// SetFlightBudget bounds the messages an open loop's stream connections
// keep in flight, in all, to n, until the returned function is called.
func SetFlightBudget(n int) (restore func()) {
	was := flightBudget
	flightBudget = n
	return func() { flightBudget = was }
}

// SetUnsentBudget bounds the bytes an open loop's stream connections
// hold unwritten, in all, to n, until the returned function is called.
func SetUnsentBudget(n int64) (restore func()) {
	was := unsentBudget
	unsentBudget = n
	return func() { unsentBudget = was }
}

// OnUnsentHeld calls f with a stream connection's number in its run and
// the bytes it holds that its server has not taken yet, each time they
// grow, until the returned function is called.
func OnUnsentHeld(f func(conn, bytes int)) (restore func()) {
	unsentHeld = func(_ *run, i, bytes int) { f(i, bytes) }
	return func() { unsentHeld = nil }
}

// OnRingEnded calls f, as each stream connection ends, with the most
// places its ring of messages in flight had, until the returned function
// is called.
func OnRingEnded(f func(places int)) (restore func()) {
	ringEnded = f
	return func() { ringEnded = nil }
}

// SetUDPBudget bounds the places of a run's UDP sockets' rings, in all,
// to n, until the returned function is called.
func SetUDPBudget(n int) (restore func()) {
	was := udpBudget
	udpBudget = n
	return func() { udpBudget = was }
}

// OnUDPRingEnded calls f, as each UDP socket ends, with the most places
// its ring had and the most lost datagrams it remembered out of it, until
// the returned function is called.
func OnUDPRingEnded(f func(places, gone int)) (restore func()) {
	udpRingEnded = f
	return func() { udpRingEnded = nil }
}

// OnScheduleCounts calls f, once each run to addr has stopped, with how
// many messages of its open loop's schedules fell due while measuring, by
// bench's clock, until the returned function is called. Runs to other
// addresses, which tests running in parallel make, are not f's.
func OnScheduleCounts(addr string, f func(due int64)) (restore func()) {
	scheduleCountsTo.Store(addr, f)
	return func() { scheduleCountsTo.Delete(addr) }
}

// scheduleCountsTo holds OnScheduleCounts' functions by address.
var scheduleCountsTo sync.Map

// scheduleCounts is set once, before any test runs, and never again:
// tests that run in parallel each keep their own function in
// scheduleCountsTo instead, and no run reads the hook as one sets it.
func init() {
	scheduleCounts = func(addr string, due int64) {
		if f, ok := scheduleCountsTo.Load(addr); ok {
			f.(func(int64))(due)
		}
	}
}

// StallOpenLoopWait makes the first wait for its next message that an
// open loop's connection (socket), or an event loop of them, begins while
// measuring last until the run stops, as a timer that woke late on a busy
// machine would, until the returned function is called.
func StallOpenLoopWait() (restore func()) {
	var stalled atomic.Bool
	openLoopWaits = func(r *run) {
		if r.inWindow(r.now()) && stalled.CompareAndSwap(false, true) {
			<-r.stop
		}
	}
	return func() { openLoopWaits = nil }
}

// StallOpenLoopWaitPastTheEnd makes the first wait for its next message
// that an open loop's connection (socket), or an event loop of them,
// begins while measuring last until the clock wakes at the window's end,
// and the clock wait, before sending stops, until that connection's next
// wait begins, which lasts until the run stops: its one round between
// runs past the window's end before it can see the stop, as a loop woken
// late on a busy machine does when it runs before the clock. Until the
// returned function is called.
func StallOpenLoopWaitPastTheEnd() (restore func()) {
	var stalled, rounded atomic.Bool
	timeUp, round := make(chan struct{}), make(chan struct{})
	// (Each wait is bounded: a run that never gets there does not hang.)
	openLoopWaits = func(r *run) {
		switch {
		case r.inWindow(r.now()) && stalled.CompareAndSwap(false, true):
			select {
			case <-timeUp:
			case <-time.After(10 * time.Second):
			}
		case stalled.Load() && rounded.CompareAndSwap(false, true):
			close(round)
			<-r.stop
		}
	}
	windowTimeUp = func(*run) {
		close(timeUp)
		select {
		case <-round:
		case <-time.After(10 * time.Second):
		}
	}
	return func() { openLoopWaits, windowTimeUp = nil, nil }
}

// AtWindowBegin runs f as the warm-up's time is up, before the run
// counts as measuring, until the returned function is called.
func AtWindowBegin(f func()) (restore func()) {
	windowBegins = func(*run) { f() }
	return func() { windowBegins = nil }
}

// AtWindowBeginLeft is AtWindowBegin, f given how much of the window was
// left by the clock as it woke: none, or less than a message's interval,
// if it woke late on a busy machine, when every message due in the window
// may have been sent already.
func AtWindowBeginLeft(f func(left time.Duration)) (restore func()) {
	windowBegins = func(r *run) { f(time.Duration(r.windowUntil.Load() - r.now())) }
	return func() { windowBegins = nil }
}

// OnMeasuringBegan runs f once the run counts as measuring, and
// onWarmFail as an error is counted the warm-up's, until the returned
// function is called.
func OnMeasuringBegan(f, onWarmFail func()) (restore func()) {
	measuringBegan, warmFailCounted = f, onWarmFail
	return func() { measuringBegan, warmFailCounted = nil, nil }
}

// OnUDPSend calls f before each datagram a run's UDP sockets send, with
// its sequence number, until the returned function is called.
func OnUDPSend(f func(seq uint64)) (restore func()) {
	udpBeforeSend = f
	return func() { udpBeforeSend = nil }
}

// OnSent calls f for each message a run's stream connections (UDP
// sockets, churning exchanges) hand over to be sent, with whether it
// counts, until the returned function is called.
func OnSent(f func(measured bool)) (restore func()) {
	sentNoted = func(_ *run, _ int64, measured bool) { f(measured) }
	return func() { sentNoted = nil }
}

// DelayOpenLoopStart makes each open loop's sender (goroutine driver) or
// event loop wait d before it looks at its schedule, as one that first
// ran late on a busy machine would, until the returned function is
// called.
func DelayOpenLoopStart(d time.Duration) (restore func()) {
	openLoopStarts = func() { time.Sleep(d) }
	return func() { openLoopStarts = nil }
}

// OnFail calls f as each error is counted, with whether it was counted
// the warm-up's, until the returned function is called.
func OnFail(f func(warm bool)) (restore func()) {
	failCounted = f
	return func() { failCounted = nil }
}

// Patient returns c made patient: the clock Timeout passes by stops while
// measuring (see Config.patient), so that a test about what is counted
// loses no message to a machine that stalls past Timeout.
func Patient(c Config) Config {
	c.patient = true
	return c
}

// PatientButEvery returns c made patient but for every n-th datagram
// (numbered n-1, 2n-1 and so on), which its test's server or path leaves
// unanswered, or answers past Timeout, on purpose: those are given up at
// Timeout, as in a run not patient (see Config.unansweredEvery).
func PatientButEvery(c Config, n uint64) Config {
	c.patient, c.unansweredEvery = true, n
	return c
}

// CountAllDrops returns c adding to n what each of its run's UDP
// sockets dropped, its receive buffer full, counted in DroppedByBench
// or not (see Config.allDrops).
func CountAllDrops(c Config, n *atomic.Int64) Config {
	c.allDrops = n
	return c
}

// SeqOf is the sequence number datagram d (a reply too) is tagged with,
// and whether it has one.
func SeqOf(d []byte) (seq uint64, ok bool) { return seqOf(d) }

// OneInFlight returns c keeping one message in flight on each of an open
// loop's stream connections (see Config.oneInFlight).
func OneInFlight(c Config) Config {
	c.oneInFlight = true
	return c
}

// HoldStreamReaderOverSend makes a goroutine-driven stream connection's
// reader, having taken reply k (from 0), wait until its writer's send of
// message k+1 has ended, and that send begin only once reply k is taken
// and ready is closed, until the returned function is called. (By the
// clock alone, a stall as long as the messages' interval had message k+1
// sent with k owed.)
func HoldStreamReaderOverSend(k uint64, ready <-chan struct{}) (restore func()) {
	taken, sent := make(chan struct{}), make(chan struct{})
	// (Each wait is bounded: a run that never sends it does not hang.)
	replyTaken = func(n uint64) {
		if n == k {
			close(taken)
			select {
			case <-sent:
			case <-time.After(10 * time.Second):
			}
		}
	}
	sendStarts = func(n uint64) {
		if n == k+1 {
			for _, c := range []<-chan struct{}{taken, ready} {
				select {
				case <-c:
				case <-time.After(10 * time.Second):
				}
			}
		}
	}
	sendEnds = func(n uint64) {
		if n == k+1 {
			close(sent)
		}
	}
	return func() { replyTaken, sendStarts, sendEnds = nil, nil, nil }
}

// HoldReaderAtIdleCloseOverSend makes a goroutine-driven stream
// connection's reader, having found the connection closed with nothing
// owed in its wait for reply k (from 0), wait until its writer's send of
// message k has ended, and that send begin only once the reader found the
// close, until the returned function is called. (By the clock alone, a
// stall had the reader found the close, and the writer, woken for the
// next message, send it before the reader counted the close.)
func HoldReaderAtIdleCloseOverSend(k uint64) (restore func()) {
	found, sent := make(chan struct{}), make(chan struct{})
	// (Each wait is bounded: a run that never sends it does not hang.)
	idleCloseFound = func(n uint64) {
		if n == k {
			close(found)
			select {
			case <-sent:
			case <-time.After(10 * time.Second):
			}
		}
	}
	sendStarts = func(n uint64) {
		if n == k {
			select {
			case <-found:
			case <-time.After(10 * time.Second):
			}
		}
	}
	sendEnds = func(n uint64) {
		if n == k {
			close(sent)
		}
	}
	return func() { idleCloseFound, sendStarts, sendEnds = nil, nil, nil }
}

// OnOpenLoopWait runs f as an open loop's connection (socket), or an
// event loop of them, begins each wait for its next message, until the
// returned function is called.
func OnOpenLoopWait(f func()) (restore func()) {
	openLoopWaits = func(*run) { f() }
	return func() { openLoopWaits = nil }
}

// SetUDPLocal binds each UDP socket to addr, until the returned function
// is called. Tests that call it must not run in parallel.
func SetUDPLocal(addr net.Addr) (restore func()) {
	udpLocal = addr
	return func() { udpLocal = nil }
}
