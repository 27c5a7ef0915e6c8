//go:build unix

package admin

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	xunix "golang.org/x/sys/unix"
)

// A connection that has waited evictGrace on its client, whose client has
// sent what the process has not read (its goroutine has not run: a
// keep-alive request come), does not wait on its client: it waits from
// when the listener asked, and, once the process has read what came, a
// full listener closes it evictGrace after that, not before.
func TestLimitListenerWaitRestartsWhileClientsBytesUnread(t *testing.T) {
	l := testListener(t, 1, time.Second, nil)
	client, ch := connect(t, l)
	a := acceptedConn(t, ch)
	if _, err := client.Write([]byte("GET")); err != nil {
		t.Fatal(err)
	}
	readable(t, a.Conn)
	asked := time.Now().Add(time.Hour) // long past a's grace
	waitingLongest := func(now time.Time) (*limitConn, time.Time) {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.longestWaiting(now)
	}
	if v, next := waitingLongest(asked); v != nil || !next.Equal(asked.Add(evictGrace)) {
		t.Fatalf("the client's bytes unread: a closed %v, next %v; want it kept, next the grace from when the listener asked (%v)", v == a, next, asked.Add(evictGrace))
	}
	if n, err := a.Read(make([]byte, 3)); n != 3 || err != nil {
		t.Fatalf("read %d, %v; want 3 bytes", n, err)
	}
	if v, _ := waitingLongest(asked); v == a {
		t.Error("with the client's bytes read, a full listener closes the connection at once; want it kept for the grace from when it asked")
	}
	if v, _ := waitingLongest(asked.Add(evictGrace)); v != a {
		t.Errorf("with the client's bytes read, a full listener closes a the grace after it asked: %v; want it closed", v == a)
	}
}

// readable waits for c's socket to have bytes to read, up to bound.
func readable(t *testing.T, c net.Conn) {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	rc.Control(func(fd uintptr) {
		fds := []xunix.PollFd{{Fd: int32(fd), Events: xunix.POLLIN}}
		for end := time.Now().Add(bound); ; {
			n, err = xunix.Poll(fds, int(time.Until(end).Milliseconds()))
			if err != xunix.EINTR || !time.Now().Before(end) {
				return
			}
		}
	})
	if err != nil || n == 0 {
		t.Fatalf("the client's bytes not readable within %v (%v)", bound, err)
	}
}

// A connection whose handler is done, net/http giving up the request's
// body (more of it unread than it reads after a handler), waits on its
// client, whatever the client has sent: net/http reads no more from it
// and closes it half a second later. Not given up, a body's bytes come
// and not yet read are the client's next request's, as after any answer.
func TestLimitListenerBodyGivenUpWaitsOnClient(t *testing.T) {
	for _, givenUp := range []bool{false, true} {
		l := testListener(t, 1, 0, nil)
		client, ch := connect(t, l)
		a := acceptedConn(t, ch)
		a.state(http.StateActive)
		if _, err := client.Write([]byte("body")); err != nil {
			t.Fatal(err)
		}
		readable(t, a.Conn)
		a.done(givenUp)
		l.mu.Lock()
		v, _ := l.longestWaiting(time.Now().Add(time.Hour))
		l.mu.Unlock()
		if (v == a) != givenUp {
			t.Errorf("the body given up %v, its bytes unread: a full listener closes the connection %v; want %v", givenUp, v == a, givenUp)
		}
	}
}

