package bench

import (
	"testing"
	"time"
)

// A goroutine-driven connection's read (and write) is given at least
// Timeout from when it begins, as the event loops give it: a reply that
// comes within Timeout is not a failure. Its deadline is refreshed
// cheaply, only once it is less than 7/8 of the time it was set for
// away, and was set for Timeout, so a read begun an eighth of Timeout
// after the last refresh had 7/8 of it: against a server whose reply
// took 470 ms, under a --timeout of 500ms, tls:// runs failed the
// connection ("i/o timeout") and counted the reply lost.
func TestStreamDeadlineIsAtLeastTimeout(t *testing.T) {
	for _, timeout := range []time.Duration{time.Microsecond, 7 * time.Millisecond, 500 * time.Millisecond, 5 * time.Second, time.Hour} {
		// Every point in the window of a deadline left as it was: from
		// just set (a whole Timeout away, and more) to past.
		for k := 0; k <= 40; k++ {
			before := time.Now()
			by := before.Add(timeout * time.Duration(40-k) / 32)
			refreshAtLeast(&by, timeout, func(time.Time) error { return nil })
			if left := by.Sub(before); left < timeout {
				t.Fatalf("timeout %v, deadline %v away: refreshed to %v from the read's start; want at least the timeout",
					timeout, timeout*time.Duration(40-k)/32, left)
			}
		}
	}
}
