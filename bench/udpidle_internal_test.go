package bench

import (
	"context"
	"net"
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
