package server

import (
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/text/transform"
)

// The event loops' timeouts, lingers and retries, on a clock the test
// holds (handClock) or on a loop the test runs by hand (handLoop): each
// says at which instant of the loop's clock a thing is due, and checks
// that it happens then, not before or after.

// A connection served by a loop is closed as idle once it has read
// nothing for IdleTimeout on the loop's clock, counted from its last read.
func TestLoopIdleTimeoutOnItsClock(t *testing.T) {
	k, addr := handClocked(t, &Server{IdleTimeout: time.Hour}, nil)
	c := dial(t, addr)
	answer(t, c, "a")
	k.advance(t, 59*time.Minute)
	answer(t, c, "b") // served still; read now, 59 minutes on
	k.advance(t, 59*time.Minute)
	answer(t, c, "c") // 59 minutes after its last read: not idle
	k.advance(t, 61*time.Minute)
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("61 minutes after its last read, the client read %d, %v; want end of file (closed as idle)", n, err)
	}
}

// ends is an Observer and a ReplyObserver for handClock tests: it keeps
// each connection's ConnInfo at its close, and passes on each reply,
// both by the client's address.
type ends struct {
	mu      sync.Mutex
	closed  map[string]ConnInfo
	replies chan reply
}

type reply struct {
	remote string
	n      int
}

func newEnds() *ends { return &ends{closed: map[string]ConnInfo{}, replies: make(chan reply, 1000)} }

func (*ends) ConnOpen(*ConnInfo)                         {}
func (*ends) ConnRead(*ConnInfo, []byte)                 {}
func (*ends) Datagram(*DatagramInfo)                     {}
func (e *ends) ConnReply(info *ConnInfo, n int, _ error) { e.replies <- reply{info.Remote.String(), n} }
func (e *ends) ConnClose(info *ConnInfo) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed[info.Remote.String()] = *info
}

// of reports whether the server has closed client c, and why.
func (e *ends) of(c net.Conn) (ConnInfo, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	info, ok := e.closed[c.LocalAddr().String()]
	return info, ok
}

// replied waits until the server has written n bytes of replies to c.
func (e *ends) replied(t *testing.T, c net.Conn, n int) {
	t.Helper()
	for end := time.After(10 * time.Second); n > 0; {
		select {
		case r := <-e.replies:
			if r.remote == c.LocalAddr().String() {
				n -= r.n
			}
		case <-end:
			t.Fatalf("the replies were not written within 10 s: %d bytes to go", n)
		}
	}
}

// A graceful close whose replies the client has not taken waits for the
// client for WriteTimeout, if that is longer than Linger, as a reply
// waiting to be written does: with a Linger shorter than the write
// timeout, the loop closed the connection after Linger.
func TestLoopLingerWaitsWriteTimeoutForAStuckClient(t *testing.T) {
	const linger, writeTimeout = 10 * time.Second, time.Minute
	obs := newEnds()
	ln := bigSendBuffers(t)
	k, addr := handClocked(t, &Server{IdleTimeout: time.Hour, WriteTimeout: writeTimeout, Linger: linger, Observer: obs}, ln)
	c := slowReader(t, addr)
	msg := strings.Repeat("a", 64<<10) // more than the client's receive buffer holds, less than the server's send buffer
	write(t, c, msg)
	obs.replied(t, c, len(msg))
	k.advance(t, time.Hour+time.Second) // idle: its graceful close begins, its replies still queued
	if _, ok := obs.of(c); ok {
		t.Fatal("closed at once as idle; want a graceful close that waits for the client")
	}
	k.advance(t, 2*linger)
	if info, ok := obs.of(c); ok {
		t.Fatalf("closed (%v) %v after its graceful close began, taking none of its replies; want it kept for the write timeout, %v",
			info.Reason, 2*linger, writeTimeout)
	}
	k.advance(t, writeTimeout-2*linger+time.Second)
	if info, ok := obs.of(c); !ok || info.Reason != ReasonIdleTimeout {
		t.Errorf("%v after its graceful close began, taking none of its replies: closed %v (%v); want closed, for %v",
			writeTimeout+time.Second, ok, info.Reason, ReasonIdleTimeout)
	}
}

