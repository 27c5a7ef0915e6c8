package server

import (
	"net"
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

// A loop woken soon after it parked, by input alone, naps and polls
// again rather than park (one message in flight on many connections:
// a wake a message, the park dearer than the message's read); one woken
// by a new connection or a hang-up parks at once, as it did.
func TestLoopNapsWhenFedFast(t *testing.T) {
	o, c := napLoop(t, 0) // every wake soon, every moment calm: whether the loop naps is the batch's
	if e := o.next(t, "a new connection"); e != "park" && e != "park after an empty poll" {
		t.Fatalf("after a new connection the loop's next step was %q, want park (a batch with a connection in it is answered at once)", e)
	}
	for i, msg := range []string{"b", "c"} {
		answer(t, c, msg)
		if e := o.next(t, "input alone"); e != "nap" {
			t.Fatalf("message %d: after input alone the loop's next step was %q, want nap", i, e)
		}
		for e := "nap"; e != "park after an empty poll"; e = o.next(t, "input alone") {
			if e != "nap" { // (the next message may come within the nap)
				t.Fatalf("message %d: after a nap the loop's next step was %q, want another nap or a park after a poll that found nothing", i, e)
			}
		}
	}
	c.Close()
	if e := o.next(t, "a hang-up"); e != "close" {
		t.Fatalf("a hang-up: the loop's first step was %q, want close", e)
	}
	if e := o.next(t, "a hang-up"); e != "park" {
		t.Fatalf("after a hang-up the loop's next step was %q, want park", e)
	}
}

// A loop that took a connection within napCalm does not nap: at churn
// each client waits for its answer before it goes and the next comes.
func TestLoopDoesNotNapWhileConnectionsCome(t *testing.T) {
	o, c := napLoop(t, time.Hour) // every wake soon, none calm
	for e := ""; e != "park" && e != "park after an empty poll"; e = o.next(t, "a new connection") {
	}
	answer(t, c, "b")
	if e := o.next(t, "input alone"); e != "park" {
		t.Fatalf("input alone, a connection ago: the loop's next step was %q, want park", e)
	}
}
