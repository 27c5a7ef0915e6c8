package bench

import (
	"fmt"
	"io"
)

// WriteText writes the report for people: the settings, then throughput,
// latency, what was wrong and the first instance of each kind.
func (r *Report) WriteText(w io.Writer) {
	loop := "closed loop"
	if r.Rate > 0 {
		loop = fmt.Sprintf("open loop at %.0f msg/s", r.Rate)
	}
	fmt.Fprintf(w, "%s://%s: %d conns, %d-byte %s messages, depth %d, %s, mode %s, %gs measured after %gs warm-up\n",
		r.Network, r.Addr, r.Conns, r.Size, r.Text, r.Depth, loop, r.Mode, r.DurationS, r.WarmupS)
	fmt.Fprintf(w, "  messages  %d  (%.0f msg/s, %.1f MB/s)\n", r.Messages, r.MessagesPerSec, r.BytesPerSec/1e6)
	l := r.LatencyUS
	fmt.Fprintf(w, "  latency   p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n", us(l.P50), us(l.P90), us(l.P99), us(l.P999), us(l.Max))
	fmt.Fprintf(w, "  replies   %d wrong", r.Mismatches)
	if r.Network == "udp" {
		fmt.Fprintf(w, ", %d lost, %d duplicated, %d reordered", r.Lost, r.Duplicates, r.Reordered)
	}
	fmt.Fprintf(w, "; %d errors\n", r.Errors)
	if r.FirstMismatch != "" {
		fmt.Fprintf(w, "  first wrong reply: %s\n", r.FirstMismatch)
	}
	if r.FirstError != "" {
		fmt.Fprintf(w, "  first error: %s\n", r.FirstError)
	}
	if r.OK() {
		fmt.Fprintf(w, "  every reply checked: all right\n")
	}
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
