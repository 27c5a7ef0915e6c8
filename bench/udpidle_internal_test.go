package bench

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"shout/endpoint"
)

// A socket owed nothing as the run stops ends its reader at once, though
// Run's drain moves its read deadline to the end of the wait for the
// replies owed after finish put it in the past and before the reader
// woke: finish put it there once, and the reader, woken, found a deadline
// an hour off and waited it out (Timeout), for replies it was not owed.
func TestUDPSocketOwedNothingEndsAtOnce(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0") // (sent nothing, it answers nothing)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	woken, drainSet, ended := make(chan struct{}), make(chan struct{}), make(chan struct{})
	sendTimed = func(r *run) { <-r.stop } // nothing sent: nothing owed as the run stops
	readerWoken = sync.OnceFunc(func() { close(woken) })
	drainDeadlines = func(set func()) { // after finish's, before the reader wakes
		wait(woken)
		set()
		close(drainSet)
	}
	udpReaderStart = func() { wait(drainSet) }
	udpReaderEnd = func() { close(ended) }
	defer func() { sendTimed, readerWoken, drainDeadlines, udpReaderStart, udpReaderEnd = nil, nil, nil, nil, nil }()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cfg := Config{Endpoint: endpoint.Endpoint{Network: "udp", Address: pc.LocalAddr().String()},
		Conns: 1, Warmup: -1, Duration: time.Millisecond, Timeout: time.Hour, Text: "ascii"}
	ran := make(chan error, 1)
	go func() {
		_, err := Run(ctx, cfg)
		ran <- err
	}()
	select {
	case <-ended:
	case <-time.After(10 * time.Second): // a safety net: the reader ends within a millisecond or two
		t.Errorf("the reader of a socket owed nothing had not ended 10 s after the run stopped: the run waits out its %v Timeout for replies it is not owed", cfg.Timeout)
		cancel() // (cuts the wait)
	}
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
}

// A socket whose reader wake could not end, and closed, has no drops to
// read: none are counted. Read from the closed socket as none, less
// those it had when measuring began, they were counted below none, and
// DroppedByBench with them.
func TestUDPSocketClosedByWakeCountsNoDrops(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Drops as measuring begins: more than the least receive buffer
	// holds, unread (a loopback send drops or queues at once).
	c.(*net.UDPConn).SetReadBuffer(1)
	d := make([]byte, 1400)
	for range 64 {
		pc.WriteTo(d, c.LocalAddr())
	}
	was := wakeTries
	wakeTries = 2
	defer func() { wakeTries = was }()
	cfg := Config{Endpoint: endpoint.Endpoint{Network: "udp", Address: pc.LocalAddr().String()}, Conns: 1, Timeout: time.Second}
	r, u := bareUDPSocket(t, &cfg)
	u.c = c
	if u.dropsBefore = socketDrops(c); u.dropsBefore == 0 {
		t.Skip("the socket's drops cannot be read here")
	}
	// A reader that wake's deadlines never end: each is put off, as
	// Run's drain might, until the socket is closed.
	go func() {
		defer close(u.done)
		buf := make([]byte, 1<<16)
		for range 1000 { // (wake sets wakeTries deadlines)
			_, err := c.Read(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				c.SetReadDeadline(time.Time{})
			}
		}
		t.Error("the socket was not closed")
	}()
	u.finish()
	if got := r.droppedHere.Load(); got != 0 {
		t.Errorf("%d datagrams dropped by bench, its socket closed; want 0: its drops could not be read", got)
	}
}
