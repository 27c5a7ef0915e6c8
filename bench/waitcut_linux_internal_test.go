//go:build linux

package bench

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"shout/endpoint"
)

// A signal in the wait at the end leaves what bench's own UDP sockets
// dropped in the report: the replies they dropped are lost all the same,
// and not the server's doing. The cut closed the sockets, and each
// socket's drops, read from it after its reader ended, read as 0: the
// report blamed the server for them (and, had the warm-up dropped any,
// said a number of them less than none).
func TestSignalInFinalWaitKeepsDropsAtBench(t *testing.T) {
	inBurstCut(t, "the window ended before the server answered", keepsDropsRun)
}

// keepsDropsRun is one run of TestSignalInFinalWaitKeepsDropsAtBench; it
// reports false if the window ended before the server answered. bench
// reads from the burst on, as an open loop sends on to the window's end,
// to which the server answers nothing: replies are owed at the end, whose
// wait the signal cuts. The burst's drops are lost at Timeout, in the
// window.
func keepsDropsRun(t *testing.T) bool {
	rep := burstCut{burst: 64, copies: 1, rate: 200, duration: time.Second, timeout: 300 * time.Millisecond,
		readAtBurst: true}.run(t)
	if rep == nil {
		return false
	}
	if rep.Unawaited == 0 {
		// A stall of the machine past Timeout as the window ended: its
		// replies' Timeout was up at the cut, and nothing was owed.
		t.Skip("nothing was owed at the cut")
	}
	// The replies dropped were lost at their Timeout, in the window (or
	// at the cut, if it was up by then).
	if rep.DroppedByBench <= 0 || rep.DroppedByBench > rep.Lost {
		t.Errorf("%d lost, %d dropped by bench's own socket; want some of those lost dropped", rep.Lost, rep.DroppedByBench)
	}
	return true
}

// An event loop in the wait at the end sleeps until a reply, the wait's
// end or a cut comes: the wake eventfd, which no loop reads, is
// edge-triggered, so that its stop is one event. Level-triggered, it
// woke each loop at once, again and again, for the whole wait: a core
// spent, up to Timeout.
func TestLoopSleepsInFinalWait(t *testing.T) {
	if forceGoroutines {
		t.Skip("the event loops'")
	}
	e, _ := silentStream(t)
	var wakes atomic.Int64 // the loop's, once the run stopped
	sendTimed = func(r *run) {
		if r.stopping.Load() {
			wakes.Add(1)
		}
	}
	defer func() { sendTimed = nil }()
	cfg := Config{Endpoint: e, Conns: 1, Depth: 1, Warmup: -1, Duration: 100 * time.Millisecond, Timeout: 300 * time.Millisecond}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Lost != 1 {
		t.Fatalf("%d lost; want the 1 message, unanswered, lost at the wait's end", rep.Lost)
	}
	// The stop, and the timer at the wait's end (again, if it woke the
	// loop a moment early).
	if n := wakes.Load(); n > 10 {
		t.Errorf("the loop woke %d times in the wait at the end; want it to sleep until the wait's end", n)
	}
}

