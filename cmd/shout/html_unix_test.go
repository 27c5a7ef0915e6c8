//go:build unix

package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"shout/internal/shouttest"
	"shout/server"
)

// --html writes to a pipe as to a file: --html /dev/stdout, or a shell's
// >(gzip > page.html.gz). The page was truncated before it was written,
// which a pipe refuses: the run was lost with "--html: truncate
// /dev/stdout: invalid argument" and status 1.
func TestBenchHTMLToPipe(t *testing.T) {
	addr := shouttest.Start(t, &server.Server{Logger: slog.New(slog.DiscardHandler)})
	fifo := filepath.Join(t.TempDir(), "page")
	shouttest.NamedPipe(t, fifo)
	page := make(chan string, 1)
	go func() {
		f, err := os.Open(fifo) // until shout opens it to write
		if err != nil {
			page <- err.Error()
			return
		}
		defer f.Close()
		b, err := io.ReadAll(f)
		if err != nil {
			page <- err.Error()
			return
		}
		page <- string(b)
	}()
	var stdout, stderr strings.Builder
	code := run(context.Background(), []string{"bench", addr, "--conns", "1", "--duration", "1s", "--warmup", "0", "--html", fifo},
		strings.NewReader(""), &stdout, &stderr)
	if code != 0 {
		t.Errorf("status %d, want 0\nstderr:\n%s", code, stderr.String())
	}
	select {
	case p := <-page:
		if !strings.Contains(p, `id="verdict">every reply checked: all right</p>`) {
			t.Errorf("the pipe got %q, want the page", p[:min(len(p), 300)])
		}
	case <-time.After(bound):
		t.Fatalf("nothing came through the pipe within %v", bound)
	}
}
