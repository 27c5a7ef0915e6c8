//go:build unix

package main

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
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
