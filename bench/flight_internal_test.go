package bench

import (
	"testing"
	"time"
)

// A ring grows no further than its limit, and gives back what a burst
// made it take: it kept the most places it ever had for the rest of the
// run.
func TestRingBoundedAndShrinks(t *testing.T) {
	q := ring{limit: 1000}
	for range 1000 {
		q.push(sentMsg{})
	}
	if len(q.buf) > 1000 {
		t.Errorf("%d places for a limit of 1000", len(q.buf))
	}
	q = ring{}
	const burst = 100_000
	for k := range burst {
		q.push(sentMsg{at: int64(k)})
	}
	for k := range burst - 10 {
		if got := q.front().at; got != int64(k) {
			t.Fatalf("message %d came out as %d", k, got)
		}
		q.pop()
	}
	if len(q.buf) > ringKeep || q.n != 10 {
		t.Errorf("after a burst of %d, with %d left in flight: %d places, want at most %d", burst, q.n, len(q.buf), ringKeep)
	}
	for k := burst - 10; k < burst; k++ { // in order still
		if got := q.front().at; got != int64(k) {
			t.Fatalf("message %d came out as %d", k, got)
		}
		q.pop()
	}
}

// The reader's wait on the connection, with nothing owed: armed as it
// begins; the first message pushed meanwhile gives its reply a deadline
// of its own, once, which unwatch hands on (a later push, nothing:
// the oldest owed is timed); close ends a wait with nothing owed, and
// only such a wait. A push did nothing to the wait, so that its reply
// had only what was left of the wait's deadline and then a whole Timeout
// more.
func TestFlightWatch(t *testing.T) {
	var armed, replies, unblocked int
	by := time.Unix(1e9, 0)
	w := watcher{
		arm:     func() { armed++ },
		reply:   func() time.Time { replies++; return by },
		unblock: func() { unblocked++ },
	}
	f := newFlight(1, 8)
	if !f.watch(w) || armed != 1 {
		t.Fatalf("nothing owed: watch %d times armed, want a wait armed once", armed)
	}
	f.push(sentMsg{})
	f.push(sentMsg{})
	if replies != 1 {
		t.Errorf("two pushed in the wait: the reply's deadline set %d times, want once", replies)
	}
	if owed, got := f.unwatch(false); !owed || !got.Equal(by) {
		t.Errorf("unwatch: owed %v, reply by %v; want owed, by %v", owed, got, by)
	}
	if f.watch(w) || armed != 1 {
		t.Error("two owed: the reader waited on the connection")
	}
	f.push(sentMsg{}) // not watching: no deadline of its own
	f.close()
	if replies != 1 || unblocked != 0 {
		t.Errorf("outside a wait: reply set %d times, unblocked %d times; want 1, 0", replies, unblocked)
	}
	for range 3 {
		f.pop()
	}
	f = newFlight(1, 8)
	f.watch(w)
	f.close()
	if unblocked != 1 {
		t.Errorf("closed in a wait with nothing owed: unblocked %d times, want once", unblocked)
	}
	if owed, _ := f.unwatch(false); owed || f.watch(w) {
		t.Error("closed with nothing owed: the reader waits on")
	}
}

// An open loop's send looks for its server's idle close only once
// nothing has been owed for idleLook since the reader took its last
// reply, as an event loop's send does (closedIdle), not with a message
// owed or soon after a reply: looked for before every send made with
// nothing owed, a connection sent to more often than every idleLook
// paid a system call a send.
//
// A new connection, which has owed nothing yet, is looked at once it has
// owed nothing for idleLook since the run began (run.now 0), as an event
// loop's is (loopConn.since 0): a server may close it for being idle
// before its first message falls due.
func TestFlightIdle(t *testing.T) {
	const t0, t1 = int64(time.Second), int64(2 * time.Second)
	if f := newFlight(1, 8); !f.idle(int64(time.Minute)) {
		t.Error("a new connection, nothing owed a minute into the run: not idle")
	}
	f := newFlight(1, 8)
	f.push(sentMsg{})
	f.push(sentMsg{})
	f.pop()
	if f.replied(t0) || f.idle(t1+int64(idleLook)) {
		t.Error("a message owed: idle")
	}
	f.pop()
	if !f.replied(t1) {
		t.Error("every reply taken: a message owed")
	}
	for _, tc := range []struct {
		after time.Duration // since the last reply
		want  bool
	}{{0, false}, {idleLook - 1, false}, {idleLook, true}, {time.Minute, true}} {
		if got := f.idle(t1 + int64(tc.after)); got != tc.want {
			t.Errorf("nothing owed %v after the last reply: idle %v, want %v", tc.after, got, tc.want)
		}
	}
}

// A connection's messages in flight at depth 32: one sent for each
// reply, as a closed loop does, through the event loops' ring and
// through the goroutine driver's queue.
func BenchmarkRing(b *testing.B) {
	var q ring
	for range 32 {
		q.push(sentMsg{})
	}
	for b.Loop() {
		q.push(sentMsg{})
		q.pop()
	}
}

func BenchmarkFlight(b *testing.B) {
	f := newFlight(32, 0)
	for range 32 {
		f.push(sentMsg{})
	}
	for b.Loop() {
		f.push(sentMsg{})
		f.pop()
	}
}

