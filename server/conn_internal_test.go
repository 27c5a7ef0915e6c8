package server

import (
	"net"
	"testing"
)

func TestBufPoolClasses(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 1000, 1024, 1025, 3 * 65536, 16 << 20, 16<<20 + 1} {
		p := getBuf(n)
		if len(*p) != n {
			t.Fatalf("getBuf(%d): len %d", n, len(*p))
		}
		putBuf(p)
		q := getBuf(n)
		if len(*q) != n || cap(*q) < n {
			t.Fatalf("getBuf(%d) after put: len %d cap %d", n, len(*q), cap(*q))
		}
	}
}

// MaxConnsPerIP counts an IPv4 address, or an IPv6 /64 (what one host
// gets), and an IPv4-mapped IPv6 address as the IPv4 one.
func TestIPKey(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 1}, "127.0.0.1"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.2"), Port: 1}, "127.0.0.2"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:aaaa::1"), Port: 1}, "2001:db8:1:2::"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:bbbb::9"), Port: 2}, "2001:db8:1:2::"},
		{&net.UnixAddr{Name: "/tmp/s", Net: "unix"}, ""},
	} {
		got, ok := ipKey(tc.addr)
		if s := got.String(); ok != (tc.want != "") || ok && s != tc.want {
			t.Errorf("ipKey(%v) = %v, %v; want %q", tc.addr, got, ok, tc.want)
		}
	}
}
