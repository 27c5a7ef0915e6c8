package server_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"
	"golang.org/x/text/transform"

	"shout/internal/shouttest"
	"shout/server"
)

// peekListener hands out connections that have read ahead into a buffer
// of their own, as a PROXY protocol parser or a TLS record layer does,
// and still forward SyscallConn through the embedded *net.TCPConn.
type peekListener struct{ net.Listener }

type bufferedConn struct {
	*net.TCPConn
	r *bufio.Reader
}

func (c bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (l peekListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	bc := bufferedConn{c.(*net.TCPConn), bufio.NewReader(c)}
	bc.r.Peek(1) // the client's first bytes are now in the wrapper, not the socket
	return bc, nil
}

// A wrapper's own buffered bytes are answered: the server must read
// through the wrapper, not under it.
func TestBufferingWrapperLosesNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &server.Server{Logger: new(shouttest.Log).Logger()}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(peekListener{ln}) }()
	defer func() { srv.Close(); <-done }()
	c := dial(t, ln.Addr().String())
	io.WriteString(c, "hello egon 哈哈哈")
	got := make([]byte, len("HELLO EGON 哈哈哈"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "HELLO EGON 哈哈哈" {
		t.Fatalf("got %q, %v", got, err)
	}
}

// A read deadline that a wrapper sets once Shutdown has begun (a PROXY
// header's wait or a handshake step's, set just after the stop's) is the
// stop's: it undid the stop's deadline in the past, and Shutdown waited
// out the wrapper's. A wrapper may still reach the connection it was
// given through NetConn.
func TestShutdownOutlastsNoWrapDeadline(t *testing.T) {
	wrapping := make(chan struct{})
	gotConn := make(chan bool, 1)
	srv := &server.Server{WrapConn: func(c net.Conn) (net.Conn, error) {
		nc, ok := c.(interface{ NetConn() net.Conn })
		_, tcp := c.(*net.TCPConn)
		gotConn <- tcp || ok && nc.NetConn() != nil
		close(wrapping)
		buf := make([]byte, 1)
		// Nothing comes: this read ends when Shutdown wakes it.
		if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("the first read: %v, want the stop's deadline", err)
		}
		// Then the wrapper sets a deadline of its own, as the PROXY
		// header's wait does before it reads.
		c.SetReadDeadline(time.Now().Add(time.Hour))
		_, err := c.Read(buf)
		return nil, err
	}}
	addr := shouttest.Start(t, srv)
	c := dial(t, addr)
	defer c.Close()
	select {
	case <-wrapping:
	case <-time.After(bound):
		t.Fatalf("no wrap within %v", bound)
	}
	if !<-gotConn {
		t.Error("the wrapper was given neither the accepted connection nor one with NetConn")
	}
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v; want it done before the wrapper's own deadline", err)
	}
}

// WrapConn wraps what is accepted; the observer sees the wrapper's
// addresses, and a wrapper's failure closes the connection with a reason.
func TestWrapConn(t *testing.T) {
	var obs recorder
	fail := errors.New("no handshake for you")
	srv := &server.Server{Observer: &obs, WrapConn: func(c net.Conn) (net.Conn, error) {
		bc := bufferedConn{c.(interface{ NetConn() net.Conn }).NetConn().(*net.TCPConn), bufio.NewReader(c)}
		b, err := bc.r.Peek(1)
		if err != nil || b[0] == '!' {
			return nil, fail
		}
		return bc, nil
	}}
	addr := shouttest.Start(t, srv)
	c := dial(t, addr)
	io.WriteString(c, "wrapped")
	got := make([]byte, 7)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "WRAPPED" {
		t.Fatalf("got %q, %v", got, err)
	}
	bad := dial(t, addr)
	io.WriteString(bad, "!")
	if _, err := bad.Read(got); err == nil {
		t.Fatal("connection whose wrapper failed: still open")
	}
	ci := obs.waitClose(t)
	if ci.Reason != server.ReasonWrap || !errors.Is(ci.Err, fail) {
		t.Errorf("close: reason %v, err %v; want %v, %v", ci.Reason, ci.Err, server.ReasonWrap, fail)
	}
}

// recorder is an Observer that keeps the closes it is told of.
type recorder struct {
	mu     sync.Mutex
	closes []server.ConnInfo
	closed chan struct{} // signalled at each close
}

