package bench

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"shout/endpoint"
	"shout/internal/shouttest"
)

// crossingServer answers each line it reads, upper-cased, on the other
// of the first two connections it accepts (a proxy that crosses its
// streams: each connection gets the other's replies). Once a connection
// has been written enough replies, done closes.
func crossingServer(t *testing.T, enough int) (addr string, done <-chan struct{}) {
	ch := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	var conns []net.Conn
	paired := make(chan struct{})
	addr = shouttest.StreamServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(time.Minute))
		mu.Lock()
		me := len(conns)
		conns = append(conns, c)
		if len(conns) == 2 {
			close(paired)
		}
		mu.Unlock()
		if me > 1 {
			return
		}
		select {
		case <-paired:
		case <-time.After(time.Minute): // (bench dialled one alone)
			return
		}
		mu.Lock()
		other := conns[1-me]
		mu.Unlock()
		br := bufio.NewReader(c)
		for n := 1; ; n++ {
			line, err := br.ReadBytes('\n')
			if err != nil {
				return
			}
			if _, err := other.Write(bytes.ToUpper(line)); err != nil {
				return
			}
			if n == enough {
				once.Do(func() { close(ch) })
			}
		}
	})
	return addr, ch
}

// A server that crosses two connections' replies answers wrong, every
// reply: each is another connection's, not a message passed over on its
// own. Connection 1's k-th message was connection 0's (k+1)-th, so
// connection 0, given connection 1's replies, took them for replies to
// its own later messages: "1 lost (1 skipped: the server answered
// nothing to it, and answered a later message on its connection)", every
// later reply right, and the crossing seen on connection 1 alone.
func TestCrossedRepliesAreWrong(t *testing.T) {
	for _, tc := range []struct {
		name string
		rate float64
	}{{"closed loop", 0}, {"open loop", 2000}} {
		t.Run(tc.name, func(t *testing.T) {
			eachDriver(t, func(t *testing.T, _ bool) {
				addr, done := crossingServer(t, 60)
				cfg := Config{Endpoint: endpoint.Endpoint{Network: "tcp", Address: addr},
					Conns: 2, Depth: 4, Rate: tc.rate, Size: 64, Text: "ascii", Mode: "ascii",
					Warmup: -1, Duration: time.Minute, Timeout: 2 * time.Second}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				go func() {
					select {
					case <-done:
						cancel()
					case <-ctx.Done():
					}
				}()
				rep, err := Run(ctx, cfg)
				if err != nil {
					t.Fatal(err)
				}
				var text strings.Builder
				rep.WriteText(&text)
				if rep.Skipped != 0 || rep.Mismatches < 100 || rep.OK() {
					t.Errorf("%d skipped, %d wrong; want none skipped, at least 100 wrong (60 a connection):\n%s",
						rep.Skipped, rep.Mismatches, text.String())
				}
				if strings.Contains(text.String(), "skipped") {
					t.Errorf("the report says replies were skipped:\n%s", text.String())
				}
			})
		})
	}
}
