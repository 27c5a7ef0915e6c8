package server

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuf is a log writer safe for a timer's goroutine and the test's.
type syncBuf struct {
	mu      sync.Mutex
	b       strings.Builder
	changed chan struct{} // closed at the next write (see waitFor)
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	return s.b.Write(p)
}

// waitFor waits until what was written holds want, for d at most, and
// reports whether it does.
func (s *syncBuf) waitFor(want string, d time.Duration) bool {
	timeout := time.After(d)
	for {
		s.mu.Lock()
		if strings.Contains(s.b.String(), want) {
			s.mu.Unlock()
			return true
		}
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-timeout:
			return false
		}
	}
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The line for warnings held back is armed a second after the last line
// let through; if, as it comes due, the limiter's second has passed and
// another warning is let through first (its CompareAndSwap of last before
// heldBack loads last), that warning's own line tells the total. heldBack
// logged a line as well, at the same moment, breaking the once a second
// and counting the warning let through among the "unlogged": A let
// through, B held, C let through at A+1s just before the timer's
// heldBack ran: "rejected_total=3 unlogged=2" beside C's
// "rejected_total=3". Here the state is set as C's allowAt left it, and
// heldBack run as its timer would.
func TestHeldBackAfterALineLetThrough(t *testing.T) {
	var buf syncBuf
	o := NewLogObserver(slog.New(slog.NewTextHandler(&buf, nil))).(*logObserver)
	l := &o.warns[ReasonRejected]
	l.total.Store(3)           // A, B and C
	l.shown.Store(1)           // A's line; C's is about to be written
	l.last.Store(limiterNow()) // C let through just now
	l.due.Store(true)          // B's timer, armed for A's second
	o.heldBack(ReasonRejected)
	if s := buf.String(); s != "" {
		t.Errorf("heldBack logged within a second of a line let through:\n%s", s)
	}
	// C's own line shows its total; D, held after it, gets the line a
	// second after C's.
	l.claim(3)
	l.total.Store(4)
	want := "rejected_total=4 unlogged=1"
	if !buf.waitFor(want, 10*time.Second) {
		t.Fatalf("no line with %q for the one held after the line let through:\n%s", want, buf.String())
	}
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Errorf("%d lines, want the one:\n%s", n, buf.String())
	}
}

// A client certificate's subject is the client's to choose (an authority
// the server trusts signed it, but what it holds is the client's), and it
// was logged as crypto/x509 writes it: JSON escapes control characters
// below 0x20 alone, so a C1 control and a bidi override reached the log
// raw. It is escaped as the client's data is, in both formats.
func TestLogClientCertEscaped(t *testing.T) {
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: "alice\u202egpj.exe\u0085\x1b[2J"}}
	for _, format := range []string{"text", "json"} {
		var buf syncBuf
		h := slog.Handler(slog.NewTextHandler(&buf, nil))
		if format == "json" {
			h = slog.NewJSONHandler(&buf, nil)
		}
		o := NewLogObserver(slog.New(h))
		o.ConnOpen(&ConnInfo{
			Remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000},
			Local:  &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8443},
			TLS:    &tls.ConnectionState{Version: tls.VersionTLS13, PeerCertificates: []*x509.Certificate{cert}},
		})
		line := buf.String()
		if strings.ContainsAny(line, "\u202e\u0085\x1b") || !strings.Contains(line, `gpj.exe\\u0085`) {
			t.Errorf("%s: %q; want the subject escaped", format, line)
		}
	}
}

