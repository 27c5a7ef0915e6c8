package shouttest

import (
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"shout/endpoint"
)

// A stand-in UDP server's socket asks for the receive buffer shout
// serve's do (endpoint.UDPReadBuffer): with the kernel's default, one not
// run for a while on a loaded machine dropped datagrams, which the bench
// test using it counted lost.
func TestPacketServerReadBuffer(t *testing.T) {
	most, def := rmem(t, "rmem_max"), rmem(t, "rmem_default")
	want := min(endpoint.UDPReadBuffer, most)
	if want <= def {
		t.Skipf("net.core.rmem_max is %d, the default %d: this machine gives no larger receive buffer", most, def)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	servePackets(t, pc, func(int, net.Addr, []byte) [][]byte { return nil })
	raw, err := pc.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var gerr error
	raw.Control(func(fd uintptr) { got, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF) })
	if gerr != nil || got < want {
		t.Errorf("receive buffer %d (%v), want at least %d", got, gerr, want)
	}
}

// rmem is sysctl net.core.name.
func rmem(t *testing.T, name string) int {
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
