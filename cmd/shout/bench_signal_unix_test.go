//go:build unix

package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"shout/internal/shouttest"
	"shout/server"
)

// signalOnSettings is bench's stdout that, as the settings line comes,
// sends this process SIGINT, as a script that reads the line and then
// interrupts bench does, and returns only once the signal has been
// handed to whoever catches it.
type signalOnSettings struct {
	t    *testing.T
	mu   sync.Mutex
	out  bytes.Buffer
	sent bool
}

func (w *signalOnSettings) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.sent && bytes.Contains(p, []byte(" measured after ")) {
		w.sent = true
		// Caught here too, so that the signal does not end the test when
		// bench does not catch it. os/signal hands a signal to every
		// channel that wants it at once: once this one has it, bench's has
		// it if bench caught SIGINT by then.
		mine := make(chan os.Signal, 1)
		signal.Notify(mine, syscall.SIGINT)
		defer signal.Stop(mine)
		syscall.Kill(os.Getpid(), syscall.SIGINT)
		select {
		case <-mine:
		case <-time.After(bound):
			w.t.Errorf("SIGINT not delivered within %v", bound)
		}
	}
	return w.out.Write(p)
}

// A Ctrl-C sent as soon as the settings line is read stops bench: the
// line came before bench caught the signal, and one sent then killed it,
// without the report or, with --json, the last line that says why.
func TestBenchInterruptRightAfterSettings(t *testing.T) {
	addr := shouttest.Start(t, &server.Server{Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithTimeout(context.Background(), bound) // what ended it before
	defer cancel()
	stdout := &signalOnSettings{t: t}
	var stderr strings.Builder
	code := run(ctx, []string{"bench", addr, "--conns", "1", "--duration", "10m", "--warmup", "0"}, strings.NewReader(""), stdout, &stderr)
	// 0 with the report of what was measured, or 130 if nothing was.
	if !strings.Contains(stderr.String(), "shout: interrupt: stopping") || code != 0 && code != 130 {
		t.Errorf("status %d, stderr %q; want 0 or 130, and bench to say it is stopping", code, stderr.String())
	}
}