// HTTPServer tells the listener when net/http gives up a request's body
// (one that declares more than it reads after a handler, and sends none).
func TestLimitListenerHearsBodyGivenUp(t *testing.T) {
	l := testListener(t, 1, time.Hour, nil)
	h := NewHandler(NewMetrics(Config{}), false)
	hs := h.HTTPServer(slog.New(slog.DiscardHandler))
	conns := make(chan *limitConn, 1)
	closed := make(chan struct{}, 2)
	hooks := hs.ConnState
	hs.ConnState = func(c net.Conn, s http.ConnState) {
		hooks(c, s)
		switch s {
		case http.StateNew:
			conns <- c.(*limitConn)
		case http.StateClosed:
			closed <- struct{}{}
		}
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		hs.Serve(l)
	}()
	t.Cleanup(func() {
		hs.Close()
		<-served
		// net/http's goroutine of a body given up waits half a second
		// before it closes the connection; hs.Close does not wait for it.
		for range 2 {
			select {
			case <-closed:
			case <-time.After(bound):
				t.Errorf("a connection not closed %v after the server", bound)
				return
			}
		}
	})
	for _, tc := range []struct {
		length  int
		givenUp bool
	}{{maxPostHandlerReadBytes, false}, {maxPostHandlerReadBytes + 1, true}} {
		c, err := net.DialTimeout("tcp", l.Addr().String(), bound)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		send(t, c, fmt.Sprintf("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", tc.length))
		answered(t, c) // after the handler, so after done
		lc := <-conns
		l.mu.Lock()
		givenUp := lc.bodyGivenUp
		l.mu.Unlock()
		if givenUp != tc.givenUp {
			t.Errorf("a body of %d bytes declared, none sent: given up %v; want %v", tc.length, givenUp, tc.givenUp)
		}
		c.Close()
	}
}

// A connection being answered whose goroutine has not run for a while
// (a busy process) does not wait on a client that takes every byte: one
// whose write has not reached the kernel, and one whose handler is done
// with the rest of its answer still to write, are not closed for a new
// connection however long since. Once the handler is done and net/http
// reads from the client, or goes idle, it waits on it. A reset after
// 3,940 bytes of an answer (TestFullListenerKeepsConnectionsBeingAnswered
// on a busy machine) was the first. (Where the socket is not asked, off
// Unix, a write under way waits on its client: pending_other.go.)
func TestLimitListenerKeepsConnectionsItsProcessKeepsWaiting(t *testing.T) {
	held := heldWrites{entered: make(chan struct{}, 1), release: make(chan struct{})}
	l := testListener(t, 1, 0, func(ln net.Listener) net.Listener { held.Listener = ln; return held })
	_, ch := connect(t, l)
	a := acceptedConn(t, ch)
	waitingLongest := func() *limitConn {
		l.mu.Lock()
		defer l.mu.Unlock()
		victim, _ := l.longestWaiting(time.Now().Add(time.Hour))
		return victim
	}
	a.state(http.StateActive)
	wrote := make(chan error, 1)
	go func() {
		_, err := a.Write([]byte("HTTP/1.1 200 OK\r\n"))
		wrote <- err
	}()
	select {
	case <-held.entered:
	case <-time.After(bound):
		t.Fatalf("no write under way within %v", bound)
	}
	if waitingLongest() == a {
		t.Error("a write under way that the kernel can take: a full listener may close its connection; want it kept")
	}
	close(held.release)
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	a.done(false)
	if waitingLongest() == a {
		t.Error("a handler done, the rest of its answer yet to write: a full listener may close its connection; want it kept")
	}
	a.SetReadDeadline(time.Now()) // the read returns at once, having begun
	a.Read(make([]byte, 1))       // as net/http reads a body no handler read
	if waitingLongest() != a {
		t.Error("a handler done, reading from its client: a full listener may not close its connection; want it closed")
	}
}

// heldWrites accepts connections whose writes, before the kernel has
// their bytes, tell entered and wait for release: a writer whose
// goroutine has not run.
type heldWrites struct {
	net.Listener
	entered chan struct{}
	release chan struct{}
}

func (l heldWrites) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return heldConn{c.(*net.TCPConn), l}, nil
}

type heldConn struct {
	*net.TCPConn // its socket, for the listener to ask
	l            heldWrites
}

func (c heldConn) Write(p []byte) (int, error) {
	c.l.entered <- struct{}{}
	<-c.l.release
	return c.TCPConn.Write(p)
}
