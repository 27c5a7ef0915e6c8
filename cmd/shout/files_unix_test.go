//go:build unix

package main

import (
	"bufio"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// An open-file limit too low for --max-conns is said as shout starts,
// with what to do: without it, the first a user hears of it is accept
// failing, once clients past the limit wait unserved.
func TestServeWarnsOfOpenFileLimitBelowMaxConns(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "": no warning
	}{
		// 200 files, less 16 spare and two for each of 2 loops.
		{[]string{"--max-conns", "1000"}, "past about 180 connections, new clients wait unaccepted until one closes"},
		{[]string{"--max-conns", "1000", "--admin", "127.0.0.1:0"}, "past about 180 connections, new clients wait unaccepted (and /readyz says 503) until one closes"},
		// The goroutine engine makes no loops.
		{[]string{"--max-conns", "1000", "--engine", "goroutine"}, "past about 184 connections"},
		{[]string{"--max-conns", "100"}, ""},
		{[]string{"--max-conns", "0"}, ""}, // no limit asked for: none to warn of
		// The most an int holds (2^31-1 on 386): the files needed, that
		// and more, wrapped to a negative number in the warning.
		{[]string{"--max-conns", strconv.Itoa(math.MaxInt)}, "past about 180 connections"},
		// No TCP or Unix address: no connection, nothing to warn of. It
		// told of --max-conns, which is refused there.
		{[]string{"udp://127.0.0.1:0"}, ""},
		{[]string{"udp://127.0.0.1:0", "--admin", "127.0.0.1:0"}, ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			log := serveUnderFileLimit(t, 200, tc.args...)
			got := ""
			for line := range strings.Lines(log) {
				if strings.Contains(line, "open-file limit") {
					got = line
				}
			}
			switch {
			case tc.want == "" && got != "":
				t.Errorf("warned with room for every connection:\n%s", log)
			case tc.want != "" && !strings.Contains(got, tc.want):
				t.Errorf("want a warning saying %q, and that shows the limit; got:\n%s", tc.want, log)
			case tc.want != "" && !strings.Contains(got, "open_file_limit=200"):
				t.Errorf("the warning does not say the limit:\n%s", got)
			case strings.Contains(got, "need=-"):
				t.Errorf("the warning says a negative number of files needed:\n%s", got)
			}
		})
	}
}

// serveUnderFileLimit runs shout serve with args (on 127.0.0.1:0 unless
// they give a udp:// address) under an
// open-file limit of limit and 2 event loops, stops it once it listens,
// and returns what it logged.
func serveUnderFileLimit(t *testing.T, limit int, args ...string) string {
	t.Helper()
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "udp://") }) {
		args = append(args, "127.0.0.1:0")
	}
	cmd := exec.Command("sh", append([]string{"-c", `ulimit -n "$0" && exec shout serve "$@"`, strconv.Itoa(limit)}, args...)...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=2")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text() + "\n"
		}
	}()
	var log strings.Builder
	timeout := time.After(bound)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				if err := cmd.Wait(); err != nil {
					t.Fatalf("%v:\n%s", err, log.String())
				}
				return log.String()
			}
			log.WriteString(l)
			// The warning comes before the signal is heeded, after the
			// listeners are said.
			if strings.Contains(l, "listening on udp://") {
				cmd.Process.Signal(syscall.SIGTERM)
			}
		case <-timeout:
			t.Fatalf("shout serve did not listen and stop within %v:\n%s", bound, log.String())
		}
	}
}

// A pipe whose every reader is gone is told by what each system's poll
// says of its write end: Linux says POLLERR; macOS (its poll turns a
// kqueue filter's EV_EOF into POLLHUP) and FreeBSD (pipe_poll) say
// POLLHUP, and no POLLERR. Told by POLLERR alone, bench --json | cmd
// whose cmd did not start ran its whole --duration there, to die of
// SIGPIPE at its report (TestBenchJSONReaderGoneBeforeRun).
func TestPipeGone(t *testing.T) {
	for _, tc := range []struct {
		name    string
		revents int16
		want    bool
	}{
		{"room, a reader", unix.POLLOUT, false},
		{"full, a reader", 0, false},
		{"Linux, gone", unix.POLLOUT | unix.POLLERR, true},
		{"FreeBSD, gone", unix.POLLOUT | unix.POLLHUP, true},
		{"macOS, gone", unix.POLLHUP, true},
	} {
		if got := pipeGone(tc.revents); got != tc.want {
			t.Errorf("%s: revents %#x: gone %v, want %v", tc.name, tc.revents, got, tc.want)
		}
	}
}
