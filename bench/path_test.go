package bench_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"shout/bench"
	"shout/internal/shouttest"
	"shout/server"
)

// Bench between itself and a real shout server through a faulty path
// (shouttest.UDPRelay, shouttest.StreamRelay): what it reports must be
// what the path did, each message in one count.

// shoutServer is a real shout server on 127.0.0.1, TCP and UDP on one port.
func shoutServer(t *testing.T) string {
	return shouttest.Start(t, &server.Server{Logger: slog.New(slog.DiscardHandler)})
}

// Over UDP every datagram sent is answered, lost, or answered wrong, as
// the path made it: counted against what the relay did to each. One
// socket with four in flight: no buffer on the way can overflow, so
// every datagram bench sent reached the relay.
func TestUDPThroughAFaultyPath(t *testing.T) {
	t.Parallel()
	srv := shoutServer(t)
	type pk = shouttest.Packet
	// every tenth datagram of a direction is impaired, by its sequence
	// number (a reply's is its datagram's), as bench.PatientButEvery
	// names those it gives up at Timeout; all counts the direction's
	// datagrams (notifying came), impaired those impaired.
	tenth := func(dir int, f func(b []byte) []pk) func(*atomic.Int64, *atomic.Int64, chan<- struct{}) func(int, int, []byte) []pk {
		return func(all, impaired *atomic.Int64, came chan<- struct{}) func(int, int, []byte) []pk {
			return func(d, _ int, b []byte) []pk {
				if d != dir {
					return []pk{{Data: b}}
				}
				defer notify(came)
				all.Add(1)
				if seq, _ := bench.SeqOf(b); seq%10 != 9 {
					return []pk{{Data: b}}
				}
				impaired.Add(1)
				return f(b)
			}
		}
	}
	for _, tc := range []struct {
		name string
		path func(all, impaired *atomic.Int64, came chan<- struct{}) func(int, int, []byte) []pk
		// check gets the report, the datagrams of the impaired direction
		// and how many of them were impaired.
		check func(t *testing.T, rep *bench.Report, all, impaired int64)
		// short: the run loses the impaired, which take --timeout to
		// count: a short one, which a busy machine's stall may pass, so
		// the run is patient for the rest (bench.PatientButEvery).
		short bool
		// window, if not 0, is the run's Duration, 500 ms otherwise.
		window time.Duration
	}{
		{"requests dropped", tenth(shouttest.ToServer, func([]byte) []pk { return nil }),
			func(t *testing.T, rep *bench.Report, all, impaired int64) {
				same(t, "lost", rep.Lost, impaired)
				same(t, "messages", rep.Messages, all-impaired)
				same(t, "wrong", rep.Mismatches, 0)
			}, true, 0},
		{"replies dropped", tenth(shouttest.ToClient, func([]byte) []pk { return nil }),
			func(t *testing.T, rep *bench.Report, all, impaired int64) {
				same(t, "lost", rep.Lost, impaired)
				same(t, "messages", rep.Messages, all-impaired)
				same(t, "late", rep.Late, 0)
			}, true, 0},
		// A request sent twice is answered twice: the second reply a
		// duplicate, which UDP allows, and the run all right. (The last
		// may come after bench stopped reading.)
		{"requests doubled", tenth(shouttest.ToServer, func(b []byte) []pk { return []pk{{Data: b}, {Data: b}} }),
			func(t *testing.T, rep *bench.Report, all, impaired int64) {
				same(t, "messages", rep.Messages, all)
				within(t, "duplicates", rep.Duplicates, impaired-1, impaired)
				same(t, "lost", rep.Lost, 0)
				if !rep.OK() {
					t.Errorf("not all right: %+v", rep)
				}
			}, false, 0},
		{"replies doubled", tenth(shouttest.ToClient, func(b []byte) []pk { return []pk{{Data: b}, {Data: b}} }),
			func(t *testing.T, rep *bench.Report, all, impaired int64) {
				same(t, "messages", rep.Messages, all)
				within(t, "duplicates", rep.Duplicates, impaired-1, impaired)
				if !rep.OK() {
					t.Errorf("not all right: %+v", rep)
				}
			}, false, 0},
		// Held back within --timeout, while the next are answered:
		// reordered (as may be others, by the server's own readers),
		// and on time.
		{"replies overtaken", tenth(shouttest.ToClient, func(b []byte) []pk { return []pk{{Data: b, After: 20 * time.Millisecond}} }),
			func(t *testing.T, rep *bench.Report, all, impaired int64) {
				same(t, "messages", rep.Messages, all)
				within(t, "reordered", rep.Reordered, 1, all)
				same(t, "lost", rep.Lost, 0)
			}, false, 0},
		// Held back past --timeout: lost, and late if they came before
		// the end. A reply held 700 ms comes in a 500 ms window only if
		// its datagram went in the window's first 300 ms, which a busy
		// machine's stall can take whole (late 0 of 4, in CI under load):
		// in 2 s, those of the first 1.3 s.
		{"replies late", tenth(shouttest.ToClient, func(b []byte) []pk { return []pk{{Data: b, After: 700 * time.Millisecond}} }),
			func(t *testing.T, rep *bench.Report, all, impaired int64) {
				same(t, "lost", rep.Lost, impaired)
				same(t, "messages", rep.Messages, all-impaired)
				within(t, "late", rep.Late, 1, impaired)
			}, true, 2 * time.Second},
		{"replies cut short", tenth(shouttest.ToClient, func(b []byte) []pk { return []pk{{Data: b[:len(b)/2]}} }),
			func(t *testing.T, rep *bench.Report, all, impaired int64) {
				same(t, "wrong", rep.Mismatches, impaired)
				same(t, "messages", rep.Messages, all)
				same(t, "lost", rep.Lost, 0)
			}, false, 0},
		{"a byte of the reply changed", tenth(shouttest.ToClient, func(b []byte) []pk { b[len(b)-3] ^= 0x20; return []pk{{Data: b}} }),
			func(t *testing.T, rep *bench.Report, all, impaired int64) {
				same(t, "wrong", rep.Mismatches, impaired)
				same(t, "messages", rep.Messages, all)
			}, false, 0},
		// A reply cut within its sequence number names no datagram: it
		// is wrong, and the datagram it answered, unanswered, lost.
		{"replies cut in their number", tenth(shouttest.ToClient, func(b []byte) []pk { return []pk{{Data: b[:10]}} }),
			func(t *testing.T, rep *bench.Report, all, impaired int64) {
				same(t, "wrong", rep.Mismatches, impaired)
				same(t, "lost", rep.Lost, impaired)
				same(t, "messages", rep.Messages, all-impaired)
			}, true, 0},
		// A reply from another port is not the server's: bench's
		// connected socket never takes it, and the datagram is lost.
		{"replies from another port", tenth(shouttest.ToClient, func(b []byte) []pk { return []pk{{Data: b, Aside: true}} }),
			func(t *testing.T, rep *bench.Report, all, impaired int64) {
				same(t, "lost", rep.Lost, impaired)
				same(t, "messages", rep.Messages, all-impaired)
				same(t, "wrong", rep.Mismatches, 0)
			}, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := quick("udp", "")
			cfg.Conns, cfg.Depth, cfg.Size = 1, 4, 100
			cfg.Duration, cfg.Timeout = 500*time.Millisecond, 2*time.Second
			// Patient: a reply the path does not impair is never lost
			// to a stall past Timeout (under -race on a busy machine,
			// or stalled 100-500 ms at random: lost 4, want 2).
			cfg = bench.Patient(cfg)
			if tc.short {
				cfg = bench.PatientButEvery(cfg, 10)
				cfg.Timeout = 500 * time.Millisecond
			}
			if tc.window != 0 {
				cfg.Duration = tc.window
			}
			// Again, up to five times, while the path impaired nothing:
			// a stall may take the window whole (4 datagrams, none
			// impaired). A relay each time, whose counts are its run's.
			var all, impaired *atomic.Int64
			var came chan struct{}
			var rep *bench.Report
			for try := range 5 {
				all, impaired, came = new(atomic.Int64), new(atomic.Int64), make(chan struct{}, 1)
				cfg.Endpoint.Address = shouttest.UDPRelay(t, srv, tc.path(all, impaired, came))
				if rep = run(t, cfg); impaired.Load() > 0 {
					break
				}
				t.Logf("run %d of at most 5: the path impaired nothing in its %v window", try+1, cfg.Duration)
			}
			if impaired.Load() == 0 {
				t.Fatalf("the path impaired nothing: %+v", rep)
			}
			if tc.short {
				// Each datagram sent, or its one reply, passes the path:
				// bench gave the last impaired up at Timeout, and the
				// relay, which a stall may have kept from it as long,
				// counts it yet.
				awaitCount(t, all, came, rep.Messages+rep.Lost)
			}
			tc.check(t, rep, all.Load(), impaired.Load())
			if !t.Failed() {
				return
			}
			t.Logf("%d datagrams, %d impaired; %d messages, %d wrong, %d lost, %d late, %d duplicated, %d reordered; first wrong %q",
				all.Load(), impaired.Load(), rep.Messages, rep.Mismatches, rep.Lost, rep.Late, rep.Duplicates, rep.Reordered, rep.FirstMismatch)
		})
	}
}