func (r *recorder) ConnOpen(*server.ConnInfo)         {}
func (r *recorder) ConnRead(*server.ConnInfo, []byte) {}
func (r *recorder) Datagram(*server.DatagramInfo)     {}
func (r *recorder) ConnClose(c *server.ConnInfo) {
	r.mu.Lock()
	r.closes = append(r.closes, *c)
	ch := r.ch()
	r.mu.Unlock()
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (r *recorder) ch() chan struct{} {
	if r.closed == nil {
		r.closed = make(chan struct{}, 1000)
	}
	return r.closed
}

// waitClose waits for the oldest close not yet taken and returns it.
func (r *recorder) waitClose(t *testing.T) server.ConnInfo {
	t.Helper()
	deadline := time.After(bound)
	for {
		r.mu.Lock()
		ch := r.ch()
		if len(r.closes) > 0 {
			c := r.closes[0]
			r.closes = r.closes[1:]
			r.mu.Unlock()
			return c
		}
		r.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatal("no close observed")
		}
	}
}

// A connection rejected at MaxConns that had already sent bytes reads end
// of file, not a reset.
func TestRejectedClientReadsEOF(t *testing.T) {
	needLinux(t, "TCP_INFO")
	hook, ch := states()
	addr := shouttest.Start(t, &server.Server{MaxConns: 1, ConnState: hook, Logger: new(shouttest.Log).Logger()})
	held := dial(t, addr)
	waitState(t, ch, server.StateNew)
	for i := range 20 {
		over := dial(t, addr)
		io.WriteString(over, strings.Repeat("unread bytes ", 100))
		waitAcked(t, over)
		if n, err := over.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("connection %d over the limit: read %d, %v; want EOF", i, n, err)
		}
		over.Close()
		waitState(t, ch, server.StateRejected)
	}
	io.WriteString(held, "ok")
	got := make([]byte, 2)
	if _, err := io.ReadFull(held, got); err != nil || string(got) != "OK" {
		t.Errorf("got %q, %v", got, err)
	}
}

// A connection rejected at a limit is reported (ConnClose with
// ReasonRejected, the StateRejected hook) when it is rejected, not when
// the server is done lingering on it so that its client reads end of
// file: a client that keeps its end open holds that linger for up to
// Linger, and the count of rejections (metrics, the log's warning) lagged
// by as much. (Found in review: 2 s late with shout serve's --linger.)
func TestRejectedIsToldAtOnce(t *testing.T) {
	hook, ch := states()
	obs := &recorder{}
	addr := shouttest.Start(t, &server.Server{MaxConns: 1, Linger: time.Hour, ConnState: hook, Observer: obs, Logger: new(shouttest.Log).Logger()})
	held := dial(t, addr)
	waitState(t, ch, server.StateNew)
	over := dial(t, addr) // and kept open: the server lingers on it
	if n, err := over.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("over the limit: read %d, %v; want end of file", n, err)
	}
	waitState(t, ch, server.StateRejected)
	if ci := obs.waitClose(t); ci.Reason != server.ReasonRejected || !errors.Is(ci.Err, server.ErrMaxConns) || ci.End.IsZero() {
		t.Errorf("close: reason %v, err %v, end %v; want %v, %v and the time of the rejection", ci.Reason, ci.Err, ci.End, server.ReasonRejected, server.ErrMaxConns)
	}
	io.WriteString(over, "more while it lingers") // read and dropped, and told of no more
	io.WriteString(held, "ok")
	got := make([]byte, 2)
	if _, err := io.ReadFull(held, got); err != nil || string(got) != "OK" {
		t.Errorf("got %q, %v", got, err)
	}
	over.Close()
	held.Close()
	if ci := obs.waitClose(t); ci.Reason != server.ReasonEOF {
		t.Errorf("next close: reason %v; want the held connection's %v, and the rejected one told once", ci.Reason, server.ReasonEOF)
	}
}

