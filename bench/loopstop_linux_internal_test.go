//go:build linux

package bench

import (
	"math"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// An event loop's connection held back for want of room, when a reply
// frees room in the round the run stops in (before due could send
// again), counts what it held back never sent, as unanswered: the stop
// saw it short of its most in flight, holding no bytes, and counted none
// of what fell due since it was held (seconds of the rate, at worst).
func TestLoopHeldBackAtTheStopCounted(t *testing.T) {
	const most = 4
	cfg := Config{Conns: 1, Rate: 1000, Size: 16, Warmup: -1}
	r := bareRun(&cfg)
	interval := int64(time.Millisecond)
	l := &loop{r: r, paced: true, most: most, unsent: r.mostUnsent()}
	c := &loopConn{fd: -1, q: ring{limit: most}, cad: cadence{interval: float64(interval)}}
	l.conns = []*loopConn{c}
	for range most {
		c.q.push(sentMsg{})
	}
	now := 100 * interval // a hundred fell due since it was held
	r.windowUntil.Store(now)
	l.due(now - 1) // its last round while measuring (one past its end judges nothing)
	c.q.pop()      // a reply, in the round the stop came in
	r.halt()
	l.stopped = true
	l.sendRest(c, now)
	r.countUnsent()
	if r.unsent.Load() != 100 || r.unsentUnanswered.Load() != 100 {
		t.Errorf("%d never sent, %d of them held back by the replies owed; want 100 and 100",
			r.unsent.Load(), r.unsentUnanswered.Load())
	}
}

// An event loop's connection whose messages fall due in a round in which
// the run stops, after the round looked at stopping, sends them: each
// fell due in the window and is counted. The schedule moved on past
// them and the send, finding the run stopping, sent nothing, so they were
// in no count (one message of 20,800,000 due, an open loop at 1e9 msg/s
// under -race: the clock's goroutine stopped the run as a loop sent).
func TestLoopStopInItsRoundCountsEveryDue(t *testing.T) {
	const conns, window = 2, 100
	cfg := Config{Conns: conns, Rate: 2000, Size: 16, Warmup: -1}
	r := messagingRun(t, &cfg)
	interval := int64(time.Millisecond)
	r.windowUntil.Store(window * interval)
	l := &loop{r: r, paced: true, most: 2 * window, unsent: r.mostUnsent()}
	for i := range conns {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
		l.conns = append(l.conns, &loopConn{fd: fds[0], i: i, key: int32(i),
			q: ring{limit: l.most}, cad: cadence{interval: float64(interval)}})
	}
	// The run stops as the round's first connection sends, before the
	// second's send.
	sentNoted = func(r *run, _ int64, _ bool) { r.halt() }
	defer func() { sentNoted = nil }()
	l.due(10 * interval) // 11 fell due on each
	l.stopped = true
	for _, c := range l.conns {
		l.sendRest(c, 10*interval)
	}
	r.countUnsent()
	counted := r.unsent.Load()
	for _, c := range l.conns {
		counted += c.q.measured()
	}
	if counted != conns*window {
		t.Errorf("%d sent or never sent; want %d, every one that fell due in the window", counted, conns*window)
	}
}

// An event loop's connection whose server closed it with nothing owed,
// the close come after the loop's wait returned and before its next
// message was sent, sends nothing: the close, read next, is the
// connection's error, and nothing is wrong. The message was sent and
// owed at the close, and counted wrong ("closed before the reply
// began"), as if the server had closed on it
// (TestOpenLoopIdleCloseIsAnError, under a busy machine's stalls). The
// same as the run stops (sendRest): the message is never sent, on a
// failed connection.
func TestLoopIdleCloseBeforeASendIsAnError(t *testing.T) {
	t.Run("due", func(t *testing.T) { loopIdleCloseBeforeASend(t, false) })
	t.Run("as the run stops", func(t *testing.T) { loopIdleCloseBeforeASend(t, true) })
}

func loopIdleCloseBeforeASend(t *testing.T, stop bool) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	fd, err := takeFD(nc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Conns: 1, Rate: 1000, Size: 16, Warmup: -1}
	r := messagingRun(t, &cfg)
	r.epoch = time.Now()
	r.windowUntil.Store(math.MaxInt64)
	r.allGone = make(chan struct{})
	r.alive.Store(1)
	l := &loop{r: r, w: r.newWorker(), paced: true, most: 8, unsent: r.mostUnsent(), rbuf: make([]byte, 64<<10), open: 1}
	c := &loopConn{fd: fd, q: ring{limit: l.most}, cad: cadence{interval: float64(time.Millisecond)}}
	l.conns = []*loopConn{c}
	defer func() {
		if !c.closed {
			unix.Close(fd)
		}
	}()
	now := r.now()                  // the loop's wait returned; then the server closes
	c.since = now - int64(idleLook) // owing nothing for that long: a close is looked for
	sc.(*net.TCPConn).CloseWrite()
	for i := 0; fdTCPState(fd) != unix.BPF_TCP_CLOSE_WAIT; i++ { // (at once, over loopback)
		if i == 1000 {
			t.Fatal("the server's close did not come in 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	errs := int64(1)
	if stop { // (a close read as the run stops counts for nothing)
		r.halt()
		l.stopped = true
		l.sendRest(c, now) // the first message is due
		errs = 0
	} else {
		l.due(now) // the first message is due
	}
	l.readable(c, now)
	if !c.closed || r.errs.Load() != errs || r.mismatches.Load() != 0 || r.lost.Load() != 0 {
		t.Errorf("closed %v, %d errors, %d wrong, %d lost; want the connection closed, %d errors, 0, 0",
			c.closed, r.errs.Load(), r.mismatches.Load(), r.lost.Load(), errs)
	}
	r.countUnsent()
	if stop && r.unsentFailed.Load() == 0 {
		t.Errorf("%d never sent on failed connections; want the first message", r.unsentFailed.Load())
	}
}
