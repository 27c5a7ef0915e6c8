package bench_test

import (
	"bufio"
	"bytes"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"shout/bench"
	"shout/internal/shouttest"
)

// The figures bench reports, checked against what a stand-in server
// counted and did itself: bounds a wrong computation cannot meet, and no
// bound on how fast anything is.

// tally is what a stand-in stream server counted.
type tally struct {
	conns, lines, bytes atomic.Int64
}

// delayServer is a stand-in TCP server that answers the k-th line of
// each connection (from 0) with its uppercase after delay(k), counting
// what it did in its tally.
func delayServer(t *testing.T, delay func(k int) time.Duration) (string, *tally) {
	var n tally
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		n.conns.Add(1)
		r := bufio.NewReader(c)
		for k := 0; ; k++ {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			if d := delay(k); d > 0 {
				time.Sleep(d)
			}
			// Counted before the write: bench may end its run as soon as
			// the reply comes.
			reply := bytes.ToUpper(line)
			n.lines.Add(1)
			n.bytes.Add(int64(len(reply)))
			if _, err := c.Write(reply); err != nil {
				return
			}
		}
	})
	return addr, &n
}

// checkLatencyAtLeast fails the test if any latency figure of rep (the
// percentiles, the maximum, each second's) is below least.
func checkLatencyAtLeast(t *testing.T, rep *bench.Report, least time.Duration) {
	t.Helper()
	want := float64(least.Microseconds())
	l := rep.LatencyUS
	for _, f := range []struct {
		name string
		us   float64
	}{{"p50", l.P50}, {"p90", l.P90}, {"p99", l.P99}, {"p99.9", l.P999}, {"max", l.Max}} {
		if f.us < want {
			t.Errorf("%s %.0f µs of replies each at least %v late", f.name, f.us, least)
		}
	}
	for _, p := range rep.Percentiles {
		if p.US < want {
			t.Errorf("percentile %g%%: %.0f µs of replies each at least %v late", p.Percent, p.US, least)
		}
	}
	for _, s := range rep.Timeline {
		if s.MessagesPerSec > 0 && (s.P50US < want || s.P99US < want) {
			t.Errorf("second ending at %.2fs: p50 %.0f µs, p99 %.0f µs of replies each at least %v late", s.T, s.P50US, s.P99US, least)
		}
	}
}

// Every reply 20 ms late: every latency figure is at least 20 ms.
func TestLatencyOfADelayedServer(t *testing.T) {
	const delay = 20 * time.Millisecond
	for _, depth := range []int{1, 4} {
		addr, _ := delayServer(t, func(int) time.Duration { return delay })
		cfg := quick("tcp", addr)
		cfg.Conns, cfg.Depth, cfg.Text = 2, depth, "ascii"
		cfg.Duration = 500 * time.Millisecond
		rep := run(t, cfg)
		if !rep.OK() {
			t.Fatalf("depth %d: report %+v", depth, rep)
		}
		checkLatencyAtLeast(t, rep, delay)
	}
}

// One reply in 50 (the first of each 50 on a connection) 200 ms late:
// more than 1% of them, so p99 and the maximum show it.
func TestLatencySeesTheSlowFew(t *testing.T) {
	const slow = 200 * time.Millisecond
	addr, _ := delayServer(t, func(k int) time.Duration {
		if k%50 == 0 {
			return slow
		}
		return 0
	})
	cfg := quick("tcp", addr)
	cfg.Conns, cfg.Depth, cfg.Text = 2, 1, "ascii"
	cfg.Duration = time.Second
	rep := run(t, cfg)
	if !rep.OK() {
		t.Fatalf("report %+v", rep)
	}
	l := rep.LatencyUS
	if want := float64(slow.Microseconds()); l.P99 < want || l.P999 < want || l.Max < want {
		t.Errorf("p99 %.0f µs, p99.9 %.0f µs, max %.0f µs; over 1%% of the replies took %v", l.P99, l.P999, l.Max, slow)
	}
	if !(l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Errorf("percentiles out of order: %+v", l)
	}
}

// An open loop against a server that stalls for 600 ms: the messages
// that fell due during the stall are sent on schedule and timed from when
// they fell due (no coordinated omission), so a fifth of the replies are
// at least 200 ms late and p90 shows it; timed from their send, or not
// sent during the stall, p90 would be the server's usual microseconds.
func TestOpenLoopCountsTheStall(t *testing.T) {
	const (
		rate  = 1000 // messages a second, on one connection
		stall = 600 * time.Millisecond
	)
	addr, n := delayServer(t, func(k int) time.Duration {
		if k == rate/2 { // half a second in
			return stall
		}
		return 0
	})
	cfg := quick("tcp", addr)
	cfg.Conns, cfg.Depth, cfg.Text, cfg.Rate = 1, 1, "ascii", rate
	cfg.Duration = 2 * time.Second
	rep := run(t, cfg)
	if !rep.OK() {
		t.Fatalf("report %+v", rep)
	}
	l := rep.LatencyUS
	if l.Max < float64(stall.Microseconds()) || l.P90 < 200e3 {
		t.Errorf("p90 %.0f µs, max %.0f µs; want at least 200 ms and %v: a fifth of the messages fell due during a %v stall", l.P90, l.Max, stall, stall)
	}
	// At least most of what the rate asks for the time measured (the
	// schedule does not wait for the server), whatever the machine.
	if want := 0.8 * rate * rep.MeasuredS; float64(n.lines.Load()) < want {
		t.Errorf("the server got %d messages in %.2fs at %d a second; want at least %.0f", n.lines.Load(), rep.MeasuredS, rate, want)
	}
}

// A run in which no reply came has no latency: the report, the page and
// the progress lines say so, and show no "0µs", which reads as a fast
// server. They showed p50 0µs to max 0µs.
func TestNoReplyHasNoLatency(t *testing.T) {
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		<-t.Context().Done() // reads nothing, answers nothing
	})
	var progress bytes.Buffer
	cfg := quick("tcp", addr)
	cfg.Conns, cfg.Depth, cfg.Timeout, cfg.Progress = 1, 1, 1200*time.Millisecond, &progress
	cfg.Duration = 2 * time.Second // a progress line before the connection fails
	rep := run(t, cfg)
	if rep.Messages != 0 {
		t.Fatalf("%d messages from a server that answers none", rep.Messages)
	}
	var text, page bytes.Buffer
	rep.WriteText(&text)
	if err := rep.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	for _, out := range []struct {
		name string
		b    bytes.Buffer
	}{{"report", text}, {"page", page}, {"progress", progress}} {
		if i := bytes.Index(out.b.Bytes(), []byte("0µs")); i >= 0 {
			t.Errorf("the %s shows a latency of 0µs where no reply came: %q", out.name, out.b.Bytes()[max(0, i-80):i+4])
		}
	}
	if !strings.Contains(text.String(), "latency   none: no reply to time") {
		t.Errorf("the report does not say that no reply was timed:\n%s", text.String())
	}
	if !strings.Contains(progress.String(), "p99 none") {
		t.Errorf("the progress line does not say that no reply was timed:\n%s", progress.String())
	}
}
