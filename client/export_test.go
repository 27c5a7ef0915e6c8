package client

import (
	"testing"
	"time"
)

// SetWatchClock gives the stuck watch of every Pipe now for its clock
// (time since the Pipe began) and ticks for its ticker, until t ends.
// Tests that call it must not run in parallel.
func SetWatchClock(t testing.TB, now func() time.Duration, ticks <-chan time.Time) {
	watchClock = func() (func() time.Duration, <-chan time.Time) { return now, ticks }
	t.Cleanup(func() { watchClock = nil })
}
