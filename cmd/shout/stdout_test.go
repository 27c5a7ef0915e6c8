package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"

	"shout/internal/shouttest"
	"shout/server"
)

// errNoSpace is what a write to a full disk returns (> /dev/full).
var errNoSpace = &os.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.ENOSPC}

// fullWriter fails every write, as a stdout on a full disk does.
type fullWriter struct{}

func (fullWriter) Write([]byte) (int, error) { return 0, errNoSpace }

// A command whose output cannot be written says so and exits 1: shout
// version, shout completion bash >> ~/.bashrc and shout bench > report.txt
// on a full disk exited 0 having written nothing, and the help exited 2,
// as for a usage error, pointing to the help it could not print.
func TestStdoutWriteErrorFails(t *testing.T) {
	addr := shouttest.Start(t, &server.Server{Logger: slog.New(slog.DiscardHandler)})
	for _, args := range [][]string{
		{"version"},
		{"--version"},
		{"completion", "bash"},
		{"--help"},
		{"serve", "--help"},
		{"help", "connect"},
		{"bench", addr, "--conns", "1", "--duration", "10ms", "--warmup", "0"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stderr strings.Builder
			code := run(context.Background(), args, strings.NewReader(""), fullWriter{}, &stderr)
			if want := "shout: " + errNoSpace.Error() + "\n"; code != 1 || stderr.String() != want {
				t.Errorf("status %d, stderr %q; want 1 and %q", code, stderr.String(), want)
			}
		})
	}
}

// bench whose report cannot be written fails before its run, not after
// it: shout bench --duration 10m > report.txt on a full disk measured for
// ten minutes to report nothing.
// With --json too, whose stdout has only the JSON, at the end.
func TestBenchStdoutWriteErrorBeforeRun(t *testing.T) {
	for _, extra := range [][]string{nil, {"--json"}} {
		t.Run(strings.Join(append([]string{"bench"}, extra...), " "), func(t *testing.T) {
			addr, got, _ := lineServer(t, answerAtOnce)
			ctx, cancel := context.WithTimeout(context.Background(), bound) // what ended it before
			defer cancel()
			var stderr strings.Builder
			args := append([]string{"bench", addr, "--conns", "1", "--duration", "10m", "--warmup", "0"}, extra...)
			code := run(ctx, args, strings.NewReader(""), fullWriter{}, &stderr)
			if want := "shout: " + errNoSpace.Error() + "\n"; code != 1 || stderr.String() != want {
				t.Errorf("status %d, stderr %q; want 1 and %q", code, stderr.String(), want)
			}
			select {
			case <-got:
				t.Error("bench sent messages: it ran")
			default:
			}
		})
	}
}

// connect whose standard input or output fails says so as the other
// commands do, naming the file once: it said "write output: write
// /dev/stdout: no space left on device" (> /dev/full) and "read input:
// read /dev/stdin: is a directory" (< /).
func TestConnectStdioErrorSaidOnce(t *testing.T) {
	addr := shouttest.Start(t, &server.Server{Logger: slog.New(slog.DiscardHandler)})
	errIsDir := &os.PathError{Op: "read", Path: "/dev/stdin", Err: syscall.EISDIR}
	for _, tc := range []struct {
		name   string
		stdin  io.Reader
		stdout io.Writer
		want   error
	}{
		{"stdout tcp", strings.NewReader("hi\n"), fullWriter{}, errNoSpace},
		{"stdout udp", strings.NewReader("hi\n"), fullWriter{}, errNoSpace},
		{"stdin tcp", iotest.ErrReader(errIsDir), io.Discard, errIsDir},
		{"stdin udp", iotest.ErrReader(errIsDir), io.Discard, errIsDir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := addr
			if strings.HasSuffix(tc.name, "udp") {
				a = "udp://" + addr
			}
			var stderr strings.Builder
			code := run(context.Background(), []string{"connect", a}, tc.stdin, tc.stdout, &stderr)
			if want := "shout: " + tc.want.Error() + "\n"; code != 1 || stderr.String() != want {
				t.Errorf("status %d, stderr %q; want 1 and %q", code, stderr.String(), want)
			}
		})
	}
}

// connect --history off a terminal names the file on stderr with its
// ESC and newlines escaped, as a PEM file's name is: stderr may be the
// terminal, and a name's ESC was written to it raw.
func TestConnectHistoryNotUsedEscapesTheName(t *testing.T) {
	addr := shouttest.Start(t, &server.Server{})
	var stdout, stderr strings.Builder
	code := run(context.Background(), []string{"connect", "--history", "a\x1b[31m\nb", addr}, strings.NewReader("hi\n"), &stdout, &stderr)
	want := `shout: --history a\x1b[31m\nb: not used: standard input is not a terminal, and only the prompt keeps a history` + "\n"
	if code != 0 || stdout.String() != "HI\n" || stderr.String() != want {
		t.Errorf("status %d, stdout %q, stderr %q; want 0, %q and %q", code, stdout.String(), stderr.String(), "HI\n", want)
	}
}

// An error's last line, "shout: …", is escaped where it is printed, and
// so is bench's header: a Unix socket's name with ESC and a newline in
// it, in the error of the dial, reached the terminal raw.
func TestErrorLineEscapesTheName(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no ESC or newline in a Windows file name")
	}
	dir := t.TempDir()
	addr := "unix://" + filepath.Join(dir, "a\x1b[31m\nb")
	shown := filepath.Join(dir, `a\x1b[31m\nb`)
	for _, tc := range []struct {
		args       []string
		wantStdout string
	}{
		{[]string{"connect", addr}, ""},
		{[]string{"bench", "--duration", "1ms", addr}, "unix://" + shown + ": "},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := run(context.Background(), tc.args, strings.NewReader(""), &stdout, &stderr)
			want := "shout: connect " + shown + ": no such socket\n"
			if code != 1 || stderr.String() != want || !strings.HasPrefix(stdout.String(), tc.wantStdout) || strings.Contains(stdout.String(), "\x1b") {
				t.Errorf("status %d, stdout %q, stderr %q; want 1, %q first and no ESC, %q", code, stdout.String(), stderr.String(), tc.wantStdout, want)
			}
		})
	}
}
