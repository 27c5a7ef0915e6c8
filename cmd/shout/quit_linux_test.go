package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fullPipe is a pipe with no room left: a child whose stdout it is
// blocks in its first write for good.
func fullPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	size, err := unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, os.Getpagesize())
	if err != nil {
		t.Skipf("cannot shrink a pipe: %v", err)
	}
	if _, err := w.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	return r, w
}

// waitWritingPipe returns once one of pid's threads is blocked writing
// to a pipe, as /proc/PID/task/TID/wchan says (pipe_write, or
// anon_pipe_write on newer kernels). Nothing tells of it but that file:
// it is read again every millisecond, for at most bound.
func waitWritingPipe(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(bound)
	named := false // wchan named a function at least once: the kernel tells
	for time.Now().Before(deadline) {
		tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/wchan")
		for _, f := range tasks {
			b, _ := os.ReadFile(f)
			if strings.HasSuffix(string(b), "pipe_write") {
				return
			}
			named = named || len(b) > 0 && string(b) != "0"
		}
		time.Sleep(time.Millisecond)
	}
	if !named {
		t.Skipf("SKIP: this kernel names no function in /proc/PID/task/*/wchan, so a write blocked on a pipe cannot be seen")
	}
	t.Fatalf("process %d not seen blocked writing to its stdout within %v (/proc/PID/task/*/wchan)", pid, bound)
}

// SIGQUIT stops every command at once with status 131 and no goroutine
// dump, also those that do not catch it themselves, here each held
// writing its output to a pipe that nobody reads (shout help serve |
// less, less not reading yet). They had Go's default: every goroutine's
// stack, and status 2.
func TestSIGQUITStopsEveryCommand(t *testing.T) {
	for _, args := range [][]string{
		{"version"},
		{"--version"},
		{"completion", "bash"},
		{"help"},
		{"help", "bench"},
		{"serve", "--help"},
		{"connect", "--help"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			quitWhileWriting(t, exec.Command("shout", args...))
		})
	}
}

// A SIGQUIT ignored when shout started (a script's background job) stops
// it all the same, with 131 and no dump: Go's runtime does not keep it
// ignored, as it does SIGINT and SIGHUP, and would dump its stacks. (The
// catch-all's check for it was never true; the README said such a
// SIGQUIT was left alone.)
func TestSIGQUITIgnoredAtStartStopsAllTheSame(t *testing.T) {
	quitWhileWriting(t, exec.Command("sh", "-c", `trap '' QUIT; exec shout help serve`))
}

// quitWhileWriting starts cmd writing to a full pipe, sends it SIGQUIT
// once it is blocked there, and wants status 131 and no goroutine dump.
func quitWhileWriting(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	_, w := fullPipe(t)
	cmd.Stdout = w
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	waitWritingPipe(t, cmd.Process.Pid)
	cmd.Process.Signal(syscall.SIGQUIT)
	if code := exitWithin(t, cmd); code != 131 {
		t.Errorf("exit status %d, want 131", code)
	}
	noDump(t, stderr.String())
}
