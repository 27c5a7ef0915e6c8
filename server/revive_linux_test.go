package server_test

import (
	"errors"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"shout/internal/shouttest"
	"shout/server"
)

// A Serve that cannot start the event loops again, having ended with
// nothing served (out of descriptors: here, with two loops, it starts
// one and fails on the other), returns an error that says so and closes
// its listener; the loop it started ends, no descriptor is left open,
// and the next Serve starts the loops.
func TestServeCannotReviveLoops(t *testing.T) {
	if server.EngineUnderTest() == server.EngineGoroutine {
		t.Skip("the loops' own start")
	}
	shouttest.CheckFDs(t)
	srv := &server.Server{Logger: discard()}
	defer srv.Close()
	for try := 0; ; try++ {
		if try == 5 {
			t.Skip("a descriptor came free each time, and the loops started")
		}
		prev := runtime.GOMAXPROCS(2) // two loops, made with the server's first Serve
		err := serveOnce(srv, "1")
		runtime.GOMAXPROCS(prev)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-srv.Ended():
		case <-time.After(bound):
			t.Fatalf("with nothing served, the server's goroutines still run %v later", bound)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		restore := outOfDescriptorsBut(t, 3) // a loop takes two: an epoll set and an eventfd
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		select {
		case err = <-served:
		case <-time.After(bound): // served: a descriptor came free
		}
		restore()
		if err == nil {
			ln.Close()
			<-served
			continue
		}
		if !strings.Contains(err.Error(), "cannot start the event loops") {
			t.Errorf("Serve: %v, want it to say it cannot start the event loops", err)
		}
		if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("the listener after Serve: Accept: %v, want it closed", err)
		}
		break
	}
	select {
	case <-srv.Ended():
	case <-time.After(bound):
		t.Fatalf("after the failed start, the server's goroutines still run %v later", bound)
	}
	if err := serveOnce(srv, "2"); err != nil {
		t.Fatal(err)
	}
}
