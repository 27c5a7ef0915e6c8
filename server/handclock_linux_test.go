package server

import (
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// handClock is a clock for the event loops that only the test moves
// (their loopClock): a loop's wait for its deadline ends when the test
// moves the clock past it, never by itself. A test tells what a loop
// does at which instant, without sleeping: advance returns once each
// loop it woke has done what was due and waits again.
type handClock struct {
	lc loopClock

	mu    sync.Mutex
	loops map[*loop]*handWait
	moved chan struct{} // closed, and made anew, at every wait a loop begins
}

// handWait is what the clock knows of one loop's wait.
type handWait struct {
	f  *os.File // what it waits on
	at int64    // until when, on the clock; -1 for no deadline
	n  int      // the waits it began so far
}

// handClocked serves ln (as oneLoop does) with s on one event loop on a
// handClock, and returns the clock and the address served. The clock
// starts at an hour, as if the loop had run that long: no time it stamps
// is zero.
func handClocked(t *testing.T, s *Server, ln net.Listener) (*handClock, net.Addr) {
	t.Helper()
	k := &handClock{loops: make(map[*loop]*handWait), moved: make(chan struct{})}
	k.lc.now.Store(int64(time.Hour))
	k.lc.waits = k.waits
	testClock = &k.lc
	t.Cleanup(func() { // after oneLoop's, which closes s
		<-s.Ended()
		testClock = nil
	})
	return k, oneLoop(t, s, ln)
}

func (k *handClock) now() int64 { return k.lc.now.Load() }

func (k *handClock) waits(l *loop, at int64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	w := k.loops[l]
	if w == nil {
		w = &handWait{}
		k.loops[l] = w
	}
	w.f, w.at, w.n = l.pollFile, at, w.n+1
	d := time.Time{}
	if at >= 0 && at <= k.now() {
		d = past // due already: it wakes at once, as a deadline passed would
	}
	w.f.SetReadDeadline(d)
	close(k.moved)
	k.moved = make(chan struct{})
}

// advance moves the clock on by d. It wakes each loop whose deadline it
// passed, and waits until that loop waits again: whatever was due by the
// new time is done then. (A loop that ends instead, its server stopped,
// does not wait again: advance is not for that.)
func (k *handClock) advance(t *testing.T, d time.Duration) {
	t.Helper()
	k.mu.Lock()
	now := k.lc.now.Add(int64(d))
	woken := map[*handWait]int{}
	for _, w := range k.loops {
		if w.at >= 0 && w.at <= now {
			w.f.SetReadDeadline(past)
			woken[w] = w.n
		}
	}
	k.mu.Unlock()
	k.until(t, "the loops woken at "+time.Duration(now).String()+" to wait again", func() bool {
		for w, n := range woken {
			if w.n == n {
				return false
			}
		}
		return true
	})
}

// deadline waits until a loop waits with a deadline for which ok holds.
func (k *handClock) deadline(t *testing.T, what string, ok func(at int64) bool) {
	t.Helper()
	k.until(t, "a loop to wait "+what, func() bool {
		for _, w := range k.loops {
			if ok(w.at) {
				return true
			}
		}
		return false
	})
}

// until waits until cond holds (under k.mu), for at most 10 s.
func (k *handClock) until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.After(10 * time.Second)
	for {
		k.mu.Lock()
		ok, moved := cond(), k.moved
		k.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-moved:
		case <-end:
			t.Fatalf("waited 10 s for %s", what)
		}
	}
}
