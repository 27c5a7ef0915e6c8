package bench

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"math"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"shout/endpoint"
	"shout/internal/shouttest"
	"shout/server"
)

// A run ended early (Ctrl-C) counts no message handed over after its
// window's end as measured. The end was read, then stored, then sending
// stopped: a sender that read a later time, and the window's end before
// it was stored, counted its message measured, one per connection past
// the time measured (here, as a busy machine's clock goroutine did,
// descheduled between the two, the store waits for such a message).
func TestEarlyEndCountsNothingAfterIt(t *testing.T) {
	addr := shouttest.Start(t, &server.Server{Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu     sync.Mutex
		latest = int64(-1) // the latest due of a message counted
		end    atomic.Int64
		ran    *run
		once   sync.Once
	)
	end.Store(math.MaxInt64)
	past := make(chan struct{}) // a message counted, due at or past the end read
	sentNoted = func(_ *run, due int64, measured bool) {
		if !measured {
			return
		}
		cancel() // Ctrl-C, once a message counts
		mu.Lock()
		latest = max(latest, due)
		mu.Unlock()
		if due >= end.Load() {
			once.Do(func() { close(past) })
		}
	}
	windowEnds = func(r *run, at int64) {
		ran = r
		end.Store(at)
		select { // (none comes once sending has stopped)
		case <-past:
		case <-time.After(200 * time.Millisecond):
		}
	}
	defer func() { sentNoted, windowEnds = nil, nil }()
	cfg := Config{Endpoint: endpoint.Endpoint{Network: "tcp", Address: addr},
		Conns: 2, Depth: 1, Warmup: -1, Duration: time.Minute, Timeout: 2 * time.Second}
	if _, err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if ran == nil {
		t.Fatal("the run did not end early")
	}
	mu.Lock()
	defer mu.Unlock()
	if until := ran.windowUntil.Load(); latest >= until {
		t.Errorf("a message due at %v counted, past the window's end at %v", time.Duration(latest), time.Duration(until))
	}
}

// An error met after the window's end, before a late clock stops the
// run, is in no count, as one met once it stops: the phase is the
// clock's, against the window's bounds, as a reply's throughput is (see
// arrive). It counted as measured, so the same reset was an error or
// none by when the clock's goroutine ran. What the connection owed,
// sent while measuring, is lost all the same.
func TestErrorAfterWindowEndCountsNothing(t *testing.T) {
	addr, reset := resetOnCue(t)
	gone := make(chan struct{}) // the connection failed on the reset
	var once sync.Once
	ringEnded = func(int) { once.Do(func() { close(gone) }) }
	windowTimeUp = func(*run) { // a clock woken late: the reset comes first
		close(reset)
		select {
		case <-gone:
		case <-time.After(10 * time.Second):
			t.Error("the connection did not fail on the reset")
		}
	}
	defer func() { ringEnded, windowTimeUp = nil, nil }()
	cfg := Config{Endpoint: endpoint.Endpoint{Network: "tcp", Address: addr},
		Conns: 1, Depth: 1, Warmup: -1, Duration: 100 * time.Millisecond, Timeout: 5 * time.Second}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 0 || rep.Lost != 1 || rep.CutShort != "" {
		t.Errorf("reset after the window's end: %d errors (first: %q), %d lost, cut short %q; want 0 errors, 1 lost, not cut short",
			rep.Errors, rep.FirstError, rep.Lost, rep.CutShort)
	}
}

// A sender reads the time of what it sends before it looks at stopping
// (see haltEarly): held between the two as the run ends early, it finds
// stopping set and sends nothing. The other way round, it found stopping
// unset, then read a time past the window's end, and counted what it sent
// after the window as measured, the end not stored yet. Here the first
// sender to read a time while measuring is held until the end is read,
// and two messages' time past it; the clock, until a message due at or
// past the end counts, or a while.
func TestEarlyEndSenderReadsTimeFirst(t *testing.T) {
	for _, tc := range []struct {
		name    string
		network string
		rate    float64 // one connection's
	}{
		{"closed loop", "tcp", 0},
		{"open loop", "tcp", 2000},
		{"udp closed loop", "udp", 0}, // (a datagram's sentNoted is of its send, not its due)
		// No churn row: the held churner's dial takes Ctrl-C's context,
		// so it sends nothing whichever order it reads in (with the two
		// swapped, such a row passed too); exchangeOnce looks at
		// stopping again once it has its time.
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := &server.Server{Logger: slog.New(slog.DiscardHandler)}
			var addr string
			if tc.network == "udp" {
				pc, err := net.ListenPacket("udp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				shouttest.ServePacket(t, srv, pc)
				addr = pc.LocalAddr().String()
			} else {
				addr = shouttest.Start(t, srv)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var (
				held          atomic.Bool
				end           atomic.Int64
				endRead, past = make(chan struct{}), make(chan struct{})
				pastOnce      sync.Once
				mu            sync.Mutex
				latest        = int64(-1) // the latest due of a message counted
				ran           *run
				interval      int64
			)
			end.Store(math.MaxInt64)
			if tc.rate > 0 {
				interval = int64(float64(time.Second) / tc.rate)
			}
			sendTimed = func(r *run) {
				if !r.inWindow(r.now()) || !held.CompareAndSwap(false, true) {
					return
				}
				cancel() // Ctrl-C, as this sender is held
				select {
				case <-endRead:
				case <-time.After(10 * time.Second):
					t.Error("the run did not end early")
					return
				}
				// (A time read now has a message due past the end.)
				time.Sleep(time.Duration(end.Load() + 2*interval + 1 - r.now()))
			}
			sentNoted = func(_ *run, due int64, measured bool) {
				if !measured {
					return
				}
				mu.Lock()
				latest = max(latest, due)
				mu.Unlock()
				if due >= end.Load() {
					pastOnce.Do(func() { close(past) })
				}
			}
			windowEnds = func(r *run, at int64) {
				ran = r
				end.Store(at)
				close(endRead)
				select { // (none comes once sending has stopped)
				case <-past:
				case <-time.After(200 * time.Millisecond):
				}
			}
			defer func() { sendTimed, sentNoted, windowEnds = nil, nil, nil }()
			cfg := Config{Endpoint: endpoint.Endpoint{Network: tc.network, Address: addr},
				Conns: 1, Depth: 1, Rate: tc.rate,
				Warmup: -1, Duration: time.Minute, Timeout: 2 * time.Second}
			if _, err := Run(ctx, cfg); err != nil {
				t.Fatal(err)
			}
			if ran == nil || !held.Load() {
				t.Fatalf("the run did not end early (%v) with a sender held (%v)", ran != nil, held.Load())
			}
			mu.Lock()
			defer mu.Unlock()
			if until := ran.windowUntil.Load(); latest >= until {
				t.Errorf("a message due at %v counted, past the window's end at %v", time.Duration(latest), time.Duration(until))
			}
		})
	}
}

// A run whose every connection failed after the window's end, before a
// late clock saw its time up, measured the window whole: it is not cut
// short. Both were ready to the clock, and one time in two it took the
// failures for the run's end and said "every connection had failed" of
// a run that had measured all it was asked for. (Here the window ends,
// by the clock against it, before the clock's timer fires, so that
// only the failures are ready to it.)
func TestAllFailedAfterWindowEndNotCutShort(t *testing.T) {
	addr, reset := resetOnCue(t)
	defer failAfterWindowEnd(t, reset, func(*run) {}, func(*run) {})()
	cfg := Config{Endpoint: endpoint.Endpoint{Network: "tcp", Address: addr},
		Conns: 1, Depth: 1, Warmup: -1, Duration: time.Minute, Timeout: 5 * time.Second}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.CutShort != "" || rep.Errors != 0 || rep.Lost != 1 {
		t.Errorf("every connection failed after the window's end: cut short %q, %d errors, %d lost; want not cut short, 0 errors, 1 lost",
			rep.CutShort, rep.Errors, rep.Lost)
	}
}

// An open loop's connection that fails after the window's end (here
// before a late clock stops the run; as often in the wait for the
// replies owed, no reply within Timeout) changes nothing already due:
// what it had not sent as the window ended is unsent for the reason it
// had then, not "on failed connections". Under stalls, a sender behind
// the rate as the window ended, whose connection then failed with no
// reply within Timeout, reported thousands never sent on failed
// connections with no error counted: "unsent 4709, failed 4709 ...
// errors 0". Here a connection keeps one message in flight (its server
// answers none), so what falls due after it is held back, and the
// window ends with some unsent before the server resets it.
func TestFailureAfterWindowEndChangesNothingDue(t *testing.T) {
	defer SetFlightBudget(1)()
	addr, reset := resetOnCue(t)
	defer failAfterWindowEnd(t, reset, func(r *run) {
		for due := r.scheduleOf(0).due(1); r.now() <= due; { // (10 µs at most)
			runtime.Gosched()
		}
	}, func(r *run) {
		// The goroutine driver's sender gives its schedule up once it
		// sees the reader's failure: before the run stops.
		for range 10_000 {
			r.mu.Lock()
			n := len(r.givenUp)
			r.mu.Unlock()
			if n > 0 {
				return
			}
			time.Sleep(time.Millisecond)
		}
		t.Error("the connection's schedule was not given up")
	})()
	cfg := Config{Endpoint: endpoint.Endpoint{Network: "tcp", Address: addr},
		Conns: 1, Depth: 1, Warmup: -1, Duration: time.Minute, Timeout: 5 * time.Second, Rate: 100_000}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Unsent == 0 || rep.UnsentFailed != 0 || rep.Errors != 0 {
		t.Errorf("the connection failed after the window's end: %d never sent, %d of them on failed connections, %d errors (%q); want some never sent, none on failed connections, no error",
			rep.Unsent, rep.UnsentFailed, rep.Errors, rep.FirstError)
	}
}

// A run whose every connection failed once the warm-up was over, before
// a late clock saw it over, is cut short while measuring, its errors
// the measured part's: the clock took the failures for the warm-up's,
// and the run failed with "every connection failed in the warm-up,
// before measuring; the first: ?", fail having counted none the
// warm-up's. (Here the clock is held as its wait for the warm-up's end
// begins, so that only the failures are ready to it.)
func TestAllFailedAfterWarmupEndCutShortMeasuring(t *testing.T) {
	reset := make(chan struct{})
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		go func() { // reset when told
			select {
			case <-reset:
				c.(*net.TCPConn).SetLinger(0) // the close resets
				c.Close()
			case <-t.Context().Done():
			}
		}()
		in := bufio.NewReader(c)
		for { // answer each line, in upper case (ASCII)
			line, err := in.ReadBytes('\n')
			if err != nil {
				return
			}
			if _, err := c.Write(bytes.ToUpper(line)); err != nil {
				return
			}
		}
	})
	measured := make(chan struct{}) // a message sent while measuring
	var once sync.Once
	sentNoted = func(_ *run, _ int64, m bool) {
		if m {
			once.Do(func() { close(measured) })
		}
	}
	warmupWaits = func(r *run) {
		select {
		case <-measured:
		case <-time.After(10 * time.Second):
			t.Error("no message sent while measuring")
			return
		}
		close(reset)
		select {
		case <-r.allGone:
		case <-time.After(10 * time.Second):
			t.Error("the connection did not fail on the reset")
		}
	}
	defer func() { sentNoted, warmupWaits = nil, nil }()
	cfg := Config{Endpoint: endpoint.Endpoint{Network: "tcp", Address: addr}, Text: "ascii",
		Conns: 1, Depth: 1, Warmup: 20 * time.Millisecond, Duration: time.Minute, Timeout: 5 * time.Second}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.CutShort == "" || rep.Errors != 1 || rep.WarmupErrors != 0 {
		t.Errorf("every connection failed after the warm-up's end: cut short %q, %d errors (first: %q), %d in the warm-up; want cut short, 1 error, none in the warm-up",
			rep.CutShort, rep.Errors, rep.FirstError, rep.WarmupErrors)
	}
}