// A ring is a queue: whatever the pushes and pops, it gives back what
// was pushed, in order, as a slice does; it grows no further than its
// limit, and a ring that shrinks (past ringKeep, at a quarter full)
// keeps every message in flight across the copy, wrapped or not. Each
// op byte pushes (high bit clear) or pops up to (its low bits + 1) × 8
// messages, so that a few bytes take it past ringKeep and back.
func FuzzRing(f *testing.F) {
	f.Add(uint16(0), uint16(0), []byte{0x7f, 0x7f, 0x7f, 0xff, 0xff, 0x10, 0xff, 0xff})
	f.Add(uint16(4), uint16(3000), []byte{0x7f, 0x7f, 0x7f, 0x7f, 0xf0, 0x40, 0xff, 0xff, 0xff, 0xff})
	f.Add(uint16(10000), uint16(0), []byte{0x01, 0x81, 0x7f, 0xff})
	f.Add(uint16(1), uint16(1), []byte{0x00, 0x80, 0x00})
	f.Fuzz(func(t *testing.T, size, limit uint16, ops []byte) {
		q := ring{buf: make([]sentMsg, size), limit: int(limit)}
		var model []int64
		pushed := int64(0)
		for _, op := range ops {
			count := (int(op&0x7f) + 1) * 8
			for range count {
				if op&0x80 == 0 {
					if q.limit > 0 && q.n >= q.limit {
						break // the caller keeps n within the limit
					}
					q.push(sentMsg{at: pushed})
					model = append(model, pushed)
					pushed++
				} else {
					if q.n == 0 {
						break
					}
					if got := q.front().at; got != model[0] {
						t.Fatalf("popped %d, want %d", got, model[0])
					}
					q.pop()
					model = model[1:]
				}
				if q.n != len(model) || len(q.buf) < q.n {
					t.Fatalf("%d in flight in %d places, want %d", q.n, len(q.buf), len(model))
				}
				if q.limit > 0 && len(q.buf) > max(q.limit, int(size)) {
					t.Fatalf("%d places, past the limit of %d", len(q.buf), q.limit)
				}
			}
			// Once a burst is gone, its places are given back (but for
			// a ring made larger: it halves once a pop).
			if len(q.buf) > 2*max(ringKeep, int(size), 4*q.n+4) {
				t.Fatalf("%d places for %d in flight", len(q.buf), q.n)
			}
		}
		for k, want := range model { // and the rest, in order
			if got := q.front().at; got != want {
				t.Fatalf("popped %d of the %d left as %d, want %d", k, len(model), got, want)
			}
			q.pop()
		}
	})
}

// The message the reader took off the queue is in flight until its reply
// is taken: with one in flight (OneInFlight), the writer had room for the
// next as the reader began to wait for the last's reply, and a stall
// over the interval had it sent with that reply owed. The reply makes the
// room, and the send it lets go looks for a close that came with the
// reply first (idle), as nothing else has been owed for long; one pushed
// since, no longer.
func TestFlightReplyMakesRoom(t *testing.T) {
	f := newFlight(1, 1)
	if !f.push(sentMsg{}) || f.room() != 0 {
		t.Fatalf("one pushed of one: room %d, want 0", f.room())
	}
	if _, ok := f.pop(); !ok {
		t.Fatal("nothing popped")
	}
	if got := f.room(); got != 0 {
		t.Errorf("popped, its reply awaited: room %d, want 0", got)
	}
	const since = int64(time.Second)
	if f.idle(since + int64(idleLook)) {
		t.Error("popped, its reply awaited: idle")
	}
	f.replied(since)
	select {
	case <-f.freed:
	default:
		t.Error("the reply freed no room")
	}
	if got := f.room(); got != 1 {
		t.Errorf("replied: room %d, want 1", got)
	}
	if !f.idle(since) {
		t.Error("the reply freed the room the writer was held back for: not idle, no look for a close")
	}
	f.push(sentMsg{})
	f.pop()
	f.replied(since + 1)
	select { // (not a wait: with no signal the test would hang, not fail)
	case <-f.freed:
	default:
		t.Fatal("the second reply freed no room")
	}
	f.push(sentMsg{})
	f.pop()
	if f.idle(since + 1) {
		t.Error("one pushed since the reply, its reply awaited: idle")
	}
	// Two in flight at most: the first reply frees room, the second
	// comes with room to spare, and its send does not look.
	f = newFlight(1, 2)
	f.push(sentMsg{})
	f.push(sentMsg{})
	f.pop()
	f.replied(since)
	f.pop()
	f.replied(since)
	if f.idle(since) {
		t.Error("a reply that came with room to spare: idle, a look for a close")
	}
}

// A write outside a send that waits for the server (stuck) leaves the
// reader's failure nothing to cut: under TLS the reader's own read
// writes (the answer to a server's KeyUpdate), through the same socket.
// Its wait was taken for the writer's: fail cut it after it had ended,
// and cutEnded waited for the end of a send none had begun (wrote), for
// ever: the connection, and the run, never ended.
func TestStuckOutsideASendLeavesNothingToCut(t *testing.T) {
	f := newFlight(1, 0)
	if f.stuck() { // the reader's write, with no send begun
		t.Fatal("the write gave up before the failure")
	}
	interrupted := false
	if !f.fail(func() { interrupted = true }) {
		t.Error("fail with no send begun left the close to the writer")
	}
	if interrupted || f.cut != nil {
		t.Fatal("fail cut a write outside a send: cutEnded waits for a wrote that never comes")
	}
	f.cutEnded()
	// A send's write still is cut.
	f = newFlight(1, 0)
	f.begin()
	f.stuck()
	if f.fail(func() { interrupted = true }); !interrupted {
		t.Error("a send's write that waited for the server was not cut")
	}
}
