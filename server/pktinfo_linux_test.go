package server_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"shout/internal/shouttest"
	"shout/server"
)

// On a wildcard listener, a reply comes from the address the datagram was
// sent to, not from whichever address the kernel would pick.
func TestUDPReplyFromDestination(t *testing.T) {
	for _, network := range []string{"udp4", "udp"} { // "udp" on 0.0.0.0 is a dual-stack IPv6 socket
		t.Run(network, func(t *testing.T) {
			pc, err := net.ListenPacket(network, "0.0.0.0:0")
			if err != nil {
				t.Fatal(err)
			}
			obs := make(datagrams, 16)
			shouttest.ServePacket(t, &server.Server{Observer: obs}, pc)
			port := pc.LocalAddr().(*net.UDPAddr).AddrPort().Port()
			to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), port)

			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.WriteToUDPAddrPort([]byte("where from"), to); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(bound))
			buf := make([]byte, 64)
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatal(err)
			}
			if string(buf[:n]) != "WHERE FROM" {
				t.Errorf("got %q", buf[:n])
			}
			if from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port()); from != to {
				t.Errorf("reply from %v, want %v", from, to)
			}
			if d := obs.next(t); netip.AddrPortFrom(d.Local.Addr().Unmap(), d.Local.Port()) != to {
				t.Errorf("observed Local %v, want %v", d.Local, to)
			}
		})
	}
}
