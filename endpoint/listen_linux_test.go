package endpoint

import (
	"errors"
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
