package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"shout/internal/asynclog"
	"shout/internal/fastlog"
	"shout/internal/shouttest"
	"shout/server"
)

// BenchmarkChurn is a connection's whole life through the server, as the
// peers' churn workload makes it: connect, send 64 bytes, read the reply,
// close with a reset. The clients use system calls alone and allocate
// nothing, so allocs/op and B/op are the server's per connection. ns/op
// is per connection with four clients at a time, client and server
// together. "log" is shout serve's default logging (the open and close
// lines through asynclog's buffer, to io.Discard); "quiet" has no lines.
// Like the package's tests, it runs once for each driver (TestMain).
func BenchmarkChurn(b *testing.B) {
	for _, logging := range []string{"quiet", "log"} {
		b.Run(logging, func(b *testing.B) {
			log := slog.New(slog.DiscardHandler)
			if logging == "log" {
				h := asynclog.New(nowhere{}, 0, func(w io.Writer) slog.Handler { return fastlog.NewTextHandler(w, nil) })
				b.Cleanup(func() { h.Close(context.Background()) })
				log = slog.New(h)
			}
			addr := shouttest.Start(b, &server.Server{Logger: log})
			churn(b, netip.MustParseAddrPort(addr))
		})
	}
}

// nowhere is io.Discard, not taken for it: asynclog may skip formatting
// for io.Discard itself, and the lines' cost is what is measured.
type nowhere struct{}

func (nowhere) Write(p []byte) (int, error) { return len(p), nil }

func churn(b *testing.B, addr netip.AddrPort) {
	msg := []byte(strings.Repeat("hello egon ", 6)[:63] + "\n")
	want := []byte(strings.ToUpper(string(msg)))
	b.ReportAllocs()
	b.SetParallelism(2) // two clients a processor: four on two cores
	b.RunParallel(func(pb *testing.PB) {
		sa := &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()}
		reset := &unix.Linger{Onoff: 1, Linger: 0}
		got := make([]byte, len(want))
		for pb.Next() {
			if err := churnOnce(sa, reset, msg, got); err != nil {
				b.Error(err)
				return
			}
			if string(got) != string(want) {
				b.Errorf("reply %q, want %q", got, want)
				return
			}
		}
	})
}

// churnOnce makes one connection to sa, sends msg, reads len(got) bytes
// into got, and closes with a reset.
func churnOnce(sa *unix.SockaddrInet4, reset *unix.Linger, msg, got []byte) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, sa); err != nil {
		return err
	}
	if _, err := unix.Write(fd, msg); err != nil {
		return err
	}
	for n := 0; n < len(got); {
		m, err := unix.Read(fd, got[n:])
		if err != nil {
			return err
		}
		if m == 0 {
			return unix.ECONNRESET // closed before the whole reply
		}
		n += m
	}
	return unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, reset)
}