// A connection a wrapper refuses at its PROXY header (WrapError with
// ReasonProxyHeader) is closed as one rejected at a limit is: its write
// side shut, so the client reads end of file, and its input read and
// discarded for up to Linger, so that closing sends no reset. It was
// closed at once, and the header's bytes the wrapper had not read made it
// a reset. Its MaxConns place is given back at once, as a rejected
// one's is, not when its linger ends. (The PROXY protocol is served by
// the goroutine driver, as every wrapped connection is, whichever engine
// the tests run with.)
func TestProxyHeaderRefusedClosesGracefully(t *testing.T) {
	obs := &recorder{}
	srv := &server.Server{MaxConns: 1, Linger: time.Hour, Observer: obs, WrapConn: func(c net.Conn) (net.Conn, error) {
		bc := bufferedConn{c.(interface{ NetConn() net.Conn }).NetConn().(*net.TCPConn), bufio.NewReader(c)}
		if b, err := bc.r.Peek(1); err != nil {
			return nil, err
		} else if b[0] != 'P' {
			return bc, nil
		}
		return nil, &server.WrapError{Reason: server.ReasonProxyHeader, Err: errors.New("a PROXY header from a source not trusted to send one")}
	}}
	addr := shouttest.Start(t, srv)
	c := dial(t, addr)
	io.WriteString(c, "PROXY TCP4 203.0.113.7 192.0.2.1 4242 8080\r\nhello\n")
	if ci := obs.waitClose(t); ci.Reason != server.ReasonProxyHeader {
		t.Errorf("close: reason %v (%v); want %v", ci.Reason, ci.Err, server.ReasonProxyHeader)
	}
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
		t.Fatalf("refused: read %q, %v; want end of file", rest, err)
	}
	// Linux reports a reset in CLOSE_WAIT to writes, as EPIPE: write.
	for range 1000 { // bounded: on loopback a reset comes back at once
		if _, err := io.WriteString(c, "more while it lingers\n"); err != nil {
			t.Fatalf("write after end of file: %v; want it read and dropped, not a reset", err)
		}
	}
	served := dial(t, addr) // MaxConns 1, and the refused one still lingers
	io.WriteString(served, "ok")
	got := make([]byte, 2)
	if _, err := io.ReadFull(served, got); err != nil || string(got) != "OK" {
		t.Errorf("while the refused connection lingers: got %q, %v; want it served", got, err)
	}
	served.Close()
	c.CloseWrite() // done: the linger ends, well before its hour
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v; want the linger ended by the client's end of file", err)
	}
}

// A wait for a PROXY header that the stop cuts short is no refusal: the
// connection closes at once, and Shutdown does not wait out a linger for
// it. It lingered (here an hour, and Shutdown gave up at its deadline).
func TestProxyHeaderWaitCutByStopDoesNotLinger(t *testing.T) {
	waiting := make(chan struct{})
	srv := &server.Server{Linger: time.Hour, Logger: slog.New(slog.DiscardHandler), WrapConn: func(c net.Conn) (net.Conn, error) {
		close(waiting)
		_, err := c.Read(make([]byte, 1)) // the header that never comes
		return nil, &server.WrapError{Reason: server.ReasonProxyHeader, Err: err}
	}}
	addr := shouttest.Start(t, srv)
	c := dial(t, addr)
	<-waiting
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v; want it done, the header's wait cut short and not lingered on", err)
	}
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
		t.Errorf("read %q, %v; want end of file", rest, err)
	}
}

// The ConnState hook for a rejected connection runs on that connection's
// goroutine, not the accept loop: a slow hook does not stop accepting.
func TestRejectedStateOffTheAcceptLoop(t *testing.T) {
	if server.EngineUnderTest() != server.EngineGoroutine {
		t.Skip("goroutine driver only: an event loop runs its connections' hooks itself, and a slow hook holds the loop (Server.ConnState says so)")
	}
	release := make(chan struct{})
	rejected, closed := make(chan struct{}, 1), make(chan struct{}, 1)
	hook := func(_ net.Conn, s server.ConnState) {
		switch s {
		case server.StateRejected:
			rejected <- struct{}{}
			<-release
		case server.StateClosed:
			closed <- struct{}{}
		}
	}
	addr := shouttest.Start(t, &server.Server{MaxConns: 1, ConnState: hook, Logger: new(shouttest.Log).Logger()})
	defer close(release)
	first := dial(t, addr)
	io.WriteString(first, "a")
	io.ReadFull(first, make([]byte, 1)) // admitted and served
	over := dial(t, addr)
	over.Read(make([]byte, 1)) // end of file
	over.Close()
	select {
	case <-rejected:
	case <-time.After(bound):
		t.Fatal("not rejected")
	}
	first.Close()
	select {
	case <-closed:
	case <-time.After(bound):
		t.Fatal("not closed")
	}
	// The hook still blocks; a place is free again and must be served.
	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(bound))
	io.WriteString(c, "still accepting")
	got := make([]byte, 15)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "STILL ACCEPTING" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestMaxConnsPerIP(t *testing.T) {
	hook, ch := states()
	addr := shouttest.Start(t, &server.Server{MaxConnsPerIP: 2, ConnState: hook, Logger: new(shouttest.Log).Logger()})
	a, b := dial(t, addr), dial(t, addr)
	waitState(t, ch, server.StateNew)
	waitState(t, ch, server.StateNew)
	over := dial(t, addr)
	if n, err := over.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("third from one address: read %d, %v; want EOF", n, err)
	}
	over.Close()
	waitState(t, ch, server.StateRejected)
	// Another address is counted on its own.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: bound}
	other, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	waitState(t, ch, server.StateNew)
	a.Close()
	waitState(t, ch, server.StateClosed)
	again := dial(t, addr) // a place is free again for 127.0.0.1
	waitState(t, ch, server.StateNew)
	for _, c := range []net.Conn{b, other, again} {
		c.SetDeadline(time.Now().Add(bound))
		io.WriteString(c, "ok")
		got := make([]byte, 2)
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "OK" {
			t.Errorf("got %q, %v", got, err)
		}
	}
}