// A signal in the wait at the end ends an event loop's wait once the loop
// has taken the stop, and waits for the replies owed: the cut is a second
// write to the wake eventfd, which the loop hears only if the fd is still
// watched, edge-triggered, and it reads the wait's new end then. (A cut
// that came before the loop woke for the stop, as TestSignalInFinalWaitEndsIt's
// mostly do, is read with the stop: neither mattered there.)
func TestSignalInFinalWaitWakesTheLoopAgain(t *testing.T) {
	if forceGoroutines {
		t.Skip("the event loops'")
	}
	for _, rate := range []float64{0, 200} {
		t.Run(fmt.Sprintf("rate %v", rate), func(t *testing.T) {
			e, _ := silentStream(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var sent atomic.Int64 // measured messages handed over
			countMeasured(&sent)
			loopSawStop = func(*run) { cancel() } // one loop: one connection
			defer func() { sentNoted, loopSawStop = nil, nil }()
			cfg := Config{Endpoint: e, Conns: 1, Depth: 1, Rate: rate, Warmup: -1,
				Duration: 200 * time.Millisecond, Timeout: 10 * time.Minute}
			rep := runWithin(ctx, t, cfg)
			if rep.Interrupted || !rep.WaitCut || rep.Unawaited != sent.Load() || rep.Lost != 0 {
				t.Errorf("interrupted %v, wait cut %v, %d not waited for, %d lost; want not interrupted, the wait cut, the %d sent not waited for",
					rep.Interrupted, rep.WaitCut, rep.Unawaited, rep.Lost, sent.Load())
			}
		})
	}
}

// A reply bench's own UDP socket dropped will never come: at a signal in
// the wait at the end, the replies owed that the kernel says the socket
// dropped are lost, and bench's doing (DroppedByBench), not merely not
// waited for. They were counted not waited for, and DroppedByBench, at
// most those lost, said none: the report had the user believe those
// replies might have come, and the kernel's drops went unsaid.
func TestSignalInFinalWaitLosesDropsAtBench(t *testing.T) {
	inBurstCut(t, "the window ended before the server answered", losesDropsRun)
}

// inBurstCut runs run (a burstCut test's) until it makes its case, at
// most 5 times: a run whose window ended before the burst (a stalled
// machine) showed nothing, and is run again, rather than skipped (1 in
// 10 under stalls); why not is what the log says of such a run.
func inBurstCut(t *testing.T, whyNot string, run func(t *testing.T) bool) {
	t.Helper()
	for try := range 5 {
		if run(t) {
			return
		}
		t.Logf("run %d of at most 5: %s", try+1, whyNot)
	}
	t.Skipf("in 5 runs, every time %s", whyNot)
}

// A burstCut is the run the cut-wait drop tests make: a UDP stand-in
// answers the first burst datagrams together, each copies times, and
// nothing after, while bench's reader, its socket's receive buffer the
// kernel's least (a few datagrams), is held until the window ends: the
// socket keeps what fits and drops the rest. The window's end cuts the
// wait for the replies owed at once, as a signal does.
type burstCut struct {
	burst, copies     int
	rate              float64
	duration, timeout time.Duration
	// readAtBurst lets bench's reader go once the burst went, not at the
	// window's end.
	readAtBurst bool
	// sent, if not nil, is told of each datagram bench sent (sentNoted);
	// answered, if not nil, of the sequence number of each the stand-in
	// answers.
	sent     func(r *run, at int64, measured bool)
	answered func(seq uint64)
}

// run makes the run and returns its report, or nil if the window ended
// before the stand-in answered.
func (b burstCut) run(t *testing.T) *Report {
	t.Helper()
	was := udpReadBuffer
	udpReadBuffer = 1
	release := make(chan struct{})
	udpReaderStart = func() { <-release }
	sentNoted = b.sent
	defer func() { udpReadBuffer, udpReaderStart, windowEnded, sentNoted = was, nil, nil, nil }()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer func() { pc.Close(); wg.Wait() }()
	var releaseOnce sync.Once
	let := func() { releaseOnce.Do(func() { close(release) }) }
	defer let()
	burst := make(chan struct{}) // closed once the replies went (a loopback send drops or queues at once)
	wg.Go(func() {
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
			if len(first) == b.burst {
				continue
			}
			if b.answered != nil {
				seq, _ := seqOf(buf[:n])
				b.answered(seq)
			}
			first = append(first, held{[]byte(strings.ToUpper(string(buf[:n]))), from})
			if len(first) == b.burst {
				for range b.copies { // each answered once first, then again
					for _, h := range first {
						pc.WriteTo(h.p, h.from)
					}
				}
				close(burst)
				if b.readAtBurst {
					let()
				}
			}
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var burstInWindow bool
	windowEnded = func() {
		select {
		case <-burst:
			burstInWindow = true
		default:
		}
		let()
		cancel()
	}
	cfg := Config{Endpoint: endpoint.Endpoint{Network: "udp", Address: pc.LocalAddr().String()},
		Conns: 1, Rate: b.rate, Warmup: -1, Duration: b.duration, Timeout: b.timeout, Text: "ascii"}
	rep := runWithin(ctx, t, cfg)
	if !burstInWindow {
		return nil
	}
	if !rep.WaitCut {
		t.Fatal("the wait was not cut")
	}
	return rep
}

// measuredSent is a burstCut's sent that counts the measured datagrams
// in n.
func measuredSent(n *atomic.Int64) func(*run, int64, bool) {
	return func(_ *run, _ int64, measured bool) {
		if measured {
			n.Add(1)
		}
	}
}

// losesDropsRun is one run of TestSignalInFinalWaitLosesDropsAtBench; it
// reports false if the window ended before the server answered. The
// Timeout is minutes: nothing is lost in the window, and every reply
// owed at the cut is within it.
func losesDropsRun(t *testing.T) bool {
	const burstOf = 64
	var sent atomic.Int64 // measured datagrams
	rep := burstCut{burst: burstOf, copies: 1, rate: 1000, duration: 300 * time.Millisecond, timeout: 10 * time.Minute,
		sent: measuredSent(&sent)}.run(t)
	if rep == nil {
		return false
	}
	n := sent.Load()
	if rep.DroppedByBench <= 0 || rep.Lost != rep.DroppedByBench || rep.Messages+rep.Lost > burstOf ||
		rep.Messages+rep.Lost+rep.Unawaited != n {
		t.Errorf("%d dropped by bench's own socket, %d lost, %d messages, %d not waited for, of %d sent; want some of the %d answered dropped, those lost, and the rest not waited for",
			rep.DroppedByBench, rep.Lost, rep.Messages, rep.Unawaited, n, burstOf)
	}
	if rep.DroppedByBench == 0 {
		return true
	}
	// The text report and the page say so: lost, dropped by bench.
	var text, page strings.Builder
	rep.WriteText(&text)
	if err := rep.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	lost := fmt.Sprintf("%d lost (%d dropped by bench's own sockets", rep.Lost, rep.DroppedByBench)
	if !strings.Contains(text.String(), lost) {
		t.Errorf("the text report does not say %q:\n%s", lost, text.String())
	}
	lost = fmt.Sprintf(`<th>lost</th><td class="n">%d</td><td>%d dropped by bench's own sockets`, rep.Lost, rep.DroppedByBench)
	if !strings.Contains(page.String(), lost) {
		t.Errorf("the page does not say %q:\n%s", lost, page.String())
	}
	return true
}

// At a signal in the wait at the end, a socket's drops that may have been
// replies to datagrams given up (lost in the window: at their Timeout,
// or as the ring at its largest wrapped onto them) move none of the
// replies owed then to lost: only drops beyond those are known to be of
// replies owed. Here the server answers its first burstOf datagrams
// together while bench does not read, so the socket drops most of them,
// and answers nothing after; those datagrams are lost in the window, and
// every one owed at the cut is not waited for, its reply never dropped.
// Counting none of the given up (at their Timeout, or at a wrap), or the
// drops less more given up than there were, blamed bench for replies the
// server never sent, or took not-waited-for ones back from lost.
func TestSignalInFinalWaitKeepsOwedOfDropsOfGivenUp(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		most    int // the ring's places at its largest (maxUDPRing)
	}{
		{"at their timeout", 100 * time.Millisecond, maxUDPRing},
		{"at a wrap", 10 * time.Minute, 256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A run with one of the answered owed at the cut is run
			// again too.
			inBurstCut(t, "the burst was not lost in the window", func(t *testing.T) bool { return givenUpDropsRun(t, tc.timeout, tc.most) })
		})
	}
}

// givenUpDropsRun is one run of TestSignalInFinalWaitKeepsOwedOfDropsOfGivenUp;
// it reports false if the run did not make its case: the burst was not
// answered, or not all lost, in the window.
func givenUpDropsRun(t *testing.T, timeout time.Duration, most int) bool {
	const burstOf = 64
	was := maxUDPRing
	maxUDPRing = most
	defer func() { maxUDPRing = was }()
	var (
		mu       sync.Mutex // guards what follows, which the sender and the stand-in add to
		ran      *run
		sends    []int64 // when each datagram was sent, by its sequence number (one socket)
		answered = make(map[uint64]bool)
	)
	rep := burstCut{burst: burstOf, copies: 1, rate: 1000, duration: 600 * time.Millisecond, timeout: timeout,
		sent: func(r *run, at int64, measured bool) {
			mu.Lock()
			defer mu.Unlock()
			ran = r
			if !measured {
				t.Errorf("datagram %d was sent in the warm-up, with none", len(sends))
			}
			sends = append(sends, at)
		},
		answered: func(seq uint64) {
			mu.Lock()
			defer mu.Unlock()
			answered[seq] = true
		}}.run(t)
	if rep == nil {
		return false
	}
	mu.Lock()
	defer mu.Unlock()
	cut, n := ran.waitCut.Load(), len(sends)
	// Owed at the cut, within the timeout: neither answered nor wrapped
	// onto (the ring at its largest holds the last most sent).
	var owed int64
	for seq, at := range sends {
		within := cut-at < int64(timeout) && seq >= n-most
		if answered[uint64(seq)] && within {
			return false // its reply may have come in time, or been dropped
		}
		if !answered[uint64(seq)] && within {
			owed++
		}
	}
	if rep.DroppedByBench <= 0 || rep.Unawaited != owed || rep.Messages+rep.Lost+rep.Unawaited != int64(n) ||
		rep.DroppedByBench > rep.Lost-rep.Late {
		t.Errorf("%d not waited for, %d lost (%d late, %d dropped by bench's own socket), %d messages, of %d sent; want the %d owed at the cut not waited for, and some dropped",
			rep.Unawaited, rep.Lost, rep.Late, rep.DroppedByBench, rep.Messages, n, owed)
	}
	return true
}

// At a signal in the wait at the end, a socket's drops move no more of
// the replies owed to lost than were owed: drops the reader never saw
// may be of duplicates, and outnumber them. Here the server answers its
// first few datagrams several times over, together, while bench does
// not read: the socket keeps a few of the first replies and drops the
// rest, duplicates the reader never sees, more than bench sent in all.
// Moved without that bound, the owed not waited for counted less than
// none, and lost more than were sent.
func TestSignalInFinalWaitMovesNoMoreThanOwed(t *testing.T) {
	inBurstCut(t, "the window ended before the server answered", movesNoMoreRun)
}

// movesNoMoreRun is one run of TestSignalInFinalWaitMovesNoMoreThanOwed;
// it reports false if the window ended before the server answered.
func movesNoMoreRun(t *testing.T) bool {
	var sent atomic.Int64
	rep := burstCut{burst: 16, copies: 5, rate: 100, duration: 600 * time.Millisecond, timeout: 10 * time.Minute,
		sent: measuredSent(&sent)}.run(t)
	if rep == nil {
		return false
	}
	n := sent.Load()
	if rep.Unawaited < 0 || rep.Lost > n || rep.Messages+rep.Lost+rep.Unawaited != n || rep.DroppedByBench > rep.Lost-rep.Late {
		t.Errorf("%d not waited for, %d lost (%d late, %d dropped by bench's own socket), %d messages, of %d sent; want none less than 0, and each sent in one count",
			rep.Unawaited, rep.Lost, rep.Late, rep.DroppedByBench, rep.Messages, n)
	}
	return true
}
