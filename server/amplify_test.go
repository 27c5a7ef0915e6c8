package server_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"shout/internal/shouttest"
	"shout/server"
	"shout/upper"
)

// What a forged source can make the server send its victim, byte for
// byte: the reply to each datagram over the datagram, in each mode. The
// worst is 3 (ΐ and ΰ, 2 bytes each, become 6: "Ϊ́"), upper.MaxExpansion,
// which upper's tests prove of every character; it holds for the largest
// datagram whose reply still fits in one (10,917 of them, 21,834 bytes,
// answered with 65,502), and past that there is no reply at all. Bytes
// that are not UTF-8 pass unchanged (1). On the wire, with IPv4's and
// UDP's 28 bytes of headers a datagram, the largest is 65,530 ÷ 21,862 =
// 2.997 (Ethernet's framing and the IP fragments' headers leave it at
// 3.00 to two places), and a small datagram gains next to nothing: "ΐ"
// alone, 30 bytes to 34, both padded to Ethernet's 64-byte frame.
func TestUDPAmplification(t *testing.T) {
	const from = "192.0.2.1:4000" // forged: the fake socket sends nothing
	iota := strings.Repeat("ΐ", 10917)
	for _, tc := range []struct {
		mode    upper.Mode
		lang    string
		in      string
		out     int // bytes of reply; 0: none
		percent int // out over in, in percent
	}{
		{upper.Upper, "", "ΐ", 6, 300},
		{upper.Upper, "", "ΰ", 6, 300},
		{upper.Upper, "", iota, 65502, 300},
		{upper.Upper, "", iota + "ΐ", 0, 0}, // 65,508: more than a datagram carries
		{upper.Upper, "", "ŉ", 3, 150},
		{upper.Upper, "", "ß", 2, 100},
		{upper.Upper, "", "ﬃ", 3, 100},
		{upper.Upper, "", "\xff\xfe\xc3", 3, 100},
		{upper.Upper, "tr", "i", 2, 200},
		{upper.Upper, "el", "ΐ", 6, 300}, // x/text keeps the tonos of ΐ alone
		{upper.Simple, "", "ȿ", 3, 150},
		{upper.Simple, "", "ΐ", 2, 100},
		{upper.ASCII, "", "ΐ", 2, 100},
		{upper.Echo, "", "ΐ", 2, 100},
	} {
		name := fmt.Sprintf("%v %s %.12q", tc.mode, tc.lang, tc.in)
		t.Run(name, func(t *testing.T) {
			tr, err := upper.New(tc.mode, tc.lang)
			if err != nil {
				t.Fatal(err)
			}
			pc := newFakePacketConn("192.0.2.9:8080")
			obs := make(datagrams, 1)
			shouttest.ServePacket(t, &server.Server{Transformer: tr, Observer: obs, SourceRate: -1}, pc)
			pc.in <- fakeDatagram{netip.MustParseAddrPort(from), []byte(tc.in)}
			d := obs.next(t)
			sent := pc.written()
			out := 0
			if len(sent) == 1 {
				out = len(sent[0].data)
			}
			if len(sent) > 1 || out != tc.out || out*100/len(tc.in) != tc.percent {
				t.Errorf("%d bytes in: %d replies, %d bytes (%v); want %d bytes, %d%%", len(tc.in), len(sent), out, d.Reason, tc.out, tc.percent)
			}
			if out > 0 && !bytes.Equal(sent[0].data, tr.Append(nil, []byte(tc.in))) {
				t.Errorf("the reply is not the transform's")
			}
		})
	}
}

