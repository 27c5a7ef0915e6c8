package server_test

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"shout/server"
)

// fakePacketConn is a net.PacketConn that delivers the datagrams put on in
// and records what is written, so that a test can claim any source address
// without sending anything anywhere.
type fakePacketConn struct {
	local *net.UDPAddr
	in    chan fakeDatagram
	done  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	sent  []fakeDatagram
}

type fakeDatagram struct {
	addr netip.AddrPort
	data []byte
}

func newFakePacketConn(local string) *fakePacketConn {
	return &fakePacketConn{
		local: net.UDPAddrFromAddrPort(netip.MustParseAddrPort(local)),
		in:    make(chan fakeDatagram, 16),
		done:  make(chan struct{}),
	}
}

func (c *fakePacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case d := <-c.in:
		return copy(b, d.data), net.UDPAddrFromAddrPort(d.addr), nil
	case <-c.done:
		return 0, nil, net.ErrClosed
	}
}

func (c *fakePacketConn) WriteTo(b []byte, a net.Addr) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = append(c.sent, fakeDatagram{a.(*net.UDPAddr).AddrPort(), bytes.Clone(b)})
	return len(b), nil
}

func (c *fakePacketConn) written() []fakeDatagram {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]fakeDatagram(nil), c.sent...)
}

func (c *fakePacketConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}

func (c *fakePacketConn) LocalAddr() net.Addr              { return c.local }
func (c *fakePacketConn) SetDeadline(time.Time) error      { return nil }
func (c *fakePacketConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fakePacketConn) SetWriteDeadline(time.Time) error { return nil }

// datagrams is an Observer that passes a copy of each DatagramInfo on.
type datagrams chan server.DatagramInfo

func (datagrams) ConnOpen(*server.ConnInfo)         {}
func (datagrams) ConnRead(*server.ConnInfo, []byte) {}
func (datagrams) ConnClose(*server.ConnInfo)        {}
func (ch datagrams) Datagram(d *server.DatagramInfo) {
	c := *d
	c.Data = bytes.Clone(d.Data)
	ch <- c
}

func (ch datagrams) next(t *testing.T) server.DatagramInfo {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(bound):
		t.Fatalf("no datagram observed within %v", bound)
		return server.DatagramInfo{}
	}
}

// servePacket serves pc until the test ends.
func servePacket(t *testing.T, srv *server.Server, pc net.PacketConn) {
	t.Helper()
	errs := make(chan error, 1)
	go func() { errs <- srv.ServePacket(pc) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-errs; !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("ServePacket returned %v, want ErrServerClosed", err)
		}
	})
}

// A datagram that claims to come from the server itself, or from a port
// whose service answers datagrams, would start a loop: it gets no reply.
func TestDatagramGuard(t *testing.T) {
	type row struct {
		name, local, from string
		want              server.Reason
	}
	rows := []row{
		{"own address", "127.0.0.1:5000", "127.0.0.1:5000", server.ReasonOwnAddress},
		{"own port, other address", "127.0.0.1:5000", "127.0.0.2:5000", server.ReasonNone},
		{"own address, other port", "127.0.0.1:5000", "127.0.0.1:5001", server.ReasonNone},
		{"unspecified source", "127.0.0.1:5000", "0.0.0.0:40000", server.ReasonOwnAddress},
		{"wildcard, loopback", "0.0.0.0:5000", "127.0.0.9:5000", server.ReasonOwnAddress},
		{"wildcard, loopback, other port", "0.0.0.0:5000", "127.0.0.9:5001", server.ReasonNone},
		{"wildcard IPv6, loopback", "[::]:5000", "[::1]:5000", server.ReasonOwnAddress},
		{"wildcard IPv6, mapped loopback", "[::]:5000", "[::ffff:127.0.0.1]:5000", server.ReasonOwnAddress},
		{"IPv6 own address", "[::1]:5000", "[::1]:5000", server.ReasonOwnAddress},
		{"echo", "127.0.0.1:5000", "127.0.0.1:7", server.ReasonReflectorPort},
		{"chargen", "127.0.0.1:5000", "127.0.0.1:19", server.ReasonReflectorPort},
		{"port 0", "127.0.0.1:5000", "127.0.0.1:0", server.ReasonReflectorPort},
		{"DNS", "127.0.0.1:5000", "127.0.0.1:53", server.ReasonReflectorPort},
		{"memcached", "[::]:5000", "[::1]:11211", server.ReasonReflectorPort},
		{"port 8", "127.0.0.1:5000", "127.0.0.1:8", server.ReasonNone},
		{"ephemeral port", "127.0.0.1:5000", "127.0.0.1:40000", server.ReasonNone},
	}
	// One of this host's own addresses other than loopback, if it has one:
	// the server is told it came from there, nothing is sent there.
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && !p.Addr().IsLoopback() && p.Addr().Zone() == "" {
				from := netip.AddrPortFrom(p.Addr(), 5000).String()
				rows = append(rows, row{"wildcard, interface address " + p.Addr().String(), "[::]:5000", from, server.ReasonOwnAddress})
				break
			}
		}
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			pc := newFakePacketConn(r.local)
			obs := make(datagrams, 16)
			servePacket(t, &server.Server{Observer: obs}, pc)
			from := netip.MustParseAddrPort(r.from)
			pc.in <- fakeDatagram{from, []byte("hello")}
			d := obs.next(t)
			if d.Reason != r.want || d.Remote != from {
				t.Errorf("observed %v from %v, want %v from %v", d.Reason, d.Remote, r.want, from)
			}
			sent := pc.written()
			switch {
			case r.want != server.ReasonNone && len(sent) != 0:
				t.Errorf("replied %q to %v; want no reply", sent[0].data, sent[0].addr)
			case r.want == server.ReasonNone && (len(sent) != 1 || sent[0].addr != from || string(sent[0].data) != "HELLO"):
				t.Errorf("sent %v, want one HELLO to %v", sent, from)
			}
		})
	}
}
