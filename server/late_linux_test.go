package server_test

import (
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"shout/internal/shouttest"
	"shout/server"
)

// gateSecond is an Observer whose second ConnOpen signals entered and
// waits for release: the event loop that announces it is held there.
type gateSecond struct {
	recorder
	opens            int
	entered, release chan struct{}
}

func (g *gateSecond) ConnOpen(*server.ConnInfo) {
	if g.opens++; g.opens == 2 { // (called by the one loop)
		close(g.entered)
		<-g.release
	}
}

// As TestLingerReadsWhatArrivedLate, with the event loops: a loop held
// past a lingering connection's Linger (by a slow Observer) while its
// client's input waited took the connection for done as it swept, before
// it read that input, and closed it unread: a reset.
func TestLoopLingerReadsWhatArrivedLate(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // one loop, held by the Observer
	// (A linger gives up after 30 Lingers whatever comes: 3 s, which a
	// test goroutine that a busy machine stalls before release does not
	// reach; 600 ms, of a 20 ms Linger, it could.)
	const idle, linger = 20 * time.Millisecond, 100 * time.Millisecond
	gate := &gateSecond{entered: make(chan struct{}), release: make(chan struct{})}
	release := sync.OnceFunc(func() { close(gate.release) })
	defer release()
	srv := &server.Server{IdleTimeout: idle, Linger: linger, Logger: discard(), Observer: gate}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if e, err := srv.EngineFor(ln); err != nil || e != server.EngineLoop {
		ln.Close()
		t.Skip("the event loops' linger (the goroutine driver's: TestLingerReadsWhatArrivedLate)")
	}
	shouttest.Serve(t, srv, ln)
	c := dial(t, ln.Addr().String())
	// The idle timeout's graceful close: end of file, then the linger.
	if got, err := io.ReadAll(c); err != nil || len(got) != 0 {
		t.Fatalf("got %q, %v; want the idle timeout's end of file", got, err)
	}
	lingering := time.Now()
	dial(t, ln.Addr().String()) // its announcement holds the loop
	select {
	case <-gate.entered:
	case <-time.After(bound):
		t.Fatal("the second connection was not announced")
	}
	// A client still sending, that has not read the end of file yet.
	if _, err := io.WriteString(c, "more\n"); err != nil {
		t.Fatal(err)
	}
	acked(t, c)
	for end := time.Now().Add(bound); time.Since(lingering) < 2*linger && time.Now().Before(end); {
		time.Sleep(linger / 4)
	}
	release()
	for range 2 { // the second connection's idle timeout may close it first
		ci := gate.waitClose(t)
		if ci.Remote.String() != c.LocalAddr().String() {
			continue
		}
		if ci.Reason != server.ReasonIdleTimeout {
			t.Errorf("closed for %v (%v), want %v", ci.Reason, ci.Err, server.ReasonIdleTimeout)
		}
		break
	}
	if err := sockError(t, c); err != nil {
		t.Errorf("the client's socket: %v; want none (a reset: the server closed with its input unread)", err)
	}
}

// acked waits until the server's side has acknowledged all that c sent:
// it is in the server's socket.
func acked(t *testing.T, c *net.TCPConn) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(bound); ; time.Sleep(time.Millisecond) {
		n := -1
		rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) })
		if n == 0 {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%d bytes not acknowledged", n)
		}
	}
}