// A connection rejected for MaxConnsPerIP gives back the MaxConns place
// it was counted in at once, not when its linger ends: else one address,
// opening connection after connection over its limit, would hold every
// MaxConns place with connections it may not have, which MaxConnsPerIP is
// there to prevent.
func TestPerIPRejectFreesMaxConnsPlace(t *testing.T) {
	hook, ch := states()
	var log shouttest.Log
	addr := shouttest.Start(t, &server.Server{
		MaxConns: 2, MaxConnsPerIP: 1, Linger: time.Minute,
		ConnState: hook, Logger: log.Logger(),
	})
	first := dial(t, addr) // 127.0.0.1's one place
	waitState(t, ch, server.StateNew)
	over := dial(t, addr) // 127.0.0.1 again: rejected, and lingering
	if n, err := over.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("second from one address: read %d, %v; want EOF", n, err)
	}
	// One connection is served of MaxConns=2: another address has room.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: bound}
	other, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for _, c := range []net.Conn{first, other} {
		c.SetDeadline(time.Now().Add(bound))
		io.WriteString(c, "ok")
		got := make([]byte, 2)
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "OK" {
			t.Errorf("%v, with 1 of MaxConns=2 served: got %q, %v; want OK\n%s", c.LocalAddr(), got, err, log.String())
		}
	}
}

// An idle timeout answers an incomplete character as it is, as the end of
// input does, before it closes.
//
// The client's bytes are sent before the server serves: written after it
// accepts, they could come after the 50 ms timeout on a loaded machine.
func TestIdleTimeoutFlushesHeldCharacter(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, ln.Addr().String()) // queued in ln's backlog
	io.WriteString(c, "abc\xc3")
	srv := &server.Server{IdleTimeout: 50 * time.Millisecond, Logger: new(shouttest.Log).Logger()}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		srv.Close()
		if err := <-served; err != server.ErrServerClosed {
			t.Errorf("Serve: %v", err)
		}
	}()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "ABC\xc3" {
		t.Fatalf("got %q, %v; want %q then EOF", got, err, "ABC\xc3")
	}
}

// The idle timeout never closes a connection that has been idle for less
// than all of IdleTimeout. The goroutine driver stamped each read with the
// time of the timeout watcher's last sweep, up to an eighth of the timeout
// before the read, and closed connections after 7/8 of it (a helper's
// README walkthrough measured 0.88 s for --idle-timeout 1s). Rounds one
// after another fall at every point between two sweeps.
func TestIdleTimeoutNeverEarly(t *testing.T) {
	const idle = 40 * time.Millisecond
	addr := shouttest.Start(t, &server.Server{IdleTimeout: idle, Logger: discard()})
	late := 0 // rounds whose client wrote only after a whole idle timeout
	for round := 0; round < 32; round++ {
		if late > 32 {
			t.Fatalf("in %d rounds of %d the client wrote only after the idle timeout: the machine is too busy to tell", late, round+late)
		}
		dialing := time.Now()
		c := dial(t, addr)
		sent := time.Now() // before the server can read it
		if _, err := io.WriteString(c, "x\n"); err != nil {
			t.Fatal(err)
		}
		wrote := time.Since(dialing)
		got, err := io.ReadAll(c) // the reply, then the idle timeout's end of file
		after := time.Since(sent)
		c.Close()
		if err == nil && len(got) == 0 && wrote >= idle {
			// A busy machine held the client back for all of the idle
			// timeout: the server was right to close the connection idle
			// before its message came. The round tells nothing.
			late++
			round--
			continue
		}
		if err != nil || string(got) != "X\n" {
			t.Fatalf("round %d: got %q, %v; want %q then end of file", round, got, err, "X\n")
		}
		if after < idle {
			t.Errorf("round %d: closed %v after the last message, before the idle timeout (%v)", round, after, idle)
		}
	}
}

