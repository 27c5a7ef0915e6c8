package admin_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"shout/admin"
	"shout/endpoint"
	"shout/internal/shouttest"
	"shout/server"
)

// serveBehindProxy serves a server counted by m on a TCP listener of
// 127.0.0.1 that takes a PROXY header from loopback senders, until the
// test ends, and returns the server and the listener's address.
func serveBehindProxy(t *testing.T, m *admin.Metrics) (*server.Server, string) {
	t.Helper()
	srv := &server.Server{Observer: server.Observers(server.NewLogObserver(slog.New(slog.DiscardHandler)), m)}
	opts := endpoint.Options{Proxy: &endpoint.Proxy{From: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, HandshakeTimeout: bound}
	lns, _, err := opts.Listen([]endpoint.Endpoint{{Network: "tcp", Address: "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	shouttest.Serve(t, srv, lns[0])
	return srv, lns[0].Addr().String()
}

// gather returns the value of name with the label pair, or -1, and the
// family's help text.
func gather(t *testing.T, m *admin.Metrics, name, label, value string) (float64, string) {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, mm := range f.GetMetric() {
			for _, lp := range mm.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					v := mm.GetCounter().GetValue()
					if mm.GetGauge() != nil {
						v = mm.GetGauge().GetValue()
					}
					return v, f.GetHelp()
				}
			}
		}
		return -1, f.GetHelp()
	}
	return -1, ""
}

// A TCP connection through a trusted PROXY v2 sender whose header names
// Unix sockets (what a balancer that took the client on one sends) is
// served as itself, and counted under transport="tcp": it was counted as
// "unix", from the header's destination, and by no IP address.
func TestProxyUnixFamilyCountedAsTCP(t *testing.T) {
	m := admin.NewMetrics(admin.Config{})
	_, addr := serveBehindProxy(t, m)

	h := &proxyproto.Header{Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.UnixStream,
		SourceAddr:      &net.UnixAddr{Net: "unix", Name: "/run/lb-client"},
		DestinationAddr: &net.UnixAddr{Net: "unix", Name: "/run/lb.sock"}}
	hdr, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, addr)
	c.Write(hdr)
	io.WriteString(c, "hi\n")
	if got, err := bufio.NewReader(c).ReadString('\n'); err != nil || got != "HI\n" {
		t.Fatalf("got %q, %v", got, err)
	}
	tcp, _ := gather(t, m, "shout_connections_accepted_total", "transport", "tcp")
	unix, _ := gather(t, m, "shout_connections_accepted_total", "transport", "unix")
	if tcp != 1 || unix != 0 {
		t.Errorf("a connection served on a TCP listener: accepted_total{transport=tcp}=%v, {transport=unix}=%v; want 1 and 0", tcp, unix)
	}
}

// series is every shout series in m's registry, as name and labels.
func series(t *testing.T, m *admin.Metrics) map[string]bool {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "shout_") {
			continue
		}
		for _, s := range f.GetMetric() {
			out[f.GetName()+fmt.Sprint(s.GetLabel())] = true
		}
	}
	return out
}

// No label takes a value that clients choose: after connections from
// many addresses, each naming another client in its PROXY header, and
// datagrams from many addresses and ports, /metrics has the series it
// had at the start, and no more.
func TestSeriesBoundedWhateverClientsSend(t *testing.T) {
	m := admin.NewMetrics(admin.Config{})
	srv, addr := serveBehindProxy(t, m)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	shouttest.ServePacket(t, srv, pc)
	before := series(t, m)

	const clients = 20
	for i := range clients {
		from := &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+i))}
		c, err := (&net.Dialer{LocalAddr: from, Timeout: bound}).Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(bound))
		h := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.IPv4(203, 0, 113, byte(i)), Port: 1000 + i}, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 80})
		h.WriteTo(c)
		io.WriteString(c, "hi\n")
		if got, err := bufio.NewReader(c).ReadString('\n'); err != nil || got != "HI\n" {
			t.Fatalf("client %d: got %q, %v", i, got, err)
		}
		c.Close()
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 2, byte(1+i))})
		if err != nil {
			t.Fatal(err)
		}
		u.SetDeadline(time.Now().Add(bound))
		if _, err := u.WriteTo([]byte("hi"), pc.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		if _, _, err := u.ReadFrom(make([]byte, 8)); err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		u.Close()
	}
	after := series(t, m)
	for s := range after {
		if !before[s] {
			t.Errorf("a series that was not there at the start: %s", s)
		}
	}
	if len(after) != len(before) {
		t.Errorf("%d series at the start, %d after %d clients", len(before), len(after), clients)
	}
}
