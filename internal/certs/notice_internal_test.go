package certs

import (
	"context"
	"testing"
	"time"
)

// A notice whose time came as the read ended, and which began only once
// the read had stopped the waiter, says nothing: a timer's Stop does not
// stop a notice that has begun, and "waiting for --cert" could follow
// "certificate reloaded" in serve's log.
func TestWaitNoticeBegunAfterStopSaysNothing(t *testing.T) {
	var fire func()
	defer func(old func(time.Duration, func()) *time.Timer) { afterFunc = old }(afterFunc)
	afterFunc = func(d time.Duration, f func()) *time.Timer {
		fire = f
		return time.NewTimer(time.Hour) // stopped by the waiter, never fired
	}
	said := 0
	ctx := WithWaitNotice(context.Background(), time.Second, func(string, time.Duration) { said++ })
	w := newWaiter(ctx, "--cert", "c.pem")
	w.waiting("a pipe with nothing written yet", pemWait)
	w.stop()
	fire() // the timer's goroutine, late
	if said != 0 {
		t.Errorf("%d notices after the read ended; want none", said)
	}
}
