package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/HdrHistogram/hdrhistogram-go"

	"shout/client"
	"shout/endpoint"
	"shout/internal/escape"
	"shout/internal/named"
	"shout/internal/sockerr"
)

// Config is one load run. The zero value of each field but Endpoint
// means its default.
type Config struct {
	Endpoint endpoint.Endpoint
	// Conns is the number of connections (TCP, Unix) or sockets (UDP);
	// zero means 50.
	Conns int
	// Size is each message's length in bytes, newline included; zero means 64.
	// A datagram starts with a 20-digit sequence number, so over UDP it is
	// at least 21 and at most MaxPayload(Endpoint); otherwise at most MaxSize.
	Size int
	// Depth is how many messages each connection keeps in flight in a
	// closed loop; zero means 1, at most MaxDepth.
	Depth int
	// Duration is how long to measure; zero means 5 s.
	Duration time.Duration
	// Warmup runs unmeasured before Duration: its messages count in no
	// figure, right or wrong. Zero means 1 s, negative none.
	Warmup time.Duration
	// Rate, if positive, makes an open loop of Rate messages per second in
	// all, latency measured from when each message was due (over UDP from
	// its send, which never waits for the server, so that a send later
	// than due is bench's own lateness, not the server's). It must be a
	// finite number, and no connection's interval longer than 30 years
	// or shorter than a nanosecond (at most 1e9 × Conns).
	Rate float64
	// Text is "utf8" (default: ASCII mixed with Latin, Greek, Cyrillic,
	// CJK and characters whose uppercase is longer, such as ß) or "ascii",
	// in any case; Run refuses any other.
	Text string
	// Mode is the reply each message should get: "upper" (default: full
	// Unicode uppercase, "ß" → "SS"), "simple" (one rune to one),
	// "ascii" (a–z only) or "echo" (no change). The expected replies are
	// computed with golang.org/x/text and the standard library, not with
	// shout's engine, so a bug in the engine does not check itself.
	Mode string
	// Lang is the BCP 47 language tag that tailors upper and simple (tr,
	// az; el for upper only); empty means none.
	Lang string
	// Timeout is how long a reply may take: one that comes later than
	// Timeout after its message was sent counts as lost, whenever it
	// comes, and a TCP connection that brings no reply for Timeout is an
	// error, what it owed lost. It is also how long the replies still owed
	// at the end are waited for. Zero means 5 s. It does not bound
	// connecting: ConnectTimeout does.
	Timeout time.Duration
	// ConnectTimeout bounds each connect and its TLS handshake (churn's
	// and Reconnect's too): a reply's Timeout of microseconds is a
	// demanding server's measure, not a time to connect in. Zero means 5 s.
	ConnectTimeout time.Duration
	// SourceIPs spreads TCP connections and UDP sockets to a loopback IPv4
	// server over this many source addresses, 127.0.0.1 up, so thousands
	// of connections neither run out of ephemeral ports nor meet a
	// server's per-address limit, and sockets do not share one address's
	// budget of replies (shout serve's --source-rate); zero means enough
	// that no address has more than 1,000 connections (shout serve's
	// default limit), and at least 16.
	// At most 255: 127.0.0.1 to 127.0.0.255.
	SourceIPs int
	// Progress, if not nil, gets one line a second while measuring: that
	// second's figures alone, as its Timeline entry.
	Progress io.Writer
	// TLS is the client configuration for a TLS endpoint
	// (Endpoint.TLS); nil means the defaults (the system's authorities).
	TLS *tls.Config
	// Churn makes every message go on a connection of its own: connect
	// (and with TLS, handshake), send, half-close, read the reply, close.
	// Conns is then how many do so at once, and Depth does not apply.
	// It is a closed loop over TCP, TLS or Unix sockets: Run refuses it
	// with UDP or a positive Rate.
	Churn bool
	// Reconnect makes a connection the server closes give way to a new
	// one, and the run go on, as behind a load balancer while replicas
	// restart. After a graceful close (end of file) the messages still
	// owed were on their way as the server closed: they are sent again on
	// the new connection (counted as resent), their latency from the
	// first send; a reply the server began and cut short is wrong. After a
	// reset or an error they are lost. It needs bench's own event-loop
	// driver (loop_linux.go): TCP or Unix sockets, no TLS, no Churn, on
	// Linux.
	Reconnect bool

	// patient, set by tests (Patient in export_test.go), stops the clock
	// Timeout passes by while measuring: no message that counts is given
	// up for time, nor a stream connection for silence (its only
	// deadline is Run's), and Run's final wait, and a churning
	// exchange's, is patientWait. A test about what is counted, against a
	// server that answers, so loses nothing to a busy machine that
	// stalls bench or the server past Timeout (every datagram in flight,
	// in 1 run of 30 under -race at load average 14): a longer Timeout
	// only moved the line. Reports still say Timeout, and the warm-up's
	// datagrams are still given up at it.
	patient bool
	// oneInFlight, set by tests (OneInFlight in export_test.go), keeps
	// an open loop's stream connections to one message in flight: the
	// next is sent once the last's reply came, however late a stall made
	// it. A test of what a server's close between replies is counted as
	// so has no message owed at the close, which by the clock alone a
	// stall as long as the messages' interval left owed.
	oneInFlight bool
	// unansweredEvery, if not 0, set by tests (PatientButEvery in
	// export_test.go), is n where a patient run's test leaves every n-th
	// datagram unanswered, or answers it past Timeout, on purpose: those
	// numbered n-1, 2n-1 and so on, on every socket. They alone are given
	// up at Timeout, while measuring and in Run's final wait, which ends
	// once nothing else is owed: a test counting them lost so loses no
	// other to a stall past Timeout, and does not wait patientWait for
	// them. (A number, not a func: Config stays comparable.)
	unansweredEvery uint64
	// allDrops, if not nil, set by tests (CountAllDrops in
	// export_test.go), is added what each UDP socket of the run dropped,
	// its receive buffer full, as its reader ended, whether
	// DroppedByBench counts those or not (it does not on a socket that
	// got duplicates): a test that wants none lost but those the kernel
	// dropped learns them all.
	allDrops *atomic.Int64
}

// patientFor reports whether the run waits out any stall for measured
// datagram seq's reply (patient), or gives it up at Timeout.
func (c *Config) patientFor(seq uint64) bool {
	return c.patient && (c.unansweredEvery == 0 || seq%c.unansweredEvery != c.unansweredEvery-1)
}

// patientWait bounds a patient run's final wait (Config.patient): a
// test's safety net for a server that withholds a reply, not a line a
// stall is meant to reach.
const patientWait = time.Minute

// giveUpAfter is how long a reply is waited for where nothing else
// bounds the wait (Run's final wait, a churning exchange): Timeout, or
// patientWait in a patient run.
func (c *Config) giveUpAfter() time.Duration {
	if c.patient {
		return patientWait
	}
	return c.Timeout
}

// The fields of Config that texts name, as a program may name them
// otherwise (Report.NameSettings; shout's errors name flags).
const (
	optConns     = named.Setting("Conns")
	optSourceIPs = named.Setting("SourceIPs")
	optMode      = named.Setting("Mode")
)

func (c *Config) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Conns, 50)
	def(&c.Size, 64)
	def(&c.Depth, 1)
	def(&c.SourceIPs, min(255, max(16, (c.Conns+999)/1000)))
	if c.Duration <= 0 {
		c.Duration = 5 * time.Second
	}
	if c.Warmup == 0 {
		c.Warmup = time.Second
	}
	if c.Text == "" {
		c.Text = "utf8"
	}
	c.Text = strings.ToLower(c.Text)
	if c.Mode == "" {
		c.Mode = "upper"
	}
	c.Mode = strings.ToLower(c.Mode) // as reported
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 5 * time.Second
	}
}

// What Run holds in memory is bounded: each message, the messages one
// connection keeps in flight, and what all connections hold at once (each
// a write of up to Depth messages and the reply it is reading). Run
// refuses a Config past them; shout bench refuses the flags.
const (
	MaxSize     = 64 << 20           // bytes in a message
	MaxDepth    = 4096               // messages in flight on a connection
	MaxHeld     = 4 << 30            // Conns × (Depth + 1) × Size, in bytes
	MaxDatagram = client.MaxDatagram // Size over UDP: the largest UDP payload over IPv4
	// MaxDatagram6 is Size over UDP to an IPv6 address: the largest UDP
	// payload over IPv6.
	MaxDatagram6 = client.MaxDatagram6
)

// MaxPayload is the largest Size over UDP to e, as client.MaxPayload
// says of its address: MaxDatagram6 to an IPv6 address, MaxDatagram to
// any other (a name, which may resolve to either, gets the smaller).
func MaxPayload(e endpoint.Endpoint) int {
	ap, err := netip.ParseAddrPort(e.Address)
	if err != nil {
		return MaxDatagram
	}
	return client.MaxPayload(net.UDPAddrFromAddrPort(ap))
}

// check refuses what c, defaults applied, cannot run as asked: what
// would be sent under another name or size than reported, or not at the
// rate asked, or would hold more memory than the bounds above.
func (c *Config) check() error {
	udp := c.Endpoint.Network == "udp"
	held := float64(c.Conns) * float64(c.Depth+1) * float64(c.Size) // (in int64 it could wrap)
	switch {
	case !slices.Contains(Texts, c.Text):
		// message would send ASCII text under another name.
		return fmt.Errorf("bench: unknown text %q (want one of %s)", c.Text, strings.Join(Texts, ", "))
	case udp && c.Size <= seqLen:
		// The datagram would be larger than Size, and the report's bytes wrong.
		return fmt.Errorf("bench: a datagram of %d bytes cannot hold the %d-digit sequence number and a byte of text: Size must be at least %d over UDP", c.Size, seqLen, seqLen+1)
	case udp && c.Size > MaxPayload(c.Endpoint):
		return fmt.Errorf("bench: Size %d is more than a UDP datagram carries (%d bytes)", c.Size, MaxPayload(c.Endpoint))
	case c.Size > MaxSize:
		return fmt.Errorf("bench: Size %d is more than %d (64 MiB): bench holds each message and its reply whole", c.Size, MaxSize)
	case c.Depth > MaxDepth:
		return fmt.Errorf("bench: Depth %d is more than %d", c.Depth, MaxDepth)
	case held > MaxHeld:
		return fmt.Errorf("bench: Conns × (Depth + 1) × Size is %.0f bytes, more than bench will hold in memory (%d GiB)", held, MaxHeld>>30)
	case c.SourceIPs > 255:
		return fmt.Errorf("bench: SourceIPs %d is more than the 255 addresses from 127.0.0.1 to 127.0.0.255", c.SourceIPs)
	case math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return fmt.Errorf("bench: Rate %v is not a number of messages per second", c.Rate)
	case c.Rate > 0 && float64(c.Conns)/c.Rate > 1e9:
		// Each connection's interval in nanoseconds must fit in 64 bits.
		return fmt.Errorf("bench: Rate %g is too low: a connection would send once in more than 30 years", c.Rate)
	case c.Rate > 0 && float64(c.Conns)/c.Rate < 1e-9:
		// Each connection's interval must be at least a nanosecond: under
		// it an event loop sent one a nanosecond, short of the rate, and
		// a goroutine's schedule never moved on (see openLoop).
		return fmt.Errorf("bench: Rate %g is too high: a connection would send more than one message a nanosecond", c.Rate)
	case c.Churn && udp:
		// A churn worker sends the stream messages, which a UDP run has none of.
		return errors.New("bench: Churn is for TCP, TLS and Unix sockets: UDP has no connections")
	case c.Churn && c.Rate > 0:
		// It would run a closed loop, reported as an open one.
		return errors.New("bench: Churn sends one message per connection, in a closed loop: Rate does not apply")
	}
	return nil
}

