package bench_test

import (
	"net"
	"strings"
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
		type held struct {
			p    []byte
			from net.Addr
		}
		var first []held
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			reply := []byte(strings.ToUpper(string(buf[:n])))
			if len(first) < depth {
				// The first depth replies go together, while bench does
				// not read: its socket keeps what fits and drops the rest.
				first = append(first, held{reply, from})
				if len(first) == depth {
					for _, h := range first {
						pc.WriteTo(h.p, h.from)
					}
					close(release)
				}
				continue
			}
			pc.WriteTo(reply, from)
		}
	}()
	cfg := quick("udp", pc.LocalAddr().String())
	// The timeout is quick's 2 s: every reply bench's socket kept must
	// beat it, for lost to be only the drops (at 300 ms, a busy machine
	// once made 2 of 64 late).
	cfg.Conns, cfg.Depth, cfg.Text = 1, depth, "ascii"
	rep := run(t, cfg)
	if rep.DroppedByBench == 0 || rep.Lost != rep.DroppedByBench {
		t.Errorf("%d lost, %d dropped by bench's own socket; want them the same, and more than 0", rep.Lost, rep.DroppedByBench)
	}
	var text strings.Builder
	rep.WriteText(&text)
	if !strings.Contains(text.String(), "dropped by bench's own sockets") {
		t.Errorf("the report does not say bench dropped them:\n%s", text.String())
	}
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
