package kerneldrops

import (
	"net"
	"testing"
	"time"
)

// UDPSocket and UDPPort find the socket by its port and count what it
// dropped: a socket that nobody reads, its receive buffer small, drops
// what it cannot hold, and each is counted. UDPSocket finds it on a
// wildcard address too (0.0.0.0 takes 127.0.0.1's datagrams, and [::]
// too where it takes IPv4), which the kernel lists by that address, not
// 127.0.0.1; UDPPort finds it at any address, of either family.
func TestUDPSocket(t *testing.T) {
	for _, tc := range []struct {
		name, network string
		ip            net.IP
		drops         func(port int) int64
		any           bool // drops counts any address's socket on the port
	}{
		{"UDPSocket", "udp", net.IPv4(127, 0, 0, 1), UDPSocket, false},
		{"UDPSocket 0.0.0.0", "udp4", net.IPv4zero, UDPSocket, false},
		{"UDPSocket [::]", "udp", net.IPv6unspecified, UDPSocket, false},
		{"UDPPort 127.0.0.2", "udp4", net.IPv4(127, 0, 0, 2), UDPPort, true},
		{"UDPPort ::1", "udp6", net.IPv6loopback, UDPPort, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pc, err := net.ListenUDP(tc.network, &net.UDPAddr{IP: tc.ip})
			if err != nil {
				t.Skip(err) // (no IPv6 here)
			}
			defer pc.Close()
			pc.SetReadBuffer(1) // the kernel's least: a few datagrams
			port := pc.LocalAddr().(*net.UDPAddr).Port
			// UDPPort counts another's socket on the port at another
			// address too (a test beside this one that fills its socket
			// on purpose, as bench's do): what it had dropped already
			// is not this socket's.
			before := tc.drops(port)
			if !tc.any && before != 0 {
				t.Fatalf("%d dropped by a new socket, want 0", before)
			}
			to := pc.LocalAddr().(*net.UDPAddr)
			if to.IP.IsUnspecified() {
				to = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port} // as a client of 127.0.0.1
			}
			c, err := net.DialUDP("udp", nil, to)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			const sent = 200
			for range sent {
				c.Write(make([]byte, 1000))
			}
			// Those the socket holds, read, were not dropped; the rest
			// were (or the backlog dropped them before they reached it).
			held := 0
			pc.SetReadDeadline(time.Now().Add(100 * time.Millisecond)) // (a bound: those held are there at once)
			for buf := make([]byte, 2000); held < sent; held++ {
				if _, err := pc.Read(buf); err != nil {
					break
				}
			}
			if n := tc.drops(port) - before; n == 0 || n > int64(sent-held) {
				t.Errorf("%d dropped of %d sent, %d held; want some, and at most %d", n, sent, held, sent-held)
			}
		})
	}
}