// Latency percentiles, in microseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// Second is one second of the measured window, for a chart over time (or,
// in a run longer than a day, a few merged: see Report.Timeline).
type Second struct {
	// T is the time from the start of measuring to this second's end, in seconds.
	T float64 `json:"t"`
	// MessagesPerSec is the replies that came in this second, per second.
	MessagesPerSec float64 `json:"messages_per_sec"`
	// P50US and P99US are this second's latency percentiles, in microseconds.
	P50US float64 `json:"p50_us"`
	P99US float64 `json:"p99_us"`
	// Wrong, Errors and Lost are this second's counts.
	Wrong  int64 `json:"wrong"`
	Errors int64 `json:"errors"`
	Lost   int64 `json:"lost"`
}

// Percentile is one point of the latency distribution.
type Percentile struct {
	Percent float64 `json:"percent"`
	US      float64 `json:"us"`
}

// Settings are what a run was asked to do, defaults filled in.
type Settings struct {
	Addr      string  `json:"addr"`
	Network   string  `json:"network"`
	Conns     int     `json:"conns"`
	Size      int     `json:"size"`
	Depth     int     `json:"depth"` // 0 in an open loop (Rate), which takes none
	DurationS float64 `json:"duration_s"`
	WarmupS   float64 `json:"warmup_s"`
	TimeoutS  float64 `json:"timeout_s"`
	// ConnectTimeoutS bounds each connect and TLS handshake.
	ConnectTimeoutS float64 `json:"connect_timeout_s"`
	Rate            float64 `json:"rate"`
	Text            string  `json:"text"`
	Mode            string  `json:"mode"`
	Lang            string  `json:"lang,omitempty"`
	// SourceIPs is how many loopback addresses the connections come
	// from, when they are spread.
	SourceIPs int  `json:"source_ips,omitempty"`
	TLS       bool `json:"tls,omitempty"`
	// Churn: a connection for each message.
	Churn     bool `json:"churn,omitempty"`
	Reconnect bool `json:"reconnect,omitempty"`
}

// Settings returns what a run of c does, defaults filled in.
func (c Config) Settings() Settings {
	c.defaults()
	s := Settings{
		Addr: c.Endpoint.Address, Network: c.Endpoint.Network,
		Conns: c.Conns, Size: c.Size, Depth: c.Depth,
		DurationS: c.Duration.Seconds(), WarmupS: max(0, c.Warmup.Seconds()), TimeoutS: c.Timeout.Seconds(),
		ConnectTimeoutS: c.ConnectTimeout.Seconds(),
		Rate:            c.Rate, Text: c.Text, Mode: c.Mode, Lang: c.Lang,
		TLS: c.Endpoint.TLS, Churn: c.Churn, Reconnect: c.Reconnect,
	}
	switch {
	case c.Churn:
		s.Depth = 1
	case c.Rate > 0:
		s.Depth = 0 // an open loop takes none
	}
	if c.spread() && c.Conns > 1 {
		s.SourceIPs = min(c.SourceIPs, c.Conns) // connection i comes from 127.0.0.(1 + i%SourceIPs)
	}
	return s
}

// spread reports whether connections are spread over source addresses.
func (c *Config) spread() bool { return c.SourceIPs >= 2 && c.CanSpread() }

// CanSpread reports whether SourceIPs applies to the endpoint: TCP (with
// or without TLS) or UDP to a loopback IPv4 address. Elsewhere every
// connection comes from the one address the system picks.
func (c *Config) CanSpread() bool {
	if c.Endpoint.Network != "tcp" && c.Endpoint.Network != "udp" {
		return false
	}
	host, _, err := net.SplitHostPort(c.Endpoint.Address)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback() && ip.To4() != nil
}

// Report is the outcome of a run.
type Report struct {
	Settings

	// Started is when the run began, before its connections were made:
	// with Version, what a report kept (a CI job's) says of itself.
	Started time.Time `json:"started"`
	// Version and Revision name the program that made the report, its
	// version and VCS revision (shout bench: shout's, as shout version
	// says them), set by the caller: bench does not know it.
	Version  string `json:"shout_version,omitempty"`
	Revision string `json:"shout_revision,omitempty"`

	// Sent counts the messages sent while measuring (an open loop's: that
	// fell due while measuring, handed to their connection or socket; one
	// sent again on a new connection, Resent, once). Each is answered
	// within Timeout (Messages), lost (Lost), or not waited for
	// (Unawaited), or, over a stream, its reply was cut short by the
	// server's close (wrong: among Mismatches, in none of those).
	Sent int64 `json:"sent"`
	// Messages counts the replies to messages sent while measuring (an
	// open loop's: that fell due while measuring).
	Messages int64 `json:"messages"`
	// MessagesPerSec is throughput: the replies that came while measuring
	// (to whichever message, right or wrong) per second measured. It is
	// not Messages over MeasuredS, which would count the replies that came
	// in the wait at the end as if they had come in the window: an open
	// loop faster than the server would show its own rate.
	MessagesPerSec float64 `json:"messages_per_sec"`
	// BytesPerSec is the bytes of those replies (over UDP, whole
	// datagrams) per second measured: what came back, not Size times the
	// rate, since a reply may be longer than its message ("ß" is "SS").
	BytesPerSec float64 `json:"bytes_per_sec"`
	LatencyUS   Latency `json:"latency_us"`
	Mismatches  int64   `json:"mismatches"`
	// MismatchesAfter counts the wrong replies on a stream connection that
	// came after an earlier wrong one on it, with no right one between,
	// both measured (the warm-up's are in no count, this one's too). A
	// stream's replies are matched to its messages by their newlines, so
	// one newline the server cut or added, or one message it answered
	// with nothing, puts every later reply out of step with its message:
	// these may be right replies, compared with the wrong message. A
	// right reply shows the stream in step again.
	MismatchesAfter int64 `json:"mismatches_after_first,omitempty"`
	Errors          int64 `json:"errors"`
	// Lost counts messages sent while measuring whose reply never came
	// (TCP: still owed when the connection failed or the run ended), or
	// came later than Timeout after the message; Late counts those that
	// came late, among Lost. They are not in Messages or LatencyUS (which
	// are of the replies within Timeout), but are in MessagesPerSec.
	Lost int64 `json:"lost"`
	Late int64 `json:"late,omitempty"`
	// Skipped counts those of Lost, over a stream, that the server
	// answered with nothing while it answered a message sent after them
	// on the same connection: a reply that is, byte for byte, the right
	// one to a later message in flight, maxSkip (15) on at most, and
	// whose next reply is in step with it, is that message's, and the
	// ones before it were passed over (see skippedTo). Without it every
	// later reply was compared with the message before its own, and
	// counted wrong.
	Skipped int64 `json:"skipped,omitempty"`
	// DroppedByBench counts the replies that bench's own UDP sockets
	// dropped while measuring, their receive buffers full because bench
	// did not read in time (a machine too busy for it; Linux only). They
	// reached bench, so neither the server nor the network lost them.
	// They are counted in Lost too, and DroppedByBench is at most Lost less Late (a
	// reply to a warm-up message, dropped just after measuring began, is
	// not lost and may be among the drops). A reply dropped will never
	// come: at a signal in the wait at the end (WaitCut), as many of those
	// owed as the drops must have been, beyond the replies already lost
	// (the kernel does not say which it dropped), are lost, not
	// Unawaited. A socket that got datagrams
	// answering nothing owed (duplicates, unsolicited) counts no drops
	// here: they may have been those, and the lost the server's.
	DroppedByBench int64 `json:"dropped_by_bench,omitempty"`
	Duplicates     int64 `json:"duplicates"`
	Reordered      int64 `json:"reordered"`
	// Reconnects counts new connections made for ones the server closed
	// or that failed (a reset, no reply within Timeout) once measuring
	// began (Config.Reconnect); Resent, the measured messages owed at a
	// graceful close, sent again on them.
	Reconnects int64 `json:"reconnects,omitempty"`
	Resent     int64 `json:"resent,omitempty"`
	// Unserved counts the connections the server closed, while
	// measuring, before they served one reply (Config.Reconnect): service
	// refused, as by a server at its connection limit, or a stop that came
	// as one connected (a rolling restart). They are in the report's last
	// line, but do not make the run not all right: that is of the replies.
	Unserved int64 `json:"unserved,omitempty"`
	// Unmade counts the connections still being made again when the run
	// stopped (Config.Reconnect): a server that was down at the end.
	Unmade int64 `json:"unmade,omitempty"`
	// Unsent counts an open loop's messages that fell due while measuring
	// and were never sent: their connection (socket) had failed for good
	// (UnsentFailed of them), or the server held them back, taking the bytes
	// of those sent slower than Rate (bench holds what it has not taken
	// up to about 2 MiB a connection, and less than MaxHeld in all), or
	// answering so far behind it that bench had the most it keeps in flight (UnsentUnanswered), or bench
	// itself sent slower than Rate (a machine too busy; over UDP, whose send
	// never waits for the server, a rate past what a socket sends), until
	// the time was up, behind its schedule (see openLoop and loop.due;
	// one on its schedule sends, as the time is up, what fell due before
	// the window's end and was not sent yet). A message is sent once
	// bench has handed it to its connection, written or still in bench's
	// buffer of what the server has not taken: then it is answered
	// (Messages) or lost (Lost); bench holds one back for want of replies
	// only past mostInFlight, which a server answering within Timeout meets
	// only where the budget binds (Rate × Timeout past about 4,194,304). So
	// every message that fell due in the window is in Messages, Lost or
	// Unsent, or Unawaited after a signal in the wait at the end
	// (Mismatches of a reply the server cut short aside), exactly:
	// whether it counts is by when it fell due, against the window's
	// bounds, set before the first message. Unsent are in no other count,
	// and the latency they would have had, the longest, in no percentile;
	// they make the run not all right.
	Unsent int64 `json:"unsent,omitempty"`
	// UnsentFailed counts those of Unsent that fell due on a connection
	// that had failed for good (one failed in the warm-up, all of its
	// share): its share of Rate was not sent. One that failed only past
	// the window's end (in the wait for the replies owed, where a failure
	// is no error) counts none: what it had not sent is unsent for the
	// reason it had as the window ended.
	UnsentFailed int64 `json:"unsent_failed,omitempty"`
	// UnsentUnanswered counts those of Unsent that bench held back
	// because their connection had as many in flight, unanswered, as it
	// keeps (twice Timeout's worth of its share of Rate, within a budget
	// of 8,388,608 messages across connections): a server that answers
	// slower than the rate, so far behind that its oldest reply owed is
	// lost whatever comes. Bench's memory does not grow with the backlog.
	UnsentUnanswered int64  `json:"unsent_unanswered,omitempty"`
	FirstMismatch    string `json:"first_mismatch,omitempty"`
	FirstError       string `json:"first_error,omitempty"`
	// WarmupErrors counts the errors of the warm-up, which are in no
	// other figure (Errors is of the measured part) and do not make the
	// run not all right; FirstWarmupError is the first. A connection that
	// failed in the warm-up is not there while measuring.
	WarmupErrors     int64  `json:"warmup_errors,omitempty"`
	FirstWarmupError string `json:"first_warmup_error,omitempty"`
	// WarmupLost counts the warm-up's datagrams (UDP) given up with no
	// reply within Timeout, and its messages over a stream still owed
	// as the run stops, in no other count; alone they do not make the
	// run not all right. In a closed loop a socket waits Timeout for
	// each before it sends again, and a connection for as long as it is
	// owed, so where every socket's or connection's were (a server that
	// answers nothing, or drops replies past its budget; a proxy that
	// stalled) nothing may be sent while measuring: the verdict says so
	// rather than that the window was too short for one exchange.
	WarmupLost int64 `json:"warmup_lost,omitempty"`
	// WarmupWrong counts the warm-up's wrong replies (to its messages,
	// or answering none, as Mismatches counts them), and its messages a
	// stream's server skipped (as Skipped counts them), in no other count:
	// no measured reply is "after an earlier wrong reply" for one. Unlike
	// the warm-up's errors they make the run not all right: a server
	// that answered wrong then is one that answers wrong, and the report
	// says every reply was checked. FirstWarmupWrong is the first, said
	// as FirstMismatch is.
	WarmupWrong      int64  `json:"warmup_wrong,omitempty"`
	FirstWarmupWrong string `json:"first_warmup_wrong,omitempty"`
	// Unmeasured counts the connections (UDP: sockets) that had failed
	// for good before measuring began, in the warm-up (refused by a
	// server at its connection limit, reset): the run measured Conns
	// less these, less load than asked for, so they make the run not
	// all right. Connections made again (Reconnect) and Churn's workers
	// never fail for good: none of theirs is unmeasured.
	Unmeasured int64 `json:"unmeasured,omitempty"`
	// NeverServed counts the connections (Config.Reconnect) that served
	// no reply while measuring, by the clock against the window, and were
	// refused or failed with messages owed: each time one was made again
	// the server closed it before a reply (at its connection limit), or
	// it failed, or it was still waiting to be made again. Not never: a
	// server at its limit may serve them after the window, in the wait
	// at the end, as the others close. The run measured less load than
	// asked for, so they make it not all right; NeverServedWhy is the
	// first such refusal or failure among them. A connection a restart closed that
	// served again is not among them, nor one with nothing to send while
	// measuring (an open loop's, at a low Rate) that was closed idle, or
	// refused in the warm-up and served then.
	NeverServed    int64  `json:"never_served,omitempty"`
	NeverServedWhy string `json:"never_served_why,omitempty"`
	// UnansweredSources says, over UDP spread over SourceIPs, that every
	// socket from 127.0.0.2 and up got no reply at all while each from
	// 127.0.0.1 got some: the mark of a NAT between that forwards
	// 127.0.0.1's datagrams alone (a port podman publishes on loopback).
	UnansweredSources string `json:"unanswered_sources,omitempty"`

	// The errors FirstError, FirstWarmupError, FirstMismatch,
	// FirstWarmupWrong and NeverServedWhy say, for NameSettings to say
	// again.
	firstErr, firstWarmErr, firstMismatch, firstWarmWrong, neverServedWhy, unansweredSources error

	// Timeline has one entry per second measured (and one for the last part
	// second, unless under 0.1 s), up to a day's, 86,400: past that, each
	// two entries are merged into one, which covers both (its T the end of
	// the later; its rate over both, its counts summed, its percentiles the
	// higher of the two), as often as it takes. What is counted after the
	// last entry (in such a sliver, and in the wait for the replies owed at
	// the end) is in the totals and in no entry: they may sum to less.
	Timeline []Second `json:"timeline"`
	// Percentiles is the latency distribution over the whole run, from the
	// median out to 99.9999% and the maximum, spaced for a log scale.
	Percentiles []Percentile `json:"percentiles"`

	// MeasuredS is how long was measured: DurationS (though the machine
	// be slow to end it), or less if the run was interrupted, which
	// Interrupted says, or cut short, which CutShort says. Every rate is
	// over MeasuredS.
	MeasuredS   float64 `json:"measured_s"`
	Interrupted bool    `json:"interrupted,omitempty"`
	// WaitCut says that a signal (Ctrl-C) ended the wait for the replies
	// owed at the end, after DrainS, once the window was measured whole:
	// the run is not Interrupted. What was still owed then is Unawaited,
	// or lost if its Timeout was up or bench's own socket dropped its
	// reply (DroppedByBench).
	WaitCut bool `json:"wait_cut,omitempty"`
	// Unawaited counts the messages whose replies were still owed, within
	// Timeout, when a signal ended the wait for them (WaitCut): neither
	// lost nor checked, and in no other count. They make the run not all
	// right, as not every reply was checked. A reply bench's own socket
	// dropped is not among them: it is lost (see DroppedByBench).
	Unawaited int64 `json:"unawaited,omitempty"`
	// CutShort, if not empty, says why the run ended before DurationS:
	// every connection (socket) had failed for good, so nothing was left
	// to measure; MeasuredS ends when the last one failed.
	CutShort string `json:"cut_short,omitempty"`
	// ConnectS is how long connecting took, before the warm-up; DrainS how
	// long the replies still owed at the end were waited for.
	ConnectS float64 `json:"connect_s"`
	DrainS   float64 `json:"drain_s"`
}

// NameSettings says the report's texts (FirstError, FirstWarmupError,
// FirstMismatch, FirstWarmupWrong, NeverServedWhy) again with each
// setting they name named by name, as the program that ran bench knows
// it: shout bench names its flags, --mode for "Mode". They name "Mode"
// (FirstMismatch, FirstWarmupWrong) and the settings of package client's
// errors ("TLSOptions.CA", "TLSOptions.Insecure"); name must return any
// other as it is. Nil: the names as Run gave them. A report Run did not
// make (one decoded from JSON) keeps its texts. Errors Run returns name
// the Config fields (Conns, SourceIPs) whatever a report says.
//
// It is the report's, not Config's: a func in Config made it a struct
// that == could no longer compare.
func (r *Report) NameSettings(name func(setting string) string) {
	for _, t := range []struct {
		text *string
		err  error
	}{
		{&r.FirstError, r.firstErr}, {&r.FirstWarmupError, r.firstWarmErr},
		{&r.FirstMismatch, r.firstMismatch}, {&r.FirstWarmupWrong, r.firstWarmWrong},
		{&r.NeverServedWhy, r.neverServedWhy}, {&r.UnansweredSources, r.unansweredSources},
	} {
		if t.err != nil {
			*t.text = named.Text(t.err, name)
		}
	}
}

// OK reports whether replies came back, every one right (the warm-up's
// too), nothing was lost or failed or left unchecked (Unawaited), and an
// open loop was not held behind its rate (Unsent).
func (r *Report) OK() bool {
	return r.Messages > 0 && r.Mismatches == 0 && r.WarmupWrong == 0 && r.Errors == 0 && r.Lost == 0 && r.Unsent == 0 && r.Unawaited == 0 && r.CutShort == "" && r.Unmeasured == 0 && r.NeverServed == 0
}

// Empty reports whether the run counted nothing while it measured: no
// message answered, late, lost, wrong, never sent or not waited for, and
// no error. A run interrupted so soon measured nothing that a report
// could say.
func (r *Report) Empty() bool {
	return r.Messages == 0 && r.Late == 0 && r.Lost == 0 && r.Errors == 0 && r.Mismatches == 0 && r.Unsent == 0 && r.Unawaited == 0
}

// run is the state shared by a run's workers.
type run struct {
	cfg      Config
	ref      func(msg []byte) []byte // the reply msg should get
	stopping atomic.Bool
	stop     chan struct{}
	haltOnce sync.Once // sets stopping and closes stop
	// windowFrom and windowUntil bound the window measured, [from,
	// until) in run.now() times: a message counts if it fell due (in a
	// closed loop, was sent) in it (see inWindow). Both are set before
	// the first message (setWindow), so that what counts does not hang on
	// when a sender ran against the clock's steps; only a run that ends
	// early (Ctrl-C, every connection gone, or before measuring began)
	// moves until, earlier.
	windowFrom, windowUntil atomic.Int64
	// scheduleFrom is when an open loop's schedules begin, the warm-up's
	// start (set with the window, before the first message): see firstDue.
	scheduleFrom int64
	// alive counts the connections (sockets) that can still serve: each
	// that fails for good, not to be made again, counts down once (see
	// ended); at none, allGone closes and the run ends, since nothing is
	// left to measure. Churn's workers dial for each message: never.
	alive    atomic.Int64
	allGone  chan struct{}
	goneOnce sync.Once
	// heard: a byte of a reply came, in any phase (see hear); refused
	// counts the UDP sockets the server refused (ICMP port unreachable),
	// refusal the first one.
	heard   atomic.Bool
	refused atomic.Int64
	refusal atomic.Pointer[error]
	epoch   time.Time // what sentMsg times count from

	// msgs and wants are the stream messages every connection draws from,
	// and their replies; bodies and bodyWants the same for datagrams.
	msgs, wants, bodies, bodyWants [][]byte
	// uniqueWant says which of wants answer their message alone (see
	// skippedTo).
	uniqueWant []bool

	replies, mismatches, errs, lost, dups, reordered atomic.Int64
	sent                                             atomic.Int64 // measured messages sent (Report.Sent)
	late                                             atomic.Int64 // among lost: came after Timeout
	skips                                            atomic.Int64 // among lost: passed over for a later message (see skipped)
	mismatchesAfter                                  atomic.Int64
	droppedHere                                      atomic.Int64 // by bench's own UDP sockets
	// arrived counts the replies that came while measuring, to whichever
	// message: what throughput is; arrivedBytes, their bytes.
	arrived, arrivedBytes   atomic.Int64
	reconnects, resent      atomic.Int64
	unsent                  atomic.Int64 // open loop: due while measuring, never sent
	unsentFailed            atomic.Int64 // among unsent: on connections that had failed
	unsentUnanswered        atomic.Int64 // among unsent: held back by the replies owed
	unserved                atomic.Int64 // closed by the server before serving a reply
	unmade                  atomic.Int64 // still being made again at the stop
	firstMismatch, firstErr atomic.Pointer[error]
	// waitCut is when (run.now()) a signal ended the wait for the
	// replies owed at the end, 0 if none did (see cutWait); unawaited
	// counts what was owed then, within Timeout (see gaveUp).
	waitCut, unawaited atomic.Int64
	// warmErrs and firstWarmErr are the warm-up's errors, apart;
	// warmLost counts the warm-up's datagrams given up with no reply;
	// warmWrong and firstWarmWrong are the warm-up's wrong replies.
	warmErrs       atomic.Int64
	warmLost       atomic.Int64
	firstWarmErr   atomic.Pointer[error]
	warmWrong      atomic.Int64
	firstWarmWrong atomic.Pointer[error]
	// unmeasured counts the connections that failed for good in the
	// warm-up (see ended).
	unmeasured atomic.Int64
	// neverServed is how many connections (Reconnect) served no reply
	// while measuring, refused or failing; neverServedWhy the first
	// trouble among them (set by the driver's drain).
	neverServed    int64
	neverServedWhy error
	// Spread UDP sockets, as each ended: those from 127.0.0.1 that got a
	// reply, and those from it and from the others that got none at all
	// (see unansweredSources).
	answeredFirst, silentFirst, silentOthers atomic.Int64

	mu      sync.Mutex
	workers []*worker
	givenUp []schedule // open loop: schedules given up (see scheduleEnded)
	// began is, for tests (scheduleCounts), an open loop's schedules as
	// they began.
	began    []schedule
	total    *hdrhistogram.Histogram
	timeline []Second

	connected, drained time.Duration // how long connecting and the final wait took
}

// now is the time since the run began, in nanoseconds: what a sentMsg
// carries, half the size of a time.Time.
func (r *run) now() int64 { return int64(time.Since(r.epoch)) }

// worker is a histogram that a share of the connections record into
// (one per event loop, or one per shard of goroutine-driven connections);
// it is merged into the run's once a second.
type worker struct {
	mu   sync.Mutex
	hist *hdrhistogram.Histogram
}

// newHist returns a histogram of latencies in microseconds that holds
// the longest a run can see, to three significant digits: a message sent
// (or due, in an open loop) at the start of the window and answered at
// the end of the wait for what is owed, which a churning connection may
// spend dialling and then reading; with a minute to spare.
func (r *run) newHist() *hdrhistogram.Histogram {
	// Added up so as not to wrap: a --timeout or --duration near what a
	// Duration holds (someone's "never") made the top negative, and every
	// latency 0 µs.
	longest := time.Duration(math.MaxInt64)
	if spare := longest - time.Minute - r.cfg.Duration; r.cfg.Timeout <= spare/2 {
		longest = r.cfg.Duration + 2*r.cfg.Timeout + time.Minute
	}
	return hdrhistogram.New(1, longest.Microseconds(), 3)
}

// put records latency us in h; past what h holds, which newHist sizes
// not to happen, at its top, so that it still counts.
func put(h *hdrhistogram.Histogram, us int64) {
	h.RecordValue(min(max(us, 1), h.HighestTrackableValue()))
}

// record counts a reply to a message sent while measuring.
func (w *worker) record(r *run, d time.Duration) {
	r.replies.Add(1)
	w.mu.Lock()
	put(w.hist, d.Microseconds())
	w.mu.Unlock()
}

// replyLate is the error of a reply that did not come whole (err: a
// time-out, a reset), of which got bytes came: a server that sent part of
// one is not a server that sent none.
func replyLate(got int, err error) error {
	if got > 0 {
		return failed(fmt.Sprintf("receive: a reply begun but not ended (%d bytes, no newline yet)", got), err)
	}
	return failed("receive", err)
}

// cutLate is the error of a reply owed behind a wrong one cut at its
// check whose line went on without its newline, n bytes so far (err: a
// time-out, a reset): the server was sending that line, not nothing.
func cutLate(n int, err error) error {
	return failed(fmt.Sprintf("receive: the line of a wrong reply before it not ended (%d bytes, no newline yet)", n), err)
}

// arriveBytes counts n bytes that came while measuring in the replies'
// throughput, as arrive does, but no reply: the rest of a reply's line.
func (r *run) arriveBytes(n int, at int64) {
	if r.inWindow(at) {
		r.arrivedBytes.Add(int64(n))
	}
}

// failed is the error of a send or receive (what) that failed with err,
// its cause said as shout connect says it (client.Cause): "receive:
// connection reset by the server", not Go's "read tcp
// 127.0.0.1:40950->127.0.0.1:8080: read: connection reset by peer". It
// wraps err.
func failed(what string, err error) error { return &stepError{what, err} }

type stepError struct {
	what string
	err  error
}

func (e *stepError) Error() string { return e.what + ": " + client.Cause(e.err) }
func (e *stepError) Unwrap() error { return e.err }

// onTime reports whether a reply that took d came within Timeout; one
// that did not counts as lost, as one that never came. Waiting for a
// reply does not make a late one on time: in the wait at the end, or on
// a pipelined connection whose replies keep coming, each later than the
// last, none was given up, and late replies passed as right.
func (r *run) onTime(d time.Duration) bool { return r.onTimeIf(d, r.cfg.patient) }

// onTimeIf is onTime, in a run patient or not as patient says (a
// datagram's: see Config.patientFor).
func (r *run) onTimeIf(d time.Duration, patient bool) bool {
	if d <= r.cfg.Timeout || patient {
		return true
	}
	r.lost.Add(1)
	r.late.Add(1)
	return false
}

// arrive counts a reply of n bytes that came at at (run.now()), right or
// wrong, if it came while measuring: in the window, by the clock, as a
// message's count is. (By when the clock's goroutine ran, woken late on a
// busy machine, the replies that came before it did were not taken for
// throughput, though their messages counted, and the rate fell short.)
func (r *run) arrive(n int, at int64) {
	if r.inWindow(at) {
		r.arrived.Add(1)
		r.arrivedBytes.Add(int64(n))
	}
}

// warmNow reports whether it is the warm-up's time: an error now is the
// warm-up's. By the clock, against the window's start, fixed before the
// first message, as a message's count is: an error that came after it,
// before the clock's goroutine (woken late on a busy machine) counted the
// run as measuring, was the warm-up's, and its connection counted as one
// that failed in the warm-up, not measured.
func (r *run) warmNow() bool {
	return r.cfg.Warmup > 0 && r.now() < r.windowFrom.Load()
}

// fail counts an error: the warm-up's apart, since every count is of
// the measured part; none after the window's end, or once the run is
// stopping, where what fails is the replies owed, counted lost. The
// phase is by the clock against the window's bounds, as a reply's (see
// arrive): by the clock's goroutine, woken late, an error after the end
// counted as measured, and the same reset was an error or none by when
// that goroutine ran. It reports whether it counted err the warm-up's: a
// connection that it ends is then one not measured (ended).
func (r *run) fail(err error) (warm bool) {
	now := r.now()
	if r.pastWindow(now) {
		return false
	}
	if r.cfg.Warmup > 0 && now < r.windowFrom.Load() {
		r.warmErrs.Add(1)
		r.firstWarmErr.CompareAndSwap(nil, &err)
		if warmFailCounted != nil {
			warmFailCounted()
		}
		if failCounted != nil {
			failCounted(true)
		}
		return true
	}
	r.errs.Add(1)
	r.firstErr.CompareAndSwap(nil, &err)
	if failCounted != nil {
		failCounted(false)
	}
	return false
}

// pastWindow reports whether now is past the window's end, or the run
// stopping: a failure then is no error (fail), and an open loop's
// connection (socket) that fails then changes nothing already due
// (afterFailure).
func (r *run) pastWindow(now int64) bool {
	return r.stopping.Load() || now >= r.windowUntil.Load()
}

// failedWhen is whether an open loop's connection (socket) failed for
// good while measuring, as the side that found the failure judged it
// when it counted it (pastWindow): the goroutine driver's sender, which
// acts on it, may see it only later, past the window's end (a stall).
type failedWhen struct{ v atomic.Int32 } // 0: not yet; 1: while measuring; 2: past the window

// note judges the failure, found now, once.
func (f *failedWhen) note(r *run) {
	v := int32(1)
	if r.pastWindow(r.now()) {
		v = 2
	}
	f.v.CompareAndSwap(0, v)
}

// past reports whether the failure came past the window's end: if none
// was noted yet (one that the run stopping overtook), by now.
func (f *failedWhen) past(r *run) bool {
	switch f.v.Load() {
	case 1:
		return false
	case 2:
		return true
	}
	return r.pastWindow(r.now())
}

// afterFailure is why what an open loop's connection (socket) had not
// sent of its schedule is never sent, the connection having failed for
// good: on a failed connection (connFailed) if it failed while
// measuring; past the window's end, the reason it had as the window
// ended (behind its schedule at its last round while measuring, held
// back by held; else bench, woken late, had yet to send it: behind the
// rate). A connection that fails in the wait for the replies owed
// changes nothing already due: under stalls, thousands that bench was
// behind by as the window ended were said to be on failed connections,
// with no error counted (fail counts none past the window).
func afterFailure(past, behind bool, held unsentWhy) unsentWhy {
	switch {
	case !past:
		return connFailed
	case behind:
		return held
	}
	return untaken
}

// ended notes that a connection (socket) failed for good: no reply
// comes on it again, and none is made for it. Each calls it at most once.
// warm is what fail said of the failure that ended it: the warm-up's, so
// that the connection was not measured (Report.Unmeasured). Counted here,
// with fail's decision: the clock counted those not alive as measuring
// began, and a connection whose failure fail counted the warm-up's, but
// which had yet to end then, was in neither count.
func (r *run) ended(warm bool) {
	if warm {
		r.unmeasured.Add(1)
	}
	if r.alive.Add(-1) == 0 {
		r.goneOnce.Do(func() { close(r.allGone) })
	}
}

// mismatch counts a wrong reply to a message sent while measuring. closed
// says the server closed the connection where got ends: a reply it cut
// short, or never began, is shown so, not as a difference at its end.
func (r *run) mismatch(got, want []byte, closed bool) {
	r.wrongIn(&r.mismatches, &r.firstMismatch, got, want, closed)
}

// warmupWrong counts a wrong reply to a message of the warm-up, as
// mismatch counts a measured one, in WarmupWrong.
func (r *run) warmupWrong(got, want []byte, closed bool) {
	r.wrongIn(&r.warmWrong, &r.firstWarmWrong, got, want, closed)
}

