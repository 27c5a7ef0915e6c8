package server

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"shout/internal/kerneldrops"
)

// caseRuns bounds how many times againOnDrops runs a case.
const caseRuns = 3

// againOnDrops runs a case that sends datagrams on loopback and expects
// each, in order, and runs it again, caseRuns times at most, when it
// failed and the kernel counted a drop meanwhile: the loopback backlog
// every packet passes through, full of a burst of other tests'
// datagrams, or a socket of the case's (made with listenUDP, or named
// to WatchDrops), its receive buffer full, dropped one. Such a case checks exact order,
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
