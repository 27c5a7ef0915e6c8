//go:build unix

package main

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// With --json and stdout and stderr one file that cannot be written
// (> /dev/full 2>&1), bench fails before its run too.
func TestBenchJSONWithStderrInStdoutWriteErrorBeforeRun(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip(err)
	}
	defer full.Close()
	addr, got, _ := lineServer(t, answerAtOnce)
	cmd := exec.Command("shout", "bench", addr, "--json", "--conns", "1", "--duration", "10m", "--warmup", "0")
	cmd.Stdout, cmd.Stderr = full, full
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	if code := exitWithin(t, cmd); code != 1 {
		t.Errorf("status %d, want 1", code)
	}
	select {
	case <-got:
		t.Error("bench sent messages: it ran")
	default:
	}
}

// Ctrl-C with --json: the report of what was measured is the JSON alone
// on stdout, marked interrupted, and the text on stderr.
func TestBenchJSONInterrupted(t *testing.T) {
	addr, got, _ := lineServer(t, answerAtOnce)
	p := startBench(t, addr, "--json", "--conns", "1", "--duration", "10m", "--warmup", "0", "--text", "ascii", "--mode", "ascii")
	p.settings()
	waitFor(t, got, "a message at the server")
	p.cmd.Process.Signal(syscall.SIGINT)
	out, errs := p.outputs()
	if code := exitWithin(t, p.cmd); code != 0 {
		t.Errorf("status %d, want 0\nstderr:\n%s", code, errs)
	}
	if v := jsonAlone(t, out); v["interrupted"] != true {
		t.Errorf("interrupted %v, want true\nstdout:\n%s", v["interrupted"], out)
	}
	if !strings.Contains(errs, "interrupt: stopping") || !strings.Contains(errs, "every reply checked: all right") {
		t.Errorf("stderr lacks the stop notice or the report:\n%s", errs)
	}
}
