package shouttest

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// UDPSocketDrops finds the socket by its port and counts what it
// dropped: a socket that nobody reads, its receive buffer small, drops
// what it cannot hold, and each is counted.
// So it does for a server on a wildcard address (0.0.0.0 takes
// 127.0.0.1's datagrams, and [::] too where it takes IPv4), which the
// kernel lists by that address, not 127.0.0.1.
func TestUDPSocketDrops(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "0.0.0.0:0", "[::]:0"} {
		t.Run(addr, func(t *testing.T) { testUDPSocketDrops(t, addr) })
	}
}

func testUDPSocketDrops(t *testing.T, addr string) {
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Skip(err)
	}
	defer pc.Close()
	pc.SetReadBuffer(1) // the kernel's least: a few datagrams
	port := pc.LocalAddr().(*net.UDPAddr).Port
	if n := UDPSocketDrops(port); n != 0 {
		t.Fatalf("%d dropped by a new socket, want 0", n)
	}
	c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const sent = 200
	for range sent {
		c.Write(make([]byte, 1000))
	}
	// Those the socket holds, read, were not dropped; the rest were (or
	// the backlog dropped them before they reached it).
	held := 0
	pc.SetReadDeadline(time.Now().Add(100 * time.Millisecond)) // (a bound: those held are there at once)
	for buf := make([]byte, 2000); held < sent; held++ {
		if _, err := pc.Read(buf); err != nil {
			break
		}
	}
	if n := UDPSocketDrops(port); n == 0 || n > int64(sent-held) {
		t.Errorf("%d dropped of %d sent, %d held; want some, and at most %d", n, sent, held, sent-held)
	}
}
