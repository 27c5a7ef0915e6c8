package bench

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"shout/endpoint"
	"shout/internal/shouttest"
)

// The goroutine driver's open loop, sending as the run stops (sendRest)
// what fell due before the window's end, looks for its server's idle
// close first, as its rounds do (TestOpenLoopIdleCloseWhileReaderStalls)
// and as an event loop's sendRest does (TestLoopIdleCloseBeforeASend-
// IsAnError): the message is never sent, on a failed connection, and
// nothing is wrong. Sent, with its reader held up before the close, it
// was owed at the close and counted wrong ("closed before the reply
// began"). sendRest gives send the time to look by; given none (0), it
// never looked, and no test saw.
func TestSendRestLooksForAnIdleClose(t *testing.T) {
	if !forceGoroutines {
		t.Skip("the goroutine driver's sendRest: the event loops' is TestLoopIdleCloseBeforeASendIsAnError")
	}
	// closed: the server has shut its side, having answered two
	// messages. Over loopback its close has come to bench's socket as
	// the shutdown returns.
	closed := make(chan struct{})
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for range 2 {
			line, err := br.ReadBytes('\n')
			if err != nil {
				return
			}
			if _, err := c.Write(bytes.ToUpper(line)); err != nil {
				return
			}
		}
		c.(*net.TCPConn).CloseWrite()
		close(closed) // (one connection: the run has one)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, c)
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wait := func(c <-chan struct{}, what string) {
		select {
		case <-c:
		case <-time.After(10 * time.Second):
			t.Errorf("%s: not within 10 s", what)
		}
	}
	// The reader, having taken the second reply (1), waits until the
	// third message's send has ended: the close is still to be read.
	taken, second, sent := make(chan struct{}), make(chan struct{}), make(chan struct{})
	replyTaken = func(k uint64) {
		if k == 1 {
			close(taken)
			wait(sent, "the third message's send")
		}
	}
	sendEnds = func(k uint64) {
		switch k {
		case 1:
			close(second)
		case 2:
			close(sent)
		}
	}
	// The open loop's first round that finds the third message due, the
	// second sent, is held until the second's reply is taken and the run
	// has stopped (Ctrl-C, once the server has closed): so sendRest sends
	// it. (Held only once the reply was taken, the round was a later one:
	// a stall past the third's due time with the second's reply owed had
	// a round find it due with no room, behind, and at the stop it was
	// held back, never sent, counted unanswered, and the reader waited in
	// vain for its send: "the third message's send: not within 10 s".)
	var held atomic.Bool
	sendTimed = func(r *run) {
		select {
		case <-second:
		default:
			return
		}
		if r.now() < r.scheduleOf(0).due(2) || !held.CompareAndSwap(false, true) {
			return
		}
		wait(taken, "the second reply")
		wait(closed, "the server's close")
		cancel()
		wait(r.stop, "the run's stop")
	}
	defer func() { replyTaken, sendEnds, sendTimed = nil, nil, nil }()
	// Patient and one in flight, as TestOpenLoopIdleCloseWhileReaderStalls;
	// --duration 10 s a bound: the run stops on the cancel. A message
	// every 2 s: at 2 a second, a stall over the second's due time (0.5 s)
	// had the round that sent it find the third due (1 s), behind, and
	// the third was held back at the stop as above.
	cfg := Config{Endpoint: endpoint.Endpoint{Network: "tcp", Address: addr},
		Conns: 1, Depth: 1, Rate: 0.5, Text: "ascii", Warmup: -1,
		Duration: 10 * time.Second, Timeout: time.Second, patient: true, oneInFlight: true}
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !held.Load() {
		t.Fatal("no round held with the third message due")
	}
	if rep.Messages != 2 || rep.Mismatches != 0 || rep.Lost != 0 || rep.UnsentFailed == 0 {
		t.Errorf("%d messages, %d wrong (%q), %d lost, %d never sent on failed connections; "+
			"want 2, 0, 0, the third never sent", rep.Messages, rep.Mismatches, rep.FirstMismatch, rep.Lost, rep.UnsentFailed)
	}
}