// gateOpen is an Observer whose ConnOpen signals entered and waits for
// release: the driver that announces a connection (the accept loop, or
// the event loop) is held there.
type gateOpen struct {
	recorder
	entered, release chan struct{}
}

func (g *gateOpen) ConnOpen(*server.ConnInfo) {
	close(g.entered)
	<-g.release
}

// What a client sent before its idle timeout passed is answered, however
// late the server gets to read it (a busy machine, a slow observer): the
// client was not idle. Its bytes waited in the socket while the timeout
// fired, and the graceful close read them and threw them away; the client
// read end of file and no reply.
func TestIdleTimeoutAnswersWhatArrived(t *testing.T) {
	const idle = 20 * time.Millisecond
	gate := &gateOpen{entered: make(chan struct{}), release: make(chan struct{})}
	srv := &server.Server{IdleTimeout: idle, Logger: discard(), Observer: gate}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	engine, err := srv.EngineFor(ln)
	if err != nil {
		t.Fatal(err)
	}
	shouttest.Serve(t, srv, ln)
	c := dial(t, ln.Addr().String())
	sent := time.Now()
	if _, err := io.WriteString(c, "x\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gate.entered:
	case <-time.After(bound):
		t.Fatal("the connection was not announced")
	}
	// The timeout passes while the driver is held: the event loop's clock
	// runs, and the goroutine driver's watcher takes the connection for
	// idle.
	for end := time.Now().Add(bound); time.Since(sent) < 2*idle || engine == server.EngineGoroutine && !srv.IdleFired(); {
		if time.Now().After(end) {
			t.Fatal("the idle timeout did not fire")
		}
		time.Sleep(idle / 4)
	}
	close(gate.release)
	got, err := io.ReadAll(c) // the reply, then the idle timeout's end of file
	if err != nil || string(got) != "X\n" {
		t.Errorf("got %q, %v; want %q then end of file", got, err, "X\n")
	}
}

// A Linger of years lingers as a shorter one does: after a graceful
// close, until the client's end of file, reading and throwing away what
// it sends meanwhile. 30 Lingers of 10 years overflowed into the past,
// and the connection was closed as soon as it began to linger, with the
// client's input unread: the client read a reset.
func TestLingerOfYearsWaitsForTheClient(t *testing.T) {
	const years = 10 * 365 * 24 * time.Hour
	obs := &recorder{}
	srv := &server.Server{IdleTimeout: 20 * time.Millisecond, Linger: years, Logger: discard(), Observer: obs}
	c := dial(t, shouttest.Start(t, srv))
	// The idle timeout's graceful close: end of file, then the server
	// lingers.
	if got, err := io.ReadAll(c); err != nil || len(got) != 0 {
		t.Fatalf("got %q, %v; want the idle timeout's end of file", got, err)
	}
	// Closed at once, it would be told within a sweep or two of the idle
	// timeout's. (A machine too busy for that lets the test pass.)
	obs.mu.Lock()
	closed := obs.ch()
	obs.mu.Unlock()
	select {
	case <-closed:
		t.Fatalf("closed as it began to linger: %+v", obs.waitClose(t))
	case <-time.After(10 * srv.IdleTimeout):
	}
	if _, err := io.WriteString(c, "more\n"); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if ci := obs.waitClose(t); ci.Reason != server.ReasonIdleTimeout {
		t.Errorf("closed for %v (%v), want %v", ci.Reason, ci.Err, server.ReasonIdleTimeout)
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("read %d, %v after the close; want end of file, not a reset", n, err)
	}
}

