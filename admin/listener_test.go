package admin

import (
	"net"
	"net/http"
	"testing"
	"time"
)

const bound = 10 * time.Second

// testListener is a limitListener of max connections on loopback, with
// evictGrace set to grace until the test ends.
func testListener(t *testing.T, max int, grace time.Duration, wrap func(net.Listener) net.Listener) *limitListener {
	t.Helper()
	old := evictGrace
	evictGrace = grace
	t.Cleanup(func() { evictGrace = old })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var inner net.Listener = ln
	if wrap != nil {
		inner = wrap(ln)
	}
	l := newLimitListener(inner, max)
	t.Cleanup(func() { l.Close() })
	return l
}

// connect dials l and returns the client's end and the server's, once
// accepted; the server's is nil if Accept is still waiting after the
// client's connection is made (then accepted gets it).
func connect(t *testing.T, l *limitListener) (client net.Conn, accepted <-chan *limitConn) {
	t.Helper()
	ch := make(chan *limitConn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(ch)
			return
		}
		ch <- c.(*limitConn)
	}()
	client, err := net.DialTimeout("tcp", l.Addr().String(), bound)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client, ch
}

// accepted waits for a connection from ch.
func acceptedConn(t *testing.T, ch <-chan *limitConn) *limitConn {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("Accept failed")
		}
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(bound):
		t.Fatalf("no connection accepted within %v", bound)
		return nil
	}
}

func (l *limitListener) has(c *limitConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.conns[c]
	return ok
}

// A full listener closes, for a new connection, the one that has waited
// on its client longest, never one whose request is being answered; with
// every one being answered, the new one waits until one is done.
func TestLimitListenerClosesLongestWaiting(t *testing.T) {
	l := testListener(t, 3, 0, nil)
	_, ch := connect(t, l)
	a := acceptedConn(t, ch)
	_, ch = connect(t, l)
	b := acceptedConn(t, ch)
	_, ch = connect(t, l)
	c := acceptedConn(t, ch)
	a.state(http.StateActive) // answering: a stays
	_, ch = connect(t, l)
	d := acceptedConn(t, ch)
	if l.has(b) || !l.has(a) || !l.has(c) || !l.has(d) {
		t.Fatalf("after a fourth connection: a (answering) %v, b (waiting longest) %v, c %v, d (new) %v; want b alone closed",
			l.has(a), l.has(b), l.has(c), l.has(d))
	}
	c.state(http.StateActive)
	d.state(http.StateActive)
	_, ch = connect(t, l)
	select {
	case e := <-ch:
		t.Fatalf("a connection (%v) accepted while every one was being answered", e)
	default:
	}
	c.done() // c's answer is out: c waits on its client
	e := acceptedConn(t, ch)
	if l.has(c) || !l.has(a) || !l.has(d) || !l.has(e) {
		t.Fatalf("after c's answer: a %v, c %v, d %v, e (new) %v; want c alone closed", l.has(a), l.has(c), l.has(d), l.has(e))
	}
}

// A connection being answered whose answer its client does not take, so
// that the write blocks, waits on its client: a full listener closes it
// for a new connection.
func TestLimitListenerClosesBlockedWrite(t *testing.T) {
	l := testListener(t, 1, 0, func(ln net.Listener) net.Listener { return smallBuffers{ln} })
	client, ch := connect(t, l)
	client.(*net.TCPConn).SetReadBuffer(4096)
	a := acceptedConn(t, ch)
	a.state(http.StateActive)
	wrote := make(chan error, 1)
	go func() {
		_, err := a.Write(make([]byte, 16<<20)) // far more than the buffers hold
		wrote <- err
	}()
	_, ch = connect(t, l)
	acceptedConn(t, ch)
	select {
	case err := <-wrote:
		if err == nil {
			t.Fatal("the blocked write finished; want it cut short by the close")
		}
	case <-time.After(bound):
		t.Fatalf("the blocked write still blocks %v after a new connection came", bound)
	}
}

type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}
