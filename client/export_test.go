package client

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// SetWatchClock gives the stuck watch of every Pipe now for its clock
// (time since the Pipe began) and ticks for its ticker, until t ends.
// Tests that call it must not run in parallel.
func SetWatchClock(t testing.TB, now func() time.Duration, ticks <-chan time.Time) {
	watchClock = func() (func() time.Duration, <-chan time.Time) { return now, ticks }
	t.Cleanup(func() { watchClock = nil })
}

// SetClock gives a Terminal's stream session now for its clock, which
// says how long a connection the server closed had been idle, until t
// ends. Tests that call it must not run in parallel.
func SetClock(t testing.TB, now func() time.Time) {
	clock = now
	t.Cleanup(func() { clock = time.Now })
}

// SetPipeLooks runs between, until t ends, between each Pipe's reader's
// two looks at what its sender said (is input done, did it fail), and
// inputDone once its sender has said input is done. Tests that call it
// must not run in parallel.
func SetPipeLooks(t testing.TB, between, inputDone func()) {
	pipeBetweenLooks, pipeInputDone = between, inputDone
	t.Cleanup(func() { pipeBetweenLooks, pipeInputDone = nil, nil })
}

// SetReplyTimeouts ends Datagrams' wait for a reply (and a Terminal's
// over UDP), as if its timeout had passed, each time the test sends on
// timeouts, until t ends; the timeout given still ends a wait that no
// send ends. Send
// only while Datagrams waits for a reply that will not come: a send that
// meets a wait the reply ended is lost. Tests that call it must not run
// in parallel.
func SetReplyTimeouts(t testing.TB, timeouts <-chan struct{}) {
	replyTimeouts = timeouts
	t.Cleanup(func() { replyTimeouts = nil })
}

// SetLateTaken tells taken, until t ends, each time Datagrams takes a
// late reply from the socket of a line it reported lost: the next line
// sent reports it. Tests that call it must not run in parallel.
func SetLateTaken(t testing.TB, taken chan<- struct{}) {
	lateTaken = taken
	t.Cleanup(func() { lateTaken = nil })
}

// SetLookup resolves names with lookup, until t ends, and forgets which
// address of a name answered UDP. Tests that call it must not run in
// parallel.
func SetLookup(t testing.TB, lookup func(ctx context.Context, network, host string) ([]netip.Addr, error)) {
	lookupNetIP = lookup
	udpAnswered = sync.Map{}
	t.Cleanup(func() { lookupNetIP = net.DefaultResolver.LookupNetIP; udpAnswered = sync.Map{} })
}

// SetHoldLines holds the goroutine that takes each line from the editor
// of a Terminal run from now until t ends, at each line (or end), until
// hold is closed.
func SetHoldLines(t testing.TB, hold <-chan struct{}) {
	holdLines = hold
	t.Cleanup(func() { holdLines = nil })
}

// SetUDPLocal binds each UDP socket dialled, until t ends, to the address
// local gives for the address it is dialled to (nil: one the system
// picks). Tests that call it must not run in parallel.
func SetUDPLocal(t testing.TB, local func(addr string) net.Addr) {
	udpLocal = local
	t.Cleanup(func() { udpLocal = nil })
}
