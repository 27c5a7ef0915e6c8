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
