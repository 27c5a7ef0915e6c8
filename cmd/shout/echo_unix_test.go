//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func init() {
	commands["shout-slow-notice"] = slowNoticeMain
}

// slowNoticeMain is shout whose standard error takes 3 echo windows to
// return from writing the stop notice, once it has passed it on, as a
// slow terminal or a full pipe may take.
func slowNoticeMain() {
	catchQuit()
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, slowNotice{os.Stderr}))
}

type slowNotice struct{ w *os.File }

func (s slowNotice) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if bytes.Contains(p, []byte(": stopping;")) {
		time.Sleep(3 * echoWindow) // what makes the write slow, not a wait for something
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
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGINT {
		t.Errorf("exit %v, want to be stopped by SIGINT", err)
	}
}
