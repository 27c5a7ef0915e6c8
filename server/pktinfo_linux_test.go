package server_test

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"syscall"
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

// A datagram's source may be forged as a subnet's broadcast address,
// whose reply would reach every host there: ServePacket clears the
// SO_BROADCAST that Go sets, so its socket cannot send to one. Loopback
// has a broadcast address too, 127.255.255.255, to which only a socket
// with SO_BROADCAST may send (EACCES otherwise).
func TestServePacketSendsNoBroadcast(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "0.0.0.0:0"} {
		t.Run(addr, func(t *testing.T) {
			pc, err := net.ListenPacket("udp4", addr)
			if err != nil {
				t.Fatal(err)
			}
			shouttest.ServePacket(t, &server.Server{}, pc)
			port := pc.LocalAddr().(*net.UDPAddr).Port
			c, err := net.Dial("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// A reply: ServePacket has set the socket up.
			if got := udpExchange(t, c, []byte("hi")); string(got) != "HI" {
				t.Fatalf("got %q", got)
			}
			// To the client's port, so that if it went, it went to us.
			to := &net.UDPAddr{IP: net.IPv4(127, 255, 255, 255), Port: c.LocalAddr().(*net.UDPAddr).Port}
			if _, err := pc.WriteTo([]byte("to all"), to); !errors.Is(err, syscall.EACCES) {
				t.Errorf("send to %v on the served socket: %v, want %v", to, err, syscall.EACCES)
			}
		})
	}
}
