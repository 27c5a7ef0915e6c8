package bench

import (
	"context"
	"log/slog"
	"math"
	"testing"
	"time"

	"shout/endpoint"
	"shout/internal/shouttest"
	"shout/server"
)

// A timeline keeps at most maxTimeline entries however long the run,
// merging them so that nothing counted is lost from it: it had one a
// second for ever.
func TestTimelineBounded(t *testing.T) {
	was := maxTimeline
	maxTimeline = 8
	defer func() { maxTimeline = was }()
	var tl []Second
	const seconds = 100
	for k := 1; k <= seconds; k++ {
		tl = appendSecond(tl, Second{T: float64(k), MessagesPerSec: float64(k % 2 * 20), P99US: float64(k), Wrong: 1, Lost: 2})
		if len(tl) > maxTimeline {
			t.Fatalf("after %d seconds, %d entries: more than %d", k, len(tl), maxTimeline)
		}
	}
	var wrong, lost int64
	msgs, from := 0.0, 0.0
	for _, s := range tl {
		wrong += s.Wrong
		lost += s.Lost
		msgs += s.MessagesPerSec * (s.T - from)
		from = s.T
	}
	if last := tl[len(tl)-1]; wrong != seconds || lost != 2*seconds || math.Abs(msgs-10*seconds) > 1e-6 || last.T != seconds || last.P99US != seconds {
		t.Errorf("%d entries: %d wrong, %d lost, %g messages, the last ends at %gs with p99 %g; want %d, %d, %d, %d, %d",
			len(tl), wrong, lost, msgs, last.T, last.P99US, seconds, 2*seconds, 10*seconds, seconds, seconds)
	}
}

// The timeline's last entry ends where the window did, its rate over the
// time measured: sampled when the clock's goroutine woke, after the
// window's end (by a few microseconds, or on a busy machine a sizeable
// part of a second), it said it ended then ("t": 2.0034 of a 2 s
// window) and its rate was its replies, counted in the window alone,
// over the longer time, a drop at the end of every plot that was not
// there. What is left after the last second's sample, under 100 ms (a
// window of 1.05 s, a Ctrl-C just after a progress line), goes into
// that second's entry: left out, the last entry ended before the window
// (1 s of 1.05 s), and the errors in it, of a server gone, were in none.
func TestTimelineEndsWithTheWindow(t *testing.T) {
	addr := shouttest.Start(t, &server.Server{Logger: slog.New(slog.DiscardHandler)})
	for _, tc := range []struct {
		rate      float64
		duration  time.Duration
		interrupt bool // Ctrl-C as the first progress line is written
	}{
		{0, 300 * time.Millisecond, false},
		{1000, 300 * time.Millisecond, false},
		{0, 1050 * time.Millisecond, false},
		{0, time.Minute, true},
	} {
		cfg := Config{Endpoint: endpoint.Endpoint{Network: "tcp", Address: addr},
			Conns: 1, Depth: 1, Rate: tc.rate, Warmup: -1, Duration: tc.duration, Timeout: 5 * time.Second}
		if tc.rate > 0 {
			cfg.Depth = 0
		}
		ctx, cancel := context.WithCancel(context.Background())
		if tc.interrupt {
			cfg.Progress = writerFunc(func(p []byte) (int, error) { cancel(); return len(p), nil })
		}
		rep, err := Run(ctx, cfg)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Timeline) == 0 {
			t.Fatalf("rate %v: no timeline entry of a %v window", tc.rate, cfg.Duration)
		}
		if !tc.interrupt && rep.MeasuredS != tc.duration.Seconds() || tc.interrupt && rep.MeasuredS >= tc.duration.Seconds() {
			t.Errorf("rate %v, %v (interrupted %v): %vs measured, want the window's (to the interrupt)", tc.rate, tc.duration, tc.interrupt, rep.MeasuredS)
		}
		if last := rep.Timeline[len(rep.Timeline)-1]; last.T != rep.MeasuredS {
			t.Errorf("rate %v, %v (interrupted %v): the last timeline entry ends at %vs, the window at %vs measured",
				tc.rate, tc.duration, tc.interrupt, last.T, rep.MeasuredS)
		}
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
