//go:build unix

package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// openedToRead makes a named pipe and opens it to write, which returns
// once shout has opened it to read: ready is closed then, and shout
// waits for the pipe to be written to its end (nothing is).
func openedToRead(t *testing.T) (path string, ready <-chan struct{}) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "pipe.pem")
	return path, pipeOpenedToRead(t, path)
}

// pipeOpenedToRead is openedToRead, the named pipe made at path.
func pipeOpenedToRead(t *testing.T, path string) (ready <-chan struct{}) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	opened := make(chan struct{})
	writer := make(chan *os.File, 1)
	go func() {
		w, err := os.OpenFile(path, os.O_WRONLY, 0)
		writer <- w
		if err == nil {
			close(opened)
		}
	}()
	t.Cleanup(func() {
		// An open still waiting for a reader returns when one comes.
		if r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			defer r.Close()
		}
		if w := <-writer; w != nil {
			w.Close()
		}
	})
	return opened
}

// A PEM file not written in time is a failure, status 1, not a usage
// error (2): the flag is right, the pipe's writer late, and a
// supervisor that restarts on failures but not on bad flags gave up on
// it. (Each waits 10 s.)
func TestPEMNotWrittenIsNoUsageError(t *testing.T) {
	p := newPKI(t)
	for _, tc := range []struct {
		name string
		args func(pipe string) []string
		flag string
	}{
		{"serve", func(pipe string) []string {
			return []string{"serve", "tls://127.0.0.1:0", "--cert", pipe, "--key", p.serverKey}
		}, "--cert"},
		{"connect", func(pipe string) []string { return []string{"connect", "tls://127.0.0.1:1", "--ca", pipe} }, "--ca"},
		{"bench", func(pipe string) []string { return []string{"bench", "tls://127.0.0.1:1", "--ca", pipe} }, "--ca"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pipe, _ := openedToRead(t)
			cmd := exec.Command("shout", tc.args(pipe)...)
			cmd.Stdin = strings.NewReader("")
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			want := "shout: " + tc.flag + " " + pipe + ": nothing written to it within 10s"
			if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), want) {
				t.Errorf("%v, output:\n%s\nwant status 1 and %q", err, out, want)
			}
		})
	}
}
