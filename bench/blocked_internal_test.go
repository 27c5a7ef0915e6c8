//go:build unix

// (Elsewhere a write the server takes none of cannot be cut short: see
// write_other.go.)

package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"shout/endpoint"
	"shout/internal/certs"
)

// A goroutine-driven connection whose reader finds the server's close
// while its writer is stuck in a write the server takes no more of ends
// then, not at the write's deadline: the run ended with the connection's
// failure only once its write timed out (--timeout 20s: 20.9 s for a
// run of 1.2 s). Every message is counted as README's rule has it, as
// the event loops count their buffer: those handed over (written, the
// stuck write's whole) are answered, wrong (the next, closed before its
// reply began) or lost, whether or not the server took their bytes; and
// without TLS the event loops count the same. The write's deadline is an
// hour: a run that ends before it was ended by the failure, not by the
// deadline. A write that begins only once the reader has found the
// failure (its send begun before, its messages pushed) goes as far as
// the socket takes it and ends there, not at its deadline: the reader
// cuts short only a write that waits for the server, so that one about
// to begin writes what it can, as its messages count handed over.
func TestStuckWriteEndsAtTheFailure(t *testing.T) {
	was, held := forceGoroutines, messagesHeld
	messagesHeld = 16 << 20 // (2 messages of 8 MiB, the fewest made)
	defer func() { forceGoroutines, messagesHeld = was, held }()
	for _, tc := range []struct {
		name            string
		answered, depth int
		size            int
		tls             bool
		found           failureFound
	}{
		// One write of 32 MiB, the whole window: more than the sockets
		// of both ends hold.
		{"pipelined", 3, 512, 64 << 10, false, asItComes},
		{"pipelined over TLS", 3, 512, 64 << 10, true, asItComes},
		// The server closes before it reads: the only message is cut.
		{"the first message cut", 0, 1, 8 << 20, false, inTheWrite},
		{"the first message written after the failure", 0, 1, 8 << 20, false, beforeTheWrite},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var loops *Report
			if loopsAvailable && !tc.tls {
				forceGoroutines = false
				loops = runStuck(t, tc.answered, tc.depth, tc.size, false, asItComes)
			}
			forceGoroutines = true
			rep := runStuck(t, tc.answered, tc.depth, tc.size, tc.tls, tc.found)
			// (Lost may differ: each is what its driver handed over, and
			// an event loop buffers the messages the replies' freed
			// window lets it, where the writer is stuck.)
			if loops != nil && (rep.Messages != loops.Messages || rep.Mismatches != loops.Mismatches ||
				rep.Errors != loops.Errors || rep.Unsent != loops.Unsent) {
				t.Errorf("goroutines: %d messages, %d wrong, %d errors, %d unsent; event loops: %d, %d, %d, %d: want the same",
					rep.Messages, rep.Mismatches, rep.Errors, rep.Unsent, loops.Messages, loops.Mismatches, loops.Errors, loops.Unsent)
			}
		})
	}
}

// failureFound is when a goroutine-driven reader finds the server's close
// (runStuck).
type failureFound int

const (
	asItComes      failureFound = iota
	inTheWrite                  // the writer waits for the server to take its bytes
	beforeTheWrite              // the send's messages are pushed, its write yet to begin
)