// tcpText formats IPv4 addresses its own way, for one allocation rather
// than three: its text must be net's, byte for byte, for every address.
func TestTCPTextIsNets(t *testing.T) {
	for _, a := range []*net.TCPAddr{
		{IP: net.IPv4(127, 0, 0, 1).To4(), Port: 8080},
		{IP: net.IPv4(10, 200, 3, 44).To4(), Port: 65535},
		{IP: net.IPv4(0, 0, 0, 0).To4()},
		{IP: net.IPv4(192, 0, 2, 1)}, // 16 bytes: IPv4-mapped
		{IP: net.IPv4(192, 0, 2, 1).To4(), Port: 1, Zone: "eth0"},
		{IP: net.IPv4(192, 0, 2, 1).To4(), Port: 70000},
		{IP: net.IPv4(192, 0, 2, 1).To4(), Port: -1},
		{IP: net.ParseIP("::1"), Port: 443},
		{IP: net.ParseIP("fe80::1"), Port: 9, Zone: "eth0"},
		{IP: net.ParseIP("2001:db8::ffff:1:0:0"), Port: 53},
		{IP: net.IP{1, 2, 3}, Port: 5}, // neither length
		{Port: 80},
	} {
		if got, want := tcpText(a), a.String(); got != want {
			t.Errorf("tcpText(%#v) = %q, want %q", *a, got, want)
		}
	}
}

// A connection's remote address is formatted once for its open and close
// lines, and the local address once for the connections that share it:
// a line must still show the address it is about, when the remote changes
// (as a PROXY header's source replaces the peer's) or the local one does
// (a wildcard listener's connections, to each of the host's addresses).
func TestLogLinesKeepNoStaleAddress(t *testing.T) {
	var buf syncBuf
	o := NewLogObserver(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "duration" {
				return slog.Attr{}
			}
			return a
		},
	})))
	addr := func(s string) *net.TCPAddr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	lo, lo2 := addr("127.0.0.1:8080"), addr("127.0.0.2:8080")
	c := &ConnInfo{Remote: addr("127.0.0.1:40000"), Local: lo}
	o.ConnOpen(c)
	c.Remote, c.Reason = addr("192.0.2.7:5000"), ReasonEOF
	o.ConnClose(c)
	o.ConnOpen(&ConnInfo{Remote: addr("[::1]:1"), Local: addr("127.0.0.2:8080")})
	o.ConnOpen(&ConnInfo{Remote: addr("[::1]:2"), Local: lo2})
	o.ConnOpen(&ConnInfo{Remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 9), Port: 3}, Local: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 8080}})
	o.ConnOpen(&ConnInfo{Remote: addr("127.0.0.1:4"), Local: lo})
	o.ConnOpen(&ConnInfo{Remote: &net.UnixAddr{Name: "@c", Net: "unix"}, Local: &net.UnixAddr{Name: "/run/s", Net: "unix"}})
	// The local address of the line before differs only by its port, then
	// only by its zone (listeners on two ports, or on fe80::1 of two links).
	o.ConnOpen(&ConnInfo{Remote: addr("127.0.0.1:5"), Local: addr("127.0.0.1:8081")})
	o.ConnOpen(&ConnInfo{Remote: addr("[fe80::9%eth0]:6"), Local: addr("[fe80::1%eth0]:8080")})
	o.ConnOpen(&ConnInfo{Remote: addr("[fe80::9%lo]:7"), Local: addr("[fe80::1%lo]:8080")})
	// A remote address changed in place, by its port alone, then from
	// IPv4 to the same address mapped (the same text), then to IPv6.
	r := addr("127.0.0.1:8")
	c = &ConnInfo{Remote: r, Local: lo, Reason: ReasonEOF}
	o.ConnOpen(c)
	r.Port = 9
	o.ConnClose(c)
	r.IP = net.IPv4(127, 0, 0, 1)
	o.ConnClose(c)
	r.IP = net.ParseIP("::1")
	o.ConnClose(c)
	want := `level=INFO msg=open remote=127.0.0.1:40000 local=127.0.0.1:8080
level=INFO msg=close remote=192.0.2.7:5000 reason=eof bytes_in=0 bytes_out=0
level=INFO msg=open remote=[::1]:1 local=127.0.0.2:8080
level=INFO msg=open remote=[::1]:2 local=127.0.0.2:8080
level=INFO msg=open remote=127.0.0.9:3 local=127.0.0.2:8080
level=INFO msg=open remote=127.0.0.1:4 local=127.0.0.1:8080
level=INFO msg=open remote=@c local=/run/s
level=INFO msg=open remote=127.0.0.1:5 local=127.0.0.1:8081
level=INFO msg=open remote=[fe80::9%eth0]:6 local=[fe80::1%eth0]:8080
level=INFO msg=open remote=[fe80::9%lo]:7 local=[fe80::1%lo]:8080
level=INFO msg=open remote=127.0.0.1:8 local=127.0.0.1:8080
level=INFO msg=close remote=127.0.0.1:9 reason=eof bytes_in=0 bytes_out=0
level=INFO msg=close remote=127.0.0.1:9 reason=eof bytes_in=0 bytes_out=0
level=INFO msg=close remote=[::1]:9 reason=eof bytes_in=0 bytes_out=0
`
	if got := buf.String(); got != want {
		t.Errorf("lines:\n%s\nwant:\n%s", got, want)
	}
}

