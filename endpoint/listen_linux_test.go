package endpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// A UDP socket of Listen's asks for UDPReadBuffer, alone or in a pair:
// with the kernel's default (208 KiB: 256 datagrams of 64 bytes), a
// server not run for a fifth of a second at 1,000 datagrams a second
// dropped some, and its client counted them lost (a bench test under
// load).
func TestListenUDPReadBuffer(t *testing.T) {
	most, def := sysctl(t, "rmem_max"), sysctl(t, "rmem_default")
	want := min(UDPReadBuffer, most)
	if want <= def {
		t.Skipf("net.core.rmem_max is %d, the default %d: this machine gives no larger receive buffer", most, def)
	}
	for _, s := range []string{"udp://127.0.0.1:0", "127.0.0.1:0"} {
		eps, err := Parse(s, "tcp", "udp")
		if err != nil {
			t.Fatal(err)
		}
		lns, pcs, err := Listen(eps)
		if err != nil {
			t.Fatal(err)
		}
		for _, ln := range lns {
			ln.Close()
		}
		raw, err := pcs[0].(syscall.Conn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var got int
		var gerr error
		raw.Control(func(fd uintptr) { got, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF) })
		pcs[0].Close()
		if gerr != nil || got < want {
			t.Errorf("%s: receive buffer %d (%v), want at least %d", s, got, gerr, want)
		}
	}
}

func sysctl(t *testing.T, name string) int {
	b, err := os.ReadFile("/proc/sys/net/core/" + name)
	if err != nil {
		t.Skipf("net.core.%s: %v", name, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("net.core.%s: %v", name, err)
	}
	return n
}

// After the socket lesson's server (docs/lesson.md, 2.3), which does not
// set SO_REUSEADDR, has hung up first on a client, its connection holds
// the port in TIME_WAIT for a minute, and serve on that port said only
// "bind: address already in use", which sent a learner looking for a
// server that was not there. Where no server answers, it says what holds
// the port; where one does, the bind's words are left as they are.
func TestListenInUseWithNoServer(t *testing.T) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 0) // as the lesson's server
		})
		return errors.Join(err, serr)
	}}
	lesson, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closing := lesson.Addr().(*net.TCPAddr)
	client, err := net.Dial("tcp", closing.String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	conn, err := lesson.Accept()
	if err != nil {
		t.Fatal(err)
	}
	conn.Close() // the server hangs up first: its side of the connection keeps the port
	if _, err := io.ReadAll(client); err != nil {
		t.Fatal(err)
	}
	lesson.Close()

	serving, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer serving.Close()

	// A wildcard is left as bind says it: a server may answer on one of
	// its addresses, not on the one a probe would try.
	for _, tc := range []struct {
		name, addr, want string
	}{
		{"a connection closing", closing.String(), fmt.Sprintf("listen tcp %s: bind: address already in use (no server answers there: a socket that does not listen holds the port, such as a connection that waits out TIME_WAIT, up to a minute, after a server that did not set SO_REUSEADDR hung up first; ss -tan 'sport = :%d' lists it)", closing, closing.Port)},
		{"a server", serving.Addr().String(), fmt.Sprintf("listen tcp %s: bind: address already in use", serving.Addr())},
		{"every IPv4 address", fmt.Sprintf("0.0.0.0:%d", closing.Port), fmt.Sprintf("listen tcp4 0.0.0.0:%d: bind: address already in use", closing.Port)},
		{"every address", fmt.Sprintf(":%d", closing.Port), fmt.Sprintf("listen tcp :%d: bind: address already in use", closing.Port)},
	} {
		eps, err := Parse("tcp://"+tc.addr, "tcp")
		if err != nil {
			t.Fatal(err)
		}
		lns, _, err := Listen(eps)
		for _, l := range lns {
			l.Close()
		}
		if err == nil || err.Error() != tc.want || !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("%s: listen: %v\n  want %s", tc.name, err, tc.want)
		}
	}
}
