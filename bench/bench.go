package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"shout/client"
	"shout/internal/endpoint"
)

// Config is one load run. The zero value of each field but Endpoint
// means its default.
type Config struct {
	Endpoint endpoint.Endpoint
	// Conns is the number of connections (TCP, Unix) or sockets (UDP);
	// zero means 50.
	Conns int
	// Size is each message's length in bytes, newline included; zero means 64.
	Size int
	// Depth is how many messages each connection keeps in flight in a
	// closed loop; zero means 1.
	Depth int
	// Duration is how long to measure; zero means 5 s.
	Duration time.Duration
	// Warmup runs unmeasured before Duration: its messages count in no
	// figure, right or wrong. Zero means 1 s, negative none.
	Warmup time.Duration
	// Rate, if positive, makes an open loop of Rate messages per second in
	// all, latency measured from when each message was due.
	Rate float64
	// Text is "utf8" (default: ASCII mixed with Latin, Greek, Cyrillic,
	// CJK and characters whose uppercase is longer, such as ß) or "ascii".
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
	// Timeout is how long a reply may take before it is an error (TCP) or
	// lost (UDP), and how long the replies still owed at the end are
	// waited for before they are lost; zero means 5 s. Over TCP the deadline is refreshed at
	// most every eighth of it, so a late reply is caught after between 7/8
	// of Timeout and all of it.
	Timeout time.Duration
	// SourceIPs spreads connections to a loopback IPv4 server over this
	// many source addresses, 127.0.0.1 up, so thousands of connections
	// do not run out of ephemeral ports; zero means 16.
	SourceIPs int
	// Progress, if not nil, gets one line a second while measuring.
	Progress io.Writer
}

func (c *Config) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Conns, 50)
	def(&c.Size, 64)
	def(&c.Depth, 1)
	def(&c.SourceIPs, 16)
	if c.Duration <= 0 {
		c.Duration = 5 * time.Second
	}
	if c.Warmup == 0 {
		c.Warmup = time.Second
	}
	if c.Warmup < 0 {
		c.Warmup = 0
	}
	if c.Text == "" {
		c.Text = "utf8"
	}
	if c.Mode == "" {
		c.Mode = "upper"
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
}

// Latency percentiles, in microseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// Second is one second of the measured window, for a chart over time.
type Second struct {
	// T is the time from the start of measuring to this second's end, in seconds.
	T              float64 `json:"t"`
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

// Report is the outcome of a run.
type Report struct {
	// Messages counts the replies to messages sent while measuring.
	Messages       int64   `json:"messages"`
	MessagesPerSec float64 `json:"messages_per_sec"`
	BytesPerSec    float64 `json:"bytes_per_sec"`
	LatencyUS      Latency `json:"latency_us"`
	Mismatches     int64   `json:"mismatches"`
	Errors         int64   `json:"errors"`
	// Lost counts messages sent while measuring whose reply never came
	// (TCP: still owed when the connection failed or the run ended).
	Lost          int64  `json:"lost"`
	Duplicates    int64  `json:"duplicates"`
	Reordered     int64  `json:"reordered"`
	FirstMismatch string `json:"first_mismatch,omitempty"`
	FirstError    string `json:"first_error,omitempty"`

	// Timeline has one entry per second measured.
	Timeline []Second `json:"timeline"`
	// Percentiles is the latency distribution over the whole run, from the
	// median out to 99.9999% and the maximum, spaced for a log scale.
	Percentiles []Percentile `json:"percentiles"`

	// The settings.
	Addr      string  `json:"addr"`
	Network   string  `json:"network"`
	Conns     int     `json:"conns"`
	Size      int     `json:"size"`
	Depth     int     `json:"depth"`
	DurationS float64 `json:"duration_s"`
	WarmupS   float64 `json:"warmup_s"`
	Rate      float64 `json:"rate"`
	Text      string  `json:"text"`
	Mode      string  `json:"mode"`
}

// OK reports whether replies came back, every one right, and nothing
// was lost or failed.
func (r *Report) OK() bool {
	return r.Messages > 0 && r.Mismatches == 0 && r.Errors == 0 && r.Lost == 0
}

// run is the state shared by a run's workers.
type run struct {
	cfg       Config
	ref       func(msg []byte) []byte // the reply msg should get
	measuring atomic.Bool
	stopping  atomic.Bool
	stop      chan struct{}

	msgs, mismatches, errs, lost, dups, reordered atomic.Int64
	firstMismatch, firstErr                       atomic.Pointer[string]

	mu       sync.Mutex
	workers  []*worker
	total    *hdrhistogram.Histogram
	timeline []Second
}

// worker is one connection's counters; its histogram is merged once a
// second so recording never contends.
type worker struct {
	mu   sync.Mutex
	hist *hdrhistogram.Histogram
}

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, 60_000_000, 3) }

