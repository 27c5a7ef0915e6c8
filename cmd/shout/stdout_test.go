package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"shout/internal/shouttest"
	"shout/server"
)

// errNoSpace stands for what a write to a full disk returns (> /dev/full).
var errNoSpace = errors.New("write /dev/stdout: no space left on device")

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
			addr, got := signalServer(t, true)
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
