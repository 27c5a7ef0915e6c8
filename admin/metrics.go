package admin

import (
	"errors"
	"net"
	"runtime"
	"strings"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"shout/server"
)

// Config is what NewMetrics needs beyond the server's events. Its zero
// value works.
type Config struct {
	// Version and Revision label shout_build_info; empty means "unknown".
	Version, Revision string

	// LogDropped, if not nil, says how many log records have been dropped
	// so far (asynclog's Handler.Dropped); shout_log_records_dropped_total
	// asks it at each scrape. Nil leaves that metric at 0.
	LogDropped func() int64
}

// A transport is what a series is labelled with: the stream transports,
// then the datagram one.
type transport uint8

const (
	tcp transport = iota
	unix
	udp
	numTransports
	numStream = udp // tcp and unix carry connections
)

var transportNames = [numTransports]string{tcp: "tcp", unix: "unix", udp: "udp"}

// streamTransport is the transport of a stream connection with local
// address a: a wrapper (TLS, PROXY) keeps the TCP address.
func streamTransport(a net.Addr) transport {
	if _, ok := a.(*net.UnixAddr); ok {
		return unix
	}
	return tcp
}

// Why a connection was rejected, by the error beside ReasonRejected.
const (
	rejectMaxConns = iota
	rejectMaxConnsPerIP
	numRejects
)

var rejectNames = [numRejects]string{"max_conns", "max_conns_per_ip"}

// The handshakes a WrapConn may fail, and one for an error that does not
// say which.
const (
	handshakeTLS = iota
	handshakeProxy
	handshakeUnknown
	numHandshakes
)

var handshakeNames = [numHandshakes]string{"tls", "proxy", "unknown"}

// reasonLabels is every server.Reason as a label value: "idle_timeout".
var reasonLabels = func() []string {
	var names []string
	for r := server.Reason(0); r.String() != "unknown"; r++ {
		names = append(names, strings.ReplaceAll(r.String(), " ", "_"))
	}
	return names
}()

// Reasons that close an opened connection, and that drop a datagram:
// their series exist from the start, at 0.
var (
	closeReasons = []server.Reason{server.ReasonEOF, server.ReasonReset, server.ReasonIdleTimeout,
		server.ReasonWriteTimeout, server.ReasonBrokenPipe, server.ReasonShutdown, server.ReasonError}
	dropReasons = []server.Reason{server.ReasonOwnAddress, server.ReasonReflectorPort, server.ReasonLoop,
		server.ReasonBudget, server.ReasonTooLarge, server.ReasonSendFailed, server.ReasonShutdown}
)

// Metrics counts what a server does, for Prometheus. It is a
// server.ReplyObserver: give it to a Server as its Observer, or as one of
// server.Observers. Its registry is its own, not the global one.
//
// A message is what the server answers as one: for a stream, one read
// (however the client framed it: the server does not look for newlines)
// and the reply to it; for UDP, one datagram and its reply.
type Metrics struct {
	reg *prometheus.Registry

	conns    *conns
	rejected [numStream][numRejects]prometheus.Counter

	handshakes   [numHandshakes]prometheus.Counter // nil where not made yet
	handshakeVec *prometheus.CounterVec

	traffic *traffic
}

var _ server.ReplyObserver = (*Metrics)(nil)

