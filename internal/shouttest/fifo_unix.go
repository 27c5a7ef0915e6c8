//go:build unix

package shouttest

import (
	"syscall"
	"testing"
)

// NamedPipe makes a named pipe (a FIFO) at path, or skips the test,
// naming what failed: a system without named pipes cannot have the
// test. The tests that use one hold an open, a read or a reload on a
// file no writer has written yet.
func NamedPipe(t testing.TB, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("no named pipe (mkfifo %s): %v", path, err)
	}
}
