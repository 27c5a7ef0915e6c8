package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"shout/endpoint"
	"shout/internal/shouttest"
)

// A line that a stream server sends between an open loop's messages,
// with none owed (here a reply sent again, its copy later), answers no
// message, with either driver: one wrong reply, the stream still in
// step. The event loops counted it so; the goroutine driver read it
// with the next message sent, as that message's reply, wrong, and every
// later reply on the connection out of step (4 wrong of the 5 messages
// here, 3 of them after the first, for the one copy). A copy that comes
// in two reads is one line, as the event loops count it.
func TestLineBetweenMessagesAnswersNoMessage(t *testing.T) {
	for _, parts := range []int{1, 2} {
		t.Run(fmt.Sprintf("in %d writes", parts), func(t *testing.T) {
			reps := make(map[bool]*Report)
			eachDriver(t, func(t *testing.T, goroutines bool) {
				var rep *Report
				var line []byte
				for try := range 5 {
					var copied bool
					if rep, line, copied = runCopiedLater(t, goroutines, parts); copied {
						break
					}
					t.Logf("run %d of at most 5: the next message was sent before the copy came (a stall), and owed it", try+1)
				}
				// Shown as the read that began it brought it: whole,
				// or its first part.
				dup := bytes.ToUpper(line)
				want := fmt.Sprintf("got %q, which answers no message", dup)
				part := fmt.Sprintf("got %q, which answers no message", dup[:len(dup)/parts])
				if rep.Mismatches != 1 || rep.MismatchesAfter != 0 || rep.FirstMismatch != want && rep.FirstMismatch != part ||
					rep.Messages < 2 || rep.Lost != 0 || rep.Errors != 0 {
					t.Errorf("%d replies, %d lost, %d errors, %d wrong (%d after an earlier one; the first %q); want the copy alone wrong, %q, and every reply right",
						rep.Messages, rep.Lost, rep.Errors, rep.Mismatches, rep.MismatchesAfter, rep.FirstMismatch, want)
				}
				reps[goroutines] = rep
			})
			if g, l := reps[true], reps[false]; g != nil && l != nil &&
				(g.Mismatches != l.Mismatches || g.MismatchesAfter != l.MismatchesAfter || parts == 1 && g.FirstMismatch != l.FirstMismatch) {
				t.Errorf("goroutines: %d wrong (%d after), the first %q; event loops: %d (%d), %q: want the same",
					g.Mismatches, g.MismatchesAfter, g.FirstMismatch, l.Mismatches, l.MismatchesAfter, l.FirstMismatch)
			}
		})
	}
}

// eachDriver runs f as a subtest with the goroutine driver, then with
// the event loops where the system has them, whichever pass of TestMain
// this is.
func eachDriver(t *testing.T, f func(t *testing.T, goroutines bool)) {
	was := forceGoroutines
	defer func() { forceGoroutines = was }()
	drivers := []bool{true} // forceGoroutines
	if loopsAvailable {
		drivers = append(drivers, false)
	}
	for _, goroutines := range drivers {
		name := "event loops"
		if goroutines {
			name = "goroutines"
		}
		t.Run(name, func(t *testing.T) {
			forceGoroutines = goroutines
			f(t, goroutines)
		})
	}
}

