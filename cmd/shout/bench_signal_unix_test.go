//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
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

// bench stopped at once, by SIGQUIT or a second Ctrl-C, leaves no --html
// page it created: the file was left behind, empty.
func TestBenchStopAtOnceRemovesItsPage(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(*testing.T, *benchProc, chan struct{}) // and wait for the end
	}{
		{"SIGQUIT", func(t *testing.T, p *benchProc, got chan struct{}) {
			p.settings()
			waitFor(t, got, "a message at the server")
			p.cmd.Process.Signal(syscall.SIGQUIT)
			p.rest()
		}},
		{"a second SIGINT", func(t *testing.T, p *benchProc, got chan struct{}) { interruptTwice(t, p, got) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, got, _ := lineServer(t, answerNever) // replies owed for ever
			page := filepath.Join(t.TempDir(), "page.html")
			p := startBench(t, addr, "--conns", "1", "--warmup", "0", "--timeout", "10m", "--html", page)
			tc.stop(t, p, got)
			if _, err := os.Stat(page); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the page bench created is still there (%v), want it removed", err)
			}
		})
	}
}
