//go:build !linux

package server_test

import (
	"errors"
	"net"
	"testing"
)

// needLinux skips t: it reads what (a Linux socket option or ioctl) to
// learn what the server's kernel holds, which this system does not have.
func needLinux(t *testing.T, what string) {
	t.Helper()
	t.Skipf("needs Linux's %s, to see into the server's sockets", what)
}

func bytesAcked(*net.TCPConn) (int64, error) { return 0, errors.ErrUnsupported }

func waitAcked(t *testing.T, _ *net.TCPConn) { needLinux(t, "TCP_INFO") }

// inServer would wait until the server's kernel has acknowledged all c
// wrote; this system does not say. Its callers write no more than the
// server's receive window takes, so all of it goes at once, with no
// window update awaited: what a wait on Linux makes sure of (see
// stuckWriting).
func inServer(*testing.T, *net.TCPConn) {}
