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

// `timeout 60 shout serve` stops gracefully: timeout sends SIGTERM to
// shout and then to its process group, shout in it. Here timeout is
// sent SIGTERM itself, which it passes on as when its time is up.
func TestServeUnderTimeoutStopsGracefully(t *testing.T) {
	timeout, err := exec.LookPath("timeout")
	if err != nil {
		t.Skip("no timeout command")
	}
	// In a process group of its own (as timeout makes it anyway), so
	// that the test can end it all if it fails.
	setup := func(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }
	p := startUnder(t, nil, false, []string{timeout, "1h"}, setup, []string{"--shutdown-timeout=0", "tcp://127.0.0.1:0"})
	pgid := p.cmd.Process.Pid
	t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGKILL) })
	c := busyClient(t, p.addr("tcp"))
	p.cmd.Process.Signal(syscall.SIGTERM)
	checkGracefulStop(t, p, c)
}

// `timeout 60 shout bench` reports what it measured when its time is
// up: timeout's two SIGTERMs (to bench, then to its process group) are
// one request. Here timeout is sent SIGTERM itself, which it passes on.
func TestBenchUnderTimeoutKeepsReport(t *testing.T) {
	timeout, err := exec.LookPath("timeout")
	if err != nil {
		t.Skip("no timeout command")
	}
	addr, got, release := heldServer(t)
	cmd := exec.Command(timeout, "1h", "shout", "bench", addr, "--conns", "1", "--duration", "10m", "--warmup", "0", "--timeout", "10m", "--text", "ascii", "--mode", "ascii")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := startCmd(t, cmd)
	pgid := p.cmd.Process.Pid
	t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGKILL) })
	p.settings()
	waitFor(t, got, "a message at the server")
	p.cmd.Process.Signal(syscall.SIGTERM)
	if l := p.line(p.stderr, "the stop notice"); !strings.Contains(l, "terminated: stopping") {
		t.Errorf("stderr %q, want it to say it is stopping", l)
	}
	release()
	out, code := p.rest()
	if code != 0 || !strings.Contains(out, "interrupted") || !strings.Contains(out, "every reply checked: all right") {
		t.Errorf("status %d, want 0 and a report that says interrupted and all right:\n%s", code, out)
	}
}

// Ctrl-C on `timeout 60 shout serve` at a shell prompt stops gracefully:
// the terminal sends SIGINT to its foreground group, timeout and shout
// alike, and timeout passes it on twice more (to shout, then to the
// group). Those copies are not a second Ctrl-C. Here the test sends
// SIGINT to the group, as the terminal would.
func TestServeUnderTimeoutCtrlCStopsGracefully(t *testing.T) {
	timeout, err := exec.LookPath("timeout")
	if err != nil {
		t.Skip("no timeout command")
	}
	setup := func(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }
	p := startUnder(t, nil, false, []string{timeout, "1h"}, setup, []string{"--shutdown-timeout=0", "tcp://127.0.0.1:0"})
	pgid := p.cmd.Process.Pid
	t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGKILL) })
	c := busyClient(t, p.addr("tcp"))
	syscall.Kill(-pgid, syscall.SIGINT)
	checkGracefulStop(t, p, c)
}

// Ctrl-C on `timeout 60 shout bench` at a shell prompt ends the run with
// its report: the copies of the SIGINT timeout passes on are not a
// second Ctrl-C, which would stop bench at once without one.
func TestBenchUnderTimeoutCtrlCKeepsReport(t *testing.T) {
	timeout, err := exec.LookPath("timeout")
	if err != nil {
		t.Skip("no timeout command")
	}
	addr, got, release := heldServer(t)
	cmd := exec.Command(timeout, "1h", "shout", "bench", addr, "--conns", "1", "--duration", "10m", "--warmup", "0", "--timeout", "10m", "--text", "ascii", "--mode", "ascii")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := startCmd(t, cmd)
	pgid := p.cmd.Process.Pid
	t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGKILL) })
	p.settings()
	waitFor(t, got, "a message at the server")
	syscall.Kill(-pgid, syscall.SIGINT)
	if l := p.line(p.stderr, "the stop notice"); !strings.Contains(l, "interrupt: stopping") {
		t.Errorf("stderr %q, want it to say it is stopping", l)
	}
	release()
	out, code := p.rest()
	if code != 0 || !strings.Contains(out, "interrupted") || !strings.Contains(out, "every reply checked: all right") {
		t.Errorf("status %d, want 0 and a report that says interrupted and all right:\n%s", code, out)
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
