package bench

import (
	"fmt"
	"io"
	"strings"
)

// WriteText writes the report for people: the settings, then throughput,
// latency, what was wrong and the first instance of each kind.
func (r *Report) WriteText(w io.Writer) {
	loop := "closed loop"
	if r.Rate > 0 {
		loop = fmt.Sprintf("open loop at %.0f msg/s", r.Rate)
	}
	fmt.Fprintf(w, "%s://%s: %d conns, %d-byte %s messages, depth %d, %s, mode %s, %gs measured after %gs warm-up; every count below is of messages sent while measuring\n",
		r.Network, r.Addr, r.Conns, r.Size, r.Text, r.Depth, loop, r.Mode, r.DurationS, r.WarmupS)
	fmt.Fprintf(w, "  messages  %d  (%.0f msg/s, %.1f MB/s)\n", r.Messages, r.MessagesPerSec, r.BytesPerSec/1e6)
	l := r.LatencyUS
	fmt.Fprintf(w, "  latency   p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n", us(l.P50), us(l.P90), us(l.P99), us(l.P999), us(l.Max))
	fmt.Fprintf(w, "  replies   %d wrong, %d lost", r.Mismatches, r.Lost)
	if r.Network == "udp" {
		fmt.Fprintf(w, ", %d duplicated, %d reordered", r.Duplicates, r.Reordered)
	}
	fmt.Fprintf(w, "; %d errors\n", r.Errors)
	if r.FirstMismatch != "" {
		fmt.Fprintf(w, "  first wrong reply: %s\n", r.FirstMismatch)
	}
	if r.FirstError != "" {
		fmt.Fprintf(w, "  first error: %s\n", r.FirstError)
	}
	fmt.Fprintf(w, "  %s\n", r.verdict())
}

// verdict is the report's last line: all right, or why not.
func (r *Report) verdict() string {
	if r.OK() {
		return "every reply checked: all right"
	}
	var why []string
	if r.Messages == 0 {
		why = append(why, "no reply came back")
	}
	for _, c := range []struct {
		n    int64
		what string
	}{{r.Mismatches, "wrong"}, {r.Lost, "lost"}, {r.Errors, "errors"}} {
		if c.n > 0 {
			why = append(why, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	return "not all right: " + strings.Join(why, ", ")
}

// us formats microseconds for people.
func us(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fs", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.2fms", v/1e3)
	}
	return fmt.Sprintf("%.0fµs", v)
}