// A client that keeps sending after a graceful close does not hold the
// connection lingering for good: it ends after maxLingerRounds Lingers
// (30; here 3 s), however close together the client's bytes come, while
// the client still sends; and not before, since input came all along.
func TestLingerBoundedWhileInputKeepsComing(t *testing.T) {
	obs := &recorder{}
	srv := &server.Server{IdleTimeout: 20 * time.Millisecond, Linger: 100 * time.Millisecond, Logger: discard(), Observer: obs}
	addr := shouttest.Start(t, srv)
	// The linger begins an IdleTimeout after the server accepts, or
	// later: not before this.
	earliest := time.Now().Add(srv.IdleTimeout)
	c := dial(t, addr)
	if got, err := io.ReadAll(c); err != nil || len(got) != 0 {
		t.Fatalf("got %q, %v; want the idle timeout's end of file", got, err)
	}
	lingering := time.Now() // (the linger began before)
	type sending struct {
		err    error
		maxGap time.Duration // the longest between two writes, or before the first
	}
	stop, sent := make(chan struct{}), make(chan sending, 1)
	go func() {
		// Input without a pause, as fast as the server throws it away,
		// until the server closes (a write fails) or the test's bound
		// (c's deadline). The first gap is from the earliest the linger
		// can have begun: a machine too busy to read its end of file
		// for a Linger lets the linger end before the first byte comes.
		// The gap before a write that fails counts too, and the one
		// before the stop: the server may have closed for it.
		chunk := make([]byte, 4<<10)
		var maxGap time.Duration
		for last := earliest; ; {
			select {
			case <-stop:
				sent <- sending{nil, max(maxGap, time.Since(last))}
				return
			default:
			}
			_, err := c.Write(chunk)
			now := time.Now()
			maxGap, last = max(maxGap, now.Sub(last)), now
			if err != nil {
				sent <- sending{err, maxGap}
				return
			}
		}
	}()
	ci := obs.waitClose(t)
	close(stop)
	s := <-sent
	if errors.Is(s.err, os.ErrDeadlineExceeded) {
		t.Error("lingered until the client stopped sending")
	}
	// Nor before the bound, if input came all along: a machine too busy
	// to send for half a Linger (or to read) lets the linger end sooner.
	if d := ci.End.Sub(lingering); d < 20*srv.Linger && s.maxGap < srv.Linger/2 {
		t.Errorf("closed %v after it began to linger, with input at least every %v; want 30 Lingers (%v)", d, s.maxGap, 30*srv.Linger)
	}
	if ci.Reason != server.ReasonIdleTimeout {
		t.Errorf("closed for %v (%v), want %v", ci.Reason, ci.Err, server.ReasonIdleTimeout)
	}
}

// closeErrListener fails to close, as a listener whose socket file cannot
// be removed might.
type closeErrListener struct{ net.Listener }

var errClose = errors.New("close failed")

func (l closeErrListener) Close() error { l.Listener.Close(); return errClose }

func TestCloseReturnsListenerErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hook, ch := states()
	srv := &server.Server{ConnState: hook, Logger: new(shouttest.Log).Logger()}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(closeErrListener{ln}) }()
	c := dial(t, ln.Addr().String()) // Serve is running once this is served
	waitState(t, ch, server.StateNew)
	c.Close()
	if err := srv.Close(); !errors.Is(err, errClose) {
		t.Errorf("Close: %v, want %v", err, errClose)
	}
	<-done
}

// brokenListener fails for good, as a listener whose socket was closed
// from outside or whose wrapper gave up does.
type brokenListener struct {
	net.Listener
	err error
}

func (l brokenListener) Accept() (net.Conn, error) { return nil, l.err }

func TestAcceptPermanentErrorEndsServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("listener broken for good")
	srv := &server.Server{Logger: new(shouttest.Log).Logger()}
	defer srv.Close()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(brokenListener{ln, boom}) }()
	select {
	case err := <-done:
		if !errors.Is(err, boom) {
			t.Errorf("Serve: %v, want %v", err, boom)
		}
	case <-time.After(bound):
		t.Fatal("Serve still retrying a permanent error")
	}
}

// A packet connection closed from outside ends ServePacket with that
// error once, not once per worker.
func TestServePacketClosedFromOutside(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &server.Server{Logger: new(shouttest.Log).Logger()}
	defer srv.Close()
	done := make(chan error, 1)
	go func() { done <- srv.ServePacket(pc) }()
	u, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.SetDeadline(time.Now().Add(bound))
	udpExchange(t, u, []byte("up")) // serving
	pc.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) || strings.Count(err.Error(), "closed") != 1 {
			t.Errorf("ServePacket: %q, want one closed-connection error", err)
		}
	case <-time.After(bound):
		t.Fatal("ServePacket did not return")
	}
}

