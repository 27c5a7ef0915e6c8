package bench_test

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"shout/bench"
	"shout/internal/shouttest"
)

// FuzzReplyChecker runs bench against a stand-in server whose replies
// the fuzz input scripts: line by line, right, with a byte changed,
// without their newline, with bytes added, as raw bytes from the input,
// cut and finished in the next reply, or followed by a close. On each
// connection the server's output, S, is compared with R, the right
// replies to the lines it read, run together: a stream, so replies cut
// anywhere are still right. Whatever the server sends, the run ends; if
// S is R the run is OK; if S differs from R within R, or stops short of
// it, the run is not OK (a wrong reply, a late one, an error). Bytes
// beyond R answer no message and may come after bench has stopped
// reading: either way is fine.
//
// The input's first byte picks the run's shape (connections, depth,
// text, size, driver); each byte after it scripts one reply, in turn.
func FuzzReplyChecker(f *testing.F) {
	const (
		right = iota
		flip
		noNewline
		extra
		raw
		cut
		closeAfter
		ops
	)
	// Few seeds: a reply that never comes costs a run its Timeout.
	for _, seed := range [][]byte{
		{0, right},
		{0x3f, right}, // two connections, depth 4, UTF-8, 300 bytes
		{0x20, right, flip, 0, 31},
		{2, right, noNewline},
		{3, right, extra, 'x', '\n'},
		{4, raw, 4, 'A', 'B', 'C', '\n', right},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, script []byte) {
		if len(script) < 2 {
			return
		}
		shape, script := script[0], script[1:]
		var mu sync.Mutex
		var conns []*fuzzConn
		addr := shouttest.StreamServer(t, func(c net.Conn) {
			fc := &fuzzConn{done: make(chan struct{})}
			defer close(fc.done)
			mu.Lock()
			conns = append(conns, fc)
			mu.Unlock()
			c.SetDeadline(time.Now().Add(bound))
			r := bufio.NewReader(c)
			at := 0 // where in script this connection is
			next := func() byte {
				b := script[at%len(script)]
				at++
				return b
			}
			var carry []byte // the rest of a cut reply
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				want := []byte(upper(line))
				answer := append(carry, want...)
				pre := len(carry) // of answer, before want
				carry = nil
				end := false
				switch next() % ops {
				case flip:
					i := pre + int(next())%len(want)
					answer[i] ^= 1 + next()%255
				case noNewline:
					answer = answer[:len(answer)-1]
				case extra:
					n := int(next()) % 8
					for range n {
						answer = append(answer, next())
					}
				case raw:
					answer = answer[:pre]
					n := int(next()) % 16
					for range n {
						answer = append(answer, next())
					}
				case cut:
					k := int(next()) % (len(answer) + 1)
					answer, carry = answer[:k], bytes.Clone(answer[k:])
				case closeAfter:
					end = true
				}
				mu.Lock()
				fc.want = append(fc.want, want...)
				fc.closed = fc.closed || end
				mu.Unlock()
				n, err := c.Write(answer)
				mu.Lock()
				fc.sent = append(fc.sent, answer[:n]...)
				mu.Unlock()
				if err != nil {
					return
				}
				if end {
					closeGracefully(c)
					return
				}
			}
		})

		cfg := quick("tcp", addr)
		cfg.Conns = 1 + int(shape&1)
		cfg.Depth = 1 + int(shape>>1&3)
		cfg.Text = []string{"ascii", "utf8"}[shape>>3&1]
		cfg.Size = []int{2, 8, 64, 300}[shape>>4&3]
		cfg.Duration = 50 * time.Millisecond
		cfg.Timeout = time.Second // a reply that never comes fails the run after it
		if shape&0x40 != 0 && !goroutineDriver {
			defer bench.UseGoroutines()()
		}
		rep := runWithin(t, cfg)
		// Bench has closed every connection: their handlers end.
		mu.Lock()
		ended := conns
		mu.Unlock()
		for _, c := range ended {
			select {
			case <-c.done:
			case <-time.After(bound):
				t.Fatalf("a connection still open %v after the run", bound)
			}
		}

		closed, over, short := false, false, false
		for _, c := range ended {
			closed = closed || c.closed
			n := min(len(c.sent), len(c.want))
			switch {
			case !bytes.Equal(c.sent[:n], c.want[:n]):
				t.Logf("a connection's replies differ from the right ones at byte %d of %d", diffAt(c.sent, c.want), len(c.want))
				short = true
			case len(c.sent) < len(c.want):
				t.Logf("a connection's replies are %d bytes short of the right ones", len(c.want)-len(c.sent))
				short = true
			case len(c.sent) > len(c.want):
				over = true
			}
		}
		switch {
		case closed:
			// A close fails the run, or ends it as the run ends: either way.
		case short && rep.OK():
			t.Fatalf("the server's replies were wrong, and the run is OK: %+v", rep)
		case !short && !over && !rep.OK() && !rep.Empty():
			// (Empty: the 50 ms went by, on a busy machine, before an
			// exchange; a run that measured nothing is not all right.)
			t.Fatalf("the server's replies were right, and the run is not OK: %+v", rep)
		}
	})
}

