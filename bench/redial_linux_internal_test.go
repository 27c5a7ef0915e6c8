//go:build linux

package bench

import (
	"context"
	"math"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Messages owed at a graceful close that are lost because the new
// connection could not be watched (epoll_ctl failed: here the "socket" is
// a regular file) are lost, not resent: the connection made after that is
// owed none of them. Each count of a message is one of answered, lost or
// never sent.
func TestLoopResentNotCountedWhenWatchFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := Config{Conns: 1, Rate: 1000, Size: 16, Warmup: -1, Reconnect: true}
	r := bareRun(&cfg)
	r.epoch = time.Now()
	r.windowUntil.Store(math.MaxInt64) // measuring, without end: the failure counts
	l := &loop{r: r, w: r.newWorker(), ep: -1, inboxFD: -1, unsent: r.mostUnsent(), inbox: make(chan redialed, 1), ctx: context.Background(), dials: &sync.WaitGroup{}}
	l.dial = func(ctx context.Context, _ int) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", ln.Addr().String())
	}
	if l.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(l.ep)
	if l.inboxFD, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(l.inboxFD)

	// A connection the server closed gracefully with 4 measured messages
	// owed, being made again: they are to be resent on the new one.
	const owed = 4
	c := &loopConn{fd: -1, q: ring{limit: 8}, redialing: true, served: true, resend: owed, sent: owed}
	l.conns = []*loopConn{c}
	for range owed {
		c.q.push(sentMsg{measured: true})
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	notSocket, err := unix.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	l.inbox <- redialed{c: c, fd: notSocket}
	// The watch fails: the 4 are lost, and the connection is made again
	// (in this call, if the dial is quick enough, or the next).
	l.takeRedialed(r.now())
	l.dials.Wait()
	l.takeRedialed(r.now())
	if c.redialing || c.closed {
		t.Fatalf("being made again %v, closed %v; want a new connection in place", c.redialing, c.closed)
	}
	defer unix.Close(c.fd)
	if r.lost.Load() != owed || r.errs.Load() != 1 || r.reconnects.Load() != 1 || r.resent.Load() != 0 {
		t.Errorf("a new connection that cannot be watched, then one that can: %d lost, %d errors, %d made again, %d resent; want %d, 1, 1 and 0: the %d owed were lost, not sent again",
			r.lost.Load(), r.errs.Load(), r.reconnects.Load(), r.resent.Load(), owed, owed)
	}
}