// record counts a reply to a message sent while measuring.
func (w *worker) record(r *run, d time.Duration) {
	r.msgs.Add(1)
	w.mu.Lock()
	w.hist.RecordValue(max(d.Microseconds(), 1))
	w.mu.Unlock()
}

func (r *run) fail(err error) {
	if r.stopping.Load() {
		return
	}
	r.errs.Add(1)
	s := err.Error()
	r.firstErr.CompareAndSwap(nil, &s)
}

// mismatch counts a wrong reply to a message sent while measuring.
func (r *run) mismatch(got, want []byte) {
	if r.mismatches.Add(1) > 1 && r.firstMismatch.Load() != nil {
		return // only the first is shown: spare a wrong server's every reply the formatting
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	// Show about 80 bytes from a little before the difference.
	from := max(0, i-40)
	clip := func(b []byte) []byte { return b[from:min(len(b), from+80)] }
	s := fmt.Sprintf("got %q, want %q (first difference at byte %d", clip(got), clip(want), i)
	if from > 0 {
		s += fmt.Sprintf(", shown from byte %d", from)
	}
	s += ")"
	r.firstMismatch.CompareAndSwap(nil, &s)
}

// collect merges every worker's histogram into total and returns the
// interval's own histogram.
func (r *run) collect() *hdrhistogram.Histogram {
	interval := newHist()
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

func (r *run) newWorker() *worker {
	w := &worker{hist: newHist()}
	r.mu.Lock()
	r.workers = append(r.workers, w)
	r.mu.Unlock()
	return w
}

// UnreachableError is Run's error when not one connection could be made.
type UnreachableError struct{ Err error }

func (e *UnreachableError) Error() string { return e.Err.Error() }
func (e *UnreachableError) Unwrap() error { return e.Err }

// Run loads the server as cfg says and returns the report. Its error is
// for a run that could not start (the server unreachable, a limit of this
// machine); problems during the run are counted in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.defaults()
	ref, err := reference(cfg.Mode, cfg.Lang)
	if err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, ref: ref, stop: make(chan struct{}), total: newHist()}
	dial := r.dialer()
	if err := checkFileLimit(cfg.Conns); err != nil {
		return nil, err
	}
	// Connect everything first, so the run measures serving, not connecting.
	conns := make([]net.Conn, 0, cfg.Conns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range cfg.Conns {
		c, err := dial(i)
		if err != nil {
			if i == 0 {
				return nil, &UnreachableError{err}
			}
			return nil, limitError(i, err)
		}
		conns = append(conns, c)
	}
	// With no warm-up the first messages count too.
	r.measuring.Store(cfg.Warmup == 0)
	var wg sync.WaitGroup
	for i, c := range conns {
		w := r.newWorker()
		wg.Go(func() {
			if cfg.Endpoint.Network == "udp" {
				r.udpWorker(i, w, c)
			} else {
				r.streamWorker(i, w, c)
			}
		})
	}
	elapsed := r.clock(ctx)
	// Stop sending, and give the replies still owed up to Timeout to come:
	// the workers stop refreshing their deadlines, so this one holds, and
	// what has not come by then is lost.
	r.stopping.Store(true)
	close(r.stop)
	drainBy := time.Now().Add(cfg.Timeout)
	for _, c := range conns {
		c.SetDeadline(drainBy)
	}
	wg.Wait()
	r.collect()
	return r.report(elapsed), nil
}

// clock runs the warm-up and the measured time, printing progress, and
// returns how long was measured (shorter if ctx ended first).
func (r *run) clock(ctx context.Context) time.Duration {
	if r.cfg.Warmup > 0 {
		select {
		case <-time.After(r.cfg.Warmup):
		case <-ctx.Done():
			return 0
		}
	}
	start := time.Now()
	r.measuring.Store(true)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	end := time.NewTimer(r.cfg.Duration)
	defer end.Stop()
	last, lastT := r.counts(), start
	for {
		select {
		case now := <-tick.C:
			h := r.collect()
			c := r.counts()
			dt := now.Sub(lastT).Seconds()
			r.timeline = append(r.timeline, Second{
				T:              now.Sub(start).Seconds(),
				MessagesPerSec: float64(c.msgs-last.msgs) / dt,
				P50US:          float64(h.ValueAtQuantile(50)),
				P99US:          float64(h.ValueAtQuantile(99)),
				Wrong:          c.wrong - last.wrong,
				Errors:         c.errs - last.errs,
				Lost:           c.lost - last.lost,
			})
			if r.cfg.Progress != nil {
				fmt.Fprintf(r.cfg.Progress, "%5.0fs %10.0f msg/s %8.1f MB/s  p99 %s  wrong %d  errors %d  lost %d\n",
					now.Sub(start).Seconds(), float64(c.msgs-last.msgs)/dt, float64(c.msgs-last.msgs)*float64(r.cfg.Size)/dt/1e6,
					us(float64(h.ValueAtQuantile(99))), c.wrong, c.errs, c.lost)
			}
			last, lastT = c, now
		case <-end.C:
			r.measuring.Store(false)
			return r.cfg.Duration
		case <-ctx.Done():
			r.measuring.Store(false)
			return time.Since(start)
		}
	}
}

type counts struct{ msgs, wrong, errs, lost int64 }

func (r *run) counts() counts {
	return counts{r.msgs.Load(), r.mismatches.Load(), r.errs.Load(), r.lost.Load()}
}

func (r *run) report(elapsed time.Duration) *Report {
	cfg := r.cfg
	rep := &Report{
		Messages:   r.msgs.Load(),
		Mismatches: r.mismatches.Load(),
		Errors:     r.errs.Load(),
		Lost:       r.lost.Load(),
		Duplicates: r.dups.Load(),
		Reordered:  r.reordered.Load(),
		Addr:       cfg.Endpoint.Address,
		Network:    cfg.Endpoint.Network,
		Conns:      cfg.Conns,
		Size:       cfg.Size,
		Depth:      cfg.Depth,
		DurationS:  cfg.Duration.Seconds(),
		WarmupS:    cfg.Warmup.Seconds(),
		Rate:       cfg.Rate,
		Text:       cfg.Text,
		Mode:       cfg.Mode,
	}
	if s := elapsed.Seconds(); s > 0 {
		rep.MessagesPerSec = float64(rep.Messages) / s
		rep.BytesPerSec = rep.MessagesPerSec * float64(cfg.Size)
	}
	h := r.total
	rep.LatencyUS = Latency{
		P50: float64(h.ValueAtQuantile(50)), P90: float64(h.ValueAtQuantile(90)),
		P99: float64(h.ValueAtQuantile(99)), P999: float64(h.ValueAtQuantile(99.9)),
		Max: float64(h.Max()),
	}
	rep.Timeline = r.timeline
	rep.Percentiles = percentiles(h)
	if p := r.firstMismatch.Load(); p != nil {
		rep.FirstMismatch = *p
	}
	if p := r.firstErr.Load(); p != nil {
		rep.FirstError = *p
	}
	return rep
}

// dialer returns a dial function that spreads TCP connections to a
// loopback IPv4 server over several source addresses.
func (r *run) dialer() func(i int) (net.Conn, error) {
	e := r.cfg.Endpoint
	spread := false
	if e.Network == "tcp" {
		if host, _, err := net.SplitHostPort(e.Address); err == nil {
			ip := net.ParseIP(host)
			spread = ip != nil && ip.IsLoopback() && ip.To4() != nil && r.cfg.SourceIPs > 1
		}
	}
	return func(i int) (net.Conn, error) {
		d := net.Dialer{Timeout: r.cfg.Timeout}
		if spread {
			d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%r.cfg.SourceIPs))}
		}
		c, err := d.Dial(e.Network, e.Address)
		if err != nil {
			return nil, &client.ConnError{Op: "connect", Addr: e.Address, Err: err}
		}
		return c, nil
	}
}

// limitError explains a failure to open connection i when earlier ones
// succeeded: almost always a limit of this machine.
func limitError(i int, err error) error {
	switch {
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return fmt.Errorf("connection %d: the open-file limit is reached (%v); raise it (ulimit -n) or use fewer --conns", i+1, err)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("connection %d: out of ephemeral ports (%v); use more --source-ips or fewer --conns", i+1, err)
	}
	return fmt.Errorf("connection %d: %w", i+1, err)
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
