package server_test

import (
	"cmp"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Linux's own ways to look into a socket, for the tests that need them;
// kernel_other_test.go skips those tests elsewhere.

// needLinux skips t where what (a Linux socket option or ioctl) is not
// to be had. Here it is.
func needLinux(*testing.T, string) {}

// unsentBytes is how much of what was written to fd its peer has not
// acknowledged (SIOCOUTQ).
func unsentBytes(fd int) (int, error) { return unix.IoctlGetInt(fd, unix.SIOCOUTQ) }

// inServer waits until the server's kernel has acknowledged all c wrote
// (SIOCOUTQ is 0): it is in the server's receive queue.
func inServer(t *testing.T, c *net.TCPConn) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(bound); ; time.Sleep(time.Millisecond) { // a kernel counter, no event to wait on
		n := -1
		rc.Control(func(fd uintptr) { n, _ = unsentBytes(int(fd)) })
		if n == 0 {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%d bytes not acknowledged within %v", n, bound)
		}
	}
}

// serverSockopts are the options shout sets on the server's side of a
// TCP connection, and their values: as net's connections have them.
var serverSockopts = []struct {
	name       string
	level, opt int
	want       int
}{
	{"TCP_NODELAY", unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
	{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
	{"TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 15},
	{"TCP_KEEPINTVL", unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 15},
	{"TCP_KEEPCNT", unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 9},
}

// tcpInfoOf returns the kernel's TCP_INFO for c; it fails once c is
// closed.
func tcpInfoOf(c *net.TCPConn) (*unix.TCPInfo, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var info *unix.TCPInfo
	cerr := rc.Control(func(fd uintptr) { info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	return info, cmp.Or(cerr, err)
}

// bytesAcked is how many bytes c's peer has acknowledged; it fails once
// c is closed.
func bytesAcked(c *net.TCPConn) (int64, error) {
	info, err := tcpInfoOf(c)
	if err != nil {
		return 0, err
	}
	return int64(info.Bytes_acked) - 1, nil // less the SYN
}

// waitAcked waits until the peer's kernel has acknowledged everything c
// sent, so it is in the server's receive queue.
func waitAcked(t *testing.T, c *net.TCPConn) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		info, err := tcpInfoOf(c)
		if err != nil {
			t.Fatal(err)
		}
		if info.Unacked == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("data never acknowledged")
		}
		time.Sleep(time.Millisecond) // polling a kernel counter, no event to wait on
	}
}
