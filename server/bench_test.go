package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"testing"
	"time"

	"shout/internal/asynclog"
	"shout/internal/fastlog"
	"shout/internal/shouttest"
	"shout/server"
)

// BenchmarkTCP measures one connection's round trip through the server,
// in-process, with allocations per message (the client side allocates
// nothing, so allocs/op is the server's).
func BenchmarkTCP(b *testing.B) {
	for _, size := range []int{64, 1024, 16 << 10} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			shouttest.TCPRoundTrips(b, shouttest.Start(b, &server.Server{Logger: slog.New(slog.DiscardHandler)}), size)
		})
	}
}

// BenchmarkTCPTimeouts is BenchmarkTCP's 64 B round trip with shout
// serve's idle and write timeouts on: the goroutine driver notes the
// time of each read and write.
func BenchmarkTCPTimeouts(b *testing.B) {
	srv := &server.Server{Logger: slog.New(slog.DiscardHandler), IdleTimeout: 5 * time.Minute, WriteTimeout: 30 * time.Second}
	shouttest.TCPRoundTrips(b, shouttest.Start(b, srv), 64)
}

func BenchmarkUDP(b *testing.B) {
	shouttest.UDPRoundTrips(b, shouttest.Start(b, &server.Server{Logger: slog.New(slog.DiscardHandler)}))
}

// BenchmarkUDPWildcard is BenchmarkUDP with the server on 0.0.0.0, where
// (on Linux) it reads each datagram's destination and replies from it.
func BenchmarkUDPWildcard(b *testing.B) {
	pc, err := net.ListenPacket("udp", "0.0.0.0:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &server.Server{Logger: slog.New(slog.DiscardHandler)}
	done := make(chan error, 1)
	go func() { done <- srv.ServePacket(pc) }()
	defer func() { srv.Close(); <-done }()
	shouttest.UDPRoundTrips(b, net.JoinHostPort("127.0.0.1", fmt.Sprint(pc.LocalAddr().(*net.UDPAddr).Port)))
}

// BenchmarkUDPInFlight keeps 8 datagrams of 64 bytes in flight on each
// of 16 sockets, as the UDP workload of BENCHMARKS.md's comparison with
// other servers does, so that the server has several to read at a time
// (on Linux, in one recvmmsg). ns/op is per datagram, client and server
// together; the clients allocate nothing.
func BenchmarkUDPInFlight(b *testing.B) {
	const depth = 8
	addr := shouttest.Start(b, &server.Server{Logger: slog.New(slog.DiscardHandler)})
	msg := []byte("hello egon 哈哈哈 datagram of sixty-four bytes, more or less....")
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("udp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		got := make([]byte, 1024)
		c.SetReadDeadline(time.Now().Add(time.Minute)) // a lost datagram ends the run
		inFlight := 0
		for pb.Next() {
			if inFlight == depth {
				if _, err := c.Read(got); err != nil {
					b.Error(err)
					return
				}
				inFlight--
			}
			if _, err := c.Write(msg); err != nil {
				b.Error(err)
				return
			}
			inFlight++
		}
		for ; inFlight > 0; inFlight-- {
			if _, err := c.Read(got); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkIdleConns reports the goroutine stack each idle connection
// holds, with the timeouts shout serve sets by default: the stack a
// connection grows while answering stays grown while it idles.
func BenchmarkIdleConns(b *testing.B) {
	addr := shouttest.Start(b, &server.Server{
		Logger:      slog.New(slog.DiscardHandler),
		IdleTimeout: time.Minute, WriteTimeout: time.Minute,
	})
	const n = 1000
	msg, got := []byte("hello egon\n"), make([]byte, 11)
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		conns := make([]net.Conn, 0, n)
		for range n {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
			c.Write(msg)
			if _, err := io.ReadFull(c, got); err != nil {
				b.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.StackInuse-before.StackInuse)/n, "stack-B/conn")
		for _, c := range conns {
			c.Close()
		}
	}
}

// BenchmarkLogObserverConn is the log observer's cost for one connection
// (its open and close lines, formatted as shout serve formats them): what
// every connection of a churning client pays with default logging. "sync"
// formats on the caller; "async" goes through asynclog's buffer as shout
// serve does, flushing it after every 1,024 connections so that it never
// overflows, and counts the writer goroutine's work only when it shares
// the caller's processor: run it with -cpu 1.
//
// "slog" formats with slog.TextHandler, "textlog" with the handler shout
// serve logs text through, which writes the same bytes; "json/slog" with
// slog.JSONHandler, "json/fast" with the handler shout serve --log-format
// json logs through, the same bytes.
func BenchmarkLogObserverConn(b *testing.B) {
	type format struct {
		name string
		h    func(w io.Writer) slog.Handler
	}
	run := func(b *testing.B, formats []format) {
		for _, f := range formats {
			b.Run(f.name, func(b *testing.B) { logObserverConn(b, f.h) })
		}
	}
	run(b, []format{
		{"slog", func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) }},
		{"textlog", func(w io.Writer) slog.Handler { return fastlog.NewTextHandler(w, nil) }},
	})
	b.Run("json", func(b *testing.B) {
		run(b, []format{
			{"slog", func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) }},
			{"fast", func(w io.Writer) slog.Handler { return fastlog.NewJSONHandler(w, nil) }},
		})
	})
}

func logObserverConn(b *testing.B, text func(w io.Writer) slog.Handler) {
	for _, bc := range []struct {
		name string
		h    func() (h slog.Handler, wait func())
	}{
		{"sync", func() (slog.Handler, func()) { return text(io.Discard), func() {} }},
		{"async", func() (slog.Handler, func()) {
			h := asynclog.New(io.Discard, 0, text)
			b.Cleanup(func() { h.Close(context.Background()) })
			return h, func() {
				h.Flush(context.Background())
				if n := h.Dropped(); n > 0 {
					b.Fatalf("%d log records dropped: the benchmark outran the writer", n)
				}
			}
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h, wait := bc.h()
			obs := server.NewLogObserver(slog.New(h))
			info := &server.ConnInfo{
				Remote:  &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40312},
				Local:   &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080},
				Start:   time.Now(),
				BytesIn: 64, BytesOut: 64,
				Reason: server.ReasonEOF,
			}
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				// Each line at the time it is written, as the server's
				// are: a time a handler formats once is not every line's.
				info.Start = time.Now()
				info.End = info.Start.Add(137 * time.Microsecond)
				obs.ConnOpen(info)
				obs.ConnClose(info)
				if n++; n%1024 == 0 {
					wait()
				}
			}
			wait() // every line written: the writer's share is in the time
		})
	}
}
