package main

import (
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Clients queued past the open-file limit when SIGTERM comes are all
// answered, by each engine: the stop accepts them as the connections it
// closes free their descriptors, and logs none left. Under ulimit -n
// 200, with 400 clients that had each sent a line, the stop gave up at
// the first accept that failed: about 210 read a reset, and the log said
// nothing of them.
func TestServeStopAnswersClientsQueuedPastFileLimit(t *testing.T) {
	for _, engine := range []string{"loop", "goroutine"} {
		t.Run(engine, func(t *testing.T) {
			const limit, n = 64, 100
			ulimit := []string{"sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$@"`, limit), "sh"}
			p := startUnder(t, []string{"GOMAXPROCS=2"}, false, ulimit, nil, []string{"--engine", engine, "tcp://127.0.0.1:0"})
			clients := make([]net.Conn, n)
			for i := range clients {
				c, err := net.DialTimeout("tcp", p.addr("tcp"), bound)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if _, err := fmt.Fprintf(c, "ping %d\n", i); err != nil {
					t.Fatal(err)
				}
				clients[i] = c
			}
			// The clients past the limit wait in the listener's queue; the
			// connections served hold their descriptors until the stop.
			p.waitLog("accept failed; retrying")
			p.cmd.Process.Signal(syscall.SIGTERM)
			for i, c := range clients {
				c.SetReadDeadline(time.Now().Add(bound))
				got, err := io.ReadAll(c)
				if want := fmt.Sprintf("PING %d\n", i); err != nil || string(got) != want {
					t.Errorf("client %d: got %q, %v; want %q, then end of file", i, got, err, want)
				}
				c.Close() // shout's linger ends: a descriptor for the next
			}
			if code := p.wait(); code != 0 {
				t.Errorf("exit status %d:\n%s", code, p.logText())
			}
			if log := p.logText(); strings.Contains(log, "left clients queued") {
				t.Errorf("clients said to be left queued:\n%s", log)
			}
		})
	}
}