// A reply that waits for its client longer than IdleTimeout is not
// idleness: once it is all written, the connection waits all of
// IdleTimeout for the client's next message, timed from that write, not
// from the read the reply answered. Nothing waits unread as the reply is
// written (one byte read, its reply far larger than the sockets hold),
// so the sweep after it has only the loop's time of the read to judge
// by; and the clock moves only between the write and that sweep.
func TestLoopIdleTimedFromTheReplyWritten(t *testing.T) {
	const idle = time.Hour
	obs := newEnds()
	lc := net.ListenConfig{Control: bufferSize(unix.SO_SNDBUF, 4096)}
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{IdleTimeout: idle, Transformer: times(MaxExpansionLimit), Observer: obs}
	k, addr := handClocked(t, s, ln)
	c := slowReader(t, addr)
	write(t, c, "a")
	got := make([]byte, MaxExpansionLimit)
	if _, err := io.ReadFull(c, got[:1]); err != nil { // read, at the clock's first time
		t.Fatal(err)
	}
	k.advance(t, 2*idle) // the reply waits: sweeps, which pass it by
	if _, err := io.ReadFull(c, got[1:]); err != nil || strings.Trim(string(got), "A") != "" {
		t.Fatalf("the reply to a: %v; want %d A", err, len(got))
	}
	obs.replied(t, c, len(got)) // written, two hours after the read
	k.advance(t, time.Minute)   // a sweep, a minute after the write
	if _, err := io.WriteString(c, "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, got); err != nil || strings.Trim(string(got), "B") != "" {
		t.Fatalf("b, sent a minute after a's reply was written, two hours after a was read: %v; want its reply, %d B (the client not idle)", err, len(got))
	}
	obs.replied(t, c, len(got))
	k.advance(t, idle+time.Minute)
	if n, err := c.Read(got); n != 0 || err != io.EOF {
		t.Errorf("IdleTimeout after b's reply was written, read %d, %v; want end of file (closed as idle)", n, err)
	}
}

// times is a Transformer that writes each byte it reads n times, upper
// case, and says so: a reply far larger than the message.
type times int

func (n times) MaxExpansion() int { return int(n) }
func (times) Reset()              {}

func (n times) Transform(dst, src []byte, _ bool) (nDst, nSrc int, err error) {
	for _, b := range src {
		if len(dst)-nDst < int(n) {
			return nDst, nSrc, transform.ErrShortDst
		}
		if 'a' <= b && b <= 'z' {
			b -= 'a' - 'A'
		}
		for range int(n) {
			dst[nDst] = b
			nDst++
		}
		nSrc++
	}
	return nDst, nSrc, nil
}

// bigSendBuffers is a TCP listener on 127.0.0.1 whose connections have
// send buffers as large as the system allows: the replies a test's
// client does not read wait there, none of them in the server's own
// buffer (pendingReply).
func bigSendBuffers(t *testing.T) net.Listener {
	t.Helper()
	lc := net.ListenConfig{Control: bufferSize(unix.SO_SNDBUF, 4<<20)} // the connections inherit it
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// slowReader dials addr with a small receive buffer, which a few
// kilobytes of replies fill.
func slowReader(t *testing.T, addr net.Addr) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, Control: bufferSize(unix.SO_RCVBUF, 4096)}
	c, err := d.Dial(addr.Network(), addr.String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// bufferSize is a Control for a Dialer or ListenConfig that sets the
// socket's buffer opt (SO_SNDBUF or SO_RCVBUF) to n bytes, as far as the
// system allows.
func bufferSize(opt, n int) func(_, _ string, rc syscall.RawConn) error {
	return func(_, _ string, rc syscall.RawConn) error {
		var err error
		if cerr := rc.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, n) }); cerr != nil {
			return cerr
		}
		return err
	}
}

// A connection turned away over MaxConns lingers for Linger on the loop's
// clock, and then gives its slot among those lingering back: the loop
// that rejected it moves its wait's deadline to the linger's sweeps,
// sooner than its other sweeps. A loop that moved the deadline only after
// a wake of its own kept the sooner one unarmed until then.
func TestLoopRejectedLingerEndsOnTime(t *testing.T) {
	const linger = time.Second
	s := &Server{MaxConns: 1, IdleTimeout: time.Hour, Linger: linger} // oneLoop's connection holds the one place
	k, addr := handClocked(t, s, nil)
	k.advance(t, time.Second) // a sweep (once a second, for IdleTimeout): now is the last sweep's time
	now := k.now()
	c := dial(t, addr)
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("over MaxConns, the client read %d, %v; want end of file", n, err)
	}
	k.deadline(t, "for the rejected connection's linger", func(at int64) bool { return at < now+int64(time.Second) })
	if n := len(s.lingering); n != 1 {
		t.Fatalf("%d connections counted lingering, want the one rejected", n)
	}
	k.advance(t, linger+linger/8)
	if n := len(s.lingering); n != 0 {
		t.Errorf("a Linger and a sweep after its rejection, %d connections counted lingering; want none", n)
	}
}

