package admin_test

import (
	"fmt"
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
				shouttest.TCPRoundTrips(b, shouttest.Start(b, &server.Server{Observer: o.new()}), size)
			})
		}
	}
}

func BenchmarkUDP(b *testing.B) {
	for _, o := range observers {
		b.Run(o.name, func(b *testing.B) {
			shouttest.UDPRoundTrips(b, shouttest.Start(b, &server.Server{Observer: o.new()}))
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
