//go:build unix

package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func init() {
	commands["shout-slow-notice"] = slowNoticeMain
	commands["shout-slow-relayed-notice"] = slowRelayedNoticeMain
}

// slowNoticeMain is shout whose standard error takes 3 echo windows to
// return from writing the stop notice, once it has passed it on, as a
// slow terminal or a full pipe may take.
func slowNoticeMain() {
	catchQuit()
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, slowNotice{w: os.Stderr}))
}

// slowRelayedNoticeMain is shout whose first signal is passed on again
// as its notice is written, as GNU timeout's copies come to a Ctrl-C at
// a shell prompt (see echoes), and whose notice then takes 3 echo
// windows to write, on bench's signal clock: that clock stands still
// until bench has timed the copy, however long a busy machine takes to
// hand it over, and then moves on by the slow write's time. A copy read
// only once the notice was written is timed 3 windows late.
func slowRelayedNoticeMain() {
	catchQuit()
	c := &relayClock{at: time.Now(), timed: make(chan struct{})}
	signalClock = c.now
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, slowNotice{os.Stderr, c}))
}

type slowNotice struct {
	w     *os.File
	relay *relayClock // if not nil: send shout a SIGINT as the notice is written
}

func (s slowNotice) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if !bytes.Contains(p, []byte(": stopping;")) {
		return n, err
	}
	if s.relay == nil {
		time.Sleep(3 * echoWindow) // what makes the write slow, not a wait for something
		return n, err
	}
	s.relay.armed.Store(true)
	syscall.Kill(os.Getpid(), syscall.SIGINT)
	select {
	case <-s.relay.timed:
	case <-time.After(5 * time.Second): // not timed during the write: read after it (the test waits 10 s)
	}
	s.relay.pass(3 * echoWindow)
	return n, err
}

// relayClock is bench's signal clock in slowRelayedNoticeMain: it moves
// only when pass is called, and closes timed when it is first read once
// armed (bench timing the copy).
type relayClock struct {
	mu    sync.Mutex
	at    time.Time
	armed atomic.Bool
	once  sync.Once
	timed chan struct{}
}

func (c *relayClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.armed.Load() {
		c.once.Do(func() { close(c.timed) })
	}
	return c.at
}

func (c *relayClock) pass(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = c.at.Add(d)
}

// A second Ctrl-C that comes an echo window after the notice of the
// first was shown stops bench at once, however long that notice took to
// write: the window counted from when the write returned, so a second
// Ctrl-C a person gave on reading it was taken for a copy of the first
// and ignored, and bench waited out --timeout (the second-interrupt
// tests failed so about once in 30 on a busy machine).
func TestBenchSecondInterruptAfterSlowNotice(t *testing.T) {
	addr, got, _ := lineServer(t, answerNever) // replies owed for ever
	p := startCmd(t, exec.Command("shout-slow-notice", "bench", addr, "--conns", "1", "--warmup", "0", "--timeout", "10m"))
	_, err := interruptTwice(t, p, got)
	if !stoppedBySIGINT(err) {
		t.Errorf("exit %v, want to be stopped by SIGINT", err)
	}
}

// A relay's copy of the Ctrl-C that began the stop, come as its notice is
// written, is a copy however long that notice takes to write: bench
// waits for the replies owed and reports. Timed from the signal but read
// only once the notice was written, the copy was taken for a second
// Ctrl-C, and bench stopped at once without a report (status 130).
func TestBenchRelayedInterruptDuringSlowNotice(t *testing.T) {
	addr, got, release := lineServer(t, answerOnRelease)
	p := startCmd(t, exec.Command("shout-slow-relayed-notice", "bench", addr, "--conns", "1", "--duration", "10m", "--warmup", "0", "--timeout", "10m", "--text", "ascii", "--mode", "ascii"))
	p.settings()
	waitFor(t, got, "a message at the server")
	p.cmd.Process.Signal(syscall.SIGINT)
	if l := p.line(p.stderr, "the stop notice"); !strings.Contains(l, "interrupt: stopping") {
		t.Errorf("stderr %q, want it to say it is stopping", l)
	}
	release()
	out, code := p.rest()
	if code != 0 || !strings.Contains(out, "interrupted") || !strings.Contains(out, "every reply checked: all right") {
		t.Errorf("status %d, want 0 and a report that says interrupted and all right:\n%s", code, out)
	}
}
