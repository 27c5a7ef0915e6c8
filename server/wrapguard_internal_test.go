package server

import (
	"net"
	"testing"
	"time"
)

// timingConn records, at each write, whether the write timeout's clock
// was running (the timer's writeSince), and takes every byte.
type timingConn struct {
	net.Conn
	c      *conn
	timing []bool
}

func (t *timingConn) Write(p []byte) (int, error) {
	t.timing = append(t.timing, t.c.timer.writeSince.Load() != 0)
	return len(p), nil
}

// A wrapper's own write is timed by the write timeout only once the wrap
// is done: a TLS handshake's writes are the handshake's, under its own
// time limit (a handshake write timed too survived the tests, review52).
func TestWrapGuardTimesOnlyWritesAfterTheWrap(t *testing.T) {
	c := &conn{srv: &Server{WriteTimeout: time.Hour}}
	under := &timingConn{c: c}
	g := &wrapGuard{Conn: under, c: c}
	g.Write([]byte("handshake"))
	g.done.Store(true)
	g.Write([]byte("an answer to a KeyUpdate"))
	if want := []bool{false, true}; len(under.timing) != 2 || under.timing[0] != want[0] || under.timing[1] != want[1] {
		t.Errorf("write timeout's clock running at each write (the handshake's, then one of the wrapper's own after it): %v, want %v",
			under.timing, want)
	}
	if at := c.timer.writeSince.Load(); at != 0 {
		t.Errorf("writeSince %d once the writes are done, want 0", at)
	}
}

// A reply written through the wrapper in several writes of its own (TLS
// records) is timed as one write, from the reply's start: a write of the
// wrapper's under a reply's is not timed again, which would stop the
// reply's clock once the first record was written (a wrapGuard.Write
// without its look at writeSince survived the tests, review52).
func TestWrapGuardReplyTimedOnce(t *testing.T) {
	srv := &Server{WriteTimeout: time.Hour}
	srv.clock.epoch = time.Now()
	c := &conn{srv: srv}
	under := &timingConn{c: c}
	g := &wrapGuard{Conn: under, c: c}
	g.done.Store(true)
	var between []int64
	records := writerFunc(func(p []byte) (int, error) {
		g.Write(p[:1])
		between = append(between, c.timer.writeSince.Load())
		g.Write(p[1:])
		between = append(between, c.timer.writeSince.Load())
		return len(p), nil
	})
	var start int64
	c.writeTimedTo(writerFunc(func(p []byte) (int, error) {
		start = c.timer.writeSince.Load()
		return records(p)
	}), []byte("AB"))
	for i, at := range between {
		if at != start {
			t.Errorf("after record %d of the reply, writeSince %d, want the reply's start, %d", i+1, at, start)
		}
	}
}

// writerFunc is a function as an io.Writer.
type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }
