//go:build linux

package shouttest

import (
	"context"
	"io"
	"net"
	"syscall"
	"testing"

	"shout/internal/sockfd"
)

// HeldPort returns an address of 127.0.0.1 where no server answers and
// a listen fails all the same, "address already in use", for a minute:
// the socket lesson's server (docs/lesson.md, 2.3), which does not set
// SO_REUSEADDR, served a client there and hung up first, and its side of
// the connection waits out TIME_WAIT.
//
// The kernel keeps no TIME_WAIT where its table of them is full
// (net.ipv4.tcp_max_tw_buckets; TcpExtTCPTimeWaitOverflow counts it),
// as other tests' churn can fill it: the port is then free, and a
// server a test expected to fail served on it until the package's time
// limit (TestServeReusePortHeldWithNoServer, 10 minutes in go test ./...
// under two CPU hogs). A listen probes the hold; a port not held is made
// again, a few times, and then held by the connection kept open instead
// (until the test ends): a socket that does not listen holds the port as
// the one in TIME_WAIT would, which is what the tests ask of it.
func HeldPort(t testing.TB) *net.TCPAddr {
	t.Helper()
	for range 5 {
		if addr := heldPort(t, false); held(addr) {
			return addr
		}
	}
	addr := heldPort(t, true)
	if !held(addr) {
		t.Fatalf("a connection kept open on %v does not hold its port", addr)
	}
	t.Logf("the kernel kept no TIME_WAIT to hold a port, in 5 tries (its table full: net.ipv4.tcp_max_tw_buckets, TcpExtTCPTimeWaitOverflow): %v is held by a connection kept open", addr)
	return addr
}

// held reports whether a listen on addr fails: a socket holds its port.
func held(addr *net.TCPAddr) bool {
	probe, err := net.Listen("tcp4", addr.String())
	if err != nil {
		return true
	}
	probe.Close()
	return false
}

// heldPort is one try of HeldPort; if open, the connection stays open,
// both its ends, until the test ends.
func heldPort(t testing.TB, open bool) *net.TCPAddr {
	t.Helper()
	lc := net.ListenConfig{Control: sockfd.Setter(sockfd.Option{Level: syscall.SOL_SOCKET, Opt: syscall.SO_REUSEADDR, Value: 0})} // as the lesson's server
	ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := ln.Accept()
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	if open {
		t.Cleanup(func() {
			conn.Close()
			client.Close()
		})
		return ln.Addr().(*net.TCPAddr)
	}
	defer client.Close()
	conn.Close() // the server hangs up first: its side of the connection keeps the port
	if _, err := io.ReadAll(client); err != nil {
		t.Fatal(err)
	}
	return ln.Addr().(*net.TCPAddr)
}
