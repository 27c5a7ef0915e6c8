package bench

import (
	"math"
	"testing"
	"time"
)

// bareRun is a run of cfg (its defaults filled in) with nothing started:
// its histogram, for the workers a test makes and records in.
func bareRun(cfg *Config) *run {
	cfg.defaults()
	r := &run{cfg: *cfg, stop: make(chan struct{})}
	r.total = r.newHist()
	return r
}

// Every latency a run can see is in its percentiles and its maximum: an
// open loop of three minutes against a server that falls behind sees
// replies due minutes ago. (The histograms held 60 s, and a longer
// latency counted as a reply in no percentile.) One past what a run can
// see still counts, at the top.
func TestLongLatenciesRecorded(t *testing.T) {
	cfg := Config{Duration: 3 * time.Minute}
	r := bareRun(&cfg)
	w := r.newWorker()
	w.record(r, 10*time.Millisecond)
	w.record(r, 90*time.Second)
	w.record(r, 150*time.Second)
	r.collect()
	within := func(got, want float64) bool { return got >= want*0.999 && got <= want*1.001 }
	l := r.report(cfg.Duration, false).LatencyUS
	if !within(l.P50, 90e6) || !within(l.Max, 150e6) {
		t.Errorf("latencies 10 ms, 90 s and 150 s: p50 %.0f µs, max %.0f µs; want 90 s and 150 s", l.P50, l.Max)
	}
	w.record(r, 100*time.Hour)
	r.collect()
	rep := r.report(cfg.Duration, false)
	if top := float64(r.total.HighestTrackableValue()); rep.Messages != 4 || rep.LatencyUS.Max < top*0.999 {
		t.Errorf("and then 100 h: %d messages, max %.0f µs; want 4 and the top, %.0f µs", rep.Messages, rep.LatencyUS.Max, top)
	}
}

// A --timeout so long that twice it passes what a time.Duration holds
// (a user's "never") still records latencies: the histogram's top
// wrapped negative, and every latency was reported as 0 µs, all right.
func TestHugeTimeoutRecorded(t *testing.T) {
	for _, cfg := range []Config{
		{Duration: time.Second, Timeout: 2_000_000 * time.Hour},
		{Duration: math.MaxInt64 - time.Second, Timeout: time.Second},
	} {
		r := bareRun(&cfg)
		w := r.newWorker()
		w.record(r, 250*time.Microsecond)
		w.record(r, 2*time.Millisecond)
		r.collect()
		l := r.report(time.Second, false).LatencyUS
		if l.P50 < 249 || l.P50 > 251 || l.Max < 1998 || l.Max > 2002 {
			t.Errorf("--duration %v, --timeout %v: latencies 250 µs and 2 ms reported as p50 %.0f µs, max %.0f µs", cfg.Duration, cfg.Timeout, l.P50, l.Max)
		}
	}
}
