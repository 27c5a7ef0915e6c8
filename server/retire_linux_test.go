package server

import (
	"errors"
	"log/slog"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// A loop that finds nothing served ends only if, under Server.mu, still
// nothing is: a Serve that comes between its look and its end (here, in
// the hook retiring) has the loop, which goes on, watch its listener.
// With one loop, a loop that ended anyway would leave that listener's
// clients unanswered. Once that listener is closed too, the loop ends.
func TestServeAsLoopRetires(t *testing.T) {
	ln1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	s := &Server{}
	var armed atomic.Bool
	served2 := make(chan error, 1)
	entered := make(chan bool, 1) // whether the Serve took Server.mu in time
	retiring = func() {
		if !armed.CompareAndSwap(true, false) {
			return
		}
		go func() { served2 <- s.Serve(ln2) }()
		// Once it has made the loops not idle, the Serve holds
		// Server.mu until it watches ln2: retire waits for that.
		deadline := time.Now().Add(10 * time.Second)
		for s.loops.idle.Load() && time.Now().Before(deadline) {
			runtime.Gosched()
		}
		entered <- !s.loops.idle.Load()
	}
	defer func() { retiring = nil }()
	if testEngine == EngineGoroutine {
		t.Skip("the loops' own ending")
	}
	s.Logger = slog.New(slog.DiscardHandler)
	defer s.Close()
	served1 := make(chan error, 1)
	func() {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // the loops are made with the server's first Serve
		go func() { served1 <- s.Serve(ln1) }()
		c := dial(t, ln1.Addr()) // answered: the loop runs
		answer(t, c, "a")
		c.Close()
	}()
	armed.Store(true)

	ln1.Close() // its Serve returns, and the loop, finding nothing served, retires
	select {
	case err := <-served1:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("the first Serve: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first Serve did not return")
	}
	select {
	case ok := <-entered:
		if !ok {
			t.Fatal("the second Serve did not start within 10s")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not try to end once nothing was served")
	}
	c := dial(t, ln2.Addr())
	answer(t, c, "b")
	c.Close()

	ended := make(chan struct{})
	go func() { s.wg.Wait(); close(ended) }()
	ln2.Close()
	select {
	case err := <-served2:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("the second Serve: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second Serve did not return")
	}
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("with nothing served, the loop still runs 10s later")
	}
}
