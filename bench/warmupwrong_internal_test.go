package bench

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"shout/endpoint"
	"shout/internal/shouttest"
)

// A server that answers one message of the warm-up wrong, or sends then
// a line (a datagram) that answers none, and every other right, is a
// server that answers wrong: the warm-up's wrong reply counts in
// WarmupWrong, the first shown (FirstWarmupWrong), and the run is not
// all right, with every driver; the measured counts are as the right
// replies make them, no wrong one among them. The warm-up's wrong reply
// was counted nowhere and shown nowhere: "every reply checked: all
// right".
func TestWarmupWrongReplyShown(t *testing.T) {
	for _, tc := range []struct {
		name, answer string // answer: the first message's, "wrong" or "stray" (right, then a line that answers none)
		want         string // in FirstWarmupWrong
	}{
		{"wrong reply", "wrong", `got "NOT THE REPLY`},
		{"answers no message", "stray", `got "NOT ASKED\n", which answers no message`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := func(t *testing.T, rep *Report, want string) {
				t.Helper()
				if rep.WarmupWrong != 1 || !strings.Contains(rep.FirstWarmupWrong, want) {
					t.Errorf("%d wrong in the warm-up, the first %q; want 1, with %q", rep.WarmupWrong, rep.FirstWarmupWrong, want)
				}
				if rep.Messages == 0 || rep.Mismatches != 0 || rep.MismatchesAfter != 0 || rep.FirstMismatch != "" ||
					rep.Errors != 0 || rep.Lost != 0 || rep.WarmupErrors != 0 || rep.Unmeasured != 0 {
					t.Errorf("measured: %d replies, %d wrong (%d after an earlier one, the first %q), %d errors, %d lost; %d warm-up errors, %d unmeasured; want replies, every one right, and nothing else",
						rep.Messages, rep.Mismatches, rep.MismatchesAfter, rep.FirstMismatch, rep.Errors, rep.Lost, rep.WarmupErrors, rep.Unmeasured)
				}
				if rep.OK() || !strings.Contains(rep.verdict(), "1 wrong in the warm-up") {
					t.Errorf("OK %v, verdict %q; want not all right, for 1 wrong in the warm-up", rep.OK(), rep.verdict())
				}
			}
			eachDriver(t, func(t *testing.T, _ bool) {
				check(t, runWarmWrong(t, "tcp", false, tc.answer), tc.want)
			})
			t.Run("udp", func(t *testing.T) {
				want := tc.want
				if tc.answer == "stray" {
					want = `got "00000000000099999999NOT ASKED", want "a reply that starts with` // a datagram that names none sent
				}
				check(t, runWarmWrong(t, "udp", false, tc.answer), want)
			})
			t.Run("churn", func(t *testing.T) {
				check(t, runWarmWrong(t, "tcp", true, tc.answer), tc.want)
			})
		})
	}
}

// runWarmWrong runs one connection (socket), a message at a time,
// against a server of its own that answers the first message it gets as
// answer says ("wrong": "NOT THE REPLY"; "stray": right, then a line, or
// a datagram naming none sent, "NOT ASKED") and every other right; again,
// at most five times in all, while the first three messages sent were
// not all the warm-up's (a stall as long as the warm-up) or no reply was
// measured.
//
// Three, not the first alone: the wrong reply counts as its message's,
// but the stray (a line or a datagram that answers none) counts in the
// phase it is read in, and a stall between the first message's send and
// its reply's read as long as the rest of the warm-up had it read while
// measuring: "0 wrong in the warm-up", "1 wrong" measured (a whole-suite
// run at load 15-36). The stray comes with the first reply, which the
// event loops read at the time they send the second message at, and the
// goroutine driver reads before it sends the second; a datagram comes
// before the second reply, which frees the third's send. A third message
// sent in the warm-up had the stray read in it.
func runWarmWrong(t *testing.T, network string, churn bool, answer string) *Report {
	t.Helper()
	var rep *Report
	for try := range 5 {
		var noted, warm atomic.Int64 // of the first three messages sent: how many, how many the warm-up's
		sentNoted = func(_ *run, _ int64, measured bool) {
			if noted.Add(1) <= 3 && !measured {
				warm.Add(1)
			}
		}
		cfg := Config{Endpoint: endpoint.Endpoint{Network: network, Address: warmWrongServer(t, network, answer)},
			Conns: 1, Depth: 1, Size: 64, Text: "ascii", Mode: "ascii", Churn: churn,
			Warmup: 300 * time.Millisecond, Duration: time.Second, Timeout: 2 * time.Second, patient: true}
		var err error
		rep, err = Run(context.Background(), cfg)
		sentNoted = nil
		if err != nil {
			t.Fatal(err)
		}
		if warm.Load() == 3 && rep.Messages > 0 {
			break
		}
		t.Logf("run %d of at most 5: %d of the first three messages sent in the warm-up (a stall as long as it), %d replies measured", try+1, warm.Load(), rep.Messages)
	}
	return rep
}

// warmWrongServer is runWarmWrong's server.
func warmWrongServer(t *testing.T, network, answer string) string {
	var first atomic.Bool
	odd := func() bool { return first.CompareAndSwap(false, true) }
	if network == "udp" {
		return shouttest.PacketServer(t, func(_ int, b []byte) [][]byte {
			right := append(b[:seqLen:seqLen], bytes.ToUpper(b[seqLen:])...)
			switch {
			case !odd():
				return [][]byte{right}
			case answer == "wrong":
				return [][]byte{append(b[:seqLen:seqLen], "NOT THE REPLY"...)}
			}
			if answer == "none" {
				return [][]byte{right}
			}
			return [][]byte{right, []byte("00000000000099999999NOT ASKED")}
		})
	}
	return shouttest.StreamServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(time.Minute))
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadBytes('\n')
			if err != nil {
				return
			}
			reply := bytes.ToUpper(line)
			if odd() {
				if answer == "wrong" {
					reply = []byte("NOT THE REPLY\n")
				} else {
					reply = append(reply, "NOT ASKED\n"...)
				}
			}
			if _, err := c.Write(reply); err != nil {
				return
			}
		}
	})
}