// A UDP open loop's sender that first runs after the window's end sends
// what fell due in it as the run stops (sendRest), until a write fails:
// past Run's deadline for the replies owed, the rest is never sent
// (untaken). A write that failed as the run stopped counted as sent, so
// the sender went on through every datagram due, each write failing at
// once, and each was counted lost: at 1e9 msg/s, 20 million in a 20 ms
// window, minutes under -race (TestOpenLoopRateNearANanosecond timed
// out so on a loaded machine). Here the sender is held until sending has
// stopped, and no machine writes 5 million datagrams by the deadline.
func TestUDPSendRestEndsAtTheDeadline(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	shouttest.ServePacket(t, &server.Server{Logger: slog.New(slog.DiscardHandler)}, pc)
	stopped := make(chan struct{})
	var once sync.Once
	windowEnded = func() { once.Do(func() { close(stopped) }) }
	openLoopStarts = func() { // a sender first run after the window's end
		select {
		case <-stopped:
		case <-time.After(10 * time.Second):
			t.Error("the window did not end")
		}
	}
	defer func() { windowEnded, openLoopStarts = nil, nil }()
	cfg := Config{Endpoint: endpoint.Endpoint{Network: "udp", Address: pc.LocalAddr().String()},
		Conns: 1, Depth: 1, Rate: 1e8, Warmup: -1, Duration: 50 * time.Millisecond, Timeout: 100 * time.Millisecond}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if due := rep.Messages + rep.Lost + rep.Unsent; rep.Unsent == 0 || rep.Lost > due/2 {
		t.Errorf("%d answered, %d lost, %d never sent; want most never sent: not sent by the deadline",
			rep.Messages, rep.Lost, rep.Unsent)
	}
}