// runStuck runs bench on one connection of a stuckServer answering
// answered, the run's only failure its close, found as found says, and
// checks that it ends before the write's deadline (an hour) and that
// every message handed over is in one count, answered answered and the
// next wrong.
func runStuck(t *testing.T, answered, depth, size int, withTLS bool, found failureFound) *Report {
	t.Helper()
	release := make(chan struct{})
	var releasing sync.Once
	defer releasing.Do(func() { close(release) })
	var serverTLS, clientTLS *tls.Config
	if withTLS {
		serverTLS, clientTLS = selfSigned(t)
	}
	addr, got, shut := stuckServer(t, answered, nil, release, serverTLS)
	var handed atomic.Int64
	var hold <-chan struct{} // the first send's write waits for it
	var held atomic.Bool
	sentNoted = func(_ *run, _ int64, measured bool) {
		if measured {
			handed.Add(1)
		}
		if hold != nil && held.CompareAndSwap(false, true) {
			wait(hold)
		}
	}
	defer func() { sentNoted, streamReaderStart, writeWaits, readerClosed = nil, nil, nil, nil }()
	switch found {
	case inTheWrite:
		// The reader reads the close only once the write is stuck
		// under way (else the send is refused: never handed over).
		stuck := make(chan struct{})
		var once sync.Once
		writeWaits = func() { once.Do(func() { close(stuck) }) }
		streamReaderStart = func() { wait(stuck) }
	case beforeTheWrite:
		// The write begins once the reader has dealt with the close.
		closed := make(chan struct{})
		var once sync.Once
		readerClosed = func() { once.Do(func() { close(closed) }) }
		hold = closed
	}
	cfg := Config{Endpoint: endpoint.Endpoint{Network: "tcp", Address: addr, TLS: withTLS}, TLS: clientTLS, Conns: 1, Depth: depth, Size: size,
		Text: "ascii", Mode: "ascii", Warmup: -1, Duration: time.Hour, Timeout: time.Hour}
	type result struct {
		rep *Report
		err error
	}
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan result, 1)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		rep, err := Run(ctx, cfg)
		ran <- result{rep, err}
	}()
	// A failure below ended the test with Run still going, reading
	// forceGoroutines and the hooks as the tests after set them: the one
	// failure was reported as a data race in Run, failing those tests too.
	// Run is stopped and waited for before the hooks are taken back.
	defer func() {
		cancel()
		releasing.Do(func() { close(release) })
		select {
		case <-ended:
		case <-time.After(2 * time.Minute): // (its messages may still be in the making)
			t.Error("Run has not returned 2 minutes after it was cancelled")
		}
	}()
	select { // (a message of megabytes is made slowly with -race)
	case <-shut:
	case <-time.After(2 * time.Minute):
		t.Fatal("the server has not closed its side 2 minutes after the run began")
	}
	var res result
	select {
	case res = <-ran:
	case <-time.After(30 * time.Second):
		t.Fatal("Run has not returned 30 s after the server closed its side of the only connection: the write stuck under way was left to its deadline, an hour")
	}
	if res.err != nil {
		t.Fatal(res.err)
	}
	releasing.Do(func() { close(release) })
	rep := res.rep
	var read int
	select {
	case read = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the server has not counted what it read 10 s after the run")
	}
	h := handed.Load()
	if n := rep.Messages + rep.Lost + rep.Mismatches; n != h || h < int64(read) || rep.Messages != int64(answered) || rep.Mismatches != 1 {
		t.Errorf("%d messages, %d lost, %d wrong (%d in all), %d errors (%q); %d handed over, the server read %d, answered %d: want %d messages, 1 wrong, and the rest lost, of the %d handed over (at least those read)",
			rep.Messages, rep.Lost, rep.Mismatches, n, rep.Errors, rep.FirstError, h, read, answered, answered, h)
	}
	return rep
}

// In an open loop, a write stuck under way as the reader finds the
// server's close is cut short and counts whole, handed over (lost, or
// wrong for the one being read), and what falls due after is never sent,
// on the failed connection, as the event loops count their buffer and
// what falls due on a connection whose failure they read; it was held
// back by the server ("behind"): the write ended only at its deadline,
// the run's stop come by then. Every message due is in one count, those
// counted are those handed over, and without TLS the event loops count
// so too. (The goroutine driver's writer is held, its cut write ended,
// until the failure, counted, has stopped the run: it judged what falls
// due after by the stop, and counted it behind.)
func TestOpenLoopStuckWriteIsCutAtTheFailure(t *testing.T) {
	eachDriver(t, openLoopStuck)
}

