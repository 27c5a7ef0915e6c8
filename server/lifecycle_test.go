package server_test

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"shout/server"
)

// As with net/http, a Serve that returns (here: its listener closed by
// the caller) leaves the connections it accepted served; once they have
// closed too, nothing of the server runs and none of its descriptors is
// open, though neither Shutdown nor Close was called. A later Serve
// starts again what it needs, and Close is still clean after.
func TestNothingLeftOnceNothingServed(t *testing.T) {
	others := goleak.IgnoreCurrent()
	fdsBefore := openFDs(t)
	hook, states := states()
	// An IdleTimeout that never fires: the goroutine driver starts a
	// watcher for it.
	srv := &server.Server{ConnState: hook, IdleTimeout: time.Hour, Logger: discard()}
	for round := range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		c := dial(t, ln.Addr().String())
		exchange(t, c, "a", "A")
		waitState(t, states, server.StateNew)
		ln.Close()
		select {
		case err := <-served:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("round %d: Serve: %v, want net.ErrClosed", round, err)
			}
		case <-time.After(bound):
			t.Fatalf("round %d: Serve did not return", round)
		}
		exchange(t, c, "b", "B") // still served
		c.Close()
		waitState(t, states, server.StateClosed)
		select {
		case <-srv.Ended():
		case <-time.After(bound):
			t.Fatalf("round %d: with nothing served, the server's goroutines still run %v later", round, bound)
		}
		if err := goleak.Find(others); err != nil {
			t.Errorf("round %d: %v", round, err)
		}
		if fds := openFDs(t); fds > fdsBefore {
			t.Errorf("round %d: %d descriptors open, %d before", round, fds, fdsBefore)
		}
	}
	if err := srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// openFDs counts the process's open descriptors, where /proc tells.
func openFDs(t *testing.T) int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(fds)
}
