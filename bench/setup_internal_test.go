package bench

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"shout/endpoint"
	"shout/internal/shouttest"
	"shout/server"
)

// With no warm-up the window, and an open loop's schedules from its
// start, begin once bench has set its drivers up, as the first message
// can go: an event loop takes each connection's socket over first, a
// while with thousands. Begun before, bench's own start-up was measured
// as the server's: what fell due meanwhile went as the loops began,
// late, timed from when it fell due (5,000 connections, --rate 20000
// --warmup 0: a p50 of 225 ms, the server's 0.2 ms), and a closed loop's
// throughput was over a window with the set-up in it, sending nothing.
func TestWindowBeginsOnceSetUp(t *testing.T) {
	addr := shouttest.Start(t, &server.Server{Logger: slog.New(slog.DiscardHandler)})
	udpAddr := shouttest.PacketServer(t, func(_ int, b []byte) [][]byte { return [][]byte{b} })
	for _, tc := range []struct {
		name, network, addr string
		rate                float64
	}{
		{"closed loop", "tcp", addr, 0},
		{"open loop", "tcp", addr, 1000},
		{"udp", "udp", udpAddr, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ran *run
			var setUp int64
			driversSetUp = func(r *run) {
				time.Sleep(time.Millisecond) // (a slow set-up: thousands of sockets)
				ran, setUp = r, r.now()
			}
			defer func() { driversSetUp = nil }()
			cfg := Config{Endpoint: endpoint.Endpoint{Network: tc.network, Address: tc.addr},
				Conns: 2, Depth: 1, Rate: tc.rate, Size: 32, Text: "ascii",
				Warmup: -1, Duration: 50 * time.Millisecond, Timeout: 2 * time.Second}
			if _, err := Run(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			if ran == nil {
				t.Fatal("the drivers were not set up")
			}
			if from := ran.windowFrom.Load(); from < setUp {
				t.Errorf("the window began at %v, before the drivers were set up at %v", time.Duration(from), time.Duration(setUp))
			}
			if ran.scheduleFrom < setUp {
				t.Errorf("the schedules began at %v, before the drivers were set up at %v", time.Duration(ran.scheduleFrom), time.Duration(setUp))
			}
		})
	}
}
