package bench

import (
	"context"
	"crypto/tls"
	"io"
	"math"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"shout/endpoint"
	"shout/internal/certs"
	"shout/internal/shouttest"
)

// A signal (Ctrl-C) once the window was measured whole, as bench waits
// for the replies owed, ends the wait at once, and the report is the
// whole window's: not interrupted, the wait said cut, and what was owed
// not waited for, neither lost nor checked. The wait went on to the
// Timeout, what was owed then lost, and the report said "interrupted"
// of a window measured whole: interrupted was whether ctx had ended by
// the report, not whether it had ended the window. Each driver, and a
// signal as the window ends (before the wait begins) or just after.
//
// A try in which no measured message was sent (a stall on a busy
// machine as long as the window, between its start and the sender's
// first send: "no message was sent in the 200ms measured") had nothing
// owed to cut, and tells nothing: it is made again, at most three times
// in all.
func TestSignalInFinalWaitEndsIt(t *testing.T) {
	for _, tc := range []signalInWaitCase{
		{"stream", silentStream, 0, false},
		{"stream open loop", silentStream, 200, false},
		{"tls", silentTLS, 0, false},
		{"udp", silentUDP, 0, false},
		{"churn", silentChurn, 0, true},
	} {
		for _, inWait := range []bool{false, true} {
			name := tc.name + "/as the window ends"
			if inWait {
				name = tc.name + "/as the wait begins"
			}
			t.Run(name, func(t *testing.T) {
				const tries = 3
				for try := range tries {
					if signalInFinalWait(t, tc, inWait) {
						return
					}
					t.Logf("try %d of at most %d: no measured message was sent in the window (a stalled machine); nothing was owed to cut", try+1, tries)
				}
				t.Fatalf("%d tries inconclusive: no measured message was sent in any; a machine stalled that often, or a bench that sends nothing in a window of 200ms", tries)
			})
		}
	}
}

// signalInWaitCase is a case of TestSignalInFinalWaitEndsIt.
type signalInWaitCase struct {
	name   string
	server func(t *testing.T) (endpoint.Endpoint, *tls.Config)
	rate   float64
	churn  bool
}

