//go:build linux

package server

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// A listener the loops no longer accept from is forgotten: a server
// that serves one listener after another keeps none of those closed.
func TestLoopListenersForgotten(t *testing.T) {
	if testEngine == EngineGoroutine {
		t.Skip("the loops' own bookkeeping")
	}
	s := &Server{Logger: slog.New(slog.DiscardHandler)}
	defer s.Close()
	for i := range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- s.Serve(ln) }()
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		got := make([]byte, 1)
		if _, err := c.Write([]byte("a")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "A" {
			t.Fatalf("listener %d: got %q, %v", i, got, err)
		}
		c.Close()
		ln.Close()
		select {
		case err := <-served:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return")
		}
	}
	s.mu.Lock()
	lls := *s.loops.listeners.Load()
	s.mu.Unlock()
	kept := 0
	for _, ll := range lls {
		if ll != nil {
			kept++
		}
	}
	if kept != 0 || len(lls) > 1 {
		t.Errorf("after 3 listeners served and closed, the loops keep %d of them in %d places; want none, in at most 1", kept, len(lls))
	}
}