// With many clients still writing when the server stops, every client
// gets the reply to every byte that had reached the server (the server's
// kernel acknowledged it) before the stop, and to what the server read
// after it, then end of file: no reply is destroyed by a reset.
//
// A reset shows as more than a short count: on Linux the first system
// call to meet it takes its error, and the next read sees end of file, so
// when the writer meets it the reader sees a clean end of file after
// fewer replies. The writer's error counts as the reader's.
//
// It must hold on a machine loaded by several copies of it under the race
// detector, where a client may wait more than 10 s for its next reply,
// its goroutines or the server's not being scheduled. So no one's
// patience is short: a client gives up after patience without a reply
// (not after a deadline on the whole test, whose length grows with the
// load); the server's Linger is patience too, not 2 s, since a graceful
// close gives up on a client that takes no reply for Linger, and closing
// on a client still sending resets it (Linger is not what this test is
// about: with the default it failed when a reader was not scheduled for
// 2 s); and Shutdown has longer, so that a client stuck for good shows as
// that client.
func TestShutdownLosesNoReply(t *testing.T) {
	needLinux(t, "TCP_INFO")
	shouttest.CheckFDs(t)
	clients := 1000
	if testing.Short() || raceEnabled {
		clients = 200
	}
	const patience = 4 * bound
	var log shouttest.Log
	srv := &server.Server{Logger: slog.New(slog.NewTextHandler(&log, nil)), Linger: patience}
	addr := shouttest.Start(t, srv)
	type client struct {
		c                 *net.TCPConn
		sent, got         atomic.Int64
		ackedBeforeStop   int64
		endedBeforeStop   bool
		stop              atomic.Bool
		readErr, writeErr error
		longestWait       time.Duration // between two reads
		wrong             bool
	}
	chunk := []byte(strings.Repeat("abcdefghijklmnopqrstuvwxyz0123456789-\n", 27)) // 1,026 bytes
	want := bytes.ToUpper(chunk)
	cs := make([]*client, clients)
	for i := range cs {
		c, err := net.DialTimeout("tcp", addr, bound)
		if err != nil {
			t.Fatal(err)
		}
		cs[i] = &client{c: c.(*net.TCPConn)}
		// Small buffers: less in flight for the test to push through.
		cs[i].c.SetReadBuffer(64 << 10)
		cs[i].c.SetWriteBuffer(64 << 10)
	}
	var wg sync.WaitGroup
	answered := make(chan struct{}, clients) // once from each client: its first reply, or its end
	for _, cl := range cs {
		wg.Go(func() { // writer: as fast as it can until the reader is done
			for k := 0; k < 16<<10 && !cl.stop.Load(); k++ { // 16 MiB at most
				n, err := cl.c.Write(chunk)
				cl.sent.Add(int64(n))
				if err != nil {
					if !errors.Is(err, net.ErrClosed) { // (the reader closed it)
						cl.writeErr = err
					}
					return
				}
			}
		})
		wg.Go(func() { // reader: checks every byte, then closes; the writer stops at its next write
			buf := make([]byte, 64<<10)
			var off int64
			last := time.Now()
			for {
				cl.c.SetReadDeadline(time.Now().Add(patience))
				n, err := cl.c.Read(buf)
				now := time.Now()
				cl.longestWait, last = max(cl.longestWait, now.Sub(last)), now
				// A segment at a time: a loop over each byte is slow under
				// the race detector, and load is what this test can't take.
				for p := buf[:n]; len(p) > 0; {
					i := int(off % int64(len(want)))
					k := min(len(p), len(want)-i)
					if !bytes.Equal(p[:k], want[i:i+k]) {
						cl.wrong = true
					}
					p, off = p[k:], off+int64(k)
				}
				if cl.got.Add(int64(n)) == int64(n) && n > 0 {
					answered <- struct{}{}
				}
				if err != nil {
					cl.readErr = err
					break
				}
			}
			if cl.got.Load() == 0 {
				answered <- struct{}{} // ended before any reply: reported below
			}
			cl.stop.Store(true)
			cl.c.Close()
		})
	}
	for range clients {
		<-answered // every client is mid-stream
	}
	for _, cl := range cs {
		if n, err := bytesAcked(cl.c); err != nil {
			cl.endedBeforeStop = true // closed by its reader
		} else {
			cl.ackedBeforeStop = n
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*patience)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	wg.Wait()
	lost := 0
	for i, cl := range cs {
		if cl.wrong {
			t.Errorf("client %d: a wrong reply byte", i)
		}
		if cl.endedBeforeStop || cl.readErr != io.EOF || cl.writeErr != nil || cl.got.Load() < cl.ackedBeforeStop {
			lost++
			if lost <= 5 {
				t.Errorf("client %d (%s): %d bytes had reached the server before the stop (ended before it: %v), got %d replies, then %v (want EOF); the writer met %v (want nothing but the reader's close); longest wait for a read %v",
					i, cl.c.LocalAddr(), cl.ackedBeforeStop, cl.endedBeforeStop, cl.got.Load(), cl.readErr, cl.writeErr, cl.longestWait.Round(time.Millisecond))
			}
		}
	}
	if lost > 0 {
		out := log.String()
		t.Errorf("%d of %d clients lost replies; the server's log ends:\n%s", lost, clients, out[max(0, len(out)-4000):])
	}
}

// Any transform.Transformer can be plugged in: x/text's own Caser (which
// gives no MaxExpansion, so replies are sized for the worst case), or a
// test double that makes a reply longer than its request.
func TestPluggedTransformer(t *testing.T) {
	for _, tc := range []struct {
		name string
		t    transform.Transformer
		send string
		want string
	}{
		{"cases.Upper", cases.Upper(language.Und), "straße ﬁ 哈哈哈", "STRASSE FI 哈哈哈"},
		{"doubler", doubler{}, "ab", "aabb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := shouttest.Start(t, &server.Server{Transformer: tc.t, Logger: new(shouttest.Log).Logger()})
			c := dial(t, addr)
			io.WriteString(c, tc.send)
			c.CloseWrite()
			if got, err := io.ReadAll(c); err != nil || string(got) != tc.want {
				t.Errorf("stream: got %q, %v; want %q", got, err, tc.want)
			}
			u, err := net.Dial("udp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			u.SetDeadline(time.Now().Add(bound))
			if got := udpExchange(t, u, []byte(tc.send)); string(got) != tc.want {
				t.Errorf("datagram: got %q, want %q", got, tc.want)
			}
		})
	}
}

// doubler writes every byte twice: a reply twice its request.
type doubler struct{ transform.NopResetter }

func (doubler) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	for nSrc < len(src) {
		if nDst+2 > len(dst) {
			return nDst, nSrc, transform.ErrShortDst
		}
		dst[nDst], dst[nDst+1] = src[nSrc], src[nSrc]
		nDst, nSrc = nDst+2, nSrc+1
	}
	return nDst, nSrc, nil
}