// signalInFinalWait is one try of TestSignalInFinalWaitEndsIt, the
// signal as the wait begins if inWait, else as the window ends. It
// reports false, inconclusive, if no measured message was sent.
func signalInFinalWait(t *testing.T, tc signalInWaitCase, inWait bool) (conclusive bool) {
	e, tlsCfg := tc.server(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sent atomic.Int64 // measured messages handed over
	countMeasured(&sent)
	ended := make(chan struct{})
	windowEnded = func() {
		if !inWait {
			cancel()
		}
		close(ended)
	}
	defer func() { sentNoted, windowEnded = nil, nil }()
	if inWait {
		go func() {
			select {
			case <-ended:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	// The Timeout, the longest the wait can be, is ten minutes: a wait
	// not cut is one that does not end. (At 10 s, one that went on to its
	// end counted what was owed as the cut did, and passed.)
	cfg := Config{Endpoint: e, TLS: tlsCfg, Conns: 1, Depth: 1, Rate: tc.rate, Churn: tc.churn,
		Warmup: -1, Duration: 200 * time.Millisecond, Timeout: 10 * time.Minute}
	rep := runWithin(ctx, t, cfg)
	n := sent.Load()
	if n == 0 {
		return false // (an open loop's due in the window are counted never sent)
	}
	if rep.Interrupted || !rep.WaitCut || rep.MeasuredS != cfg.Duration.Seconds() {
		t.Errorf("interrupted %v, wait cut %v, measured %vs; want not interrupted, the wait cut, %vs measured",
			rep.Interrupted, rep.WaitCut, rep.MeasuredS, cfg.Duration.Seconds())
	}
	if rep.Unawaited != n || rep.Lost != 0 || rep.Messages != 0 || rep.Errors != 0 {
		t.Errorf("%d not waited for, %d lost, %d messages, %d errors (%q); want the %d sent not waited for, and nothing else",
			rep.Unawaited, rep.Lost, rep.Messages, rep.Errors, rep.FirstError, n)
	}
	if rep.Unawaited > 0 && rep.OK() {
		t.Errorf("%d not waited for, and all right: not every reply was checked", rep.Unawaited)
	}
	// Not waited for is something measured: shout says "interrupted
	// before anything was measured" of a run that counted nothing
	// (Empty), and the verdict "no message was sent".
	if rep.Unawaited > 0 && rep.Empty() {
		t.Errorf("%d not waited for, and the run said to have counted nothing", rep.Unawaited)
	}
	checkWaitCutShown(t, rep)
	return true
}

// countMeasured sets sentNoted to count in sent the measured messages
// handed over; the test sets it back.
func countMeasured(sent *atomic.Int64) {
	sentNoted = func(_ *run, _ int64, measured bool) {
		if measured {
			sent.Add(1)
		}
	}
}

// checkWaitCutShown checks that the text report and the page say that
// the wait was cut, and what was not waited for, in the replies and in
// the verdict.
func checkWaitCutShown(t *testing.T, rep *Report) {
	t.Helper()
	var text, page strings.Builder
	rep.WriteText(&text)
	if err := rep.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	n := strconv.FormatInt(rep.Unawaited, 10)
	verdict := regexp.MustCompile(`not all right: [^\n<]*, ` + n + ` not waited for \(`)
	for _, shown := range []struct {
		what, s string
		replies *regexp.Regexp
	}{
		{"text report", text.String(), regexp.MustCompile(`  replies +[^\n]*, ` + n + ` not waited for \(`)},
		{"page", page.String(), regexp.MustCompile(`<th>not waited for</th><td class="n">` + n + `</td>`)},
	} {
		if !strings.Contains(shown.s, "until a signal ended the wait") || !shown.replies.MatchString(shown.s) || !verdict.MatchString(shown.s) {
			t.Errorf("the %s does not say that the wait was cut (%q), or the %s not waited for (%q, %q):\n%s",
				shown.what, "until a signal ended the wait", n, shown.replies, verdict, shown.s)
		}
	}
}

// A reply owed at the cut is not waited for only while its Timeout is
// not up: one whose Timeout was up would have been late, and is lost
// (the event loops do not look for late replies in the wait at the end,
// and the goroutine driver's deadline there is the stop's Timeout, so
// such a reply is still owed at the cut). Before a cut, every reply given
// up is lost.
func TestGaveUpAtTheCut(t *testing.T) {
	cfg := Config{Timeout: time.Second}
	r := bareRun(&cfg)
	second := int64(time.Second)
	r.gaveUp(0) // no cut
	r.waitCut.Store(10 * second)
	r.gaveUp(9*second + 1) // its Timeout not up at the cut
	r.gaveUp(9 * second)   // up
	r.gaveUp(8 * second)
	if r.lost.Load() != 3 || r.unawaited.Load() != 1 {
		t.Errorf("%d lost, %d not waited for; want 3 lost, 1 not waited for", r.lost.Load(), r.unawaited.Load())
	}
}

// runWithin runs cfg, whose Timeout is minutes, and returns its report,
// or fails the test if it has not returned within two minutes: the
// signal that cut its wait did not end the wait. (The stream servers
// close their connections as the test ends, which ends such a run; a UDP
// run waits on, up to its Timeout.)
func runWithin(ctx context.Context, t *testing.T, cfg Config) *Report {
	t.Helper()
	type result struct {
		rep *Report
		err error
	}
	ran := make(chan result, 1)
	go func() {
		rep, err := Run(ctx, cfg)
		ran <- result{rep, err}
	}()
	select {
	case res := <-ran:
		if res.err != nil {
			t.Fatal(res.err)
		}
		return res.rep
	case <-time.After(2 * time.Minute):
		t.Fatalf("Run has not returned 2 minutes after it began, of %v measured: the wait for the replies owed, up to %v, was not cut", cfg.Duration, cfg.Timeout)
		return nil
	}
}

// silentStream is a TCP server that reads what it is sent and answers
// nothing, and closes its connections as the test ends.
func silentStream(t *testing.T) (endpoint.Endpoint, *tls.Config) {
	gone := make(chan struct{})
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		go func() { <-gone; c.Close() }()
		io.Copy(io.Discard, c)
	})
	t.Cleanup(func() { close(gone) }) // (before the server's own, which waits for its connections)
	return endpoint.Endpoint{Network: "tcp", Address: addr}, nil
}

// silentChurn is a TCP server that reads each message to the client's
// half-close and answers nothing, the connection held open until the
// test ends: a close is a reply cut short.
func silentChurn(t *testing.T) (endpoint.Endpoint, *tls.Config) {
	hold := make(chan struct{})
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		io.Copy(io.Discard, c)
		<-hold
	})
	t.Cleanup(func() { close(hold) }) // (before the server's own)
	return endpoint.Endpoint{Network: "tcp", Address: addr}, nil
}

