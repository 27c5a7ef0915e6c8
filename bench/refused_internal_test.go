package bench

import (
	"bufio"
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"shout/endpoint"
	"shout/internal/shouttest"
)

// refusal holds a goroutine-driven connection's writer before a send
// (sendTimed), once ready says so, until its reader has found the
// connection failed and dealt with it (readerClosed); the reader then
// waits for the writer's send, refused or begun, before it counts the
// failure, which stops a run of one connection: the writer, released,
// finds the run going on, and sends after the failure.
type refusal struct {
	held, release, sent chan struct{}
	holding, released   atomic.Bool
	sentOnce            sync.Once
}

func newRefusal() *refusal {
	return &refusal{held: make(chan struct{}), release: make(chan struct{}), sent: make(chan struct{})}
}

// set sets the hooks; ready says whether the writer is held at this
// send. The returned function unsets them.
func (h *refusal) set(ready func(r *run) bool) (unset func()) {
	sendTimed = func(r *run) {
		if ready(r) && h.holding.CompareAndSwap(false, true) {
			close(h.held)
			wait(h.release)
		}
	}
	readerClosed = func() {
		if h.released.CompareAndSwap(false, true) {
			close(h.release)
			wait(h.sent)
		}
	}
	sent := func() { // (a send begun before the release is not the one)
		if h.released.Load() {
			h.sentOnce.Do(func() { close(h.sent) })
		}
	}
	sendRefused = sent
	sendStarts = func(uint64) { sent() }
	return func() { sendTimed, readerClosed, sendRefused, sendStarts = nil, nil, nil, nil }
}

// wait waits for c, for 10 s at most: a test's safety net, not a line
// a stall is meant to reach.
func wait(c <-chan struct{}) {
	select {
	case <-c:
	case <-time.After(10 * time.Second):
	}
}

// A closed loop's send begun after its reader found the server's close
// is never sent: pushed and written to the connection the reader had
// closed, it was counted lost, a message the server never had.
func TestClosedLoopSendAfterFailureIsRefused(t *testing.T) {
	was := forceGoroutines
	forceGoroutines = true
	defer func() { forceGoroutines = was }()
	const answered = 5
	addr, got := halfClosingServer(t, answered)
	var taken atomic.Int64 // replies the reader took
	replyTaken = func(uint64) { taken.Add(1) }
	defer func() { replyTaken = nil }()
	// Held as it takes the place the last reply freed: the messages
	// sent before are owed, and the reader reads the close in the next.
	defer newRefusal().set(func(*run) bool { return taken.Load() == answered })()
	cfg := Config{Endpoint: endpoint.Endpoint{Network: "tcp", Address: addr}, Conns: 1, Depth: 3,
		Text: "ascii", Mode: "ascii", Warmup: -1, Duration: time.Minute, Timeout: 10 * time.Second}
	countsOnlyWritten(t, runWithin(t.Context(), t, cfg), got, answered)
}

// An open loop's send begun after its reader found the server's close
// (between messages) is never sent, as what falls due after: every
// message due is in one count. (Refused, the batch was in none.)
func TestOpenLoopSendAfterFailureIsUnsent(t *testing.T) {
	was := forceGoroutines
	forceGoroutines = true
	defer func() { forceGoroutines = was }()
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		line, err := bufio.NewReader(c).ReadBytes('\n')
		if err == nil {
			c.Write(bytes.ToUpper(line)) // then closes
		}
	})
	due := make(chan int64, 1)
	defer OnScheduleCounts(addr, func(n int64) { due <- n })()
	var taken atomic.Int64
	replyTaken = func(uint64) { taken.Add(1) }
	h := newRefusal()
	// Held in a round with the second message due, once the reply to
	// the first was taken.
	defer h.set(func(r *run) bool { return taken.Load() > 0 && r.now() >= r.scheduleOf(0).due(1) })()
	idleCloseFound = func(uint64) { wait(h.held) } // (found with the writer held)
	defer func() { replyTaken, idleCloseFound = nil, nil }()
	cfg := Config{Endpoint: endpoint.Endpoint{Network: "tcp", Address: addr}, Conns: 1, Rate: 5,
		Text: "ascii", Mode: "ascii", Warmup: -1, Duration: time.Minute, Timeout: 10 * time.Second}
	cfg = OneInFlight(cfg)
	rep := runWithin(t.Context(), t, cfg)
	n := <-due
	if sum := rep.Messages + rep.Lost + rep.Mismatches + rep.Unsent + rep.Unawaited; sum != n || rep.Messages != 1 || rep.Unsent != rep.UnsentFailed {
		t.Errorf("%d messages, %d lost, %d wrong, %d unsent (%d on the failed connection), %d unawaited: %d in all of %d due; want 1 message, the rest unsent on the failed connection",
			rep.Messages, rep.Lost, rep.Mismatches, rep.Unsent, rep.UnsentFailed, rep.Unawaited, sum, n)
	}
}
