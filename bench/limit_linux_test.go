package bench_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"shout/bench"
	"shout/internal/shouttest"
	"shout/server"
)

const limitEnv = "SHOUT_BENCH_LIMIT_ADDR"

// The open-file check counts the descriptors the event loops need as well
// as the connections: on a machine with many cores (GOMAXPROCS=64 here),
// connections that fit under the limit by themselves must be refused
// with the error that names ulimit -n, not start loops that run out of
// descriptors and measure nothing for the whole run.
func TestFileLimitCountsTheLoops(t *testing.T) {
	if addr := os.Getenv(limitEnv); addr != "" { // the child, under ulimit -n 200
		if goroutineDriver {
			return
		}
		var lim syscall.Rlimit
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
		cfg := quick("tcp", addr)
		cfg.Conns = int(lim.Max) - 32 // fits, by the connections alone
		rep, err := bench.Run(context.Background(), cfg)
		if err != nil {
			fmt.Printf("RESULT error: %v\n", err)
		} else {
			fmt.Printf("RESULT report: %d messages, %d errors, first error %q\n", rep.Messages, rep.Errors, rep.FirstError)
		}
		return
	}
	if goroutineDriver {
		t.Skip("the event loops' descriptors")
	}
	addr := shouttest.Start(t, &server.Server{Logger: slog.New(slog.DiscardHandler)})
	cmd := exec.Command("sh", "-c", `ulimit -n 200 && exec "$0" -test.run '^TestFileLimitCountsTheLoops$' -test.count=1`, os.Args[0])
	cmd.Env = append(os.Environ(), limitEnv+"="+addr, "GOMAXPROCS=64")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var result string
	for _, l := range strings.Split(string(out), "\n") {
		if r, ok := strings.CutPrefix(l, "RESULT "); ok {
			result = r
		}
	}
	if !strings.HasPrefix(result, "error: ") || !strings.Contains(result, "ulimit -n") {
		t.Errorf("168 connections under an open-file limit of 200, with 64 cores: %q, want the error that names ulimit -n\n%s", result, out)
	}
}

// UDP sockets past the open-file limit are called sockets, as the rest
// of a UDP run's report calls them: bench said "19000 connections need
// about 19032 open files" of a run that makes no connection. TCP's are
// connections.
func TestFileLimitNamesUDPSockets(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Max > 1<<20 {
		t.Skipf("an open-file hard limit of %d (%v): too many sockets to ask for", lim.Max, err)
	}
	for network, what := range map[string]string{"udp": "sockets", "tcp": "connections"} {
		cfg := quick(network, "127.0.0.1:9")
		cfg.Conns = int(lim.Max) + 1
		_, err := bench.Run(context.Background(), cfg)
		want := fmt.Sprintf("%d %s need about", cfg.Conns, what)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Run with %d %s %s past the hard limit %d: %v; want an error that says %q", cfg.Conns, network, what, lim.Max, err, want)
		}
	}
}