// claimer is a Transformer whose MaxExpansion claims far more than it
// writes: ASCII uppercase, one byte for each, holding a '~' at the end
// of its input until the end of input (as an incomplete character is).
type claimer struct {
	transform.NopResetter
	claim int
}

func (c claimer) MaxExpansion() int { return c.claim }

func (claimer) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	in := src
	if !atEOF && bytes.HasSuffix(in, []byte("~")) {
		in, err = in[:len(in)-1], transform.ErrShortSrc
	}
	n := min(len(dst), len(in))
	copy(dst, bytes.ToUpper(in[:n]))
	if n < len(in) {
		err = transform.ErrShortDst
	}
	return n, n, err
}

// A MaxExpansion too large to size buffers by is taken as the largest
// the server sizes them for: the reply buffer's size, claim × bytes held,
// overflowed (to a negative size, a panic) or asked for terabytes.
// Replies are answered as with an honest claim; an incomplete character
// held at the end of input too (flush's buffer is sized by the claim).
func TestHugeMaxExpansion(t *testing.T) {
	// (1 << 40 does not fit an int of 32 bits, GOARCH=386: there a
	// quarter of what it holds, still far past MaxExpansionLimit.)
	for _, claim := range []int{math.MaxInt, math.MaxInt / 2, int(min(1<<40, math.MaxInt/4))} {
		t.Run(fmt.Sprint(claim), func(t *testing.T) {
			srv := &server.Server{Transformer: claimer{claim: claim}, Logger: new(shouttest.Log).Logger()}
			c := dial(t, shouttest.Start(t, srv))
			io.WriteString(c, "abc~")
			c.CloseWrite()
			if got, err := io.ReadAll(c); err != nil || string(got) != "ABC~" {
				t.Errorf("got %q, %v; want %q", got, err, "ABC~")
			}
		})
	}
}

// A full read under a claim at MaxExpansionLimit: where int is 32 bits
// (GOARCH=386), the reply buffer's size, 32 KiB read × 65,536, wrapped
// to -2^31 and the goroutine engine panicked, making a buffer of it.
func TestHugeMaxExpansionFullRead(t *testing.T) {
	srv := &server.Server{Transformer: claimer{claim: server.MaxExpansionLimit}, Logger: new(shouttest.Log).Logger()}
	c := dial(t, shouttest.Start(t, srv))
	msg := strings.Repeat("abcdefg\n", 64<<10/8) // two default reads
	go func() {
		io.WriteString(c, msg)
		c.CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != strings.ToUpper(msg) {
		t.Errorf("got %d bytes (%.20q…), %v; want %d, uppercase", len(got), got, err, len(msg))
	}
}
