package server

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuf is a log writer safe for a timer's goroutine and the test's.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The line for warnings held back is armed a second after the last line
// let through; if, as it comes due, the limiter's second has passed and
// another warning is let through first (its CompareAndSwap of last before
// heldBack loads last), that warning's own line tells the total. heldBack
// logged a line as well, at the same moment, breaking the once a second
// and counting the warning let through among the "unlogged": A let
// through, B held, C let through at A+1s just before the timer's
// heldBack ran: "rejected_total=3 unlogged=2" beside C's
// "rejected_total=3". Here the state is set as C's allowAt left it, and
// heldBack run as its timer would.
func TestHeldBackAfterALineLetThrough(t *testing.T) {
	var buf syncBuf
	o := NewLogObserver(slog.New(slog.NewTextHandler(&buf, nil))).(*logObserver)
	l := &o.warns[ReasonRejected]
	l.total.Store(3)           // A, B and C
	l.shown.Store(1)           // A's line; C's is about to be written
	l.last.Store(limiterNow()) // C let through just now
	l.due.Store(true)          // B's timer, armed for A's second
	o.heldBack(ReasonRejected)
	if s := buf.String(); s != "" {
		t.Errorf("heldBack logged within a second of a line let through:\n%s", s)
	}
	// C's own line shows its total; D, held after it, gets the line a
	// second after C's.
	l.claim(3)
	l.total.Store(4)
	want := "rejected_total=4 unlogged=1"
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(buf.String(), want); {
		if time.Now().After(deadline) {
			t.Fatalf("no line with %q for the one held after the line let through:\n%s", want, buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Errorf("%d lines, want the one:\n%s", n, buf.String())
	}
}
