package server

import (
	"net"
	"testing"
	"time"
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

// A warning clients can trigger at will is logged at most once a second:
// a second after the last, not once in each calendar second (two 301 ms
// apart, across a second's turn, were both logged).
func TestLimiterOnceASecond(t *testing.T) {
	var l limiter
	ms := int64(time.Millisecond)
	for _, step := range []struct {
		at    int64
		allow bool
	}{
		{900 * ms, true}, {1200 * ms, false}, {1899 * ms, false}, {1900 * ms, true}, {1901 * ms, false}, {5000 * ms, true},
	} {
		if ok, _ := l.allowAt(step.at); ok != step.allow {
			t.Errorf("at %v: allowed %v, want %v", time.Duration(step.at), ok, step.allow)
		}
	}
	if _, n := l.allowAt(6000 * ms); n != 7 {
		t.Errorf("total %d, want 7: every occurrence counts", n)
	}
}
