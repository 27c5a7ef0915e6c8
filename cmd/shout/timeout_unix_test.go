//go:build unix

package main

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// How a stop reaches `timeout 1h shout …`: its time is up (here timeout
// is sent SIGTERM itself, which it passes on as then: to shout, and then
// to its process group, shout in it), or Ctrl-C at a shell prompt (the
// terminal sends SIGINT to the foreground group, timeout and shout alike,
// and timeout passes it on twice more). Either way shout gets copies of
// one signal, which are not a second one: serve stops gracefully, and
// bench reports what it measured. (Copies that come together may merge
// into one, so the SIGTERM rows pass without the rule too; TestEchoes and
// the second-SIGTERM tests hold the rule itself.)
var underTimeout = []struct {
	name   string
	notice string // bench's, as the stop begins
	send   func(timeoutPid int)
}{
	{"time up", "terminated: stopping", func(pid int) { syscall.Kill(pid, syscall.SIGTERM) }},
	{"Ctrl-C", "interrupt: stopping", func(pid int) { syscall.Kill(-pid, syscall.SIGINT) }},
}

func TestServeUnderTimeoutStopsGracefully(t *testing.T) {
	timeout, err := exec.LookPath("timeout")
	if err != nil {
		t.Skip("no timeout command")
	}
	for _, tc := range underTimeout {
		t.Run(tc.name, func(t *testing.T) {
			// In a process group of its own (as timeout makes it anyway),
			// so that the test can end it all if it fails.
			setup := func(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }
			p := startUnder(t, nil, false, []string{timeout, "1h"}, setup, []string{"--shutdown-timeout=0", "tcp://127.0.0.1:0"})
			pgid := p.cmd.Process.Pid
			t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGKILL) })
			c := busyClient(t, p.addr("tcp"))
			tc.send(pgid)
			checkGracefulStop(t, p, c)
		})
	}
}

func TestBenchUnderTimeoutKeepsReport(t *testing.T) {
	timeout, err := exec.LookPath("timeout")
	if err != nil {
		t.Skip("no timeout command")
	}
	for _, tc := range underTimeout {
		t.Run(tc.name, func(t *testing.T) {
			addr, got, release := lineServer(t, answerOnRelease)
			cmd := exec.Command(timeout, "1h", "shout", "bench", addr, "--conns", "1", "--duration", "10m", "--warmup", "0", "--timeout", "10m", "--text", "ascii", "--mode", "ascii")
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			p := startCmd(t, cmd)
			pgid := p.cmd.Process.Pid
			t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGKILL) })
			p.settings()
			waitFor(t, got, "a message at the server")
			tc.send(pgid)
			if l := p.line(p.stderr, "the stop notice"); !strings.Contains(l, tc.notice) {
				t.Errorf("stderr %q, want it to say it is stopping", l)
			}
			release()
			out, code := p.rest()
			if code != 0 || !strings.Contains(out, "interrupted") || !strings.Contains(out, "every reply checked: all right") {
				t.Errorf("status %d, want 0 and a report that says interrupted and all right:\n%s", code, out)
			}
		})
	}
}

// The same signal again at once is a copy of the one that began the stop
// (a relay's, such as timeout's); later, or another signal, it is not.
func TestEchoes(t *testing.T) {
	for _, tc := range []struct {
		began, s os.Signal
		since    time.Duration
		want     bool
	}{
		{os.Interrupt, os.Interrupt, 0, true},
		{syscall.SIGTERM, syscall.SIGTERM, echoWindow - 1, true},
		{os.Interrupt, os.Interrupt, echoWindow, false},
		{syscall.SIGTERM, os.Interrupt, 0, false},
		{nil, syscall.SIGTERM, 0, false}, // a listener's failure began it
	} {
		if got := echoes(tc.began, tc.since, tc.s); got != tc.want {
			t.Errorf("echoes(%v, %v, %v) = %v, want %v", tc.began, tc.since, tc.s, got, tc.want)
		}
	}
}