// NewMetrics returns a Metrics with every shout series at 0, and the Go
// runtime's and the process's collectors, in a registry of its own.
func NewMetrics(cfg Config) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	f := factory{m.reg}

	m.conns = newConns()
	m.reg.MustRegister(m.conns)
	rejected := f.counterVec("shout_connections_rejected_total",
		"Stream connections turned away as soon as accepted, by the limit they were over: max_conns or max_conns_per_ip.", "transport", "reason")
	m.handshakeVec = f.counterVec("shout_handshake_failures_total",
		"Stream connections closed because their handshake failed, by which: tls (on a tls:// listener), proxy (a PROXY protocol header missing, refused or malformed, with --proxy-protocol), unknown (a Go program's own WrapConn that failed without naming either; never from shout serve).", "reason")
	m.traffic = newTraffic()
	m.reg.MustRegister(m.traffic)

	for t := range numStream {
		for r := range numRejects {
			m.rejected[t][r] = rejected.WithLabelValues(transportNames[t], rejectNames[r])
		}
	}
	for _, h := range []int{handshakeTLS, handshakeProxy} { // unknown appears if it happens
		m.handshakes[h] = m.handshakeVec.WithLabelValues(handshakeNames[h])
	}

	logDropped := cfg.LogDropped
	if logDropped == nil {
		logDropped = func() int64 { return 0 }
	}
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "shout_log_records_dropped_total",
		Help: "Log lines dropped because stderr did not keep up (each is also counted in a \"log records dropped\" warning).",
	}, func() float64 { return float64(logDropped()) }))

	build := f.gaugeVec("shout_build_info", "Always 1: the version, VCS revision and Go version shout was built with.",
		"version", "revision", "goversion")
	build.WithLabelValues(orUnknown(cfg.Version), orUnknown(cfg.Revision), runtime.Version()).Set(1)

	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// Registry returns the registry that /metrics serves, for collectors of
// one's own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ConnOpen counts a connection accepted and open.
func (m *Metrics) ConnOpen(c *server.ConnInfo) {
	m.conns.opened(streamTransport(c.Local))
}

// ConnRead counts a message and its bytes in.
func (m *Metrics) ConnRead(c *server.ConnInfo, p []byte) {
	l := m.traffic.line(streamTransport(c.Local), unsafe.Pointer(c))
	l.n[msgsIn].Add(1)
	l.n[bytesIn].Add(uint64(len(p)))
}

// ConnReply counts a reply's bytes out, and the reply as a message if it
// was written whole.
func (m *Metrics) ConnReply(c *server.ConnInfo, n int, err error) {
	l := m.traffic.line(streamTransport(c.Local), unsafe.Pointer(c))
	if n > 0 {
		l.n[bytesOut].Add(uint64(n))
	}
	if err == nil {
		l.n[msgsOut].Add(1)
	}
}

// ConnClose counts a connection closed, rejected, or failed in its
// handshake.
func (m *Metrics) ConnClose(c *server.ConnInfo) {
	t := streamTransport(c.Local)
	switch c.Reason {
	case server.ReasonRejected:
		r := rejectMaxConns
		if errors.Is(c.Err, server.ErrMaxConnsPerIP) {
			r = rejectMaxConnsPerIP
		}
		m.rejected[t][r].Inc()
	case server.ReasonWrap, server.ReasonHandshake, server.ReasonProxyHeader:
		if errors.Is(c.Err, server.ErrServerClosed) {
			return // cut short by a stop: it did not fail, and never opened
		}
		h := handshakeOf(c.Reason)
		if m.handshakes[h] == nil {
			m.handshakeVec.WithLabelValues(handshakeNames[h]).Inc()
			return
		}
		m.handshakes[h].Inc()
	default:
		m.conns.closedFor(t, c.Reason)
	}
}

// handshakeOf is the shout_handshake_failures_total label of a
// connection that closed before it opened: a TLS handshake, a PROXY
// header, or a wrapper that did not say (server.WrapError says).
func handshakeOf(r server.Reason) int {
	switch r {
	case server.ReasonHandshake:
		return handshakeTLS
	case server.ReasonProxyHeader:
		return handshakeProxy
	}
	return handshakeUnknown
}

// Datagram counts a datagram in, and its reply or why it got none.
func (m *Metrics) Datagram(d *server.DatagramInfo) {
	// d is its worker's own while it is counted: an unbatched worker
	// has one, so counts on one line; a batching worker has one for
	// each slot of its batch, so its counts spread over several lines,
	// which other workers' may share (the sums stay right).
	l := m.traffic.line(udp, unsafe.Pointer(d))
	l.n[msgsIn].Add(1)
	l.n[bytesIn].Add(uint64(len(d.Data)))
	if d.Reason != server.ReasonNone {
		m.traffic.dropped.add(d.Reason)
		return
	}
	l.n[msgsOut].Add(1)
	l.n[bytesOut].Add(uint64(d.BytesOut))
}

// factory makes metrics registered in reg.
type factory struct{ reg *prometheus.Registry }

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(g)
	return g
}
