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
	commands["shout-relayed-term"] = relayedTermMain
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
// a shell prompt, or to timeout's own SIGTERM (see echoes), and whose
// notice then takes 3 echo
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
	relay *relayClock // if not nil: send shout the notice's signal again as the notice is written
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
	sig := syscall.SIGINT
	if bytes.Contains(p, []byte("terminated: stopping;")) {
		sig = syscall.SIGTERM
	}
	s.relay.copy(sig)
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

// copy sends shout sig, a relay's copy, and waits until shout has timed
// it on c (at most 5 s).
func (c *relayClock) copy(sig syscall.Signal) {
	c.armed.Store(true)
	syscall.Kill(os.Getpid(), sig)
	select {
	case <-c.timed:
	case <-time.After(5 * time.Second): // not timed during the write: read after it (the tests wait 10 s)
	}
}

func (c *relayClock) pass(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = c.at.Add(d)
}

// relayedTermMain is shout whose SIGTERM is passed on again as serve
// logs that it is shutting down, as GNU timeout passes its own on to
// its command's process group, on a signal clock that stands still: the
// copy is a copy however late a busy machine hands it over. (The stop
// lingers with the test's client, so the copy comes while it runs.)
func relayedTermMain() {
	catchQuit()
	at := time.Now()
	signalClock = func() time.Time { return at }
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, &relayedTerm{w: os.Stderr}))
}

type relayedTerm struct {
	w    *os.File
	sent atomic.Bool
}

func (r *relayedTerm) Write(p []byte) (int, error) {
	n, err := r.w.Write(p)
	if bytes.Contains(p, []byte("shutting down")) && r.sent.CompareAndSwap(false, true) {
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
	}
	return n, err
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

// A relay's copy of the signal that began the stop, come as its notice
// is written, is a copy however long that notice takes to write: bench
// says nothing of it, waits for the replies owed and reports.
//   - Ctrl-C: timed from the signal but read only once the notice was
//     written, the copy was taken for a second Ctrl-C, and bench stopped
//     at once without a report (status 130).
//   - SIGTERM (GNU timeout passes its own on to its command and then to
//     the command's process group): asked whether SIGTERM hurried the
//     stop before whether it was a copy, bench said `shout: terminated
//     again: already stopping` for it (1 of 5 runs of `timeout 1.5 shout
//     bench`, where the kernel had not merged the two).
func TestBenchRelayedSignalDuringSlowNotice(t *testing.T) {
	for _, tc := range []struct {
		sig    syscall.Signal
		notice string
	}{
		{syscall.SIGINT, "interrupt: stopping"},
		{syscall.SIGTERM, "terminated: stopping"},
	} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			addr, got, release := lineServer(t, answerOnRelease)
			p := startCmd(t, exec.Command("shout-slow-relayed-notice", "bench", addr, "--conns", "1", "--duration", "10m", "--warmup", "0", "--timeout", "10m", "--text", "ascii", "--mode", "ascii"))
			p.settings()
			waitFor(t, got, "a message at the server")
			p.cmd.Process.Signal(tc.sig)
			if l := p.line(p.stderr, "the stop notice"); !strings.Contains(l, tc.notice) {
				t.Errorf("stderr %q, want it to say it is stopping", l)
			}
			release()
			out, errs := p.outputs()
			<-p.wait()
			if strings.Contains(errs, "already stopping") {
				t.Errorf("the relay's copy of %v was answered as a second one:\n%s", tc.sig, errs)
			}
			if p.err != nil || !strings.Contains(out, "interrupted") || !strings.Contains(out, "every reply checked: all right") {
				t.Errorf("exit %v, want status 0 and a report that says interrupted and all right:\n%s", p.err, out)
			}
		})
	}
}

// The same for serve: GNU timeout's copy of its SIGTERM (`timeout 60
// shout serve`) says nothing, and the stop is graceful. Asked whether
// SIGTERM hurried the stop before whether it was a copy, serve logged
// "already stopping: SIGTERM again does not hurry the stop" for it (3 of
// 5 runs of `timeout 1 shout serve`).
func TestServeRelayedSIGTERMSaysNothing(t *testing.T) {
	as := func(cmd *exec.Cmd) {
		path, err := exec.LookPath("shout-relayed-term")
		if err != nil {
			t.Fatal(err)
		}
		cmd.Path, cmd.Args[0] = path, "shout-relayed-term"
	}
	p := startUnder(t, nil, false, nil, as, []string{"--shutdown-timeout=0", "tcp://127.0.0.1:0"})
	c := busyClient(t, p.addr("tcp"))
	p.cmd.Process.Signal(syscall.SIGTERM)
	checkGracefulStop(t, p, c)
	if strings.Contains(p.logText(), "already stopping") {
		t.Errorf("the relay's copy of SIGTERM was answered as a second one:\n%s", p.logText())
	}
}
