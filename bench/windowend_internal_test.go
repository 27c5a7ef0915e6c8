package bench

import (
	"context"
	"log/slog"
	"math"
	"net"
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
	reset := make(chan struct{})
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		select { // answer nothing; reset when told
		case <-reset:
			c.(*net.TCPConn).SetLinger(0) // the close resets
		case <-t.Context().Done():
		}
	})
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
