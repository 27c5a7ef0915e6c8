package bench

import (
	"fmt"
	"testing"
)

// Never sent counts each message of an ended schedule that fell due while
// measuring, from when measuring began up to (not at) when it ended, and
// only those: one due just before the window is not in it, one due at its
// last nanosecond is. The reasons add up to their parts.
func TestCountUnsentIsWhatFellDueInTheWindow(t *testing.T) {
	const from, until = 1000, 2000
	for _, tc := range []struct {
		next                       int64
		interval                   float64
		why                        unsentWhy
		unsent, failed, unanswered int64
	}{
		{next: 1000, interval: 100, why: untaken, unsent: 10}, // due at 1000, 1100, ..., 1900
		{next: 950, interval: 100, why: untaken, unsent: 10},  // 1050, ..., 1950: not 950
		{next: 150, interval: 100, why: untaken, unsent: 10},  // 1050, ..., 1950
		{next: 1999, interval: 100, why: untaken, unsent: 1},  // its last nanosecond
		{next: 2000, interval: 100, why: untaken, unsent: 0},  // as it ended
		{next: 1900, interval: 100, why: connFailed, unsent: 1, failed: 1},
		{next: 1001, interval: 100, why: unanswered, unsent: 10, unanswered: 10},
		// Not whole nanoseconds: 1500, 1501, 1503, 1504, ..., 1999 (1500 + 1.5 × 333).
		{next: 1500, interval: 1.5, why: connFailed, unsent: 334, failed: 334},
	} {
		t.Run(fmt.Sprintf("next %d every %g", tc.next, tc.interval), func(t *testing.T) {
			r := bareRun(&Config{})
			r.windowFrom.Store(from)
			r.windowUntil.Store(until)
			r.scheduleEnded(cadence{first: tc.next, interval: tc.interval}, 0, tc.why)
			r.countUnsent()
			if u, f, a := r.unsent.Load(), r.unsentFailed.Load(), r.unsentUnanswered.Load(); u != tc.unsent || f != tc.failed || a != tc.unanswered {
				t.Errorf("unsent %d (failed %d, unanswered %d); want %d (%d, %d)", u, f, a, tc.unsent, tc.failed, tc.unanswered)
			}
		})
	}
}