// openLoopStuck runs an open loop on one connection of a stuckServer
// answering one message, and checks its counts. With goroutines, the
// reader finds the close with the writer stuck in a write; with an event
// loop, the server closes once the loop holds bytes it has not taken (else
// the loop may find the close before the next message falls due, with
// nothing owed).
func openLoopStuck(t *testing.T, goroutines bool) {
	const answered = 1
	release := make(chan struct{})
	var releasing sync.Once
	defer releasing.Do(func() { close(release) })
	var shutAfter chan struct{}
	if !goroutines {
		shutAfter = make(chan struct{})
		var once sync.Once
		unsentHeld = func(*run, int, int) { once.Do(func() { close(shutAfter) }) }
	}
	addr, got, _ := stuckServer(t, answered, shutAfter, release, nil)
	due := make(chan int64, 1)
	defer OnScheduleCounts(addr, func(n int64) { due <- n })()
	var handed atomic.Int64
	var ran atomic.Pointer[run]
	sentNoted = func(r *run, _ int64, measured bool) {
		ran.Store(r)
		if measured {
			handed.Add(1)
		}
	}
	var cut atomic.Bool
	defer func() {
		replyTaken, writeWaits, readerClosed, sendFailed, sentNoted, unsentHeld = nil, nil, nil, nil, nil, nil
		sendWrote, windowEnds = nil, nil
	}()
	if goroutines {
		// The reader, having taken the reply, waits for the writer to
		// be stuck in a write, which waits, once stuck, for the reader
		// to have found the server's close: the failure comes with a
		// write stuck.
		var took atomic.Bool
		stuck, closed := make(chan struct{}), make(chan struct{})
		var stuckOnce, closedOnce sync.Once
		replyTaken = func(uint64) { took.Store(true); wait(stuck) }
		// Stuck, the writer lets the next message fall due (a timer to
		// its time, at most one interval): due before the failure ends
		// the run, and not sent.
		writeWaits = func() {
			if took.Load() {
				stuckOnce.Do(func() {
					close(stuck)
					wait(closed)
					r := ran.Load()
					time.Sleep(time.Duration(r.scheduleOf(0).due(uint64(handed.Load())) - r.now()))
				})
			}
		}
		readerClosed = func() { closedOnce.Do(func() { close(closed) }) }
		sendFailed = func() { cut.Store(true) }
		stopped := make(chan struct{})
		windowEnds = func(*run, int64) { close(stopped) }
		sendWrote = func() {
			if cut.Load() {
				wait(stopped)
			}
		}
	}
	cfg := Config{Endpoint: endpoint.Endpoint{Network: "tcp", Address: addr}, Conns: 1, Rate: 500, Size: 64 << 10,
		Text: "ascii", Mode: "ascii", Warmup: -1, Duration: time.Minute, Timeout: time.Hour}
	rep := runWithin(t.Context(), t, cfg)
	releasing.Do(func() { close(release) })
	if goroutines && !cut.Load() {
		t.Error("no write was cut short by the failure")
	}
	n := <-due
	if sum := rep.Messages + rep.Lost + rep.Mismatches + rep.Unsent + rep.Unawaited; sum != n || rep.Unsent != rep.UnsentFailed {
		t.Errorf("%d messages, %d lost, %d wrong, %d unsent (%d on the failed connection), %d unawaited: %d in all of %d due; want all in one count, the unsent on the failed connection",
			rep.Messages, rep.Lost, rep.Mismatches, rep.Unsent, rep.UnsentFailed, rep.Unawaited, sum, n)
	}
	var read int
	select {
	case read = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the server has not counted what it read 10 s after the run")
	}
	if h, n := handed.Load(), rep.Messages+rep.Lost+rep.Mismatches; n != h || h < int64(read) || rep.Messages != answered || rep.Mismatches != 1 {
		t.Errorf("%d messages, %d lost, %d wrong (%d in all); %d handed over, the server read %d, answered %d: want %d messages, 1 wrong, and the rest lost, of the %d handed over (at least those read)",
			rep.Messages, rep.Lost, rep.Mismatches, n, h, read, answered, answered, h)
	}
}

// selfSigned is a TLS server configuration with a certificate made in
// memory for 127.0.0.1, and a client configuration that trusts it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	store, err := certs.SelfSigned([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	server, err = certs.ServerConfig(store, "")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := store.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(leaf.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return server, &tls.Config{RootCAs: pool}
}

// A write cut short (stuckConn.interrupt) stays cut when the run stops at
// the same moment: drain's deadline (SetDeadline, Timeout after the stop),
// set before the writer woken by the cut had run, was taken by the poller
// for a deadline moved on before its waiter ran, and the write waited on,
// to it; the connection, and the run, ended Timeout late (h179). Whatever
// deadline is set after the cut, a write on the socket ends at once (that
// race itself comes only now and then: a write the cut caught between two
// waits goes on while the server takes its bytes).
func TestCutWriteStaysCutPastLaterDeadlines(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*stuckConn, time.Time) error
	}{
		{"SetDeadline (drain's)", (*stuckConn).SetDeadline},
		{"SetWriteDeadline (a TLS close_notify's)", (*stuckConn).SetWriteDeadline},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			nc, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			sc := &stuckConn{TCPConn: nc.(*net.TCPConn), stuck: func() bool { return false }}
			sc.interrupt()
			tc.set(sc, time.Now().Add(time.Hour))
			if _, err := sc.Write([]byte("x\n")); !errors.Is(err, os.ErrDeadlineExceeded) { // (room for it)
				t.Errorf("a write after the cut and a deadline an hour on ended with %v: want it cut (%v)", err, os.ErrDeadlineExceeded)
			}
		})
	}
}