// A forger varies the source port as it likes, so a budget per address
// and port bounded nothing for its victim: each forged port had a budget
// of its own, and a victim was sent one budget for each (all 200 replies
// here, 200,000 bytes, with a budget of 64 KiB). The budget is the
// address's, every port's together, and an IPv6 /64's (one host's share,
// as --max-conns-per-ip counts them); another address has its own.
func TestUDPBudgetPerAddress(t *testing.T) {
	const rate = 64 << 10
	reply := bytes.Repeat([]byte("X"), 1000)
	for _, tc := range []struct {
		name   string
		victim func(i int) netip.AddrPort
	}{
		{"IPv4 ports", func(i int) netip.AddrPort {
			return netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), uint16(20000+i))
		}},
		{"IPv6 /64", func(i int) netip.AddrPort {
			a := netip.MustParseAddr("2001:db8:0:1::").As16()
			a[14], a[15] = byte(i>>8), byte(i)+1
			return netip.AddrPortFrom(netip.AddrFrom16(a), uint16(20000+i))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pc := newFakePacketConn("[::]:8080")
			obs := make(datagrams, 1)
			srv := &server.Server{Observer: obs, SourceRate: rate}
			srv.StopSourceClock() // every datagram within the same instant: the burst alone
			shouttest.ServePacket(t, srv, pc)
			for i := range 200 {
				pc.in <- fakeDatagram{tc.victim(i), reply}
				obs.next(t)
			}
			total := 0
			for _, d := range pc.written() {
				total += len(d.data)
			}
			if total > rate {
				t.Errorf("the victim was sent %d bytes from 200 forged ports, more than the budget (%d)", total, rate)
			}
			if total < rate-len(reply) {
				t.Errorf("the victim was sent %d bytes, short of its budget (%d)", total, rate)
			}
			// Another address has a budget of its own.
			other := netip.MustParseAddrPort("[2001:db8:0:2::1]:1024")
			pc.in <- fakeDatagram{other, reply}
			if d := obs.next(t); d.Reason != server.ReasonNone {
				t.Errorf("another address: %v, want an answer", d.Reason)
			}
		})
	}
}

// A loopback source, whose replies never leave this host, has a budget
// for each of its ports: a load tool's sockets on this host each have
// their own, as the budget per address would otherwise cap them all at
// one's. A port spends its own budget and no other's.
func TestUDPBudgetPerLoopbackSocket(t *testing.T) {
	const rate = 64 << 10
	reply := bytes.Repeat([]byte("X"), 1000)
	for _, addr := range []string{"127.0.0.1", "127.0.0.7", "::1", "::ffff:127.0.0.1"} {
		t.Run(addr, func(t *testing.T) {
			pc := newFakePacketConn("[::]:8080")
			obs := make(datagrams, 1)
			srv := &server.Server{Observer: obs, SourceRate: rate}
			srv.StopSourceClock() // every datagram within the same instant: the burst alone
			shouttest.ServePacket(t, srv, pc)
			a := netip.MustParseAddr(addr)
			total := 0
			for i := range 200 { // (ports from 20000: no reflector's, which the loop guard turns away first)
				pc.in <- fakeDatagram{netip.AddrPortFrom(a, uint16(20000+i)), reply}
				if d := obs.next(t); d.Reason != server.ReasonNone {
					t.Fatalf("port %d of %s: %v, want an answer: each loopback port has a budget of its own", 20000+i, addr, d.Reason)
				}
				total += len(reply)
			}
			// One port spends its own budget to the end, and is held to it.
			src := netip.AddrPortFrom(a, 5000)
			answered := 0
			for i := range rate/len(reply) + 1 {
				p := bytes.Clone(reply) // each unlike the last, or the loop guard drops it
				copy(p, fmt.Sprint(i))
				pc.in <- fakeDatagram{src, p}
				if d := obs.next(t); d.Reason == server.ReasonNone {
					answered++
				} else if d.Reason != server.ReasonBudget {
					t.Fatalf("port 5000: %v, want an answer or %v", d.Reason, server.ReasonBudget)
				}
			}
			if answered != rate/len(reply) {
				t.Errorf("port 5000 was answered %d times, want its budget's %d", answered, rate/len(reply))
			}
		})
	}
}