// A loop's wait ends at the next sweep or at the end of a listener's
// pause, whichever comes first: a listener paused while the loop sweeps
// for timeouts is accepted from again when its pause ends, not at the
// next sweep, up to a second later.
func TestLoopDeadlineIsThePauseEnd(t *testing.T) {
	l := handLoop(t, &Server{IdleTimeout: time.Hour}, time.Hour) // sweeps once a second
	l.swept = l.now
	l.paused = []pausedListener{{until: l.now + int64(20*time.Millisecond)}, {until: l.now + int64(5*time.Millisecond)}}
	if got, want := time.Duration(l.deadline()-l.now), 5*time.Millisecond; got != want {
		t.Errorf("with the next sweep a second away and pauses ending in 20ms and 5ms, the loop waits %v; want %v", got, want)
	}
}

// A graceful close waits while the client takes its replies: the Linger
// without input over, the close goes on as long as the client took some
// of the send queue within the Linger before (or the write timeout).
func TestLoopLingerWaitsWhileTheClientTakes(t *testing.T) {
	const linger = time.Second
	l := handLoop(t, &Server{Linger: linger}, time.Hour)
	c, client := handConn(t, l)
	fill(t, c)
	l.closeGracefully(c, ReasonIdleTimeout)
	start := l.now
	l.now = start + int64(linger/2)
	l.sweep()
	if c.state != lingering {
		t.Fatalf("half a Linger into its graceful close, in state %d; want lingering", c.state)
	}
	queued := sendQueueFD(int(c.fd)).unsent
	take(t, c, client, func(look sendLook) bool { return look.unsent < queued })
	l.now = start + int64(linger+linger/2)
	l.sweep()
	if l.at(int(c.fd)) != c {
		t.Errorf("the client took some of its replies after the close began: closed at a Linger and a half; want it lingering on")
	}
}

// A reply that waits for a client that takes the send queue slowly is
// not cut short by the write timeout while the client takes some of it
// within each: the wait starts again from when a sweep saw it take some.
func TestLoopWriteTimeoutWhileTheClientTakes(t *testing.T) {
	const timeout = time.Second
	l := handLoop(t, &Server{WriteTimeout: timeout}, time.Hour)
	c, client := handConn(t, l)
	// The kernel goes on after fill's last write: the client's window
	// takes more of the queue (80 KB here), and the send buffer grows to
	// its limit (3.9 to 4.2 MB). A process stalled after fill (50 ms did
	// it every time) found room for the reply, written at once. Filled
	// again, the socket stays full once both are at their end.
	for try := 1; ; try++ {
		fill(t, c)
		waits, err := l.send(c, []byte("REPLY"), nil, 0)
		if err != nil {
			t.Fatalf("a reply to a full socket: %v; want it to wait", err)
		}
		if waits {
			break
		}
		if try == 100 {
			t.Fatalf("a reply to a socket filled %d times: written at once every time; want it to wait", try)
		}
	}
	start := l.now
	l.now = start + int64(timeout/2)
	l.sweep() // the first look at the send queue
	acked := sendQueueFD(int(c.fd)).acked
	take(t, c, client, func(look sendLook) bool { return look.acked > acked })
	l.now = start + int64(timeout+timeout/2)
	l.sweep()
	if l.at(int(c.fd)) != c {
		t.Errorf("the client took some of the send queue within the write timeout: closed; want its reply still waiting")
	}
}

// fill writes to c's socket until it takes no more, as replies a client
// does not read would.
func fill(t *testing.T, c *lconn) {
	t.Helper()
	buf := make([]byte, 64<<10)
	for range 100_000 {
		if _, err := unix.Write(int(c.fd), buf); err == unix.EAGAIN {
			if sendQueueFD(int(c.fd)).unsent <= 0 {
				t.Fatal("the socket takes no more, with nothing in its send queue")
			}
			return
		} else if err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("the socket took 6.4 GB")
}

// take has the client read some of what fill queued, and waits until c's
// send queue shows it as taken (as the client acknowledges it) by taken.
func take(t *testing.T, c *lconn, client net.Conn, taken func(sendLook) bool) {
	t.Helper()
	if _, err := io.ReadFull(client, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the client's reads to show in the send queue", func() bool { return taken(sendQueueFD(int(c.fd))) })
}
