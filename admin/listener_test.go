package admin

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"shout/internal/sockerr"
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
	c.done(false) // c's answer is out: c waits on its client, idle
	c.state(http.StateIdle)
	e := acceptedConn(t, ch)
	if l.has(c) || !l.has(a) || !l.has(d) || !l.has(e) {
		t.Fatalf("after c's answer: a %v, c %v, d %v, e (new) %v; want c alone closed", l.has(a), l.has(c), l.has(d), l.has(e))
	}
}

// A connection being answered whose answer its client does not take, so
// that the write blocks, waits on its client: a full listener closes it
// for a new connection. So does one whose handler is done, net/http
// writing the rest of its answer.
func TestLimitListenerClosesBlockedWrite(t *testing.T) {
	for _, handlerDone := range []bool{false, true} {
		t.Run(fmt.Sprintf("handler done %v", handlerDone), func(t *testing.T) {
			l := testListener(t, 1, 0, func(ln net.Listener) net.Listener { return smallBuffers{ln} })
			client, ch := connect(t, l)
			client.(*net.TCPConn).SetReadBuffer(4096)
			a := acceptedConn(t, ch)
			a.state(http.StateActive)
			if handlerDone {
				a.done(false)
			}
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
		})
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

// outOfFilesListener is a listener whose Accept fails with EMFILE n times, as
// when the process is out of descriptors, and then accepts.
type outOfFilesListener struct {
	net.Listener
	mu sync.Mutex
	n  int
}

func (l *outOfFilesListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	fail := l.n > 0
	l.n--
	l.mu.Unlock()
	if fail {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// Out of descriptors, the listener gives up its spare for a new
// connection, then closes the one that has waited longest on its client;
// with neither, Accept fails as the listener's did.
func TestLimitListenerOutOfFiles(t *testing.T) {
	var oof *outOfFilesListener
	l := testListener(t, 3, 0, func(ln net.Listener) net.Listener {
		oof = &outOfFilesListener{Listener: ln}
		return oof
	})
	l.pending = func(time.Duration) bool { return true }
	_, ch := connect(t, l)
	a := acceptedConn(t, ch)
	if l.spare == nil {
		t.Fatal("no spare descriptor")
	}
	oof.n = 2 // the first retry has the spare's descriptor, the second a's
	_, ch = connect(t, l)
	b := acceptedConn(t, ch)
	if l.has(a) || !l.has(b) {
		t.Fatalf("out of descriptors, with no spare: a (waiting) still open %v, b (new) %v; want a closed for b", l.has(a), l.has(b))
	}
	if l.spare == nil {
		t.Error("the spare descriptor was not taken again once one was free")
	}
	b.state(http.StateActive)
	oof.n = 2
	failed := make(chan error, 1)
	go func() {
		c, err := l.Accept() // with no client to accept, if it gets that far
		if err == nil {
			c.Close()
		}
		failed <- err
	}()
	select {
	case err := <-failed:
		if !sockerr.OutOfFiles(err) {
			t.Errorf("Accept with no spare and every connection answering: %v, want EMFILE", err)
		}
	case <-time.After(bound):
		t.Errorf("Accept with no spare and every connection answering did not fail within %v", bound)
		l.Close()
		<-failed
	}
	if !l.has(b) {
		t.Error("a connection being answered was closed for a descriptor")
	}
}

// HTTPServer's hooks tell the listener which connections are being
// answered: with every one in a handler, none is one a full listener may
// close, however long they have been open; once its answer is out and
// it idles, its connection is. Without ConnState's part, the handlers'
// connections could be closed under them; the other tests, telling the
// connections themselves, did not see it.
func TestLimitListenerHearsHTTPServer(t *testing.T) {
	const max = 3
	l := testListener(t, max, 0, nil)
	h := NewHandler(NewMetrics(Config{}), false)
	entered := make(chan *limitConn, max)
	release := make(chan struct{})
	h.Handle("GET /busy", http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		entered <- connOf(r)
		<-release
	}))
	hs := h.HTTPServer(slog.New(slog.DiscardHandler))
	idle := make(chan struct{}, max)
	hooks := hs.ConnState
	hs.ConnState = func(c net.Conn, s http.ConnState) {
		hooks(c, s)
		if s == http.StateIdle {
			idle <- struct{}{}
		}
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		hs.Serve(l)
	}()
	defer func() {
		hs.Close()
		<-served
	}()
	var clients []net.Conn
	for range max {
		c, err := net.DialTimeout("tcp", l.Addr().String(), bound)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		send(t, c, "GET /busy HTTP/1.1\r\nHost: x\r\n\r\n")
		clients = append(clients, c)
	}
	busy := map[*limitConn]bool{}
	for range max {
		select {
		case lc := <-entered:
			busy[lc] = true
		case <-time.After(bound):
			t.Fatalf("%d of %d requests in their handlers after %v", len(busy), max, bound)
		}
	}
	waitingLongest := func() *limitConn {
		l.mu.Lock()
		defer l.mu.Unlock()
		victim, _ := l.longestWaiting(time.Now().Add(time.Hour))
		return victim
	}
	if v := waitingLongest(); v != nil {
		t.Fatalf("with every connection in a handler, %v (in a handler: %v) may be closed for a new one", v, busy[v])
	}
	close(release)
	for _, c := range clients {
		answered(t, c)
	}
	// The client may have its answer before net/http has the connection
	// idle (a busy machine).
	for range max {
		select {
		case <-idle:
		case <-time.After(bound):
			t.Fatalf("not every connection idle %v after its answer", bound)
		}
	}
	if v := waitingLongest(); !busy[v] {
		t.Errorf("with every answer given, the connection a new one may close: %v; want one of the idle ones", v)
	}
}

// send writes s to c.
func send(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

// answered reads one answer from c.
func answered(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(bound))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// Closing a full listener ends an Accept that waits for room, and the
// connection it holds: Serve returns at Shutdown, leaving nothing behind.
func TestLimitListenerCloseWhileFull(t *testing.T) {
	l := testListener(t, 1, 0, nil)
	_, ch := connect(t, l)
	a := acceptedConn(t, ch)
	a.state(http.StateActive)
	client, ch := connect(t, l)
	l.Close()
	select {
	case c, ok := <-ch:
		if ok {
			t.Fatalf("Accept on a closed listener gave %v", c)
		}
	case <-time.After(bound):
		t.Fatalf("Accept still waits %v after Close", bound)
	}
	client.SetReadDeadline(time.Now().Add(bound))
	if n, err := client.Read(make([]byte, 1)); err == nil || os.IsTimeout(err) {
		t.Errorf("the connection Accept held: read %d, %v; want it closed", n, err)
	}
	l.mu.Lock()
	spare := l.spare
	l.mu.Unlock()
	if spare != nil {
		t.Error("the spare descriptor is open after Close")
	}
}
