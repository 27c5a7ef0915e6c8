//go:build unix

package server_test

import (
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"shout/internal/shouttest"
	"shout/server"
)

// A graceful stop answers the clients whose connections still waited in
// the listener's queue, not yet accepted, when it came: their connect had
// completed and they had sent, so closing the listener with them in it
// would reset them (as net/http's Shutdown does). This is a rolling
// restart's lot: clients that connect as SIGTERM comes. Over TCP and over
// a Unix socket, with each driver.
func TestShutdownAnswersQueuedClients(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			srv := &server.Server{Logger: new(shouttest.Log).Logger()}
			ln, served := serveHeld(t, srv, network)
			clients := queueClients(t, ln, 8)
			stopped := shutdown(t, srv)
			answeredQueued(t, clients)
			shutdownReturned(t, stopped)
			if err := <-served; err != server.ErrServerClosed {
				t.Errorf("Serve: %v, want ErrServerClosed", err)
			}
			if _, err := net.DialTimeout(network, ln.Addr().String(), time.Second); err == nil {
				t.Error("still accepting after Shutdown")
			}
		})
	}
}

// A client that connects, then sends, a moment later (tens of
// milliseconds over loopback on a busy machine), is answered when the
// stop comes in between: its connection, which has sent nothing yet, is
// a newcomer, whose first message the stop waits for until it is a
// second old (here longer, for a slow test), as net/http waits for a new
// connection's first request. Closed at once, as an idle one is, it
// would read end of file in place of its reply. Here the clients queue,
// and send only once the stop has had the time to close them (or has
// closed them: then the test fails). Each message takes several reads
// (ReadSize): what came with the first is owed too.
func TestShutdownAnswersANewcomersFirstMessage(t *testing.T) {
	needLinux(t, "SIOCINQ") // elsewhere a stop answers what comes until the client pauses
	srv := &server.Server{Logger: new(shouttest.Log).Logger(), Linger: bound, ReadSize: 512}
	srv.SetNewcomerWait(bound) // however slow the test, its clients send in time
	ln, served := serveHeld(t, srv, "tcp")
	const n = 4
	clients := make([]net.Conn, n)
	for i := range clients {
		clients[i] = shouttest.Dial(t, "tcp", ln.Addr().String(), bound)
	}
	backlogHolds(t, ln.(*net.TCPListener), n)
	stopped := shutdown(t, srv)
	for i, c := range clients {
		// A stop that closed it at once has sent its end of file by now,
		// unless the machine is very slow (then this passes regardless).
		early := readable(t, c, 200*time.Millisecond)
		msg := fmt.Sprintf("late %d%s\n", i, strings.Repeat(", in more than one read", 64))
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		got, err := io.ReadAll(c)
		if want := strings.ToUpper(msg); err != nil || string(got) != want {
			t.Errorf("client %d: got %d bytes, %v, beginning %.12q; want the %d of %.12q…, then end of file (the server's end of file came before it sent: %v)",
				i, len(got), err, got, len(want), want, early)
		}
		c.Close()
	}
	shutdownReturned(t, stopped)
	if err := <-served; err != server.ErrServerClosed {
		t.Errorf("Serve: %v, want ErrServerClosed", err)
	}
}

// A newcomer that never sends waits for its first message only until it
// is the newcomer's wait old, not Linger: a stop with a long Linger is
// not held up by clients that connected and said nothing.
func TestShutdownSilentNewcomerWaitsItsWaitNotLinger(t *testing.T) {
	needLinux(t, "SIOCINQ") // elsewhere a connection's first message is waited for drainQuiet
	srv := &server.Server{Logger: new(shouttest.Log).Logger(), Linger: time.Hour}
	srv.SetNewcomerWait(50 * time.Millisecond)
	ln, served := serveHeld(t, srv, "tcp")
	c := shouttest.Dial(t, "tcp", ln.Addr().String(), bound)
	backlogHolds(t, ln.(*net.TCPListener), 1)
	stopped := shutdown(t, srv)
	c.SetReadDeadline(time.Now().Add(bound))
	if got, err := io.ReadAll(c); err != nil || len(got) > 0 {
		t.Errorf("the silent client read %q, %v; want end of file once it is the newcomer's wait old (50ms), not Linger (an hour)", got, err)
	}
	c.Close()
	shutdownReturned(t, stopped)
	if err := <-served; err != server.ErrServerClosed {
		t.Errorf("Serve: %v, want ErrServerClosed", err)
	}
}

// answeredQueued checks that each of clients, which sent "queued I",
// reads "QUEUED I" and then the server's end of file, within bound, and
// closes it: the server's linger ends on that end of file.
func answeredQueued(t *testing.T, clients []net.Conn) {
	t.Helper()
	for i, c := range clients {
		c.SetReadDeadline(time.Now().Add(bound))
		got, err := io.ReadAll(c)
		if want := fmt.Sprintf("QUEUED %d\n", i); err != nil || string(got) != want {
			t.Errorf("client %d: got %q, %v; want %q, then end of file", i, got, err, want)
		}
		c.Close()
	}
}

// serveHeld serves a new listener on network's loopback with srv, which
// takes no connection from it until it stops: clients queue on it. It
// returns once srv serves it, with the channel Serve's error comes on.
func serveHeld(t *testing.T, srv *server.Server, network string) (net.Listener, <-chan error) {
	t.Helper()
	ln := listenOn(t, network)
	return ln, serveListenerHeld(t, srv, ln)
}

// queueClients connects n clients to ln, whose server takes none of them
// yet, each having sent "queued i\n" (which answeredQueued checks), and
// returns once each is in ln's accept queue (a Unix client's connect
// returns once it is; a TCP one's may return before).
func queueClients(t *testing.T, ln net.Listener, n int) []net.Conn {
	t.Helper()
	clients := make([]net.Conn, n)
	for i := range clients {
		c := shouttest.Dial(t, ln.Addr().Network(), ln.Addr().String(), bound)
		if _, err := fmt.Fprintf(c, "queued %d\n", i); err != nil {
			t.Fatal(err)
		}
		clients[i] = c
	}
	if tl, ok := ln.(*net.TCPListener); ok {
		backlogHolds(t, tl, n)
	}
	return clients
}

// serveListenerHeld serves ln with srv, which takes no connection from it
// until it stops. It returns once srv serves it, with the channel Serve's
// error comes on.
func serveListenerHeld(t *testing.T, srv *server.Server, ln net.Listener) <-chan error {
	t.Helper()
	held := make(chan struct{})
	srv.HoldAccepts(func(net.Listener) { close(held) })
	served := make(chan error, 1)
	t.Cleanup(func() { srv.Close() })
	serveUntilHeld(t, srv, ln, held, served)
	return served
}

// serveUntilHeld runs srv.Serve(ln), whose error comes on served, and
// returns once a hold the test set (HoldAccepts, HoldServe) signals on
// reached: failing t if Serve returns first, or neither comes within
// bound.
func serveUntilHeld(t *testing.T, srv *server.Server, ln net.Listener, reached <-chan struct{}, served chan error) {
	t.Helper()
	go func() { served <- srv.Serve(ln) }()
	select {
	case <-reached:
	case err := <-served:
		t.Fatalf("Serve: %v", err)
	case <-time.After(bound):
		t.Fatal("Serve neither is held nor returns")
	}
}

// readable reports whether c has something to read (its peer's end of
// file too) within d.
func readable(t *testing.T, c net.Conn, d time.Duration) bool {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	ok := false
	rc.Control(func(fd uintptr) { ok = wait(t, int(fd), unix.POLLIN, d) })
	return ok
}
