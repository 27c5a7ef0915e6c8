package server

import (
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"
)

// deadlines is a connection whose queue the server cannot count (it is
// no *net.TCPConn), which records the read deadlines set on it.
type deadlines struct {
	net.Conn
	mu  sync.Mutex
	set []time.Time
}

func (d *deadlines) SetReadDeadline(t time.Time) error {
	d.mu.Lock()
	d.set = append(d.set, t)
	d.mu.Unlock()
	return d.Conn.SetReadDeadline(t)
}

// A stopping connection whose queue cannot be counted (under a wrapper,
// or off Linux) waits for what arrives until the client pauses for
// drainQuiet, newcomer or not: bytes sent just before the stop may still
// be on their way. A newcomer (one that has sent nothing, younger than
// newcomerWait) waited only until it was newcomerWait old, which for one
// that was nearly that old at the stop was less: what arrived after was
// discarded unanswered, where before ced7502 such a connection, taken for
// no newcomer, waited drainQuiet.
func TestStopUncountedNewcomerWaitsDrainQuiet(t *testing.T) {
	srv := &Server{Logger: slog.New(slog.DiscardHandler), Linger: time.Hour}
	srv.closing.Store(true)
	sc, cc := net.Pipe()
	defer cc.Close()
	d := &deadlines{Conn: sc}
	c := newConn(srv, d)
	defer sc.Close()
	// A newcomer with a quarter of drainQuiet of its wait left (if the
	// test runs late, none, and then it is no newcomer).
	c.sess.info.Start = time.Now().Add(-srv.newcomerWait() + drainQuiet/4)
	begun := time.Now()
	if r := c.stop(); r != ReasonShutdown {
		t.Errorf("stop: %v, want %v", r, ReasonShutdown)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.set) == 0 {
		t.Fatal("stop set no read deadline")
	}
	if first, want := d.set[0], begun.Add(drainQuiet); first.Before(want) {
		t.Errorf("the stop's first read deadline is %v after it began, want at least drainQuiet (%v)", first.Sub(begun), drainQuiet)
	}
}
