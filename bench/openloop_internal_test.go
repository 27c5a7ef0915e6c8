package bench

import (
	"math"
	"sync/atomic"
	"testing"
	"time"
)

// openLoopRun is a run for openLoop alone: one connection whose messages
// all fall due at once (a nanosecond apart), against a flight of most.
func openLoopRun(most int) (*run, *flight) {
	cfg := Config{Conns: 1, Rate: 1e9, Size: 16, Warmup: -1}
	r := bareRun(&cfg)
	r.epoch = time.Now()
	r.windowUntil.Store(math.MaxInt64) // (a window without end: set one before the stop)
	return r, newFlight(1, most)
}

// reply is the reader taking the oldest message in flight and then its
// reply, which frees its place (a message being read is in flight still),
// as the goroutine driver's reader does; false once sent is closed and
// empty.
func reply(sent *flight) bool {
	_, ok := sent.pop()
	if ok {
		sent.replied(0)
	}
	return ok
}

// stopOpenLoop stops r as Run does and waits, for a while at most, for
// the open loop to return on ended.
func stopOpenLoop(t *testing.T, r *run, ended <-chan struct{}) {
	t.Helper()
	r.halt()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the open loop did not return once the run stopped")
	}
}

// A goroutine driver's open loop at its most in flight goes on sending
// as replies free room, though the reader took one while the writer
// sent: it then waited for a reply with the queue short of full, which
// no reply would signal, and sent nothing more for the rest of the run,
// counting all it held back as unanswered against a server that answered
// them all.
func TestOpenLoopRoomFreedWhileSending(t *testing.T) {
	const most, want = 8, 1000
	r, sent := openLoopRun(most)
	popOne, popAll := make(chan struct{}), make(chan struct{})
	read := make(chan struct{})
	go func() { // the reader: one reply, then every reply as it comes
		defer close(read)
		<-popOne
		reply(sent)
		<-popAll
		for reply(sent) {
		}
	}()
	var total atomic.Int64
	calls := 0
	enough := make(chan struct{})
	send := func(n int, _ cadence, _ uint64, _ int64) sendFate {
		calls++
		switch calls {
		case 1: // fills the flight; the reader then frees one place
			close(popOne)
		case 2: // the reader takes one more as this one is sent
			reply(sent)
			close(popAll)
		}
		for range n {
			sent.push(sentMsg{})
		}
		if s := total.Add(int64(n)); s >= want && s-int64(n) < want {
			close(enough)
		}
		return batchSent
	}
	ended := make(chan struct{})
	go func() { defer close(ended); r.openLoop(0, send, make(chan struct{}), new(failedWhen), sent) }()
	select {
	case <-enough:
	case <-time.After(10 * time.Second):
		t.Errorf("the open loop sent %d messages and waited, with the reader taking every reply; want %d", total.Load(), want)
	}
	r.windowUntil.Store(0) // (nothing more to send as it stops: see openLoopRun)
	stopOpenLoop(t, r, ended)
	sent.close()
	<-read
}

// What a goroutine driver's open loop held back for want of room is
// counted never sent, for that reason, when the time is up just as a
// reply frees room: the writer woke to send, found the run stopping and
// counted none of it (or, stopping as its write ended, called it untaken
// bytes).
func TestOpenLoopHeldBackAtTheStopCounted(t *testing.T) {
	const most = 8
	r, sent := openLoopRun(most)
	filled := make(chan struct{})
	send := func(n int, _ cadence, _ uint64, _ int64) sendFate {
		for range n {
			sent.push(sentMsg{})
		}
		close(filled) // (once: it sends no more, held back)
		return batchSent
	}
	ended := make(chan struct{})
	go func() { defer close(ended); r.openLoop(0, send, make(chan struct{}), new(failedWhen), sent) }()
	<-filled
	// The time is up, and a reply frees room, before stop closes.
	r.stopping.Store(true)
	reply(sent)
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the open loop did not return once the run was stopping")
	}
	stopOpenLoop(t, r, ended)
	if len(r.givenUp) != 1 || r.givenUp[0].why != unanswered {
		t.Errorf("schedules ended: %+v; want one, held back by the replies owed (%d)", r.givenUp, unanswered)
	}
}
