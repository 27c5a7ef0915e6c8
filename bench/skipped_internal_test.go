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

// A stream server that answers nothing to a message of the warm-up, and
// the rest right, is a server that answers wrong: the message skipped
// counts in WarmupWrong, said so, and the run is not all right, with
// either driver. Its later replies, taken for the messages they answer
// (see skippedTo), are right. Counted lost in the warm-up, it left the
// run all right, where before the replies after it were wrong.
func TestWarmupSkippedIsWrong(t *testing.T) {
	eachDriver(t, func(t *testing.T, _ bool) {
		var rep *Report
		for try := range 5 {
			var firstSeen, firstMeasured atomic.Bool
			sentNoted = func(_ *run, _ int64, measured bool) {
				if firstSeen.CompareAndSwap(false, true) {
					firstMeasured.Store(measured)
				}
			}
			var skipped atomic.Bool
			addr := shouttest.StreamServer(t, func(c net.Conn) {
				c.SetDeadline(time.Now().Add(time.Minute))
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadBytes('\n')
					if err != nil {
						return
					}
					if skipped.CompareAndSwap(false, true) {
						continue // the first message: no reply
					}
					if _, err := c.Write(bytes.ToUpper(line)); err != nil {
						return
					}
				}
			})
			cfg := Config{Endpoint: endpoint.Endpoint{Network: "tcp", Address: addr},
				Conns: 1, Depth: 2, Size: 64, Text: "ascii", Mode: "ascii",
				Warmup: 300 * time.Millisecond, Duration: time.Second, Timeout: 2 * time.Second, patient: true}
			var err error
			rep, err = Run(context.Background(), cfg)
			sentNoted = nil
			if err != nil {
				t.Fatal(err)
			}
			if !firstMeasured.Load() && rep.Messages > 0 {
				break
			}
			t.Logf("run %d of at most 5: the first message measured %v (a stall as long as the warm-up), %d replies measured", try+1, firstMeasured.Load(), rep.Messages)
		}
		if rep.WarmupWrong != 1 || rep.FirstWarmupWrong != errWarmSkipped.Error() {
			t.Errorf("%d wrong in the warm-up, the first %q; want 1, %q", rep.WarmupWrong, rep.FirstWarmupWrong, errWarmSkipped)
		}
		if rep.Mismatches != 0 || rep.Lost != 0 || rep.Skipped != 0 || rep.WarmupLost != 0 || rep.Errors != 0 {
			t.Errorf("measured: %d wrong, %d lost (%d skipped), %d errors; %d lost in the warm-up; want none", rep.Mismatches, rep.Lost, rep.Skipped, rep.Errors, rep.WarmupLost)
		}
		if rep.OK() || !strings.Contains(rep.verdict(), "1 wrong in the warm-up") {
			t.Errorf("OK %v, verdict %q; want not all right, for 1 wrong in the warm-up", rep.OK(), rep.verdict())
		}
	})
}
