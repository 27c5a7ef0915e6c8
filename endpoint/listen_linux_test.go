package endpoint

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A live server on a Unix socket whose backlog is full refuses a connect
// with EAGAIN, not ECONNREFUSED: its socket file is not stale. It was
// removed and the path taken over, and the live server lost its clients.
func TestListenKeepsBusyUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "busy.sock")
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	full := false
	for range 16 { // fill the backlog; nobody accepts
		c, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer syscall.Close(c)
		if err := syscall.Connect(c, &syscall.SockaddrUnix{Name: path}); errors.Is(err, syscall.EAGAIN) {
			full = true
			break
		}
	}
	if !full {
		t.Fatal("16 connections and the backlog of 0 is not full")
	}
	lns, _, err := Listen([]Endpoint{{Network: "unix", Address: path}})
	if err == nil {
		for _, l := range lns {
			l.Close()
		}
		t.Errorf("listening on a live server's socket succeeded; want address in use")
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the live server's socket file was removed: %v", err)
	}
}
