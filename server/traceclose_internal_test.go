package server

import (
	"strings"
	"testing"
	"time"
)

// A connection's close line says how long it lasted as the log's close
// line does below a millisecond: it said "in 0s" of one the log had
// open for 366µs, as if it had taken no time.
func TestTraceCloseSaysHowLong(t *testing.T) {
	start := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{366*time.Microsecond + 400*time.Nanosecond, "in 366µs\n"},
		{1503 * time.Microsecond, "in 2ms\n"},
		{202*time.Millisecond + 400*time.Microsecond, "in 202ms\n"},
		{0, "in 0s\n"},
	} {
		var b strings.Builder
		c := &connTrace{t: &tracer{w: &b}, fd: 9}
		c.Close(&ConnInfo{Start: start, End: start.Add(tc.d), Reason: ReasonEOF, BytesIn: 14, BytesOut: 14})
		if !strings.HasSuffix(b.String(), "; 14 bytes in, 14 out, "+tc.want) {
			t.Errorf("a connection of %v: %q, want it to end %q", tc.d, b.String(), tc.want)
		}
	}
}

// A datagram dropped as a loop is one that equals a reply just sent to
// its source: the trace says it was taken for that reply bounced back,
// not that it was one. nc -v -u's probes, a few datagrams of one X, are
// its own, and a learner read "it is a reply just sent there, bounced
// back" of them.
func TestTraceLoopSaysTakenFor(t *testing.T) {
	var b strings.Builder
	p := &packetTrace{t: &tracer{w: &b}, fd: 8}
	p.Sendto(&DatagramInfo{Reason: ReasonLoop}, nil)
	want := "no sendto: loop, the same as a reply sent there less than 10ms before: taken for that reply, bounced back\n"
	if !strings.HasSuffix(b.String(), want) {
		t.Errorf("trace %q, want it to end %q", b.String(), want)
	}
}
