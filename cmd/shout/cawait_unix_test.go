//go:build unix

package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"shout/internal/shouttest"
)

// connect and bench say that they wait to read --ca, or --cert (a named
// pipe that nobody writes to yet), as serve logs such a wait: they were
// silent for the 10 s the read waits, and the user saw nothing happen.
// (Here the notice comes at once, not after pemWaitNotice.)
func TestCAWaitIsSaid(t *testing.T) {
	if runtime.GOOS == "darwin" {
		t.Skip("macOS: Go's poller cannot wait on a pipe, and a named pipe with no writer is an error at once (certs.ReadPEMContext): no wait to say")
	}
	defer func(d time.Duration) { pemWaitNotice = d }(pemWaitNotice)
	pemWaitNotice = 0
	for _, command := range []string{"connect", "bench"} {
		for _, flag := range []string{"--ca", "--cert"} {
			t.Run(command+flag, func(t *testing.T) {
				dir := t.TempDir()
				pipe := filepath.Join(dir, "pem\x1b[31m.pem")
				shouttest.NamedPipe(t, pipe)
				args := []string{command, flag, pipe, "tls://127.0.0.1:1"}
				if flag == "--cert" {
					key := filepath.Join(dir, "key.pem")
					if err := os.WriteFile(key, []byte("no PEM here either\n"), 0o600); err != nil {
						t.Fatal(err)
					}
					args = append(args, "--key", key)
				}
				var stderr shouttest.Log
				done := make(chan int, 1)
				go func() {
					done <- run(context.Background(), args, strings.NewReader(""), io.Discard, &stderr)
				}()
				escaped := strings.ReplaceAll(pipe, "\x1b", `\x1b`)
				notice := "shout: waiting for " + flag + " " + escaped + ": a pipe with nothing written yet; giving up after 10s\n"
				said := stderr.WaitFor(notice, bound)
				// A writer that writes no PEM ends the wait at once. (Not
				// blocking: a read that gave up has left no reader.)
				if w, err := os.OpenFile(pipe, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					io.WriteString(w, "no PEM here\n")
					w.Close()
				}
				var code int
				select {
				case code = <-done:
				case <-time.After(2 * bound): // the read gives up after 10 s
					t.Fatalf("shout %s still running after %v; stderr:\n%s", command, 2*bound, stderr.String())
				}
				want := notice + "shout: " + flag + " " + escaped + ": "
				if !said || code != 2 || !strings.HasPrefix(stderr.String(), want) {
					t.Errorf("status %d, stderr:\n%s\nwant status 2, and stderr to begin\n%s", code, stderr.String(), want)
				}
			})
		}
	}
}