func same(t *testing.T, what string, got, want int64) {
	t.Helper()
	if got != want {
		t.Errorf("%s: %d, want %d", what, got, want)
	}
}

func within(t *testing.T, what string, got, least, most int64) {
	t.Helper()
	if got < least || got > most {
		t.Errorf("%s: %d, want %d to %d", what, got, least, most)
	}
}

// Over TCP the path may split, gather, hold up or throttle the bytes,
// which must change nothing but the latency, or stall, reset or end the
// connection, which each connection counts once, what it owed lost or
// (a reply cut short by an end of file) wrong.
func TestStreamThroughAFaultyPath(t *testing.T) {
	t.Parallel()
	srv := shoutServer(t)
	type stream = shouttest.Stream
	const conns, depth = 4, 4
	// cut is about 70 replies into each connection: some measured.
	const cut = 5000
	for _, tc := range []struct {
		name     string
		up, down stream
		cfg      func(*bench.Config)
		// check checks the report; nil: all right. (A run that fails has
		// a short --timeout, 300 ms, to fail in, and --duration 10 s, a
		// bound: it ends as its last connection fails, so each reaches its
		// cut and fails however slow a busy machine is. One all right has
		// 500 ms, and --timeout 2 s, which a busy machine's replies may take.)
		check func(t *testing.T, rep *bench.Report)
	}{
		{"characters split everywhere", stream{Chunk: 1}, stream{Chunk: 1}, nil, nil},
		// An open loop's last message may be under way, a byte a write, as
		// the time is up on a busy machine: never sent, one a connection
		// at most.
		{"characters split everywhere, open loop", stream{Chunk: 1}, stream{Chunk: 1},
			func(c *bench.Config) { c.Rate, c.Duration, c.Timeout = 400, 500*time.Millisecond, 2*time.Second }, func(t *testing.T, rep *bench.Report) {
				same(t, "wrong, errors and lost", rep.Mismatches+rep.Errors+rep.Lost, 0)
				within(t, "never sent", rep.Unsent, 0, conns)
				if rep.Messages == 0 {
					t.Error("no message answered")
				}
			}},
		{"characters split everywhere, churn", stream{Chunk: 1}, stream{Chunk: 1}, func(c *bench.Config) { c.Churn = true }, nil},
		{"replies gathered", stream{}, stream{Coalesce: 10 * time.Millisecond}, nil, nil},
		{"messages held up", stream{Delay: 5 * time.Millisecond}, stream{}, nil, nil},
		{"replies throttled", stream{}, stream{Rate: 20000}, nil, nil},
		{"replies stall", stream{}, stream{After: cut, Cut: shouttest.CutStall}, nil, func(t *testing.T, rep *bench.Report) {
			same(t, "errors", rep.Errors, conns)
			// Each had depth in flight; on a busy machine a reply may come
			// past the short --timeout before the stall, lost and late.
			same(t, "lost and not late", rep.Lost-rep.Late, conns*depth)
			same(t, "wrong", rep.Mismatches, 0)
			said(t, "first error", rep.FirstError, "no reply within")
		}},
		{"messages stall", stream{After: cut, Cut: shouttest.CutStall}, stream{}, nil, func(t *testing.T, rep *bench.Report) {
			same(t, "errors", rep.Errors, conns)
			same(t, "lost and not late", rep.Lost-rep.Late, conns*depth)
			said(t, "first error", rep.FirstError, "no reply within")
		}},
		// A reset or an end of file fails the connection, not --timeout:
		// 2 s (with 300 ms, on a busy machine, replies came late before
		// the reset, 24 lost, the first error no reply).
		{"reset", stream{}, stream{After: cut, Cut: shouttest.CutReset}, slowTimeout, func(t *testing.T, rep *bench.Report) {
			same(t, "errors", rep.Errors, conns)
			within(t, "lost", rep.Lost, conns, conns*depth)
			same(t, "wrong", rep.Mismatches, 0)
			said(t, "first error", rep.FirstError, "reset")
		}},
		// An end of file mid-reply: that reply is wrong, cut short, and
		// the rest owed lost.
		{"replies end", stream{}, stream{After: cut, Cut: shouttest.CutHalf}, slowTimeout, func(t *testing.T, rep *bench.Report) {
			same(t, "wrong", rep.Mismatches, conns)
			same(t, "errors", rep.Errors, 0)
			within(t, "lost", rep.Lost, 0, conns*(depth-1))
			said(t, "first wrong reply", rep.FirstMismatch, "the server closed the connection after byte")
		}},
		// The server reads an end of file mid-message, answers what it
		// read and closes: a reply cut short, wrong; or, where the relay
		// closes its side with bench's later messages unread, a reset.
		{"messages end", stream{After: cut, Cut: shouttest.CutHalf}, stream{}, slowTimeout, func(t *testing.T, rep *bench.Report) {
			same(t, "wrong and errors", rep.Mismatches+rep.Errors, conns)
			if rep.Mismatches > 0 {
				said(t, "first wrong reply", rep.FirstMismatch, "the server closed the connection after byte")
			}
		}},
		// An open loop whose replies stall: every message that fell due
		// is answered, lost or never sent.
		{"replies stall, open loop", stream{}, stream{After: 2000, Cut: shouttest.CutStall}, func(c *bench.Config) { c.Rate = 400; c.Duration = time.Second }, dueAllCounted},
		{"reset, open loop", stream{}, stream{After: 2000, Cut: shouttest.CutReset}, func(c *bench.Config) { c.Rate = 400; c.Duration = time.Second }, dueAllCounted},
		// An end of file between an open loop's replies, 500 ms apart:
		// the connection's failure, nothing wrong or lost. (--timeout 2 s:
		// no reply is owed for long, and under the race detector on a
		// busy machine 3 of 5 replies took longer than 300 ms, lost.
		// --duration 10 s, a bound: the run ends as its last connection
		// fails; in 2 s, under stalls, a close came after the window's
		// end, in no count. One in flight: a stall of 500 ms had the
		// third message sent with the second owed, cut short by the end.)
		{"replies end between them, open loop", stream{}, stream{After: 64 * 2, Cut: shouttest.CutHalf},
			func(c *bench.Config) {
				*c = bench.OneInFlight(*c)
				c.Rate, c.Text, c.Duration, c.Timeout = 8, "ascii", 10*time.Second, 2*time.Second
			}, func(t *testing.T, rep *bench.Report) {
				same(t, "errors", rep.Errors, conns)
				same(t, "wrong", rep.Mismatches, 0)
				same(t, "lost", rep.Lost, 0)
				said(t, "first error", rep.FirstError, "the server closed the connection")
			}},
		// With Reconnect a run ends once a connection made again has
		// served a message (see madeAgain).
		{"replies stall, reconnect", stream{}, stream{After: cut, Cut: shouttest.CutStall}, func(c *bench.Config) { c.Reconnect = true }, func(t *testing.T, rep *bench.Report) {
			within(t, "reconnects", rep.Reconnects, 1, rep.Errors)
			said(t, "first error", rep.FirstError, "no reply within")
			if rep.CutShort != "" {
				t.Errorf("cut short with reconnect: %q", rep.CutShort)
			}
		}},
		// No reply is owed for long here: --timeout 2 s, which a busy
		// machine's replies may take.
		{"replies end, reconnect", stream{}, stream{After: cut, Cut: shouttest.CutHalf}, func(c *bench.Config) { c.Reconnect, c.Timeout = true, 2*time.Second }, func(t *testing.T, rep *bench.Report) {
			within(t, "reconnects", rep.Reconnects, 1, rep.Mismatches)
			within(t, "resent", rep.Resent, 1, rep.Reconnects*(depth-1))
			same(t, "errors", rep.Errors, 0)
			if rep.CutShort != "" {
				t.Errorf("cut short with reconnect: %q", rep.CutShort)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := quick("tcp", "")
			cfg.Conns, cfg.Depth = conns, depth
			cfg.Duration, cfg.Timeout = 10*time.Second, 300*time.Millisecond
			if tc.check == nil {
				cfg.Duration, cfg.Timeout = 500*time.Millisecond, 2*time.Second
			}
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			if cfg.Timeout == 2*time.Second {
				// No reply is to be late here: the run is patient, so
				// that a stall past Timeout loses none either (15 of an
				// open loop's, lost and late, under -race on a busy
				// machine).
				cfg = bench.Patient(cfg)
			}
			if cfg.Reconnect && goroutineDriver {
				t.Skip("reconnect needs the event-loop driver")
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			to := srv
			if cfg.Reconnect {
				// Reconnecting, the run does not end as its connections
				// fail: it ends once one made again has served a message,
				// within --duration 10 s, a bound. (A run of 500 ms, on a
				// busy machine, reached the cut too late for its timeout
				// to fire while measuring: nothing made again, the replies
				// owed lost, or timed out in the drain, errors with no
				// connection made again.)
				to = shouttest.Start(t, &server.Server{Logger: slog.New(slog.DiscardHandler), Observer: &madeAgain{first: conns, served: cancel}})
			}
			cfg.Endpoint.Address = shouttest.StreamRelay(t, to, tc.up, tc.down)
			var rep *bench.Report
			if tc.check == nil {
				// All right in a window of 500 ms, which a stall may take
				// whole: measured again while it counted nothing ("0
				// messages": churn, 5 runs of 20 under stall.sh 100 300
				// 300 1200).
				rep = runMeasuring(t, cfg)
			} else {
				var err error
				if rep, err = bench.Run(ctx, cfg); err != nil {
					t.Fatal(err)
				}
			}
			if tc.check == nil && !rep.OK() {
				t.Error("not all right")
			} else if tc.check != nil {
				tc.check(t, rep)
			}
			if t.Failed() {
				t.Logf("%d messages, %d wrong, %d errors, %d lost (%d late), %d never sent, %d reconnects, %d resent; cut short %q; first wrong %q; first error %q",
					rep.Messages, rep.Mismatches, rep.Errors, rep.Lost, rep.Late, rep.Unsent, rep.Reconnects, rep.Resent, rep.CutShort, rep.FirstMismatch, rep.FirstError)
			}
		})
	}
}

// slowTimeout gives a run --timeout 2 s, which a busy machine's replies
// may take.
func slowTimeout(c *bench.Config) { c.Timeout = 2 * time.Second }

// madeAgain is an Observer that calls served once a connection opened
// after the first ones has read a message. Through a relay, which dials
// the server for each connection bench makes, that is a connection bench
// made again, and counted as made again before it sent on it.
type madeAgain struct {
	first  int
	served func()

	mu     sync.Mutex
	opened int
	again  map[*server.ConnInfo]bool
}

func (m *madeAgain) ConnOpen(c *server.ConnInfo) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.opened++; m.opened > m.first {
		if m.again == nil {
			m.again = map[*server.ConnInfo]bool{}
		}
		m.again[c] = true
	}
}

func (m *madeAgain) ConnRead(c *server.ConnInfo, _ []byte) {
	m.mu.Lock()
	again := m.again[c]
	m.mu.Unlock()
	if again {
		m.served()
	}
}

func (m *madeAgain) ConnClose(c *server.ConnInfo) {
	m.mu.Lock()
	delete(m.again, c)
	m.mu.Unlock()
}

func (*madeAgain) Datagram(*server.DatagramInfo) {}

// dueAllCounted checks an open loop's identity: what fell due while
// measuring is answered, lost or never sent, give or take one a
// connection at the window's edges.
func dueAllCounted(t *testing.T, rep *bench.Report) {
	t.Helper()
	due := rep.Rate * rep.MeasuredS
	got := float64(rep.Messages + rep.Lost + rep.Unsent)
	if slack := max(2*float64(rep.Conns), due/10); got < due-slack || got > due+slack {
		t.Errorf("%d messages + %d lost + %d never sent = %.0f; %.0f fell due in %.3fs (± %.0f)", rep.Messages, rep.Lost, rep.Unsent, got, due, rep.MeasuredS, slack)
	}
	if rep.OK() {
		t.Error("all right")
	}
}

func said(t *testing.T, what, s, want string) {
	t.Helper()
	if !strings.Contains(s, want) {
		t.Errorf("%s %q, want it to say %q", what, s, want)
	}
}

// Over UDP every datagram sent while measuring is in exactly one of
// messages and lost, whatever the path does to it, as over a stream
// (onSent): dropped either way, answered twice, overtaken, answered past
// --timeout, its reply's number cut, or its place in a small ring taken
// while it was owed. In an open loop, what fell due and was not sent is
// the rest: never sent.
func TestUDPEverySentCounted(t *testing.T) {
	srv := shoutServer(t)
	type pk = shouttest.Packet
	path := func(dir, n int, b []byte) []pk {
		switch {
		case dir == shouttest.ToServer && n%13 == 6:
			return nil
		case dir == shouttest.ToServer:
			return []pk{{Data: b}}
		case n%17 == 2:
			return nil
		case n%7 == 1:
			return []pk{{Data: b, After: 400 * time.Millisecond}} // past --timeout
		case n%7 == 3:
			return []pk{{Data: b}, {Data: b}}
		case n%7 == 5:
			return []pk{{Data: b, After: 20 * time.Millisecond}}
		case n%11 == 4:
			return []pk{{Data: b[:10]}} // names no datagram
		}
		return []pk{{Data: b}}
	}
	t.Cleanup(bench.SetUDPBudget(64)) // a ring wraps onto datagrams owed
	for _, tc := range []struct {
		name string
		cfg  func(*bench.Config)
	}{
		{"closed loop", func(c *bench.Config) { c.Depth = 8 }},
		{"open loop", func(c *bench.Config) { c.Rate = 4000 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sent := onSent(t)
			var due atomic.Int64
			addr := shouttest.UDPRelay(t, srv, path)
			t.Cleanup(bench.OnScheduleCounts(addr, func(n int64) { due.Store(n) }))
			cfg := quick("udp", addr)
			cfg.Conns, cfg.Size, cfg.Warmup = 2, 100, 200*time.Millisecond
			cfg.Duration, cfg.Timeout = 500*time.Millisecond, 200*time.Millisecond
			tc.cfg(&cfg)
			// Again, up to five times, while nothing was sent while
			// measuring: a stall over the 500 ms window (0 sent) says
			// nothing of the counts. (A run that sent nothing adds
			// nothing to sent, and due is the last run's.)
			rep := runUntilMeasured(t, cfg, func(*bench.Report) bool { return sent.Load() > 0 })
			if got := rep.Messages + rep.Lost; got != sent.Load() || rep.Lost == 0 {
				t.Errorf("%d messages + %d lost = %d; %d sent while measuring, some lost", rep.Messages, rep.Lost, got, sent.Load())
			}
			if cfg.Rate > 0 && sent.Load()+rep.Unsent != due.Load() {
				t.Errorf("%d sent while measuring + %d never sent; %d fell due", sent.Load(), rep.Unsent, due.Load())
			}
		})
	}
}