// wrongIn counts a wrong reply in n, and keeps the first's text in first.
func (r *run) wrongIn(n *atomic.Int64, first *atomic.Pointer[error], got, want []byte, closed bool) {
	if n.Add(1) > 1 && first.Load() != nil {
		return // only the first is shown: spare a wrong server's every reply the formatting
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	// Show about 80 bytes from a little before the difference, cut where
	// a character begins: a lone byte of one ("\xb6" of "ж") reads as if
	// the server had sent invalid UTF-8. (Up to the difference got and
	// want are the same; a few bytes at most are a character's.)
	from := max(0, i-40)
	for k := 0; k < utf8.UTFMax-1 && from > 0 && !utf8.RuneStart(got[from]); k++ {
		from--
	}
	clip := func(b []byte) []byte { return cutAt(b[from:], 80) }
	s := fmt.Sprintf("got %q, want %q (", clip(got), clip(want))
	switch {
	case closed && len(got) == 0:
		s += "the server closed the connection before the reply began"
	case closed && i == len(got):
		s += fmt.Sprintf("the server closed the connection after byte %d of the reply", i)
	case closed:
		// A message cut short inside a character is answered so: its
		// lead byte as it is, and the close after it.
		s += fmt.Sprintf("first difference at byte %d, and the server closed the connection after byte %d of the reply", i, len(got))
	default:
		s += fmt.Sprintf("first difference at byte %d", i)
	}
	if from > 0 {
		s += fmt.Sprintf(", shown from byte %d", from)
	}
	s += ")"
	e := errors.New(s)
	if !closed { // a reply cut short is no other mode's
		if m := r.modeOf(got, want); m != "" {
			e = otherMode{named.Errorf("%s; it is the reply %s %s expects: if the server is meant to answer so, run bench with %s %s", s, optMode, m, optMode, m)}
		}
	}
	first.CompareAndSwap(nil, &e)
}

// beforeWindow reports whether at (run.now()) is before the window
// measured: a message that fell due then is the warm-up's.
func (r *run) beforeWindow(at int64) bool { return at < r.windowFrom.Load() }

// otherMode is a first wrong reply that another mode's reply is
// (modeOf): a server that answers every message so, consistently, and
// whose wrong replies after it are that, not a stream out of step.
type otherMode struct{ error }

func (e otherMode) Unwrap() error { return e.error }

// modeOf is the other mode whose reply got is, to the message whose
// reply in the run's mode is want (one of the run's own), or "". Bench
// pointed at an echo server (socat, fortio tcp-echo) or at one that
// upper-cases a-z only counts every reply wrong; the mode named says
// that the server answers consistently, and how to check it as it is.
func (r *run) modeOf(got, want []byte) string {
	msg := r.messageOf(want)
	if msg == nil || len(msg) > modeOfMax {
		return ""
	}
	for _, m := range Modes {
		if m == r.cfg.Mode {
			continue
		}
		ref, err := reference(m, r.cfg.Lang)
		if err != nil { // a language that tailors another mode only
			ref, err = reference(m, "")
		}
		if err == nil && bytes.Equal(ref(msg), got) {
			return m
		}
	}
	return ""
}

// modeOfMax bounds the messages modeOf maps in every other mode: it runs
// where the reply was read, an event loop's goroutine among them, and
// the largest messages (64 MiB) would hold up that loop's connections.
const modeOfMax = 1 << 20

// messageOf is the message whose expected reply is want, which must be
// one of r.wants or r.bodyWants itself (not a copy), or nil.
func (r *run) messageOf(want []byte) []byte {
	if len(want) == 0 {
		return nil
	}
	for _, set := range [...]struct{ msgs, wants [][]byte }{{r.msgs, r.wants}, {r.bodies, r.bodyWants}} {
		for k, w := range set.wants {
			if len(w) == len(want) && &w[0] == &want[0] {
				return set.msgs[k]
			}
		}
	}
	return nil
}

// cutAt is about the first n bytes of b, cut where a character begins
// (a few bytes earlier at most): a lone byte of one ("\xb6" of "ж")
// reads as if the server had sent invalid UTF-8.
func cutAt(b []byte, n int) []byte {
	end := min(len(b), n)
	for k := 0; k < utf8.UTFMax-1 && end > 0 && end < len(b) && !utf8.RuneStart(b[end]); k++ {
		end--
	}
	return b[:end]
}

// streamMismatch notes a wrong reply on a stream connection to m, and
// counts it if m was sent while measuring, or in WarmupWrong if m was
// the warm-up's. *wrong says whether the connection has had a measured
// wrong reply before, with no right one since; a measured one sets it.
// Not one of the warm-up's, which is in no measured count: the first
// measured wrong reply after one was counted "after an earlier wrong
// reply", an earlier one the report showed nowhere. closed says the
// server closed the connection where got ends; it is gone unless made
// again (Reconnect).
//
// It reports whether it counted an error the warm-up's (see fail).
func (r *run) streamMismatch(wrong *bool, m sentMsg, got, want []byte, closed bool) (warm bool) {
	measured := m.measured
	switch {
	case measured:
		if *wrong {
			r.mismatchesAfter.Add(1)
		}
		r.mismatch(got, want, closed)
	case closed && (r.warmNow() || !r.cfg.Reconnect):
		// The reply to a message of the warm-up counts in no figure, but
		// the connection is gone: its error says why (fail counts it in
		// the phase it came in, none once stopping). In the warm-up, or a
		// run that every connection failed in the warm-up could not say
		// why; while measuring, or the connection's end was in no count,
		// and a run with one of two gone all right. (Made again, it is
		// not gone: its reconnect counts.)
		err := error(silentClose{errors.New("receive: the server closed the connection before the reply began")})
		if len(got) > 0 {
			err = fmt.Errorf("receive: the server closed the connection after %d bytes of a reply", len(got))
		}
		warm = r.fail(err)
	case r.beforeWindow(m.at):
		// (One that fell due past the window's end, which an early
		// end moved before it, counts in none.)
		r.warmupWrong(got, want, closed)
	}
	*wrong = *wrong || measured
	return warm
}

// unasked notes bytes that answer no message, which a stream server sent
// beyond its replies, as a wrong reply, as streamMismatch does: measured
// if they came while measuring, else the warm-up's if warm (they came
// before it), else in no count.
func (r *run) unasked(wrong *bool, measured, warm bool, got []byte) {
	n, first := &r.mismatches, &r.firstMismatch
	switch {
	case measured:
		after := *wrong
		*wrong = true
		if after {
			r.mismatchesAfter.Add(1)
		}
	case warm:
		n, first = &r.warmWrong, &r.firstWarmWrong
	default:
		return
	}
	if n.Add(1) > 1 && first.Load() != nil {
		return
	}
	e := fmt.Errorf("got %q, which answers no message", cutAt(got, 80))
	first.CompareAndSwap(nil, &e)
}

// unaskedLines counts data, bytes that answer no message, as unasked
// does: a wrong reply for each line that starts in it, not for the rest
// of one begun in an earlier read (*straying; set as data's last line is
// left unended), however many reads bring them.
func (r *run) unaskedLines(wrong, straying *bool, measured, warm bool, data []byte) {
	for len(data) > 0 {
		line := data
		if k := bytes.IndexByte(data, '\n'); k >= 0 {
			line = data[:k+1]
		}
		if !*straying {
			r.unasked(wrong, measured, warm, line)
		}
		*straying = line[len(line)-1] != '\n'
		data = data[len(line):]
	}
}

// collect merges every worker's histogram into total and returns the
// interval's own histogram.
func (r *run) collect() *hdrhistogram.Histogram {
	interval := r.newHist()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range r.workers {
		w.mu.Lock()
		interval.Merge(w.hist)
		w.hist.Reset()
		w.mu.Unlock()
	}
	r.total.Merge(interval)
	return interval
}

// distinct is how many different messages a run draws from; connection
// i sends them in its own order (see pick).
const distinct = 64

// pick is the index of connection i's k-th message: each connection
// walks the messages with its own stride from its own start, so a server
// that crosses connections' replies is caught. Connection i's stride is
// 1+2*(i%32), its start i%32 plus the bits of i/32 reversed (0, 32, 16,
// 48, ...): of two of the first 64 connections, the one's k-th
// message is never the other's (their strides differ by twice what
// their starts do, which no multiple of it is, modulo 64); the replies
// of one read on another of a different stride are not, two in a row,
// replies to its later messages, taken for a skip (see skippedTo), nor,
// of the first 64, of one with the same stride (32 apart) unless the one
// is 17 messages or more behind the other. The
// first 2,048 connections' walks all differ. k is a uint64, and the sum
// unsigned, because a connection's messages may pass 2^31 in a long run
// where int is 32 bits, and k times a stride of up to 63 passes it after
// a 63rd of that: in int the index turned negative, and bench panicked.
// Unsigned, a sum that wraps is still right modulo distinct, which
// divides 2^64.
func pick(i int, k uint64) int {
	start := uint64(i%32) + uint64(bits.Reverse8(uint8(i/32%distinct))>>2)
	return int((start + k*uint64(1+2*(i%32))) % distinct)
}

// messagesHeld bounds the bytes of a run's distinct messages: past it,
// fewer than distinct are made (at least 2), and the others repeat them.
var messagesHeld = 64 << 20 // a variable for tests

// expected builds a run's messages of size bytes and the reply each
// should get.
func (r *run) expected(seed uint64, size int) (msgs, wants [][]byte) {
	return expectedOf(r.cfg.Text, r.ref, seed, size)
}

// expectedOf is expected for text and the reference reply ref.
func expectedOf(text string, ref func([]byte) []byte, seed uint64, size int) (msgs, wants [][]byte) {
	rng := rand.New(rand.NewPCG(seed, 7))
	msgs, wants = make([][]byte, distinct), make([][]byte, distinct)
	made := min(distinct, max(2, messagesHeld/size))
	for k := range msgs {
		if k >= made {
			msgs[k], wants[k] = msgs[k%made], wants[k%made]
			continue
		}
		msgs[k] = message(rng, size, text)
		wants[k] = ref(msgs[k])
	}
	return msgs, wants
}

func (r *run) newWorker() *worker {
	w := &worker{hist: r.newHist()}
	r.mu.Lock()
	r.workers = append(r.workers, w)
	r.mu.Unlock()
	return w
}

// ReplyTooLargeError is Run's error when a UDP reply bench would expect
// is longer than a datagram carries: at a Size near the largest, text
// whose uppercase is longer ("ß" is "SS"; under Lang tr or az, ASCII's
// "i" is "İ"). No server could send it, and every such datagram would be
// counted lost.
type ReplyTooLargeError struct {
	Size             int
	Text, Mode, Lang string
	Longest          int // the longest reply expected, in bytes
	Most             int // the most a datagram to the server carries (MaxPayload)
	// ASCIIFits: Text is not ascii, and ascii at this Size, Mode and Lang
	// would fit (not under tr or az, where ASCII's "i" is "İ").
	ASCIIFits bool
}

func (e *ReplyTooLargeError) Error() string {
	or := ""
	if e.ASCIIFits {
		or = ", or ascii text"
	}
	return fmt.Sprintf("bench: at Size %d the reply to a %s datagram in mode %s is up to %d bytes, more than a UDP datagram carries (%d): no server could send it; use a smaller Size%s", e.Size, e.Text, e.ModeName(), e.Longest, e.Most, or)
}

// ModeName is the mode with its language, as the run's header names it:
// "upper", or "upper (tr)".
func (e *ReplyTooLargeError) ModeName() string {
	if e.Lang != "" {
		return e.Mode + " (" + e.Lang + ")"
	}
	return e.Mode
}

// longestReply is the longest of wants, a UDP run's replies, with the
// sequence number.
func longestReply(wants [][]byte) int {
	longest := 0
	for _, w := range wants {
		longest = max(longest, seqLen+len(w))
	}
	return longest
}

// tooLarge is the error of a UDP run whose replies wants do not all fit
// in a datagram, or nil.
func tooLarge(cfg Config, ref func([]byte) []byte, wants [][]byte) error {
	longest, most := longestReply(wants), MaxPayload(cfg.Endpoint)
	if longest <= most {
		return nil
	}
	e := &ReplyTooLargeError{Size: cfg.Size, Text: cfg.Text, Mode: cfg.Mode, Lang: cfg.Lang, Longest: longest, Most: most}
	if cfg.Text != "ascii" {
		_, ascii := expectedOf("ascii", ref, 2, max(cfg.Size-seqLen, 1))
		e.ASCIIFits = longestReply(ascii) <= most
	}
	return e
}

// CheckReplies returns the *ReplyTooLargeError Run would for cfg, before
// a run: over UDP, a reply cfg would expect is longer than a datagram
// carries. It is nil for other networks, and for a Config Run refuses
// otherwise.
func CheckReplies(cfg Config) error {
	cfg.defaults()
	if cfg.Endpoint.Network != "udp" || cfg.check() != nil {
		return nil
	}
	ref, err := reference(cfg.Mode, cfg.Lang)
	if err != nil {
		return nil
	}
	_, wants := expectedOf(cfg.Text, ref, 2, max(cfg.Size-seqLen, 1))
	return tooLarge(cfg, ref, wants)
}

// UnreachableError is Run's error when not one connection could be made.
type UnreachableError struct{ Err error }

func (e *UnreachableError) Error() string { return e.Err.Error() }
func (e *UnreachableError) Unwrap() error { return e.Err }

// Run loads the server as cfg says and returns the report. Its error is
// for a run that could not start (a Config it cannot run as asked, the
// server unreachable, a limit of this machine); problems during the run
// are counted in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.defaults()
	ref, err := reference(cfg.Mode, cfg.Lang)
	if err != nil {
		return nil, err
	}
	if err := cfg.check(); err != nil { // refused here, as an unknown Mode is
		return nil, err
	}
	if cfg.Reconnect && !cfg.loopsDrive() {
		return nil, errors.New("reconnect works over TCP and Unix sockets without TLS, on Linux, and not with churn")
	}
	r := &run{cfg: cfg, ref: ref, stop: make(chan struct{}), allGone: make(chan struct{}), epoch: time.Now()}
	r.alive.Store(int64(cfg.Conns))
	r.total = r.newHist()
	if cfg.Endpoint.Network == "udp" {
		r.bodies, r.bodyWants = r.expected(2, max(cfg.Size-seqLen, 1))
		// A reply longer than a datagram carries ("ß" is "SS") could come
		// from no server: every such datagram would be counted lost.
		if err := tooLarge(cfg, ref, r.bodyWants); err != nil {
			return nil, err
		}
	} else {
		r.msgs, r.wants = r.expected(1, cfg.Size)
		r.uniqueWant = uniqueWants(r.wants)
	}
	extra := 0
	if cfg.loopsDrive() {
		extra = loopFiles(cfg.Conns)
	}
	if err := checkFileLimit(cfg.Conns, extra, r.connWord()+"s"); err != nil {
		return nil, err
	}
	var d driver
	if cfg.Churn {
		// One connection first, so that an unreachable server is an error.
		c, err := r.dialer()(ctx, 0)
		if err != nil {
			return nil, &UnreachableError{err}
		}
		c.Close()
		r.setWindow()
		d = r.startChurn(ctx)
	} else {
		// Connect everything first, so the run measures serving, not connecting.
		began := time.Now()
		conns, err := r.connect(ctx)
		if err != nil {
			return nil, err
		}
		r.connected = time.Since(began)
		if d, err = r.start(conns); err != nil {
			return nil, err
		}
	}
	w := r.clock(ctx)
	// Stop sending (clock has, if measuring ended), and give the replies
	// still owed up to Timeout (giveUpAfter) to come; what has not come by
	// then is lost. The window measured whole, a signal in that wait
	// (Ctrl-C once the time was up) ends it at once: whoever pressed it
	// has the report of the whole window, what was still owed not waited
	// for (see cutWait). One that ended the window early has the replies
	// owed waited for, as at the end; a second one stops shout at once.
	r.halt()
	stopped := time.Now()
	var cutBy <-chan struct{}
	if !w.interrupted {
		cutBy = ctx.Done()
	}
	d.drain(stopped.Add(cfg.giveUpAfter()), cutBy)
	r.drained = time.Since(stopped)
	r.collect()
	r.countUnsent()
	switch {
	case w.cutShort && cfg.Endpoint.Network == "udp" && r.refused.Load() == int64(cfg.Conns) && !r.heard.Load():
		// Nothing listens there: as unreachable as a refused TCP connect.
		return nil, &UnreachableError{*r.refusal.Load()}
	case w.cutShort && !w.began:
		first := errors.New("?")
		if p := r.firstWarmErr.Load(); p != nil {
			first = r.hinted(*p)
		}
		return nil, fmt.Errorf("every %s failed in the warm-up, before measuring; the first: %w", r.connWord(), first)
	}
	rep := r.report(w.measured, w.interrupted)
	if hint := r.silence(); hint != "" && rep.Messages == 0 && rep.FirstMismatch != "" {
		// Every reply wrong, and not a byte of one came.
		rep.firstMismatch = fmt.Errorf("%w; %s", rep.firstMismatch, hint)
		rep.FirstMismatch = rep.firstMismatch.Error()
	}
	if w.cutShort {
		rep.CutShort = fmt.Sprintf("every %s had failed", r.connWord())
		if cfg.Endpoint.Network != "udp" && !cfg.Reconnect {
			rep.CutShort += ", and none is made again without reconnect"
		}
	}
	return rep, nil
}

// hear notes that the server sent something: a load, not a store each
// time, as the readers share it.
func (r *run) hear() {
	if !r.heard.Load() {
		r.heard.Store(true)
	}
}

// silence is what a plain TCP server that never sent a byte back may be,
// as shout connect says of one: "" if the run was over TLS, UDP or a Unix
// socket, or the server did send something.
func (r *run) silence() string {
	e := r.cfg.Endpoint
	if e.Network != "tcp" || e.TLS || r.heard.Load() {
		return ""
	}
	return client.SilentClose(e.Address)
}

// silentClose is a close before a reply began. Whether to say beside it
// what a silent server may be (silence) is for the run's end: a reply
// on another connection after it says the server speaks plain text, and
// the hint, said at the close, sat beside the replies it denied.
type silentClose struct{ error }

func (e silentClose) Unwrap() error { return e.error }

// hinted is err, with silence's hint if it is a close before a reply
// began and the server never sent a byte.
func (r *run) hinted(err error) error {
	if hint := r.silence(); hint != "" && errors.As(err, new(silentClose)) {
		return fmt.Errorf("%w; %s", err, hint)
	}
	return err
}

// connWord is what a run's connections are called.
func (r *run) connWord() string {
	if r.cfg.Endpoint.Network == "udp" {
		return "socket"
	}
	return "connection"
}

// A driver moves a run's bytes: event loops for stream sockets where the
// system has them (loop_linux.go), goroutines otherwise. Once Run has
// set stopping and closed stop, drain waits for the replies still owed
// until by, or until cut closes (a signal: it calls cutWait first), counts
// the rest (see gaveUp), and closes every connection. A nil cut never
// closes.
type driver interface {
	drain(by time.Time, cut <-chan struct{})
}

// cutWait notes that a signal ends the wait for the replies owed at the
// end now, and returns now (run.now()): what is still owed is not waited
// for (see gaveUp). The drivers call it before they end the wait.
func (r *run) cutWait() int64 {
	now := r.now()
	r.waitCut.CompareAndSwap(0, now)
	return now
}

// gaveUp counts a measured message whose reply will not come, due at at
// (run.now(); in a closed loop, and for a datagram, sent then): lost,
// unless a signal ended the wait at the end (cutWait) before its Timeout
// was up; then it is unawaited (but for a reply bench's own socket
// dropped: see udpSocket.lostToDrops). A reply whose Timeout was up by
// then would have been late: lost, whatever came. It reports whether it
// counted the message lost.
func (r *run) gaveUp(at int64) (lost bool) {
	if r.cutBeforeTimeout(at) || r.cfg.patient && r.waitCut.Load() != 0 {
		r.unawaited.Add(1)
		return false
	}
	r.lost.Add(1)
	return true
}

// warmGaveUp counts a warm-up datagram given up with no reply, sent at
// at (run.now()), in WarmupLost, unless a signal ended the wait at the
// end (cutWait) before its Timeout was up: it was not given its
// Timeout, as a measured one owed then is not lost (gaveUp). It reports
// whether it counted the datagram.
func (r *run) warmGaveUp(at int64) (counted bool) {
	if r.cutBeforeTimeout(at) {
		return false
	}
	r.warmLost.Add(1)
	return true
}

// cutBeforeTimeout reports whether a signal ended the wait at the end
// (cutWait) before the Timeout of a message due at at (run.now()) was
// up: it was not given its Timeout to be answered within.
func (r *run) cutBeforeTimeout(at int64) bool {
	cut := r.waitCut.Load()
	return cut != 0 && cut-at < int64(r.cfg.Timeout)
}

// start hands the connections to the driver that serves them best, or
// returns why it could not; the connections are then closed. The driver
// sets the window (setWindow) once it is set up, as it begins to send:
// with no warm-up, one set before, as an event loop took thousands of
// sockets over, measured bench's own start-up as the server's (what fell
// due meanwhile went late, timed from when it fell due: a p50 of 225 ms
// with 5,000 connections, where the server's was 0.2 ms) and a closed
// loop's throughput over a while that sent nothing.
func (r *run) start(conns []net.Conn) (driver, error) {
	if r.cfg.loopsDrive() {
		if d, ok, err := r.startLoops(conns); ok {
			return d, err
		}
	}
	return r.startGoroutines(conns), nil
}

// loopsDrive reports whether the event loops drive the run: streams
// without TLS (whose bytes pass through Go) and not churning, where the
// system has the loops.
func (c *Config) loopsDrive() bool {
	return loopsAvailable && !forceGoroutines && c.Endpoint.Network != "udp" && !c.Endpoint.TLS && !c.Churn
}

// loopFiles is how many descriptors the loops for conns connections
// need besides the connections: the wake, and each loop's epoll set,
// timer and (with Reconnect) inbox; and one more while a socket is taken
// (see takeFD).
func loopFiles(conns int) int { return 2 + 3*min(runtime.GOMAXPROCS(0), conns) }

// forceGoroutines makes every run use goroutines, for tests of that driver.
var forceGoroutines = false

// goroutines drives each connection with its own goroutines: for UDP,
// and for streams where there is no event loop.
type goroutines struct {
	r     *run
	conns []net.Conn
	wg    sync.WaitGroup
}

func (r *run) startGoroutines(conns []net.Conn) driver {
	g := &goroutines{r: r, conns: conns}
	shards := r.shards(len(conns))
	if driversSetUp != nil {
		driversSetUp(r)
	}
	r.setWindow() // (set up: see start)
	for i, c := range conns {
		w := shards[i%len(shards)]
		g.wg.Go(func() {
			if r.cfg.Endpoint.Network == "udp" {
				r.udpWorker(i, w, c)
			} else {
				r.streamWorker(i, w, c)
			}
		})
	}
	return g
}

// shards are the histograms that n goroutine-driven connections share: a
// few, not one each, since a histogram is about 100 KB.
func (r *run) shards(n int) []*worker {
	ws := make([]*worker, min(n, 2*runtime.GOMAXPROCS(0)))
	for k := range ws {
		ws[k] = r.newWorker()
	}
	return ws
}

func (g *goroutines) drain(by time.Time, cut <-chan struct{}) {
	// The workers stop refreshing their deadlines once stopping is set, so
	// this one holds.
	set := func() {
		for _, c := range g.conns {
			c.SetDeadline(by)
		}
	}
	if drainDeadlines != nil {
		drainDeadlines(set)
	} else {
		set()
	}
	select {
	case <-waited(&g.wg):
	case <-cut:
		g.r.cutWait()
		for _, c := range g.conns {
			g.cutNow(c)
		}
		g.wg.Wait()
	}
	for _, c := range g.conns {
		c.Close()
	}
}

// waited closes once wg's Wait has returned.
func waited(wg *sync.WaitGroup) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}

// cutNow ends c's reads and writes under way at once. A stream
// connection is closed, not given a deadline now: a writer sending as the
// run stops sets its own (see streamWorker), which could come after; and
// its socket is closed, not a TLS connection, whose own Close first sends
// its close_notify, which may wait for a server that reads nothing (its
// Close later finds it closed). A datagram socket is given a deadline
// now, which nothing moves on after (see udpSocket.finish), and closed
// after: closed now, its drops, read once its reader has ended, read as
// none (socketDrops), and the report blamed the server for those lost.
func (g *goroutines) cutNow(c net.Conn) {
	if g.r.cfg.Endpoint.Network == "udp" {
		c.SetDeadline(time.Now())
		return
	}
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = tc.NetConn()
	}
	c.Close()
}

