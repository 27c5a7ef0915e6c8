package server

import (
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// napLog records, on the loop's goroutine, the connections it opens and
// closes, its naps and its parks, in order.
type napLog struct {
	ev   chan string
	full atomic.Bool
}

func (o *napLog) ConnOpen(*ConnInfo)         { o.put("open") }
func (o *napLog) ConnRead(*ConnInfo, []byte) {}
func (o *napLog) Datagram(*DatagramInfo)     {}
func (o *napLog) ConnClose(*ConnInfo)        { o.put("close") }
func (o *napLog) napped()                    { o.put("nap") }

func (o *napLog) parking(emptyPoll bool) {
	if emptyPoll {
		o.put("park after an empty poll")
	} else {
		o.put("park")
	}
}

func (o *napLog) put(e string) {
	select {
	case o.ev <- e:
	default:
		o.full.Store(true)
	}
}

// next returns the log's next entry.
func (o *napLog) next(t *testing.T, after string) string {
	t.Helper()
	if o.full.Load() {
		t.Fatal("the loop's log filled up")
	}
	select {
	case e := <-o.ev:
		return e
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: the loop did nothing more within 10 s", after)
		return ""
	}
}

// napLoop starts one loop whose every wake is soon (napSoon) and whose
// napCalm is calm, logging to the napLog it returns, and a connection to
// it, once the loop has opened it (after oneLoop's own, which stays open
// until the test ends).
func napLoop(t *testing.T, calm time.Duration) (*napLog, net.Conn) {
	t.Helper()
	o := &napLog{ev: make(chan string, 1024)}
	// Set before the loops start and restored after they end: they read them.
	soon, calm0 := napSoon, napCalm
	napSoon, napCalm = time.Hour, calm
	napped, parking = o.napped, o.parking
	s := &Server{Observer: o}
	t.Cleanup(func() {
		<-s.Ended()
		napSoon, napCalm = soon, calm0
		napped, parking = nil, nil
	})
	c := dial(t, oneLoop(t, s, nil))
	for opens := 0; opens < 2; {
		if o.next(t, "two connections") == "open" {
			opens++
		}
	}
	return o, c
}

// pipelined is what a client with 32 messages of 64 bytes in flight
// sends at once (the peers' 32-in-flight row), and one of them what a
// client with one in flight sends; fewLong, what one with 8 messages of
// 256 bytes in flight does (the peers' UTF-8 row): as many bytes, a
// quarter as many messages.
var (
	pipelined = strings.Repeat(strings.Repeat("m", 63)+"\n", 32)
	fewLong   = strings.Repeat(strings.Repeat("l", 255)+"\n", 8)
)

// parked reads the loop's log up to its park, failing on anything else
// (a nap among them).
func parked(t *testing.T, o *napLog, what, after string) {
	t.Helper()
	if e := o.next(t, after); e != "park" && e != "park after an empty poll" {
		t.Fatalf("%s: the loop's next step was %q, want park", what, e)
	}
}

// A loop whose clients keep many messages in flight (each read carries
// several of them) naps and polls again after a batch rather than park,
// until a poll finds nothing; one woken by a new connection or a hang-up
// parks at once, as it did.
func TestLoopNapsWhenPipelined(t *testing.T) {
	o, c := napLoop(t, 0) // every wake soon, every moment calm: whether the loop naps is the batch's
	parked(t, o, "after a new connection (a batch with a connection in it is answered at once)", "a new connection")
	for i := range 2 {
		answer(t, c, pipelined)
		if e := o.next(t, "32 messages in flight"); e != "nap" {
			t.Fatalf("batch %d: after a read of %d bytes the loop's next step was %q, want nap", i, len(pipelined), e)
		}
		for e := "nap"; e != "park after an empty poll"; e = o.next(t, "32 messages in flight") {
			if e != "nap" {
				t.Fatalf("batch %d: after a nap the loop's next step was %q, want another nap or a park after a poll that found nothing", i, e)
			}
		}
	}
	c.Close()
	if e := o.next(t, "a hang-up"); e != "close" {
		t.Fatalf("a hang-up: the loop's first step was %q, want close", e)
	}
	parked(t, o, "after a hang-up", "a hang-up")
}

// A loop whose client has one message in flight at a time, or a few,
// parks after each batch, as it did: the client sends nothing more until
// its answers, so a nap would only keep it waiting (stop 60: throughput
// 0.79–0.92 at one in flight on 50 connections with a loop that napped
// whenever fed fast; stop 61: 0.86 at 8 in flight of 256 bytes with one
// that napped after reads of more than 512 bytes).
func TestLoopDoesNotNapWithFewInFlight(t *testing.T) {
	o, c := napLoop(t, 0) // every wake soon, every moment calm
	parked(t, o, "after a new connection", "a new connection")
	for _, msg := range []string{pipelined[:64], pipelined[:64], fewLong, fewLong} {
		answer(t, c, msg)
		parked(t, o, fmt.Sprintf("%d lines of %d bytes", strings.Count(msg, "\n"), len(msg)), "a few in flight")
	}
}

// A loop that took a connection within napCalm does not nap, pipelined
// or not: at churn each client waits for its answer before it goes and
// the next comes.
func TestLoopDoesNotNapWhileConnectionsCome(t *testing.T) {
	o, c := napLoop(t, time.Hour) // every wake soon, none calm
	parked(t, o, "after a new connection", "a new connection")
	answer(t, c, pipelined)
	parked(t, o, "32 messages in flight, a connection ago", "input alone")
}

// napClocked is napLoop on a handClock, napSoon and napCalm left as they
// are: the test says when each wake comes. The clock stands still but
// where the test moves it, so a wake comes at once after a park.
func napClocked(t *testing.T) (*napLog, *handClock, net.Addr, net.Conn) {
	t.Helper()
	o := &napLog{ev: make(chan string, 1024)}
	napped, parking = o.napped, o.parking // read by the loops: set before they start, cleared after they end
	s := &Server{Observer: o}
	t.Cleanup(func() {
		<-s.Ended()
		napped, parking = nil, nil
	})
	k, addr := handClocked(t, s, nil)
	c := dial(t, addr)
	for opens := 0; opens < 2; {
		if o.next(t, "two connections") == "open" {
			opens++
		}
	}
	parked(t, o, "after a new connection", "a new connection")
	return o, k, addr, c
}

// napsAgain has c's client send 32 messages at once and reads the
// loop's log up to its park: it must be after naps, and a poll that
// found nothing.
func napsAgain(t *testing.T, o *napLog, c net.Conn, what string) {
	t.Helper()
	answer(t, c, pipelined)
	e := o.next(t, what)
	if e != "nap" {
		t.Fatalf("%s: the loop's next step was %q, want nap", what, e)
	}
	for e != "park after an empty poll" {
		if e = o.next(t, what); e != "nap" && e != "park after an empty poll" {
			t.Fatalf("%s: after a nap the loop's next step was %q, want another nap or a park after a poll that found nothing", what, e)
		}
	}
}

// A loop naps only when woken within napSoon of its last batch and
// napCalm after its last new connection or hang-up (a client's end of
// input counts, not only a reset): each condition, on its own, keeps a
// pipelined client's batch from a nap.
func TestLoopNapsOnlySoonAndCalm(t *testing.T) {
	o, k, addr, c := napClocked(t)
	answer(t, c, pipelined)
	parked(t, o, "32 messages in flight, no time after a new connection", "input within napCalm of a connection")

	k.advance(t, napCalm+time.Nanosecond)
	answer(t, c, pipelined)
	parked(t, o, "32 messages in flight, napCalm after the loop's last batch", "input long after a park")
	napsAgain(t, o, c, "32 messages in flight at once after a park, napCalm after a connection")

	d := dial(t, addr)
	if e := o.next(t, "a second connection"); e != "open" {
		t.Fatalf("a second connection: the loop's first step was %q, want open", e)
	}
	parked(t, o, "after a second connection", "a second connection")
	k.advance(t, napCalm+time.Nanosecond)
	d.(*net.TCPConn).CloseWrite() // its end of input: EPOLLRDHUP, no EPOLLHUP while the server has not shut its side
	if e := o.next(t, "a client's end of input"); e != "close" {
		t.Fatalf("a client's end of input: the loop's first step was %q, want close", e)
	}
	parked(t, o, "after a client's end of input", "a client's end of input")
	answer(t, c, pipelined)
	parked(t, o, "32 messages in flight, no time after a hang-up", "input within napCalm of a hang-up")

	k.advance(t, napCalm+time.Nanosecond)
	answer(t, c, pipelined)
	parked(t, o, "32 messages in flight, napCalm after the loop's last batch", "input long after a park")
	napsAgain(t, o, c, "32 messages in flight at once after a park, napCalm after a hang-up")
}

// The loop naps after a batch whose reads averaged more than napLines
// lines, not after one of napLines.
func TestLoopNapsAfterMoreThanNapLines(t *testing.T) {
	o, c := napLoop(t, 0) // every wake soon, every moment calm
	parked(t, o, "after a new connection", "a new connection")
	answer(t, c, strings.Repeat("ab\n", napLines))
	parked(t, o, fmt.Sprintf("a read of %d lines", napLines), "napLines lines")
	answer(t, c, strings.Repeat("ab\n", napLines+1))
	if e := o.next(t, "napLines+1 lines"); e != "nap" {
		t.Fatalf("a read of %d lines: the loop's next step was %q, want nap", napLines+1, e)
	}
}
