package admin_test

import (
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"shout/admin"
	"shout/internal/promtest"
	"shout/server"
)

// Each scrape is consistent, however fast connections open and close and
// datagrams come: accepted ≥ open + closed, received datagrams ≥
// answered + dropped, and sent_messages{transport="udp"} is
// datagrams_answered. Each was read at its own moment (each metric
// family was its own collector, and the registry gathers collectors at
// once), so a scrape in churn could count more connections closed than
// were ever accepted, and more datagrams answered than received.
func TestScrapeConsistentUnderChurn(t *testing.T) {
	m := admin.NewMetrics(admin.Config{})
	tcp := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	// The workers churn until the scrapes are done (events only bounds
	// them): with 20,000 events each they were done before most scrapes,
	// which then saw still counts, and the connections' half of the test
	// failed, with each family read at its own moment, about once in a
	// hundred runs.
	const workers, events, scrapes = 4, 1 << 24, 500
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			d := &server.DatagramInfo{Data: []byte("hi"), BytesOut: 2} // a worker's own, as the server's
			for i := range events {
				select {
				case <-stop:
					return
				default:
				}
				if i%64 == 0 {
					runtime.Gosched() // (the scrapes, on a machine of few CPUs, wait less)
				}
				c := &server.ConnInfo{Local: tcp}
				m.ConnOpen(c)
				m.ConnRead(c, []byte("x"))
				m.ConnReply(c, 1, nil)
				c.Reason = server.ReasonEOF
				if i%2 == 0 {
					c.Reason = server.ReasonReset
				}
				m.ConnClose(c)
				d.Reason = server.ReasonNone
				if (i+w)%3 == 0 {
					d.Reason = server.ReasonBudget
				}
				m.Datagram(d)
			}
		})
	}
	defer wg.Wait()
	defer close(stop)
	for range scrapes {
		fams, err := m.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		s := &promtest.Scrape{Families: map[string]*dto.MetricFamily{}}
		for _, f := range fams {
			s.Families[f.GetName()] = f
		}
		v := func(name string, labels ...string) float64 {
			x, ok := s.Value(name, labels...)
			if !ok {
				t.Fatalf("no %s%v", name, labels)
			}
			return x
		}
		accepted, open := v("shout_connections_accepted_total", "transport", "tcp"), v("shout_connections_open", "transport", "tcp")
		closed := v("shout_connections_closed_total", "transport", "tcp", "reason", "eof") +
			v("shout_connections_closed_total", "transport", "tcp", "reason", "reset")
		if accepted < open+closed {
			t.Fatalf("a scrape: %v accepted, %v open and %v closed", accepted, open, closed)
		}
		received, sent := v("shout_received_messages_total", "transport", "udp"), v("shout_sent_messages_total", "transport", "udp")
		answered, dropped := v("shout_datagrams_answered_total"), v("shout_datagrams_dropped_total", "reason", "over_budget")
		if received < answered+dropped || sent != answered {
			t.Fatalf("a scrape: %v datagrams received, %v answered, %v dropped, %v replies sent", received, answered, dropped, sent)
		}
	}
}

// Every shout counter carries the time it was created (in Prometheus's
// protobuf format), as those of client_golang's own counters do, so that
// a scraper that takes it counts from 0 then rather than from its first
// scrape. Those collected at each scrape (bytes and messages) had none.
func TestCountersCreated(t *testing.T) {
	m := admin.NewMetrics(admin.Config{})
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range fams {
		if f.GetType() != dto.MetricType_COUNTER || !strings.HasPrefix(f.GetName(), "shout_") || f.GetName() == "shout_log_records_dropped_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			n++
			if s.GetCounter().GetCreatedTimestamp() == nil {
				t.Errorf("%s%v: no created timestamp", f.GetName(), s.GetLabel())
			}
		}
	}
	if n == 0 {
		t.Fatal("no shout counters")
	}
}
