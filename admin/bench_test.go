package admin_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"

	"shout/admin"
	"shout/internal/shouttest"
	"shout/server"
)

// observers are the two ways shout serve runs: the log alone, and the log
// with the metrics of --admin. The benchmarks below are server's
// BenchmarkTCP and BenchmarkUDP under each, so that what counting costs
// on the hot path shows as the difference.
var observers = []struct {
	name string
	new  func() server.Observer
}{
	{"log", func() server.Observer { return server.NewLogObserver(slog.New(slog.DiscardHandler)) }},
	{"log+metrics", func() server.Observer {
		return server.Observers(server.NewLogObserver(slog.New(slog.DiscardHandler)), admin.NewMetrics(admin.Config{}))
	}},
}

func BenchmarkTCP(b *testing.B) {
	for _, o := range observers {
		for _, size := range []int{64, 1024} {
			b.Run(fmt.Sprintf("%s/%dB", o.name, size), func(b *testing.B) {
				addr := shouttest.Start(b, &server.Server{Observer: o.new()})
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				msg := bytes.Repeat([]byte("hello egon 哈哈 straße\n"), size/26+1)[:size]
				got := make([]byte, 2*size)
				want := len(bytes.ReplaceAll(msg, []byte("ß"), []byte("SS")))
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := c.Write(msg); err != nil {
						b.Fatal(err)
					}
					if _, err := io.ReadFull(c, got[:want]); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkUDP(b *testing.B) {
	for _, o := range observers {
		b.Run(o.name, func(b *testing.B) {
			addr := shouttest.Start(b, &server.Server{Observer: o.new()})
			c, err := net.Dial("udp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			msg := []byte("hello egon 哈哈哈 datagram of sixty-four bytes, more or less....")
			got := make([]byte, 1024)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := c.Read(got); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkObserverMessage is what observing one stream message costs,
// its read and its reply, without the network around it: the round trips
// above take tens of microseconds, and on a shared machine vary more from
// run to run than counting could add. Each goroutine is a connection of
// its own, all counting at once.
func BenchmarkObserverMessage(b *testing.B) {
	p := make([]byte, 64)
	for _, o := range observers {
		b.Run(o.name, func(b *testing.B) {
			obs := o.new()
			r, _ := obs.(server.ReplyObserver)
			b.RunParallel(func(pb *testing.PB) {
				c := &server.ConnInfo{Remote: &net.TCPAddr{}, Local: &net.TCPAddr{}}
				for pb.Next() {
					obs.ConnRead(c, p)
					if r != nil {
						r.ConnReply(c, len(p), nil)
					}
				}
			})
		})
	}
}

// BenchmarkObserverDatagram is what observing one datagram answered
// costs, each goroutine a datagram worker of its own.
func BenchmarkObserverDatagram(b *testing.B) {
	for _, o := range observers {
		b.Run(o.name, func(b *testing.B) {
			obs := o.new()
			b.RunParallel(func(pb *testing.PB) {
				d := &server.DatagramInfo{Data: make([]byte, 64), BytesOut: 64}
				for pb.Next() {
					obs.Datagram(d)
				}
			})
		})
	}
}
