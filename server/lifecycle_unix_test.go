//go:build unix

package server_test

import (
	"errors"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"shout/internal/shouttest"
	"shout/server"
)

// Of several listeners one Server serves, one that fails for good ends
// its own Serve, closed, and no other: the others accept on, and the
// connections it had brought are served on.
func TestOneListenerFails(t *testing.T) {
	shouttest.CheckFDs(t)
	srv := &server.Server{Logger: discard()}
	var lns []net.Listener
	var served []<-chan error
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		served = append(served, serveOn(t, srv, ln))
	}
	c := dial(t, lns[0].Addr().String())
	exchange(t, c, "a", "A")
	rc, err := lns[0].(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) { err = unix.Shutdown(int(fd), unix.SHUT_RD) }) // accept fails: EINVAL
	if err != nil {
		t.Skipf("cannot shut the listener: %v", err)
	}
	select {
	case err := <-served[0]:
		if err == nil || errors.Is(err, server.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
			t.Errorf("the failed listener's Serve: %v, want its accept error", err)
		}
	case <-time.After(bound):
		t.Fatal("the failed listener's Serve did not return")
	}
	if _, err := lns[0].Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("the failed listener: Accept: %v, want it closed", err)
	}
	exchange(t, c, "b", "B")
	exchange(t, dial(t, lns[1].Addr().String()), "c", "C")
	select {
	case err := <-served[1]:
		t.Fatalf("the other listener's Serve returned: %v", err)
	default:
	}
	srv.Close()
	if err := <-served[1]; err != server.ErrServerClosed {
		t.Errorf("the other listener's Serve: %v, want ErrServerClosed", err)
	}
}