// A net.Conn of the caller's (a net.Listener's, or WrapConn's, as here)
// may have no local address (LocalAddr nil): the open line took its text,
// and the server died of a nil dereference at its first client. The line
// now shows it empty, as it shows a remote address that is missing.
func TestLogOpenWithoutLocalAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var buf syncBuf
	srv := &Server{Logger: slog.New(slog.NewTextHandler(&buf, nil)), WrapConn: func(c net.Conn) (net.Conn, error) { return noLocalConn{c}, nil }}
	errs := make(chan error, 1)
	go func() { errs <- srv.Serve(ln) }()
	defer func() {
		srv.Close()
		<-errs
	}()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte("hi\n")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 3)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "HI\n" {
		t.Fatalf("reply %q, %v; want %q", got, err, "HI\n")
	}
	// The open line comes before the connection's first read.
	if line := buf.String(); !strings.Contains(line, `msg=open remote=127.0.0.1:`) || !strings.Contains(line, ` local=""`) {
		t.Errorf("no open line with an empty local address:\n%s", line)
	}
}

// The TLS open line names the local address as the plain one does: none,
// for a net.Conn of the caller's that has none.
func TestLogTLSOpenWithoutLocalAddress(t *testing.T) {
	var buf syncBuf
	o := NewLogObserver(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: noTime})))
	o.ConnOpen(&ConnInfo{Remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1).To4(), Port: 7}, TLS: &tls.ConnectionState{Version: tls.VersionTLS13}})
	if got, want := buf.String(), "level=INFO msg=open remote=127.0.0.1:7 local=\"\" tls=\"TLS 1.3\"\n"; got != want {
		t.Errorf("line %q, want %q", got, want)
	}
}

// noTime leaves the time out of a test's log lines.
func noTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// The local address kept for the next open line is shared by the loops,
// or the connections' goroutines, that open connections at once, to
// different local addresses: each line must show its own connection's.
// (Run with -race: a kept address changed in place is a data race.)
func TestLogLocalAddressFromManyGoroutines(t *testing.T) {
	var buf syncBuf
	o := NewLogObserver(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: noTime})))
	locals := []string{"127.0.0.1:8080", "127.0.0.1:8081", "[::1]:8080", "[fe80::1%eth0]:8080"}
	const goroutines, each = 4, 200
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				k := (g + i) % len(locals)
				// A new address for each, as a wildcard listener's
				// connections have, equal to the others by value only.
				local := net.TCPAddrFromAddrPort(netip.MustParseAddrPort(locals[k]))
				o.ConnOpen(&ConnInfo{Remote: &net.TCPAddr{IP: net.IPv4(192, 0, 2, byte(k)).To4(), Port: 1 + g*each + i}, Local: local})
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != goroutines*each {
		t.Fatalf("%d lines, want %d", len(lines), goroutines*each)
	}
	for _, l := range lines {
		var k, port int
		var local string
		if _, err := fmt.Sscanf(l, "level=INFO msg=open remote=192.0.2.%d:%d local=%s", &k, &port, &local); err != nil || k >= len(locals) || local != locals[k] {
			t.Errorf("line %q (%v): want local=%s", l, err, locals[min(k, len(locals)-1)])
		}
	}
}

type noLocalConn struct{ net.Conn }

func (noLocalConn) LocalAddr() net.Addr { return nil }
