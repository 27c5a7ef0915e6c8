package shouttest

import (
	"io"
	"maps"
	"net"
	"slices"
	"testing"
	"time"

	"shout/internal/sockerr"
)

// bound bounds a wait that a failure would make endless.
const bound = 10 * time.Second

// A datagram held back (After) has its timer stopped when the relay
// closes: none is left to fire after the test that made it.
func TestUDPRelayCloseStopsHeld(t *testing.T) {
	hold := func(dir, n int, b []byte) []Packet { return []Packet{{Data: b, After: time.Hour}} }
	r, err := newUDPRelay("127.0.0.1:1", hold) // (nothing is relayed there)
	if err != nil {
		t.Fatal(err)
	}
	sent := false
	r.impair(ToServer, []byte("held"), func(Packet) { sent = true })
	r.mu.Lock()
	timers := slices.Collect(maps.Keys(r.held))
	r.mu.Unlock()
	r.close()
	r.mu.Lock()
	held := len(r.held)
	r.mu.Unlock()
	if len(timers) != 1 || held != 0 || sent {
		t.Errorf("%d timers before close; after it %d datagrams held, sent %v; want 1, then none held or sent", len(timers), held, sent)
	}
	for _, tm := range timers {
		if tm.Stop() { // (false: close stopped it already)
			t.Error("a held datagram's timer still runs after close")
		}
	}
}

// A client's reset that comes while the relay gathers bytes (Coalesce)
// reaches the server as a reset, not as an end of file.
func TestStreamRelayCoalesceReset(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ended := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ended <- err
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(bound))
		_, err = io.Copy(io.Discard, c)
		ended <- err
	}()
	// Coalescing for longer than the test may take: only the reset ends it.
	addr := StreamRelay(t, ln.Addr().String(), Stream{Coalesce: time.Hour}, Stream{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "reset after this")
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	select {
	case err := <-ended:
		if !sockerr.Reset(err) {
			t.Errorf("the server's read ended with %v; want a reset", err)
		}
	case <-time.After(bound):
		t.Fatal("the server's read did not end")
	}
}
