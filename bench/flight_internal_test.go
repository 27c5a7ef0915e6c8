package bench

import "testing"

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
