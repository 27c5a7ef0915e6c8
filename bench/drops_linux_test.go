package bench_test

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"shout/bench"
)

// Replies that bench's own socket dropped, its receive buffer full while
// bench was not reading (a machine too busy for it), are lost as any
// other, but the report says they were dropped by bench itself: they
// reached it, so neither the server nor the network lost them. The
// report blamed the server for them.
func TestUDPDropsAtBench(t *testing.T) {
	const depth = 64
	defer bench.SetUDPReadBuffer(1)() // the kernel's least: a few datagrams
	// A run whose window ended before bench sent its depth datagrams (a
	// stall of the machine longer than the 300 ms window) had no burst of
	// depth replies to drop from, and is run again. Its server, waiting
	// for the depth-th datagram to release bench's reader, waited for
	// good, and so did the run (the package's 20-minute timeout).
	for try := range 5 {
		rep, burst := dropsAtBenchRun(t, depth)
		if !burst {
			t.Logf("run %d of at most 5: its window ended before bench sent its %d datagrams", try+1, depth)
			continue
		}
		if rep.DroppedByBench == 0 || rep.Lost != rep.DroppedByBench {
			t.Errorf("%d lost, %d dropped by bench's own socket; want them the same, and more than 0", rep.Lost, rep.DroppedByBench)
		}
		var text strings.Builder
		rep.WriteText(&text)
		if !strings.Contains(text.String(), "dropped by bench's own sockets") {
			t.Errorf("the report does not say bench dropped them:\n%s", text.String())
		}
		return
	}
	t.Fatalf("in 5 runs the window always ended before bench sent its %d datagrams", depth)
}

// dropsAtBenchRun is one run of TestUDPDropsAtBench: against a server
// that holds its first depth replies and sends them together, while
// bench's reader waits. burst reports whether the server got depth
// datagrams before the window ended; if not, it sends what it holds as
// the window ends, and only then lets bench read.
func dropsAtBenchRun(t *testing.T, depth int) (*bench.Report, bool) {
	release := make(chan struct{})
	defer bench.PauseUDPReaders(release)()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	defer func() { pc.Close(); <-done }()
	type held struct {
		p    []byte
		from net.Addr
	}
	var (
		mu    sync.Mutex // guards first and sent, which the window's end looks at
		first []held
		sent  bool // the held replies went, and release is closed
		burst bool // they went as the depth-th datagram came
	)
	// send sends the held replies together, and lets bench read.
	send := func() {
		for _, h := range first {
			pc.WriteTo(h.p, h.from)
		}
		sent = true
		close(release)
	}
	// Sending stops as the window ends: a server still waiting for the
	// depth-th datagram would wait for good.
	defer bench.AtWindowEnd(func() {
		mu.Lock()
		defer mu.Unlock()
		if !sent {
			send()
		}
	})()
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			reply := []byte(strings.ToUpper(string(buf[:n])))
			mu.Lock()
			if !sent {
				// The first depth replies go together, while bench does
				// not read: its socket keeps what fits and drops the rest.
				first = append(first, held{reply, from})
				if len(first) == depth {
					send()
					burst = true
				}
				mu.Unlock()
				continue
			}
			mu.Unlock()
			pc.WriteTo(reply, from)
		}
	}()
	cfg := quick("udp", pc.LocalAddr().String())
	// The timeout is quick's 2 s: every reply bench's socket kept must
	// beat it, for lost to be only the drops (at 300 ms, a busy machine
	// once made 2 of 64 late).
	cfg.Conns, cfg.Depth, cfg.Text = 1, depth, "ascii"
	rep := run(t, cfg)
	mu.Lock()
	defer mu.Unlock()
	return rep, burst
}

// A socket's drops are not said to be replies when the server also sent
// it datagrams that answer nothing owed: the drops may be those, and the
// lost the server's. Here the server never answers the first datagram
// and sends junk instead, most of it dropped: the report said the lost
// reply was dropped by bench, "the server is not to blame".
func TestUDPDropsOfUnowedDatagrams(t *testing.T) {
	release := make(chan struct{})
	defer bench.PauseUDPReaders(release)()
	defer bench.SetUDPReadBuffer(1)() // the kernel's least: a few datagrams
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for first := true; ; first = false {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if first {
				// No reply, but junk, while bench does not read: its
				// socket keeps what fits and drops the rest.
				for range 64 {
					pc.WriteTo([]byte("unsolicited"), from)
				}
				close(release)
				continue
			}
			pc.WriteTo([]byte(strings.ToUpper(string(buf[:n]))), from)
		}
	}()
	cfg := quick("udp", pc.LocalAddr().String())
	cfg.Conns, cfg.Depth, cfg.Text = 1, 1, "ascii"
	cfg.Timeout = 200 * time.Millisecond // the first datagram's: the run waits it out
	rep := run(t, cfg)
	if rep.Lost == 0 || rep.Mismatches == 0 || rep.DroppedByBench != 0 {
		t.Errorf("%d lost, %d wrong, %d dropped by bench's own socket; want some, some and 0", rep.Lost, rep.Mismatches, rep.DroppedByBench)
	}
}