// fuzzConn is what the stand-in server sent on one connection, and what
// it should have sent.
type fuzzConn struct {
	sent, want []byte
	closed     bool
	done       chan struct{} // closed when its handler returns
}

// diffAt is where a and b first differ.
func diffAt(a, b []byte) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

// FuzzDatagramReplies runs bench over UDP against a stand-in server whose
// answers the fuzz input scripts, datagram by datagram: right, dropped,
// sent twice, held and sent after the next one's, or wrong (a byte of
// the body changed, another sequence number, bytes from the input, cut
// short). Whatever comes, the run ends; and a reply is counted wrong
// only if the server sent a wrong one: a dropped, repeated or reordered
// right reply is lost, a duplicate or reordered, never a mismatch.
//
// The input's first byte picks the run's shape (sockets, depth, text,
// size, driver); each byte after it scripts one answer, in turn.
func FuzzDatagramReplies(f *testing.F) {
	const (
		right = iota
		drop
		twice
		hold
		flip
		otherSeq
		raw
		cut
		ops
	)
	for _, seed := range [][]byte{
		{0, right},
		{0x3f, right, twice, hold, right, drop},
		{2, right, flip, 3, 1},
		{4, otherSeq, 7, right, raw, 3, 'a', 'b', 'c', cut, 25},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, script []byte) {
		if len(script) < 2 {
			return
		}
		shape, script := script[0], script[1:]
		var mu sync.Mutex // the server answers one datagram at a time; the test reads wrong at the end
		at := 0
		next := func() byte {
			b := script[at%len(script)]
			at++
			return b
		}
		held := map[string][][]byte{} // by the socket they answer
		wrong := false                // a wrong reply was sent
		addr := shouttest.PacketServerFrom(t, func(_ int, fromAddr net.Addr, b []byte) [][]byte {
			from := fromAddr.String()
			mu.Lock()
			defer mu.Unlock()
			reply := []byte(string(b[:min(len(b), 20)]) + upper(string(b[min(len(b), 20):])))
			out := held[from]
			delete(held, from)
			switch next() % ops {
			case right:
				out = append(out, reply)
			case twice:
				out = append(out, reply, reply)
			case hold:
				held[from] = append(held[from], reply)
			case flip:
				if len(reply) > 20 {
					reply[20+int(next())%(len(reply)-20)] ^= 1 + next()%255
					wrong = true
				}
				out = append(out, reply)
			case otherSeq:
				for i := range min(len(reply), 20) {
					reply[i] = '0' + next()%10
				}
				wrong = wrong || !bytes.Equal(reply[:min(len(reply), 20)], b[:min(len(b), 20)])
				out = append(out, reply)
			case raw:
				n := int(next()) % 32
				junk := make([]byte, n)
				for i := range junk {
					junk[i] = next()
				}
				wrong = wrong || !bytes.Equal(junk, reply)
				out = append(out, junk)
			case cut:
				k := int(next()) % (len(reply) + 1)
				wrong = wrong || k < len(reply)
				out = append(out, reply[:k])
			}
			return out
		})

		cfg := quick("udp", addr)
		cfg.Conns = 1 + int(shape&1)
		cfg.Depth = 1 + int(shape>>1&3)
		cfg.Text = []string{"ascii", "utf8"}[shape>>3&1]
		cfg.Size = []int{21, 22, 64, 300}[shape>>4&3]
		cfg.Duration = 50 * time.Millisecond
		cfg.Timeout = 300 * time.Millisecond // what is dropped or held is lost after it
		if shape&0x40 != 0 && !goroutineDriver {
			defer bench.UseGoroutines()()
		}
		rep := runWithin(t, cfg)
		mu.Lock()
		defer mu.Unlock()
		if !wrong && rep.Mismatches > 0 {
			t.Fatalf("every reply sent was right, and %d counted wrong (the first %s): %+v", rep.Mismatches, rep.FirstMismatch, rep)
		}
	})
}

// runWithin is run, failing the test if the run does not end within
// bound: a checker that waits for ever is what the fuzzers look for too.
func runWithin(t *testing.T, cfg bench.Config) *bench.Report {
	t.Helper()
	done := make(chan struct{})
	var rep *bench.Report
	var err error
	go func() {
		defer close(done)
		rep, err = bench.Run(context.Background(), cfg)
	}()
	select {
	case <-done:
	case <-time.After(bound):
		t.Fatalf("the run did not end within %v", bound)
	}
	if err != nil {
		t.Fatal(err)
	}
	return rep
}