// connect opens every connection, many at a time, so that thousands take
// a moment, not the run's length. If one fails, none is kept.
func (r *run) connect(ctx context.Context) ([]net.Conn, error) {
	dial := r.dialer()
	if connectDial != nil {
		dial = connectDial(dial)
	}
	n := r.cfg.Conns
	conns := make([]net.Conn, n)
	errs := make([]error, n)
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range min(n, 64) {
		wg.Go(func() {
			for !failed.Load() && ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c, err := dial(ctx, i)
				if err != nil {
					errs[i] = err
					failed.Store(true)
					return
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	if !failed.Load() && ctx.Err() == nil {
		return conns, nil
	}
	made, first := 0, -1
	for i, c := range conns {
		if c != nil {
			c.Close()
			made++
		}
		if first < 0 && errs[i] != nil {
			first = i
		}
	}
	switch {
	case first < 0: // interrupted
		return nil, ctx.Err()
	case made == 0:
		return nil, &UnreachableError{errs[first]}
	case r.cfg.spread() && first%r.cfg.SourceIPs != 0 && timedOut(errs[first]) && r.madeFromFirst(conns, errs):
		// (The cause last: shout names the flag of its timeout after it.)
		return nil, named.Errorf("connection %d, from 127.0.0.%d, where those from 127.0.0.1 were made (something between that forwards 127.0.0.1's connections alone, as a port podman publishes on loopback does, leaves the others unanswered: use %s 1): %w",
			first+1, 1+first%r.cfg.SourceIPs, optSourceIPs, errs[first])
	}
	return nil, limitError(first, errs[first])
}

// madeFromFirst reports whether, of conns spread over the source
// addresses, some were made from the first, 127.0.0.1, none from it
// failed (errs), and none from the others was made: an overloaded
// server's timeouts fall on any source, and one that stopped accepting
// (its backlog full) times out those dialled after the first few,
// wherever from, where a NAT forwarding 127.0.0.1's alone lets none of
// the others' through.
func (r *run) madeFromFirst(conns []net.Conn, errs []error) bool {
	made := false
	for i, c := range conns {
		switch {
		case i%r.cfg.SourceIPs != 0:
			if c != nil {
				return false
			}
		case errs[i] != nil:
			return false
		default:
			made = made || c != nil
		}
	}
	return made
}

// timedOut reports whether err is a connect that timed out.
func timedOut(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// unansweredSources is, over UDP spread over the source addresses, why
// every socket from 127.0.0.2 and up got no reply at all while each from
// 127.0.0.1 got some; nil otherwise. Where one socket came from
// 127.0.0.1 (Conns up to SourceIPs, 16 by default), a server that
// answers one client alone (a UDP socket connected to the first that
// it heard from, answering it only) leaves the same mark if that client
// is 127.0.0.1's: it was put down to a NAT alone, and the server looked
// blameless. Two or more from 127.0.0.1 answered, each from a port of
// its own, are more clients than one.
func (r *run) unansweredSources() error {
	others, first := r.silentOthers.Load(), r.answeredFirst.Load()
	if !r.cfg.spread() || r.cfg.Endpoint.Network != "udp" || others == 0 || r.silentFirst.Load() > 0 || first == 0 ||
		others+first != int64(r.cfg.Conns) {
		return nil
	}
	if first == 1 {
		return named.Errorf("the sockets from 127.0.0.2 and up, %d of %d, got no reply at all, where the one from 127.0.0.1 did (a server that answers one client alone, as one whose socket is connected to the first it heard from does, leaves the others unanswered, and so does something between that forwards 127.0.0.1's alone, as a port podman publishes on loopback does: with %s 1, through such a NAT every socket is answered)",
			others, r.cfg.Conns, optSourceIPs)
	}
	return named.Errorf("the sockets from 127.0.0.2 and up, %d of %d, got no reply at all, where those from 127.0.0.1, %d, did (something between that forwards 127.0.0.1's alone, as a port podman publishes on loopback does, leaves the others unanswered: use %s 1)",
		others, r.cfg.Conns, first, optSourceIPs)
}

// connectDial, set by a test, wraps the dial of connect.
var connectDial func(func(context.Context, int) (net.Conn, error)) func(context.Context, int) (net.Conn, error)

// setWindow fixes the window measured before the first message is sent:
// it begins when the warm-up's time is up, now if there is none, and
// lasts Duration. A sender then knows whether a message counts by when
// it fell due, whenever it runs: set by the clock as its timers fired,
// in two steps each, a sender running between them sent messages that
// fell due in the window as the warm-up's, in no count.
func (r *run) setWindow() {
	r.scheduleFrom = r.now()
	from := r.scheduleFrom + int64(max(r.cfg.Warmup, 0))
	until := int64(math.MaxInt64) // (a --duration near what a Duration holds: someone's "never")
	if d := int64(r.cfg.Duration); d < until-from {
		until = from + d
	}
	r.windowFrom.Store(from)
	r.windowUntil.Store(until)
}

// inWindow reports whether at (run.now()) is in the window measured: a
// message that fell due then counts (in a closed loop, one sent then).
// One due in an open loop's warm-up and sent once measuring, held back,
// does not: it was counted with those due while measuring, as many more
// than fell due as were held back.
func (r *run) inWindow(at int64) bool {
	return at >= r.windowFrom.Load() && at < r.windowUntil.Load()
}

// clocked is how the clock ended the run's measured time.
type clocked struct {
	measured time.Duration // how long was measured
	began    bool          // measuring began
	// cutShort: every connection (socket) had failed, and nothing was
	// left to measure; interrupted: ctx ended.
	cutShort, interrupted bool
}

// clock runs the warm-up and the measured time, printing progress, and
// says how it ended (clocked). It ends early if ctx ends (interrupted),
// or when no connection is left (cut short): without one nothing more
// can be measured, and the window ends there.
func (r *run) clock(ctx context.Context) clocked {
	from, until := r.windowFrom.Load(), r.windowUntil.Load()
	at := func(t int64) time.Time { return r.epoch.Add(time.Duration(t)) }
	if wait := time.Until(at(from)); wait > 0 {
		if warmupWaits != nil {
			warmupWaits(r)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			r.windowUntil.Store(from) // nothing measured
			return clocked{interrupted: true}
		case <-r.allGone:
			if r.now() < from {
				r.windowUntil.Store(from)
				return clocked{cutShort: true}
			}
			// They failed once the window had begun, this goroutine
			// woken late (the warm-up's time and allGone both ready):
			// their errors are the measured part's (see fail), and the
			// run is cut short as measuring begins, below. (Taken for
			// the warm-up's, it failed "in the warm-up; the first: ?".)
		}
	}
	start := at(from)
	if windowBegins != nil {
		windowBegins(r)
	}
	// (Errors from the window's start on are the measured part's; what
	// failed before is load not measured: see warmNow and ended. Every
	// count goes by the clock against the window, not by when this
	// goroutine ran.)
	if measuringBegan != nil {
		measuringBegan()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	done := time.NewTimer(time.Until(at(until)))
	defer done.Stop()
	last, lastT := r.counts(), start
	// sample adds the time since the last sample to the timeline and
	// the progress lines; a sliver, to the timeline's last entry alone.
	sample := func(now time.Time, sliver bool) {
		h := r.collect()
		c := r.counts()
		dt := now.Sub(lastT).Seconds()
		sec := Second{
			T:              now.Sub(start).Seconds(),
			MessagesPerSec: float64(c.arrived-last.arrived) / dt,
			P50US:          float64(h.ValueAtQuantile(50)),
			P99US:          float64(h.ValueAtQuantile(99)),
			Wrong:          c.wrong - last.wrong,
			Errors:         c.errs - last.errs,
			Lost:           c.lost - last.lost,
		}
		if sliver {
			n := len(r.timeline)
			from := 0.0
			if n > 1 {
				from = r.timeline[n-2].T
			}
			r.timeline[n-1] = mergeSeconds(from, r.timeline[n-1], sec)
			last, lastT = c, now
			return
		}
		r.timeline = appendSecond(r.timeline, sec)
		if r.cfg.Progress != nil {
			// The timeline's entry: every figure of this second alone.
			s := sec
			p99 := "none" // no reply to time: not "0µs", a fast one
			if h.TotalCount() > 0 {
				p99 = us(s.P99US)
			}
			fmt.Fprintf(r.cfg.Progress, "%5.1fs  in the last %.1fs: %10.0f msg/s %8.1f MB/s  p99 %s  %d wrong  %d errors  %d lost\n",
				s.T, dt, s.MessagesPerSec, float64(c.bytes-last.bytes)/dt/1e6,
				p99, s.Wrong, s.Errors, s.Lost)
		}
		last, lastT = c, now
	}
	// end samples what is left of the last second, up to the window's
	// end (not to when this goroutine woke, later on a busy machine: the
	// entry would say it ended then, its rate over the longer time), and
	// returns the window's length. A sliver, under 100 ms, goes into the
	// entry before (alone, its rate is of too few replies to say much;
	// left out, a Ctrl-C's or a server gone's errors just after a
	// second's sample were in no entry).
	//
	// Sending stops as measuring does: a message sent after, while the
	// last second is sampled, was in no count (nor a connection made
	// again then), yet the server served it. A run that ends early ends
	// its window as sending stops (see haltEarly); one on time keeps it,
	// though the timer fire late (a stalled machine): what fell due
	// before its end and was not sent yet is sent as the run stops (see
	// openLoop).
	end := func(early bool) time.Duration {
		if early {
			r.haltEarly()
		}
		r.halt()
		if windowEnded != nil {
			windowEnded()
		}
		stop := at(r.windowUntil.Load())
		switch d := stop.Sub(lastT); {
		case d >= 100*time.Millisecond:
			sample(stop, false)
		case d > 0 && len(r.timeline) > 0:
			sample(stop, true)
		}
		return stop.Sub(start)
	}
	for {
		select {
		case now := <-tick.C:
			// (One that woke past the window's end, with done ready
			// too, leaves the rest to end, which samples to the end.)
			if now.Before(at(r.windowUntil.Load())) {
				sample(now, false)
			}
		case <-done.C:
			if windowTimeUp != nil {
				windowTimeUp(r)
			}
			return clocked{measured: end(false), began: true}
		case <-ctx.Done():
			return clocked{measured: end(true), began: true, interrupted: true}
		case <-r.allGone:
			if r.now() >= r.windowUntil.Load() {
				// They failed after the window's end, this goroutine
				// woken late (done and allGone both ready): the window
				// was measured whole, and the run is not cut short.
				return clocked{measured: end(false), began: true}
			}
			return clocked{measured: end(true), began: true, cutShort: true}
		}
	}
}

// maxTimeline bounds a run's timeline: a day of seconds, about 5.5 MB (a
// variable for tests).
var maxTimeline = 86400

// appendSecond adds s to the timeline tl. Past maxTimeline entries it
// merges each two into one first, so a run of any --duration keeps at
// most maxTimeline: a year's run had 31 million, 2 GB.
func appendSecond(tl []Second, s Second) []Second {
	if len(tl) >= maxTimeline {
		tl = mergePairs(tl)
	}
	return append(tl, s)
}

// mergePairs merges each two entries of tl into one that covers both
// (an odd last one stays): its rate is theirs over the time they cover,
// its counts their sum, and its percentiles the higher of theirs (which
// two histograms' merged would be at most).
func mergePairs(tl []Second) []Second {
	from := 0.0 // when tl[k] began
	out := tl[:0]
	for k := 0; k < len(tl); k += 2 {
		a := tl[k]
		if k+1 == len(tl) {
			out = append(out, a)
			break
		}
		b := tl[k+1]
		out = append(out, mergeSeconds(from, a, b))
		from = b.T
	}
	return out
}

// mergeSeconds is the one entry of a, from from to a.T, and b after it:
// its counts summed, its rate over the whole, its percentiles the higher.
func mergeSeconds(from float64, a, b Second) Second {
	m := Second{T: b.T, P50US: max(a.P50US, b.P50US), P99US: max(a.P99US, b.P99US),
		Wrong: a.Wrong + b.Wrong, Errors: a.Errors + b.Errors, Lost: a.Lost + b.Lost}
	if span := b.T - from; span > 0 {
		m.MessagesPerSec = (a.MessagesPerSec*(a.T-from) + b.MessagesPerSec*(b.T-a.T)) / span
	}
	return m
}

// halt stops the run's sending: the drivers send nothing once stopping
// is set (and stop closed). It may be called more than once.
func (r *run) halt() {
	r.haltOnce.Do(func() {
		r.stopping.Store(true)
		close(r.stop)
	})
}

// haltEarly is halt for a run that ends before its window does (Ctrl-C,
// every connection gone): the window ends now, read once stopping is set,
// and stop closes once the window's end is stored. A sender reads a
// message's time before it looks at stopping (see streamWorker): if it
// finds stopping unset, the time it read is earlier than the end read
// here, and its message in the window. The end read first, a sender
// that read a later time, and the window's end before it was stored,
// counted its message, sent after the window, as measured. One that
// finds stopping set sends nothing, but what fell due before the end
// (sendRest), once stop has closed.
func (r *run) haltEarly() {
	r.haltOnce.Do(func() {
		r.stopping.Store(true)
		end := r.now()
		if windowEnds != nil {
			windowEnds(r, end)
		}
		r.windowUntil.Store(min(r.windowUntil.Load(), end))
		close(r.stop)
	})
}

// cadence is when messages fall due, in run.now() times: message k
// (from 0) at first + k × interval. An open loop's schedule on one
// connection (socket) is one (see scheduleOf); a closed loop's batch,
// sent at once, one of interval 0 (see sentAt).
//
// The interval is in float64, not rounded to a nanosecond: near a
// message a nanosecond a connection, 1.9 ns rounded down to 1 ran the
// schedule twice as fast as asked, twice the messages due. Each due time
// is computed from first, so no rounding adds up either.
type cadence struct {
	first    int64
	interval float64
}

// due is when message k falls due (at most math.MaxInt64).
func (c cadence) due(k uint64) int64 {
	d := float64(k) * c.interval
	if d >= float64(math.MaxInt64-c.first) { // (first is not negative)
		return math.MaxInt64
	}
	return c.first + int64(d)
}

// index is the first message that falls due at or after t. The interval
// must be positive.
func (c cadence) index(t int64) uint64 {
	if t <= c.first {
		return 0
	}
	k := uint64(float64(t-c.first) / c.interval) // about; exactly by due's own rounding:
	for k > 0 && c.due(k-1) >= t {
		k--
	}
	for c.due(k) < t {
		k++
	}
	return k
}

// sentAt is a closed loop's batch, every message of it sent at t.
func sentAt(t int64) cadence { return cadence{first: t} }

// schedule is the rest of an open loop's schedule on one connection
// (socket), of which nothing was sent: the messages of cad from next on.
type schedule struct {
	cad  cadence
	next uint64
	why  unsentWhy
}

// unsentWhy is why an open loop's schedule ended unsent.
type unsentWhy int

const (
	untaken    unsentWhy = iota // the server had not taken the bytes of those sent
	connFailed                  // the connection (socket) had failed for good
	unanswered                  // it had the most in flight unanswered (mostInFlight)
)

// firstDue is when the first message of connection (socket) i's share of
// an open loop falls due, one every interval after: the connections'
// schedules are spread over the interval from the warm-up's start, fixed
// before the first message, as the window is, so that Rate × Duration
// fall due while measuring, whenever a sender begins. Begun when each
// sender first ran, they lost what would have fallen due before: under
// load, 28 of 60 fell due, all sent, and the run was all right at half
// the rate asked for. (In float64: interval × i may pass an int64.)
func (r *run) firstDue(i int, interval float64) int64 {
	return r.scheduleFrom + int64(interval*float64(i)/float64(r.cfg.Conns))
}

// scheduleOf is connection (socket) i's share of an open loop's
// schedule: a message every Conns ÷ Rate seconds, from firstDue.
func (r *run) scheduleOf(i int) cadence {
	interval := float64(time.Second) * float64(r.cfg.Conns) / r.cfg.Rate
	return cadence{first: r.firstDue(i, interval), interval: interval}
}

// openLoopStarts, if not nil, runs as an open loop's sender (goroutine
// driver) or event loop begins, before it looks at its schedule (tests).
var openLoopStarts func()

// scheduleEnded notes that an open loop's connection sends nothing more
// of its schedule, from next on: it failed for good (connFailed), or the
// time was up while the server held it back, its bytes untaken (untaken)
// or its replies too far behind (unanswered). What of it fell due while
// measuring is counted never sent once the window is known
// (countUnsent): every message due is in one count. Each connection
// calls it at most once.
func (r *run) scheduleEnded(cad cadence, next uint64, why unsentWhy) {
	r.mu.Lock()
	r.givenUp = append(r.givenUp, schedule{cad, next, why})
	r.mu.Unlock()
}

// countUnsent counts, once the run has stopped, the messages of the
// schedules ended that fell due while measuring: they are in no other
// count (Unsent).
func (r *run) countUnsent() {
	from, until := r.windowFrom.Load(), r.windowUntil.Load()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.givenUp {
		n := s.dueIn(from, until)
		r.unsent.Add(n)
		switch s.why {
		case connFailed:
			r.unsentFailed.Add(n)
		case unanswered:
			r.unsentUnanswered.Add(n)
		}
	}
	r.givenUp = nil
	if scheduleCounts != nil {
		var due int64
		for _, s := range r.began {
			due += s.dueIn(from, until)
		}
		scheduleCounts(r.cfg.Endpoint.Address, due)
	}
	r.began = nil
}

// dueIn is how many of s's messages, from s.next on, fall due in
// [from, until).
func (s schedule) dueIn(from, until int64) int64 {
	lo, hi := max(s.next, s.cad.index(from)), s.cad.index(until)
	if hi <= lo {
		return 0
	}
	return int64(hi - lo)
}

// scheduleBegan notes that an open loop's connection (socket) began its
// schedule, cad (tests: see scheduleCounts).
func (r *run) scheduleBegan(cad cadence) {
	if scheduleCounts == nil {
		return
	}
	r.mu.Lock()
	r.began = append(r.began, schedule{cad: cad})
	r.mu.Unlock()
}

// scheduleCounts, if not nil, is told once a run to addr has stopped how
// many messages of its open loop's schedules fell due while measuring, by
// bench's own clock: each is in one count (tests, which tell their runs
// apart by address).
var scheduleCounts func(addr string, due int64)

// sentNoted, if not nil, is told of each message a stream connection
// (UDP socket, churning exchange) hands over to be sent: when it fell due
// (in a closed loop, or a datagram, was sent), and whether it counts
// (tests: every one that counts is in one count).
var sentNoted func(r *run, due int64, measured bool)

// windowEnds, if not nil, runs as a run that ends early has read when its
// window ends, at, before it is stored (tests).
var windowEnds func(r *run, at int64)

// sendTimed, if not nil, runs as a sender (a stream connection's writer
// or open loop, an event loop woken, a UDP socket's sender, a churning
// worker) has read the time of what it sends next, before it looks at
// stopping: a sender held there is one descheduled between the two,
// as haltEarly ends the window (tests).
var sendTimed func(r *run)

// windowTimeUp, if not nil, runs as the clock wakes at the window's end,
// before sending stops: a clock held there is one woken late (tests).
var windowTimeUp func(r *run)

// windowEnded, if not nil, runs as measuring ends, once sending has
// stopped (tests).
var windowEnded func()

// warmupWaits, if not nil, runs as the clock begins its wait for the
// warm-up's end: a clock held there is one woken late (tests).
var warmupWaits func(r *run)

// windowBegins, if not nil, runs as the clock wakes at the window's start
// (the warm-up's time is up: the run already counts as measuring, by the
// clock), measuringBegan just after; warmFailCounted as fail has counted
// an error the warm-up's (tests).
var windowBegins func(r *run)
var measuringBegan, warmFailCounted func()

// driversSetUp, if not nil, runs as the drivers are set up, before they
// send (tests).
var driversSetUp func(r *run)

// drainDeadlines, if not nil, is given the goroutine driver's setting
// of every connection's deadline to the end of the wait for the replies
// owed, to call when it will (tests).
var drainDeadlines func(set func())

// failCounted, if not nil, runs as fail has counted an error, with
// whether it was the warm-up's (tests).
var failCounted func(warm bool)

type counts struct{ arrived, bytes, wrong, errs, lost int64 }

func (r *run) counts() counts {
	return counts{r.arrived.Load(), r.arrivedBytes.Load(), r.mismatches.Load(), r.errs.Load(), r.lost.Load()}
}

func (r *run) report(elapsed time.Duration, interrupted bool) *Report {
	cfg := r.cfg
	rep := &Report{
		Settings:         cfg.Settings(),
		Started:          r.epoch.Round(0), // the wall clock's time alone
		Messages:         r.replies.Load(),
		Mismatches:       r.mismatches.Load(),
		MismatchesAfter:  r.mismatchesAfter.Load(),
		Errors:           r.errs.Load(),
		Lost:             r.lost.Load(),
		Late:             r.late.Load(),
		Skipped:          r.skips.Load(),
		Sent:             r.sent.Load(),
		DroppedByBench:   min(r.droppedHere.Load(), r.lost.Load()-r.late.Load()), // a reply that came late was not dropped
		Duplicates:       r.dups.Load(),
		Reordered:        r.reordered.Load(),
		Reconnects:       r.reconnects.Load(),
		Resent:           r.resent.Load(),
		Unserved:         r.unserved.Load(),
		Unmade:           r.unmade.Load(),
		Unsent:           r.unsent.Load(),
		UnsentFailed:     r.unsentFailed.Load(),
		UnsentUnanswered: r.unsentUnanswered.Load(),
		MeasuredS:        elapsed.Seconds(),
		Interrupted:      interrupted,
		WaitCut:          r.waitCut.Load() != 0,
		Unawaited:        r.unawaited.Load(),
		WarmupLost:       r.warmLost.Load(),
		ConnectS:         r.connected.Seconds(),
		DrainS:           r.drained.Seconds(),
	}
	if s := elapsed.Seconds(); s > 0 {
		rep.MessagesPerSec = float64(r.arrived.Load()) / s
		rep.BytesPerSec = float64(r.arrivedBytes.Load()) / s
	}
	h := r.total
	rep.LatencyUS = Latency{
		P50: float64(h.ValueAtQuantile(50)), P90: float64(h.ValueAtQuantile(90)),
		P99: float64(h.ValueAtQuantile(99)), P999: float64(h.ValueAtQuantile(99.9)),
		Max: float64(h.Max()),
	}
	// Lists, even empty: null failed jq's .timeline[] and scripts' loops.
	rep.Timeline = append([]Second{}, r.timeline...)
	rep.Percentiles = append([]Percentile{}, percentiles(h)...)
	if p := r.firstMismatch.Load(); p != nil {
		rep.firstMismatch = *p
	}
	if p := r.firstErr.Load(); p != nil {
		rep.firstErr = r.hinted(*p)
	}
	rep.WarmupErrors = r.warmErrs.Load()
	rep.Unmeasured = r.unmeasured.Load()
	rep.NeverServed, rep.neverServedWhy = r.neverServed, r.neverServedWhy
	rep.unansweredSources = r.unansweredSources()
	if p := r.firstWarmErr.Load(); p != nil {
		rep.firstWarmErr = r.hinted(*p)
	}
	rep.WarmupWrong = r.warmWrong.Load()
	if p := r.firstWarmWrong.Load(); p != nil {
		rep.firstWarmWrong = *p
	}
	rep.NameSettings(nil)
	return rep
}

// dialer returns a dial function that spreads TCP connections and UDP
// sockets to a loopback IPv4 server over several source addresses.
func (r *run) dialer() func(ctx context.Context, i int) (net.Conn, error) {
	e := r.cfg.Endpoint
	spread := r.cfg.spread()
	tlsCfg := r.cfg.TLS
	if tlsCfg == nil {
		tlsCfg = &tls.Config{}
	}
	return func(ctx context.Context, i int) (net.Conn, error) {
		d := net.Dialer{Timeout: r.cfg.ConnectTimeout}
		if spread {
			ip := net.IPv4(127, 0, 0, byte(1+i%r.cfg.SourceIPs))
			d.LocalAddr = &net.TCPAddr{IP: ip}
			d.Control = bindNoPort
			if e.Network == "udp" { // no connection: its port is bound now
				d.LocalAddr, d.Control = &net.UDPAddr{IP: ip}, nil
			}
		}
		if udpLocal != nil && e.Network == "udp" {
			d.LocalAddr = udpLocal
		}
		// (A UDP socket connected to itself took its own datagrams
		// back as wrong replies, where the port refused them: it is
		// dialled again.)
		c, err := client.DialNetwork(ctx, d, e.Network, e.Address)
		if err != nil {
			return nil, client.DialError(e, err)
		}
		var sc *stuckConn
		if tc, ok := c.(*net.TCPConn); ok && !r.cfg.loopsDrive() {
			sc = &stuckConn{TCPConn: tc} // (see streamWorker)
			c = sc
		}
		if !e.TLS {
			return c, nil
		}
		tc, err := client.Handshake(ctx, c, e.Address, tlsCfg, r.cfg.ConnectTimeout)
		if t, ok := tc.(*tls.Conn); ok && sc != nil {
			return &stuckTLS{t, sc}, nil
		}
		return tc, asItIs(err)
	}
}

// udpLocal, set by a test, is the address each UDP socket is bound to,
// where the spread or the system picks one if it is nil.
var udpLocal net.Addr

// asItIs is a handshake's error err without the escaping client.Handshake
// gives what the server chose (escape.Error, for callers that print it):
// a report holds its texts as they are, for its JSON, which escapes them
// as JSON does, and escapes them where it prints them (WriteText; shout
// escapes the errors it prints). Escaped here, first_error had a name's
// ESC as the four characters \x1b, which a program reading the JSON
// could not tell from a name that held them.
func asItIs(err error) error {
	var ce *client.ConnError
	if errors.As(err, &ce) {
		if ee, ok := ce.Err.(escape.Error); ok {
			ce.Err = ee.Err
		}
	}
	return err
}

// limitError explains a failure to open connection i when earlier ones
// succeeded: almost always a limit of this machine.
func limitError(i int, err error) error {
	return fmt.Errorf("connection %d: %w", i+1, explainLimit(err))
}

// explainLimit words err, if it is a limit of this machine, with what to
// do about it.
func explainLimit(err error) error {
	switch {
	case sockerr.OutOfFiles(err):
		return named.Errorf("the open-file limit is reached (%v); raise it (ulimit -n) or use fewer %s", err, optConns)
	case sockerr.AddrNotAvail(err):
		return named.Errorf("out of ephemeral ports (%v); use more %s or fewer %s", err, optSourceIPs, optConns)
	}
	return err
}

// percentiles samples h's distribution from 0% to 99.9999% at ten points
// per decade of 1/(1-q), the spacing of a log-scale percentile plot, and
// ends with the maximum.
func percentiles(h *hdrhistogram.Histogram) []Percentile {
	if h.TotalCount() == 0 {
		return nil
	}
	var ps []Percentile
	for k := 0; k <= 60; k++ {
		q := 100 * (1 - math.Pow(10, -float64(k)/10))
		ps = append(ps, Percentile{Percent: q, US: float64(h.ValueAtQuantile(q))})
	}
	return append(ps, Percentile{Percent: 100, US: float64(h.Max())})
}
