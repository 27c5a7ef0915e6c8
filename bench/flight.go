package bench

import "sync"

// ring is a queue of messages in flight.
type ring struct {
	buf     []sentMsg
	head, n int
}

func (q *ring) push(m sentMsg) {
	if q.n == len(q.buf) {
		nb := make([]sentMsg, max(4, 2*len(q.buf)))
		for k := range q.n {
			nb[k] = q.buf[(q.head+k)%len(q.buf)]
		}
		q.buf, q.head = nb, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = m
	q.n++
}

func (q *ring) front() sentMsg { return q.buf[q.head] }

func (q *ring) pop() {
	q.head = (q.head + 1) % len(q.buf)
	q.n--
}

// flight is a goroutine-driven stream connection's messages in flight,
// oldest first, from its writer to its reader. A push never waits for the
// reader: in an open loop the writer sends what falls due whatever the
// reader has still to check (it waited once 1,024 were in flight, so that
// bench's own slow reading held back messages the server had answered,
// counted as the server's: Unsent), as the event loops' ring does; in a
// closed loop the writer's slots bound it at Depth.
type flight struct {
	mu     sync.Mutex
	q      ring
	closed bool
	ready  chan struct{} // a message was pushed, or the queue closed
}

func newFlight(size int) *flight {
	return &flight{q: ring{buf: make([]sentMsg, max(size, 1))}, ready: make(chan struct{}, 1)}
}

// push adds m, the newest.
func (f *flight) push(m sentMsg) {
	f.mu.Lock()
	f.q.push(m)
	f.mu.Unlock()
	f.wake()
}

// close says no message comes after those pushed.
func (f *flight) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.wake()
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

// empty reports whether no message is in flight.
func (f *flight) empty() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.q.n == 0
}