// runCopiedLater runs an open loop of one connection against a server
// that answers its first line twice, the copy in parts writes of its
// own once bench has taken the reply (the goroutine driver: each once
// its reader, waiting on the connection with nothing owed, has found the
// one before; the event loops read before they send, whenever it
// comes), and reports whether the copy came with none owed: the next
// message, due 200 ms later, was not sent before it (a stall may send it
// first, and the copy is then taken for its reply, rightly: nothing
// tells them apart). The goroutine driver's next send waits until its
// reader has found the whole copy. It returns the line copied, too.
func runCopiedLater(t *testing.T, goroutines bool, parts int) (rep *Report, line []byte, copied bool) {
	t.Helper()
	copyNow := make(chan struct{})
	found := make([]chan struct{}, parts) // found[j]: the reader found bytes a j+1-th time
	for j := range found {
		found[j] = make(chan struct{})
	}
	var once sync.Once
	var finds atomic.Int64
	var pushed atomic.Int64 // messages sent
	var owedAtCopy atomic.Int64
	var first atomic.Pointer[[]byte]
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(time.Minute))
		br := bufio.NewReader(c)
		for i := 0; ; i++ {
			line, err := br.ReadBytes('\n')
			if err != nil {
				return
			}
			c.Write(bytes.ToUpper(line))
			if i != 0 {
				continue
			}
			first.Store(&line)
			wait(copyNow)
			owedAtCopy.Store(pushed.Load() - 1)
			copy := bytes.ToUpper(line)
			for j := range parts {
				if j > 0 && goroutines {
					wait(found[j-1])
				}
				c.Write(copy[j*len(copy)/parts : (j+1)*len(copy)/parts])
			}
		}
	})
	sentNoted = func(*run, int64, bool) { pushed.Add(1) }
	if goroutines {
		replyTaken = func(k uint64) {
			if k == 0 {
				once.Do(func() { close(copyNow) })
			}
		}
		idleBytesFound = func(uint64) {
			if n := finds.Add(1); n <= int64(parts) {
				close(found[n-1])
			}
		}
		sendStarts = func(k uint64) {
			if k == 1 {
				wait(found[parts-1])
			}
		}
	} else {
		close(copyNow)
	}
	defer func() { sentNoted, replyTaken, idleBytesFound, sendStarts = nil, nil, nil, nil }()
	cfg := Config{Endpoint: endpoint.Endpoint{Network: "tcp", Address: addr}, Conns: 1, Rate: 5, Size: 64,
		Text: "ascii", Mode: "ascii", Warmup: -1, Duration: time.Second, Timeout: 2 * time.Second, patient: true}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p := first.Load(); p != nil {
		line = *p
	}
	return rep, line, owedAtCopy.Load() == 0
}

// A line a stream server sends between an open loop's messages, then
// closing the connection, is one wrong reply and the close one error,
// with either driver. The goroutine driver's reader waited for the next
// message to read the line with, and its writer, finding the close, for
// the reader to count it: the run went on to its end and counted
// neither (1 message, 0 wrong, 0 errors), where the event loops counted
// both at once. Here the line comes once bench has taken the reply (the
// goroutine driver: its reader has; the event loops read whenever it
// comes), the next message due 10 s later.
func TestStrayLineThenCloseBetweenMessages(t *testing.T) {
	eachDriver(t, func(t *testing.T, goroutines bool) {
		taken := make(chan struct{})
		var once sync.Once
		addr := shouttest.StreamServer(t, func(c net.Conn) {
			c.SetDeadline(time.Now().Add(time.Minute))
			line, err := bufio.NewReader(c).ReadBytes('\n')
			if err != nil {
				return
			}
			c.Write(bytes.ToUpper(line))
			wait(taken)
			c.Write([]byte("stray\n"))
			c.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, c) // until bench closes
		})
		if goroutines {
			replyTaken = func(uint64) { once.Do(func() { close(taken) }) }
			defer func() { replyTaken = nil }()
		} else {
			close(taken)
		}
		cfg := Config{Endpoint: endpoint.Endpoint{Network: "tcp", Address: addr}, Conns: 1, Rate: 0.1, Size: 64,
			Text: "ascii", Mode: "ascii", Warmup: -1, Duration: time.Minute, Timeout: 2 * time.Second} // cut short by the close
		rep, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Messages != 1 || rep.Mismatches != 1 || rep.FirstMismatch != `got "stray\n", which answers no message` ||
			rep.Errors != 1 || !strings.Contains(rep.FirstError, "the server closed the connection") || rep.Lost != 0 || rep.CutShort == "" {
			t.Errorf("%d replies, %d wrong (the first %q), %d errors (the first %q), %d lost, cut short %q; want the one reply, the line wrong, the close an error, none lost, and the run cut short",
				rep.Messages, rep.Mismatches, rep.FirstMismatch, rep.Errors, rep.FirstError, rep.Lost, rep.CutShort)
		}
	})
}
