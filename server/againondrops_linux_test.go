package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"shout/internal/kerneldrops"
)

// caseRuns bounds how many times againOnDrops runs a case.
const caseRuns = 3

// againOnDrops runs a case that sends datagrams on loopback and expects
// each, in order, and runs it again, caseRuns times at most, when it
// failed and the kernel counted a drop meanwhile: the loopback backlog
// every packet passes through, full of a burst of other tests'
// datagrams, or a socket of the case's (made with listenUDP), its
// receive buffer full, dropped one. Such a case checks exact order,
// batch sizes and budgets, so a datagram sent again would fail it too;
// the whole case is run again instead. A case that fails while the
// counters hold still fails t as it would have: the server lost it. A
// case's reads (awaitRead) give up on a datagram as soon as a drop is
// counted, not at batchBound.
func againOnDrops(t testing.TB, run func(t testing.TB)) {
	t.Helper()
	for i := 1; ; i++ {
		a := &attempt{TB: t}
		dropped := a.run(run)
		switch {
		case a.skipped != "" && !a.failed:
			t.Skip(a.skipped)
		case !a.failed:
			return
		case dropped > 0 && i < caseRuns:
			t.Logf("run %d of the case failed, and the kernel dropped %d datagrams during it (the loopback backlog, the sockets on ports %v); running it again:\n\t%s",
				i, dropped, a.ports, strings.Join(a.failures, "\n\t"))
			continue
		}
		for _, f := range a.failures {
			t.Error(f)
		}
		if dropped > 0 {
			t.Errorf("(run %d of %d; the kernel dropped %d datagrams during it, and during each before: the loopback backlog, the sockets on ports %v)",
				i, caseRuns, dropped, a.ports)
		}
		t.FailNow()
	}
}

// attempt is one run of a case: a testing.TB that keeps the case's
// failures instead of failing the test, its cleanups until the run ends,
// and the ports of the sockets it made.
type attempt struct {
	testing.TB
	mu       sync.Mutex
	failures []string
	failed   bool
	skipped  string
	ports    []int
	cleanups []func()
	backlog  int64 // the loopback backlogs' drops when the run began
}

// run runs the case on its own goroutine (so that FailNow can end it)
// and returns how many datagrams the kernel dropped meanwhile.
func (a *attempt) run(run func(t testing.TB)) (dropped int64) {
	a.backlog = kerneldrops.Backlog()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer a.cleanup()
		defer func() {
			// A socket's count goes with it: read before the cleanups
			// close it.
			dropped = a.dropped()
		}()
		run(a)
	}()
	<-done
	return dropped
}

// dropped is how many datagrams the kernel has dropped since the run
// began: the loopback backlogs', and those of the run's sockets.
func (a *attempt) dropped() int64 {
	n := kerneldrops.Backlog() - a.backlog
	for _, p := range a.portList() {
		n += kerneldrops.UDPPort(p)
	}
	return n
}

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

func (a *attempt) portList() []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.ports)
}

// watch counts the drops of the socket on port with the case's.
func (a *attempt) watch(port int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ports = append(a.ports, port)
}

func (a *attempt) cleanup() {
	for _, f := range slices.Backward(a.cleanups) {
		f()
	}
}

func (a *attempt) fail(msg string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failed = true
	if msg != "" {
		a.failures = append(a.failures, msg)
	}
}

func (a *attempt) Cleanup(f func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cleanups = append(a.cleanups, f)
}

func (a *attempt) Failed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.failed
}

func (a *attempt) Fail()                             { a.fail("") }
func (a *attempt) FailNow()                          { a.fail(""); runtime.Goexit() }
func (a *attempt) Error(args ...any)                 { a.fail(strings.TrimSuffix(fmt.Sprintln(args...), "\n")) }
func (a *attempt) Errorf(format string, args ...any) { a.fail(fmt.Sprintf(format, args...)) }
func (a *attempt) Fatal(args ...any)                 { a.Error(args...); runtime.Goexit() }
func (a *attempt) Fatalf(format string, args ...any) { a.Errorf(format, args...); runtime.Goexit() }
func (a *attempt) SkipNow()                          { a.Skip("skipped") }
func (a *attempt) Skipf(format string, args ...any)  { a.Skip(fmt.Sprintf(format, args...)) }

func (a *attempt) Skip(args ...any) {
	a.mu.Lock()
	a.skipped = strings.TrimSuffix(fmt.Sprintln(args...), "\n")
	a.mu.Unlock()
	runtime.Goexit()
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
