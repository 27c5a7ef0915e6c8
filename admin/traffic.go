package admin

import (
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
)

// What traffic counts for each transport.
const (
	msgsIn = iota
	bytesIn
	msgsOut
	bytesOut
	numTraffic
)

// stripes is how many cache lines each transport's traffic counts are
// spread over. Every read, reply and datagram adds to them, from every
// CPU at once: on one shared line, the adds would queue for it.
const (
	stripeBits = 5
	stripes    = 1 << stripeBits
)

// stripe is one cache line's worth of counts.
type stripe struct {
	n [numTraffic]atomic.Uint64
	_ [64 - numTraffic*8]byte
}

// traffic is the messages and bytes in and out of each transport, and
// the datagrams dropped, a prometheus.Collector that adds the stripes up
// at each scrape.
type traffic struct {
	lines [numTransports][stripes]stripe
	descs [numTraffic]*prometheus.Desc
	// answered is msgsOut of udp again, under the name the datagram
	// metrics share.
	answered *prometheus.Desc

	dropped     reasonCounts // datagrams, by server.Reason
	droppedDesc *prometheus.Desc

	created time.Time
}

var _ prometheus.Collector = (*traffic)(nil)

func newTraffic() *traffic {
	t := &traffic{dropped: newReasonCounts(), created: time.Now()}
	t.descs[msgsIn] = prometheus.NewDesc("shout_received_messages_total",
		"Messages received, by transport: for a stream, each read the server handles (streams are not framed: a read is whatever arrived, newlines or not); for udp, each datagram, answered or not.",
		[]string{"transport"}, nil)
	t.descs[bytesIn] = prometheus.NewDesc("shout_received_bytes_total", "Bytes received from clients, by transport.", []string{"transport"}, nil)
	t.descs[msgsOut] = prometheus.NewDesc("shout_sent_messages_total",
		"Replies sent whole, by transport: for a stream, one for each read handled (empty if the read ended inside a character; one more for a character held back at the end of input); for udp, each datagram answered.",
		[]string{"transport"}, nil)
	t.descs[bytesOut] = prometheus.NewDesc("shout_sent_bytes_total", "Bytes sent to clients in replies, by transport.", []string{"transport"}, nil)
	t.answered = prometheus.NewDesc("shout_datagrams_answered_total", "Datagrams answered with their reply.", nil, nil)
	t.droppedDesc = prometheus.NewDesc("shout_datagrams_dropped_total",
		"Datagrams not answered, by why: own_address, reflector_port and loop (the reply would start a loop), over_budget (the source's --source-rate), reply_too_large, send_failed, shutdown (the stop closed the socket before the reply was sent).",
		[]string{"reason"}, nil)
	return t
}

// line is the stripe of transport tr that the connection or datagram
// worker whose event p is counts on: p is its own for as long as it
// lasts, so one connection's counts stay on one line, and different
// ones' mostly on different lines.
func (t *traffic) line(tr transport, p unsafe.Pointer) *stripe {
	h := uint64(uintptr(p)) * 0x9e3779b97f4a7c15 // Fibonacci hashing
	return &t.lines[tr][h>>(64-stripeBits)]
}

func (t *traffic) sum(tr transport, k int) float64 {
	var n uint64
	for i := range t.lines[tr] {
		n += t.lines[tr][i].n[k].Load()
	}
	return float64(n)
}

// Describe sends the descriptions of the traffic metrics.
func (t *traffic) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range t.descs {
		ch <- d
	}
	ch <- t.answered
	ch <- t.droppedDesc
}

// Collect sends each transport's counts, added up. Each is read after
// what comes later in a message's life (a datagram is dropped, or a reply
// sent, after it is received; the two are counted on one stripe), so that
// no scrape has more datagrams answered and dropped than received; and
// answered is sent_messages{transport="udp"} as read once.
func (t *traffic) Collect(ch chan<- prometheus.Metric) {
	t.dropped.collect(ch, t.droppedDesc, t.created, dropReasons)
	var n [numTransports][numTraffic]float64
	for _, k := range [numTraffic]int{msgsOut, bytesOut, msgsIn, bytesIn} {
		for tr := range numTransports {
			n[tr][k] = t.sum(tr, k)
		}
	}
	for tr := range numTransports {
		for k, d := range t.descs {
			ch <- counter(d, n[tr][k], t.created, transportNames[tr])
		}
	}
	ch <- counter(t.answered, n[udp][msgsOut], t.created)
}
