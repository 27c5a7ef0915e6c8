package bench_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"shout/bench"
	"shout/internal/shouttest"
)

// skippingServer answers each line it reads with its uppercase (ASCII),
// but for the lines skip names (numbered from 1 on each connection),
// which it answers with nothing. Once a connection has answered enough
// lines, done closes.
func skippingServer(t *testing.T, skip func(n int) bool, enough int) (addr string, done <-chan struct{}) {
	ch := make(chan struct{})
	var once sync.Once
	addr = shouttest.StreamServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		answered := 0
		for n := 1; ; n++ {
			line, err := br.ReadBytes('\n')
			if err != nil {
				return
			}
			if skip(n) {
				continue
			}
			if _, err := c.Write(bytes.ToUpper(line)); err != nil {
				return
			}
			if answered++; answered == enough {
				once.Do(func() { close(ch) })
			}
		}
	})
	return addr, ch
}

// A stream server that answers nothing to one message, and every later
// one, puts the stream out of step: each later reply was compared with
// the message before its own, and counted wrong, hundreds of them for
// one reply skipped (TCP, open loop, one reply of 3,000 skipped: "749
// wrong (748 of them after an earlier wrong reply on the same
// connection ..."). A reply that is, byte for byte, the right one to a
// message sent after the one owed (the run's messages are told apart by
// their contents) is taken for that message's: the ones before it,
// answered with nothing, are counted lost, as skipped, and none wrong.
func TestSkippedReplyRealigns(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		rate float64
		skip []int // the lines not answered
	}{
		{"closed loop, one skipped", 0, []int{5}},
		{"open loop, one skipped", 2000, []int{5}},
		{"closed loop, two in a row and one later", 0, []int{5, 6, 20}},
		{"open loop, three in a row", 2000, []int{7, 8, 9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			skip := func(n int) bool {
				for _, s := range tc.skip {
					if n == s {
						return true
					}
				}
				return false
			}
			addr, done := skippingServer(t, skip, 60)
			cfg := quick("tcp", addr)
			cfg.Text, cfg.Conns, cfg.Depth, cfg.Rate, cfg.Duration = "ascii", 1, 4, tc.rate, time.Minute
			rep := runUntil(t, bench.Patient(cfg), done)
			var text strings.Builder
			rep.WriteText(&text)
			want := int64(len(tc.skip))
			if rep.Mismatches != 0 || rep.Skipped != want || rep.Lost != want || rep.Messages < 60 {
				t.Errorf("%d wrong, %d skipped, %d lost, %d answered; want 0 wrong, %d skipped and lost, at least 60 answered:\n%s",
					rep.Mismatches, rep.Skipped, rep.Lost, rep.Messages, want, text.String())
			}
			checkSentCounted(t, rep)
			if rep.OK() {
				t.Errorf("a run with replies skipped is all right:\n%s", text.String())
			}
			_, page, line := writeEach(t, rep)
			for _, tc := range []struct{ what, out, want string }{
				{"the text", text.String(), fmt.Sprintf("%d lost (%d skipped: the server answered nothing to", want, want)},
				{"the verdict", text.String(), fmt.Sprintf("not all right: %d lost (%d skipped)", want, want)},
				{"the page", page, fmt.Sprintf(`<th>lost</th><td class="n">%d</td><td>%d skipped: the server answered nothing to`, want, want)},
				{"the JSON", line, fmt.Sprintf(`"skipped":%d,`, want)},
			} {
				if !strings.Contains(tc.out, tc.want) {
					t.Errorf("%s does not say %q:\n%s", tc.what, tc.want, tc.out)
				}
			}
		})
	}
}
