//go:build unix

package bench

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// errGaveUp is a stuckConn write's when it gave up.
var errGaveUp = errors.New("the write gave up: the connection had failed")

// stuckConn is a goroutine-driven stream connection's TCP socket, under
// TLS or not, whose write, each time the socket takes no more for now,
// asks stuck whether to give up rather than wait for the server to take
// more (see flight.stuck).
type stuckConn struct {
	*net.TCPConn
	stuck func() (giveUp bool) // nil: the socket's own Write
	stuckWrite
	// cut: the write under way was cut short (interrupt), its deadline
	// now, which no later one moves on.
	mu  sync.Mutex
	cut bool
}

// stuckWrite is the state of a stuckConn's write under way: its writes
// come one at a time (the writer's; under TLS, its record layer's).
type stuckWrite struct {
	raw  syscall.RawConn
	step func(fd uintptr) bool // (made once: a write allocates nothing)
	b    []byte
	n    int
	err  error
}

// Write writes b as the socket's own Write does, but, once the socket
// takes no more for now and stuck says so, gives up with what it took
// (errGaveUp) instead of waiting for the server to take more. Each wait
// is as the socket's own, to the write deadline.
func (c *stuckConn) Write(b []byte) (int, error) {
	if c.stuck == nil {
		return c.TCPConn.Write(b)
	}
	w := &c.stuckWrite
	if w.raw == nil {
		raw, err := c.SyscallConn()
		if err != nil {
			return 0, err
		}
		w.raw, w.step = raw, c.writeSome
	}
	w.b, w.n, w.err = b, 0, nil
	err := w.raw.Write(w.step)
	n, werr := w.n, w.err
	w.b, w.err = nil, nil
	if op := (*net.OpError)(nil); errors.As(err, &op) {
		err = op.Err // (the deadline's, or the close's: said as a write's below)
	}
	if werr == nil {
		werr = err
	}
	if werr != nil {
		return n, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: werr}
	}
	return n, nil
}

// writeSome writes what it can of the write under way, and reports
// whether the write is over: all written, failed, or given up.
func (c *stuckConn) writeSome(fd uintptr) bool {
	w := &c.stuckWrite
	for w.n < len(w.b) {
		k, err := syscall.Write(int(fd), w.b[w.n:min(len(w.b), w.n+1<<30)]) // (at most a gigabyte at once, as Go's)
		w.n += max(k, 0)
		switch {
		case err == syscall.EINTR:
		case err == syscall.EAGAIN:
			if c.stuck() {
				w.err = errGaveUp
				return true
			}
			return false // wait for room, or the deadline
		case err != nil:
			w.err = os.NewSyscallError("write", err)
			return true
		case k == 0:
			w.err = io.ErrUnexpectedEOF
			return true
		}
	}
	return true
}

// interrupt ends the wait of the write under way for the server to take
// its bytes, now (see flight.fail), for good: a run that stops at the
// same moment sets every connection's deadline Timeout on (drain), and
// set before the woken writer ran, that deadline was the wait's (the
// poller takes a deadline moved on before its waiter ran for none come):
// the connection, and the run, ended Timeout late.
func (c *stuckConn) interrupt() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = true
	c.TCPConn.SetWriteDeadline(time.Now())
}

// SetDeadline sets the read deadline, and the write's unless the write was
// cut (interrupt).
func (c *stuckConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut {
		return c.TCPConn.SetReadDeadline(t)
	}
	return c.TCPConn.SetDeadline(t)
}

// SetWriteDeadline sets the write deadline unless the write was cut
// (interrupt).
func (c *stuckConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut {
		return nil
	}
	return c.TCPConn.SetWriteDeadline(t)
}
