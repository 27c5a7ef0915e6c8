//go:build unix

package main

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"shout/internal/shouttest"
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

// With --json into a pipe whose reader is gone (| cmd, where cmd did
// not start), bench dies of SIGPIPE before its run, as a write there does,
// not after it: stdout is tried with a write of nothing, which a pipe
// takes with no reader, and the space that tried it before is written
// where no one reads it.
func TestBenchJSONReaderGoneBeforeRun(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	defer w.Close()
	addr, got, _ := lineServer(t, answerAtOnce)
	cmd := exec.Command("shout", "bench", addr, "--json", "--conns", "1", "--duration", "10m", "--warmup", "0")
	cmd.Stdout = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	exitWithin(t, cmd)
	if ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGPIPE {
		t.Errorf("%v, want killed by SIGPIPE", cmd.ProcessState)
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

// Ctrl-C once the time measured is up, as bench waits for the replies
// owed, ends the wait at once: the report is the whole window's, not
// interrupted, says the wait was cut, and counts the reply owed not
// waited for (neither lost nor checked), so the run is not all right,
// status 1. Bench waited out --timeout, and the report said
// "interrupted" of a window measured whole.
func TestBenchJSONSignalInFinalWait(t *testing.T) {
	if runtime.GOOS != "linux" {
		// The goroutine driver closes no connection before the wait's
		// end: nothing here tells the test that the wait began.
		t.Skip("bench's event loops are on Linux")
	}
	// The first connection is answered nothing; the other, at once,
	// closed by bench once the time is up and it owes nothing: the
	// wait has begun.
	var conns atomic.Int32
	waiting := make(chan struct{})
	closed := sync.OnceFunc(func() { close(waiting) })
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		if conns.Add(1) == 1 {
			io.Copy(io.Discard, c)
			return
		}
		defer closed()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if _, err := io.WriteString(c, strings.ToUpper(line)); err != nil {
				return
			}
		}
	})
	p := startBench(t, addr, "--json", "--conns", "2", "--duration", "1s", "--warmup", "0", "--timeout", "10m", "--text", "ascii", "--mode", "ascii")
	p.settings()
	waitFor(t, waiting, "the wait for the replies owed")
	p.cmd.Process.Signal(syscall.SIGINT)
	out, errs := p.outputs()
	if code := exitWithin(t, p.cmd); code != 1 {
		t.Errorf("status %d, want 1\nstderr:\n%s", code, errs)
	}
	v := jsonAlone(t, out)
	if v["interrupted"] != nil || v["wait_cut"] != true || v["unawaited"] != 1.0 || v["lost"] != 0.0 || v["measured_s"] != 1.0 {
		t.Errorf("interrupted %v, wait_cut %v, unawaited %v, lost %v, measured_s %v; want no interrupted, the wait cut, 1 not waited for, 0 lost, 1 s measured\nstdout:\n%s",
			v["interrupted"], v["wait_cut"], v["unawaited"], v["lost"], v["measured_s"], out)
	}
	if strings.Contains(errs, "interrupted") || !strings.Contains(errs, "until a signal ended the wait") || !strings.Contains(errs, "not all right: 1 not waited for") {
		t.Errorf("the text report says interrupted, or not that the wait was cut and 1 reply not waited for:\n%s", errs)
	}
}
