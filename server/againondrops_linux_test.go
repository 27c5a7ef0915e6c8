package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"shout/internal/kerneldrops"
)

// dropLook is how long a read of a case againOnDrops runs waits before
// it looks at the kernel's drop counters again.
const dropLook = 100 * time.Millisecond

// awaitRead calls read, a read of c, until it returns something other
// than a timeout or end has passed. In a case againOnDrops runs, it gives
// up as soon as the kernel has counted a drop, rather than at end: what
// is awaited may be what was dropped, and the case runs again. The
// kernel tells of a drop by no event, only by its counters, so the read
// wakes to look at them every dropLook; what is awaited wakes it at once.
func awaitRead[T any](t testing.TB, c interface{ SetReadDeadline(time.Time) error }, end time.Time, read func() (T, error)) (T, error) {
	a, _ := t.(*attempt)
	for {
		wait := end
		if a != nil && time.Until(wait) > dropLook {
			wait = time.Now().Add(dropLook)
		}
		c.SetReadDeadline(wait)
		got, err := read()
		if a == nil || !errors.Is(err, os.ErrDeadlineExceeded) || !time.Now().Before(end) {
			return got, err
		}
		if d := a.dropped(); d > 0 {
			return got, fmt.Errorf("%w, and the kernel dropped %d datagrams meanwhile (the loopback backlog, the sockets on ports %v)", err, d, a.portList())
		}
	}
}

// againOnDrops runs a case again when the kernel counted a drop during
// it: here a socket of the case's, its receive buffer full, drops one on
// the first run, and the case fails then; the second passes.
func TestAgainOnDropsCounted(t *testing.T) {
	runs := 0
	againOnDrops(t, func(t testing.TB) {
		runs++
		if runs > 1 {
			return
		}
		pc := listenUDP(t, "udp4", "127.0.0.1:0")
		pc.SetReadBuffer(1) // the kernel's least: a few datagrams
		port := pc.LocalAddr().(*net.UDPAddr).Port
		c := listenUDP(t, "udp4", "127.0.0.1:0")
		for range 1000 {
			if kerneldrops.UDPPort(port) > 0 {
				break
			}
			c.WriteToUDP(make([]byte, 1000), pc.LocalAddr().(*net.UDPAddr))
		}
		if kerneldrops.UDPPort(port) == 0 {
			t.Skip("the kernel here does not count a UDP socket's drops")
		}
		t.Fatal("a datagram lost")
	})
	if runs != 2 {
		t.Errorf("the case ran %d times, want 2", runs)
	}
}

// A case that fails while the kernel drops nothing fails the test, with
// the case's own failures: the server lost what it failed on.
func TestAgainOnDropsUncounted(t *testing.T) {
	runs := 0
	outer := &attempt{TB: t}
	dropped := outer.run(func(tb testing.TB) {
		againOnDrops(tb, func(t testing.TB) {
			runs++
			t.Errorf("reply %d lost", runs)
		})
	})
	if want := fmt.Sprintf("reply %d lost", runs); !outer.failed || len(outer.failures) == 0 || outer.failures[0] != want {
		t.Errorf("failures %q (failed: %v), want %q", outer.failures, outer.failed, want)
	}
	if runs != 1 && dropped == 0 || runs > caseRuns {
		t.Errorf("the case ran %d times, the kernel dropping %d datagrams; want once", runs, dropped)
	}
}

// A case's read gives up on what it awaits as soon as the kernel has
// counted a drop: here the server's socket, its receive buffer full,
// dropped datagrams the case awaits, and the case fails at once, saying
// so, not at batchBound (when it said only "i/o timeout").
func TestAgainOnDropsGivesUpAtTheDrop(t *testing.T) {
	a := &attempt{TB: t}
	dropped := a.run(func(t testing.TB) {
		pc := listenUDP(t, "udp4", "127.0.0.1:0")
		pc.SetReadBuffer(1) // the kernel's least: a few datagrams
		port := pc.LocalAddr().(*net.UDPAddr).Port
		c := listenUDP(t, "udp4", "127.0.0.1:0")
		sent := 0
		for ; sent < 1000 && kerneldrops.UDPPort(port) == 0; sent++ {
			c.WriteToUDP(make([]byte, 1000), pc.LocalAddr().(*net.UDPAddr))
		}
		if kerneldrops.UDPPort(port) == 0 {
			t.Skip("the kernel here does not count a UDP socket's drops")
		}
		runBatches(t, &Server{Logger: slog.New(slog.DiscardHandler)}, pc, sent)
	})
	if a.skipped != "" {
		t.Skip(a.skipped)
	}
	if want := "the kernel dropped"; dropped == 0 || len(a.failures) != 1 || !strings.Contains(a.failures[0], want) {
		t.Errorf("failures %q, %d dropped; want one that says %q", a.failures, dropped, want)
	}
}
