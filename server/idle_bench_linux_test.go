package server_test

import (
	"log/slog"
	"net/netip"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"shout/internal/shouttest"
	"shout/server"
)

// BenchmarkIdleHeap is the live heap each idle connection holds
// (heap-B/conn, after a collection): most of what the peers' -idle
// workload reads of a server's RSS, issue 12's target ≤ 0.5 KB a
// connection at 15,000 (BENCHMARKS.md, stop 58). Each of 2,000 clients
// connects, is answered once, and idles; the clients use system calls
// alone and hold no heap, so the figure is the server's. "log" logs
// the open and close lines as shout serve does by default; "quiet" has
// none. Like the package's tests, it runs once for each driver
// (TestMain); the goroutine driver's stacks are not in the heap.
func BenchmarkIdleHeap(b *testing.B) {
	for _, logging := range []string{"quiet", "log"} {
		b.Run(logging, func(b *testing.B) {
			log := slog.New(slog.DiscardHandler)
			if logging == "log" {
				log = slog.New(slog.NewTextHandler(nowhere{}, nil))
			}
			idleHeap(b, func() (*unix.SockaddrInet4, func() error) {
				srv := &server.Server{Logger: log}
				addr := netip.MustParseAddrPort(shouttest.Start(b, srv))
				return &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()}, srv.Close
			})
		})
	}
}

// idleHeap starts a server for each measurement, as a driver keeps a
// closed connection's memory for its next one, and closes it before the
// next, whose heap its closing connections would otherwise shrink.
func idleHeap(b *testing.B, start func() (*unix.SockaddrInet4, func() error)) {
	const n = 2000
	fds := make([]int, 0, n)
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	msg, got := []byte("hello egon\n"), make([]byte, 11)
	for b.Loop() {
		sa, stop := start()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range n {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			fds = append(fds, fd)
			if err := unix.Connect(fd, sa); err != nil {
				b.Fatal(err)
			}
			if _, err := unix.Write(fd, msg); err != nil {
				b.Fatal(err)
			}
			for k := 0; k < len(got); {
				m, err := unix.Read(fd, got[k:])
				if err != nil || m == 0 {
					b.Fatalf("reply: %d bytes, %v", m, err)
				}
				k += m
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric((float64(after.HeapAlloc)-float64(before.HeapAlloc))/n, "heap-B/conn")
		if err := stop(); err != nil {
			b.Fatal(err)
		}
		for _, fd := range fds {
			unix.Close(fd)
		}
		fds = fds[:0]
	}
}
