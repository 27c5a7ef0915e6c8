package shouttest

import (
	"net"
	"sync"
	"testing"

	"shout/endpoint"
)

// StreamServer runs a stand-in TCP server on 127.0.0.1 that calls handle
// for each connection in its own goroutine and closes the connection when
// handle returns. It stops when the test ends and returns its address.
func StreamServer(t testing.TB, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { defer c.Close(); handle(c) })
		}
	})
	return ln.Addr().String()
}

// PacketServer runs a stand-in UDP server on 127.0.0.1 that sends back
// what answer returns for the n-th datagram it reads (from 0). It stops
// when the test ends and returns its address.
func PacketServer(t testing.TB, answer func(n int, b []byte) [][]byte) string {
	t.Helper()
	return PacketServerConn(t, answer).LocalAddr().String()
}

// PacketServerConn is PacketServer, and returns its socket rather than
// its address: a test that counts what was lost reads the datagrams the
// kernel dropped there, its receive buffer full (the stand-in left
// without CPU on a busy machine), which the stand-in never saw.
func PacketServerConn(t testing.TB, answer func(n int, b []byte) [][]byte) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	servePackets(t, pc, func(n int, _ net.Addr, b []byte) [][]byte { return answer(n, b) })
	return pc
}

// PacketServerFrom is PacketServer whose answer is also told where each
// datagram came from (one client socket among several).
func PacketServerFrom(t testing.TB, answer func(n int, from net.Addr, b []byte) [][]byte) string {
	t.Helper()
	return PacketServerFromConn(t, answer).LocalAddr().String()
}

// PacketServerFromConn is PacketServerFrom, and returns its socket, as
// PacketServerConn does.
func PacketServerFromConn(t testing.TB, answer func(n int, from net.Addr, b []byte) [][]byte) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	servePackets(t, pc, answer)
	return pc
}

// PacketServerIPv6 is PacketServer on [::1]. It skips the test, saying
// so, where the machine has no IPv6 loopback.
func PacketServerIPv6(t testing.TB, answer func(n int, b []byte) [][]byte) string {
	t.Helper()
	return PacketServerIPv6Conn(t, answer).LocalAddr().String()
}

// PacketServerIPv6Conn is PacketServerIPv6, and returns its socket, as
// PacketServerConn does.
func PacketServerIPv6Conn(t testing.TB, answer func(n int, b []byte) [][]byte) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp", "[::1]:0")
	if err != nil {
		t.Skipf("SKIP: no IPv6 loopback here: %v", err)
	}
	servePackets(t, pc, func(n int, _ net.Addr, b []byte) [][]byte { return answer(n, b) })
	return pc
}

func servePackets(t testing.TB, pc net.PacketConn, answer func(n int, from net.Addr, b []byte) [][]byte) string {
	// As large a receive buffer as shout serve's sockets ask for
	// (endpoint.Listen): with the kernel's default (208 KiB), a stand-in
	// left without CPU for a while on a loaded machine dropped datagrams
	// at 400 a second, and a bench test counted them lost (58 of 400,
	// never answered in a minute).
	if b, ok := pc.(interface{ SetReadBuffer(int) error }); ok {
		b.SetReadBuffer(endpoint.UDPReadBuffer) // as much as the kernel gives, or the default
	}
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for n := 0; ; n++ {
			k, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			for _, r := range answer(n, from, buf[:k]) {
				pc.WriteTo(r, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// Refusing is a TCP address on 127.0.0.1 where nothing listens, for as
// long as the test runs: its port is a connection's own, which the
// test holds open, so that no other socket can take it (as a port let go
// could be, by any listener of the packages' tests running at once) and
// a dial there is refused.
func Refusing(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return c.LocalAddr().String()
}

// RefusingUDP is Refusing over UDP: its port is that of a socket the
// test holds, connected to another of its own, which takes datagrams
// from that one alone; one from anywhere else finds no socket, and the
// system refuses it (ICMP port unreachable). A port let go could be
// taken by any server of the tests, and a client socket given it was
// connected to itself. (A test of that very dial wants the port free.)
func RefusingUDP(t testing.TB) string {
	t.Helper()
	peer, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	held, err := net.Dial("udp", peer.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { held.Close() })
	return held.LocalAddr().String()
}
