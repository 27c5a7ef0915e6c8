package admin

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"shout/server"
)

// conns is the stream connections accepted, open and closed, a
// prometheus.Collector that reads them in the order opposite to a
// connection's life (closed, then open, then accepted; a connection is
// accepted, then opened, then no longer open, then closed) so that each
// scrape has accepted ≥ open + closed, however fast connections come and
// go. As a metric of its own each was read at a moment of its own: the
// registry gathers collectors at once.
type conns struct {
	accepted [numStream]atomic.Uint64
	open     [numStream]atomic.Int64
	closed   [numStream]reasonCounts

	acceptedDesc, openDesc, closedDesc *prometheus.Desc
	created                            time.Time
}

var _ prometheus.Collector = (*conns)(nil)

func newConns() *conns {
	c := &conns{
		created: time.Now(),
		acceptedDesc: prometheus.NewDesc("shout_connections_accepted_total",
			"Stream connections accepted and served (not those rejected, nor those whose handshake failed).", []string{"transport"}, nil),
		openDesc: prometheus.NewDesc("shout_connections_open", "Stream connections open now.", []string{"transport"}, nil),
		closedDesc: prometheus.NewDesc("shout_connections_closed_total",
			"Stream connections that were served and are closed, by why: eof (the client was done, and answered), reset (by the client, while a reply was written too; on Linux also after its end of file, its replies still queued), idle_timeout, write_timeout, broken_pipe (a Unix socket's client closed while a reply was written; over TCP, off Linux, a write's broken pipe as said), shutdown, error.",
			[]string{"transport", "reason"}, nil),
	}
	for t := range numStream {
		c.closed[t] = newReasonCounts()
	}
	return c
}

func (c *conns) opened(t transport) {
	c.accepted[t].Add(1)
	c.open[t].Add(1)
}

func (c *conns) closedFor(t transport, r server.Reason) {
	c.open[t].Add(-1)
	c.closed[t].add(r)
}

// Describe sends the descriptions of the connection metrics.
func (c *conns) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.acceptedDesc
	ch <- c.openDesc
	ch <- c.closedDesc
}

// Collect sends the counts of each stream transport: closed first, then
// open, then accepted.
func (c *conns) Collect(ch chan<- prometheus.Metric) {
	for t := range numStream {
		c.closed[t].collect(ch, c.closedDesc, c.created, closeReasons, transportNames[t])
	}
	var open [numStream]float64
	for t := range numStream {
		open[t] = float64(c.open[t].Load())
	}
	for t := range numStream {
		ch <- prometheus.MustNewConstMetric(c.openDesc, prometheus.GaugeValue, open[t], transportNames[t])
		ch <- counter(c.acceptedDesc, float64(c.accepted[t].Load()), c.created, transportNames[t])
	}
}

// reasonCounts counts events by server.Reason, with one more count, the
// last, for a reason past reasonLabels ("unknown").
type reasonCounts []atomic.Uint64

func newReasonCounts() reasonCounts { return make(reasonCounts, len(reasonLabels)+1) }

func (rc reasonCounts) add(r server.Reason) { rc[min(int(r), len(rc)-1)].Add(1) }

// collect sends a series for each reason of shown, and for any other that
// has happened (one that should not), labelled with labels and the
// reason's. Every count is read before any is sent.
func (rc reasonCounts) collect(ch chan<- prometheus.Metric, d *prometheus.Desc, created time.Time, shown []server.Reason, labels ...string) {
	n := make([]uint64, len(rc))
	for i := range rc {
		n[i] = rc[i].Load()
	}
	show := make([]bool, len(rc))
	for _, r := range shown {
		show[r] = true
	}
	for i, v := range n {
		if !show[i] && v == 0 {
			continue
		}
		name := "unknown"
		if i < len(reasonLabels) {
			name = reasonLabels[i]
		}
		ch <- counter(d, float64(v), created, append(labels[:len(labels):len(labels)], name)...)
	}
}

// counter is a counter's value as collected, created when the Metrics
// were: a scraper that takes created timestamps (Prometheus's protobuf
// format carries them) counts it from 0 then, as it did each counter's
// made by prometheus.NewCounterVec.
func counter(d *prometheus.Desc, v float64, created time.Time, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetricWithCreatedTimestamp(d, prometheus.CounterValue, v, created, labels...)
}
