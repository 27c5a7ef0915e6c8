package server

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
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
// gets), and an IPv4-mapped IPv6 address as the IPv4 one. A link-local
// address's zone is no part of it: its /64 is counted whatever the
// interface.
func TestIPKey(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 1}, "127.0.0.1"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.2"), Port: 1}, "127.0.0.2"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:aaaa::1"), Port: 1}, "2001:db8:1:2::"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:bbbb::9"), Port: 2}, "2001:db8:1:2::"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1:2:3:4"), Port: 1, Zone: "eth0"}, "fe80::"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::9"), Port: 1, Zone: "eth1"}, "fe80::"},
		{&net.UDPAddr{IP: net.ParseIP("::ffff:192.0.2.1"), Port: 1}, "192.0.2.1"},
		{&net.UnixAddr{Name: "/tmp/s", Net: "unix"}, ""},
		{&net.UnixAddr{Name: "127.0.0.1:1", Net: "unix"}, ""}, // a relative path
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

// A connection rejected for MaxConnsPerIP gives back its MaxConns place
// before the next accept, not when its own goroutine runs: a burst of
// connections over one address's limit, accepted before those goroutines
// ran (a busy or one-CPU machine), turned clients of other addresses away
// at MaxConns while fewer than MaxConns were served. The rejected
// connection's goroutine is held back here until the next client has
// been answered.
func TestPerIPRejectGivesBackPlaceAtOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	held, hold := make(chan struct{}, 1), make(chan struct{})
	rejecting = func() {
		if calls.Add(1) == 1 {
			held <- struct{}{}
			<-hold
		}
	}
	srv := &Server{MaxConns: 2, MaxConnsPerIP: 1, Engine: EngineGoroutine, Logger: slog.New(slog.DiscardHandler)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		close(hold)
		srv.Close()
		if err := <-served; err != ErrServerClosed {
			t.Errorf("Serve: %v", err)
		}
		rejecting = nil // (its one held caller has read it: held was received)
	}()
	dialFrom := func(ip net.IP) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 10 * time.Second}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		t.Cleanup(func() { c.Close() })
		return c
	}
	answered := func(c net.Conn) error {
		if _, err := io.WriteString(c, "ok"); err != nil {
			return err
		}
		got := make([]byte, 2)
		if _, err := io.ReadFull(c, got); err != nil {
			return err
		}
		if string(got) != "OK" {
			return fmt.Errorf("got %q, want OK", got)
		}
		return nil
	}
	if err := answered(dialFrom(net.IPv4(127, 0, 0, 1))); err != nil { // 127.0.0.1's one place
		t.Fatal(err)
	}
	dialFrom(net.IPv4(127, 0, 0, 1)) // over MaxConnsPerIP: rejected, its goroutine held
	<-held
	// One connection is served of MaxConns=2: another address has room.
	if err := answered(dialFrom(net.IPv4(127, 0, 0, 2))); err != nil {
		t.Errorf("another address, with 1 of MaxConns=2 served: %v; want served", err)
	}
}

// A Linger of years bounds a graceful close by years too, not by a
// product that overflowed into the past (30 Lingers of 10 years do), which
// closed the connection at once, unread input and all. The event loops
// add the bound to their clock, so it leaves room for that.
func TestLingerBoundLongLinger(t *testing.T) {
	const year = 365 * 24 * time.Hour
	for _, linger := range []time.Duration{time.Second, 10 * year, 200 * year, 1<<63 - 1} {
		got := lingerBound(linger)
		if got < min(linger, 100*year) {
			t.Errorf("lingerBound(%v) = %v, shorter than the Linger", linger, got)
		}
		if now := int64(10 * year); now+int64(got) < now { // a loop up for a decade
			t.Errorf("lingerBound(%v) = %v overflows a loop's clock", linger, got)
		}
	}
	if got := lingerBound(time.Second); got != maxLingerRounds*time.Second {
		t.Errorf("lingerBound(1s) = %v, want %d Lingers", got, maxLingerRounds)
	}
}

// A rejected connection gives back its place among the maxLingering that
// may linger at once when its linger ends, by the client's end of file or
// at the server's Close: kept, a server that had turned away that many
// clients over its life would close every later one at once, with no
// graceful close (which resets a client whose input was unread).
func TestRejectedLingerGivesBackItsPlace(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{MaxConns: 1, Linger: time.Hour, Logger: slog.New(slog.DiscardHandler)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	dial := func() net.Conn {
		t.Helper()
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		t.Cleanup(func() { c.Close() })
		return c
	}
	held := dial()
	if _, err := io.WriteString(held, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(held, make([]byte, 1)); err != nil { // served: MaxConns is reached
		t.Fatal(err)
	}
	for _, end := range []string{"client's end of file", "server's Close"} {
		c := dial()
		if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("rejected connection ending at the %s: read %d, %v; want end of file (lingering)", end, n, err)
		}
		if end == "client's end of file" {
			c.Close()
		}
	}
	srv.Close()
	if err := <-served; err != ErrServerClosed {
		t.Errorf("Serve: %v", err)
	}
	<-srv.Ended()
	if n := len(srv.lingering); n != 0 {
		t.Errorf("after the lingers ended, %d of the places for lingering are still taken; want 0", n)
	}
}

// wokenConn is a client that sends nothing after a graceful close: its
// first read is woken at once, as the timeout watcher (an IdleTimeout
// shorter than Linger, on a rejected connection) or Shutdown (its past
// deadline) wakes a lingering one, after the clock has moved on; its
// second reads the client's end of file. It keeps the read deadlines set.
type wokenConn struct {
	net.Conn
	reads     int
	deadlines []time.Time
}

func (w *wokenConn) SetReadDeadline(t time.Time) error {
	w.deadlines = append(w.deadlines, t)
	return nil
}

func (w *wokenConn) Read([]byte) (int, error) {
	if w.reads++; w.reads > 1 {
		return 0, io.EOF
	}
	for start := time.Now(); !time.Now().After(start); { // the clock moves on: the wake comes later than the linger began
	}
	return 0, os.ErrDeadlineExceeded
}

// A lingering close that another's deadline wakes early (the timeout
// watcher's, as for a connection rejected with an IdleTimeout shorter
// than Linger; Shutdown's, which wakes every read) still ends a Linger
// after the client's input stopped, as the event loops' does: it lingered
// a Linger from the wake instead, so a rejected connection was held for
// IdleTimeout + Linger (3 s for 1 s and 2 s), and a stop during a linger
// waited a whole Linger more.
func TestLingerWokenEarlyKeepsItsEnd(t *testing.T) {
	w := &wokenConn{}
	c := &conn{srv: &Server{Linger: time.Hour, Logger: slog.New(slog.DiscardHandler)}, accepted: w, c: w}
	c.linger()
	if len(w.deadlines) < 2 {
		t.Fatalf("read deadlines %v: want one for the linger, and one set again after the early wake", w.deadlines)
	}
	if first, again := w.deadlines[0], w.deadlines[1]; again.After(first) {
		t.Errorf("woken early, the linger's deadline moved %v later; want it kept (a Linger after the last input)", again.Sub(first))
	}
}