// resetOnCue starts a server that answers nothing and resets each
// connection once reset is closed.
func resetOnCue(t *testing.T) (addr string, reset chan struct{}) {
	reset = make(chan struct{})
	addr = shouttest.StreamServer(t, func(c net.Conn) {
		select {
		case <-reset:
			c.(*net.TCPConn).SetLinger(0) // the close resets
		case <-t.Context().Done():
		}
	})
	return addr, reset
}

// failAfterWindowEnd has a run's connection fail just past the window's
// end, before a late clock stops the run: once a message was sent while
// measuring and before(r) has run, the window ends there and reset (a
// resetOnCue's) is closed; once every connection is gone, after(r) runs
// before the clock goes on. It returns what undoes its hooks.
func failAfterWindowEnd(t *testing.T, reset chan struct{}, before, after func(r *run)) (undo func()) {
	var ran atomic.Pointer[run]
	sent := make(chan struct{})
	var once sync.Once
	sentNoted = func(r *run, _ int64, measured bool) {
		if measured {
			ran.Store(r)
			once.Do(func() { close(sent) })
		}
	}
	measuringBegan = func() {
		select {
		case <-sent:
		case <-time.After(10 * time.Second):
			t.Error("no message sent while measuring")
			return
		}
		r := ran.Load()
		before(r)
		r.windowUntil.Store(r.now()) // the window's end: a clock that has yet to wake
		close(reset)
		select {
		case <-r.allGone:
		case <-time.After(10 * time.Second):
			t.Error("the connection did not fail on the reset")
			return
		}
		after(r)
	}
	return func() { sentNoted, measuringBegan = nil, nil }
}
