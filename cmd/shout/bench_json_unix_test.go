//go:build unix

package main

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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

// With --json and stdout a file that takes nothing more where a write of
// nothing still goes (a full disk; here the file size limit, ulimit -f 0),
// bench fails before its run too: it was tried with a write of nothing,
// and measured for the whole --duration, failing at the end. A file it
// can write, >> onto an earlier run's, gets the JSON alone after it.
func TestBenchJSONFullFileBeforeRun(t *testing.T) {
	addr, got, _ := lineServer(t, answerAtOnce)
	dir := t.TempDir()
	full, err := os.Create(filepath.Join(dir, "full.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	cmd := exec.Command("sh", "-c", `ulimit -f 0 && exec shout "$@"`, "sh", "bench", addr, "--json", "--conns", "1", "--duration", "10m", "--warmup", "0")
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = full, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	exited := make(chan int, 1)
	go func() { exited <- exitWithin(t, cmd) }()
	select {
	case <-got:
		t.Fatal("bench sent messages: it ran")
	case code := <-exited:
		if want := "shout: write /dev/stdout: file too large\n"; code != 1 || stderr.String() != want {
			t.Errorf("status %d, stderr %q; want 1 and %q", code, stderr.String(), want)
		}
	}
	if fi, err := full.Stat(); err != nil || fi.Size() != 0 {
		t.Errorf("the file it could not write: %v, %v; want it empty", fi.Size(), err)
	}

	name := filepath.Join(dir, "runs.json")
	if err := os.WriteFile(name, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	runs, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer runs.Close()
	cmd = exec.Command("shout", "bench", addr, "--json", "--conns", "1", "--duration", "200ms", "--warmup", "0", "--text", "ascii", "--mode", "ascii")
	cmd.Stdout = runs
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	earlier, last, _ := strings.Cut(string(b), "\n")
	if earlier != "{}" {
		t.Errorf("the earlier run's line became %q", earlier)
	}
	jsonAlone(t, last)
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