// silentTLS is silentStream over TLS.
func silentTLS(t *testing.T) (endpoint.Endpoint, *tls.Config) {
	store, err := certs.SelfSigned([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := certs.ServerConfig(store, "")
	gone := make(chan struct{})
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		go func() { <-gone; c.Close() }()
		io.Copy(io.Discard, tls.Server(c, cfg))
	})
	t.Cleanup(func() { close(gone) }) // (before the server's own, which waits for its connections)
	return endpoint.Endpoint{Network: "tcp", Address: addr, TLS: true}, &tls.Config{InsecureSkipVerify: true}
}

// silentUDP is a UDP server that answers nothing.
func silentUDP(t *testing.T) (endpoint.Endpoint, *tls.Config) {
	addr := shouttest.PacketServer(t, func(int, []byte) [][]byte { return nil })
	return endpoint.Endpoint{Network: "udp", Address: addr}, nil
}

// A datagram given up after a cut, not waited for (its Timeout up only
// after the cut: an open loop's sender, in sendRest as the cut came,
// expires before each send), whose reply the reader then takes, is late,
// and lost, and no longer not waited for. Its reply was counted late as
// well: one message in two counts, Late past the Lost it is within. So
// too for one whose place in the ring a later datagram took.
func TestUDPUnawaitedThenAnsweredCountsOnce(t *testing.T) {
	for _, wrapped := range []bool{false, true} {
		t.Run(map[bool]string{false: "in the ring", true: "out of the ring"}[wrapped], func(t *testing.T) {
			cfg := Config{Endpoint: endpoint.Endpoint{Network: "udp", Address: "127.0.0.1:9"}, Conns: 1, Rate: 100, Timeout: time.Second}
			r, u := bareUDPSocket(t, &cfg)
			r.windowUntil.Store(math.MaxInt64)
			seq := u.put(true)
			sentAt := u.slot(seq).sentAt
			r.waitCut.Store(int64(sentAt.Sub(r.epoch) + cfg.Timeout/2)) // its Timeout not up at the cut
			u.expireAt(sentAt.Add(cfg.Timeout), false)
			if r.unawaited.Load() != 1 {
				t.Fatalf("%d not waited for; want 1", r.unawaited.Load())
			}
			if wrapped {
				for range len(u.ring) { // the last takes its place
					u.put(false)
				}
			}
			reply := append(appendSeq(nil, seq), r.bodyWants[pick(0, seq)]...)
			u.take(reply, sentAt.Add(cfg.Timeout+time.Millisecond))
			lost, late, unawaited := r.lost.Load(), r.late.Load(), r.unawaited.Load()
			if lost+unawaited+r.replies.Load() != 1 || late > lost || u.unawaited != unawaited || r.mismatches.Load() != 0 {
				t.Errorf("%d lost (%d late), %d not waited for (the socket's: %d), %d replies, %d wrong; want the one datagram in one count, late within lost",
					lost, late, unawaited, u.unawaited, r.replies.Load(), r.mismatches.Load())
			}
		})
	}
}
