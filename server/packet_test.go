package server_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"shout/internal/shouttest"
	"shout/server"
	"shout/upper"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"
	"golang.org/x/text/transform"
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

func (ch datagrams) next(t testing.TB) server.DatagramInfo {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(bound):
		t.Fatalf("no datagram observed within %v", bound)
		return server.DatagramInfo{}
	}
}

// reasons counts datagrams by Reason.
type reasons struct{ n [32]atomic.Int64 }

func (*reasons) ConnOpen(*server.ConnInfo)         {}
func (*reasons) ConnRead(*server.ConnInfo, []byte) {}
func (*reasons) ConnClose(*server.ConnInfo)        {}
func (r *reasons) Datagram(d *server.DatagramInfo) { r.n[d.Reason].Add(1) }

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
		{"SLP", "127.0.0.1:5000", "127.0.0.1:427", server.ReasonReflectorPort},
		{"OpenVPN", "127.0.0.1:5000", "127.0.0.1:1194", server.ReasonReflectorPort},
		{"Apple Remote Desktop", "127.0.0.1:5000", "127.0.0.1:3283", server.ReasonReflectorPort},
		{"RDP", "127.0.0.1:5000", "127.0.0.1:3389", server.ReasonReflectorPort},
		{"STUN", "127.0.0.1:5000", "127.0.0.1:3478", server.ReasonReflectorPort},
		{"SIP", "[::]:5000", "[::1]:5060", server.ReasonReflectorPort},
		{"Ubiquiti discovery", "127.0.0.1:5000", "127.0.0.1:10001", server.ReasonReflectorPort},
		{"IKE", "127.0.0.1:5000", "127.0.0.1:500", server.ReasonReflectorPort},
		{"ASF-RMCP", "127.0.0.1:5000", "127.0.0.1:623", server.ReasonReflectorPort},
		{"Citrix ICA browser", "127.0.0.1:5000", "127.0.0.1:1604", server.ReasonReflectorPort},
		{"NAT-PMP", "[::]:5000", "[::1]:5351", server.ReasonReflectorPort},
		{"BitTorrent DHT", "127.0.0.1:5000", "127.0.0.1:6881", server.ReasonReflectorPort},
		{"Mitel MiCollab", "127.0.0.1:5000", "127.0.0.1:10074", server.ReasonReflectorPort},
		{"VxWorks debug agent", "127.0.0.1:5000", "127.0.0.1:17185", server.ReasonReflectorPort},
		{"Steam", "127.0.0.1:5000", "127.0.0.1:27015", server.ReasonReflectorPort},
		{"Quake III", "127.0.0.1:5000", "127.0.0.1:27960", server.ReasonReflectorPort},
		{"Plex discovery, below Linux's ephemeral range", "127.0.0.1:5000", "127.0.0.1:32414", server.ReasonReflectorPort},
		{"Plex discovery's other port", "127.0.0.1:5000", "127.0.0.1:32410", server.ReasonReflectorPort},
		{"Jenkins, in Linux's ephemeral range", "127.0.0.1:5000", "127.0.0.1:33848", server.ReasonNone},
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
			shouttest.ServePacket(t, &server.Server{Observer: obs}, pc)
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

// One forged datagram from another echo service would bounce between it
// and shout forever; shout recognises its own reply coming back, and
// answers it no more. The sources' clock stands still, so the reply comes
// back within the loop window however slow the test: a busy machine's
// echo took longer than its 10 ms, and each bounce that slow was answered
// as a new datagram. The echo waits for the loop logged, not for a quiet
// 200 ms, which a busy machine's server can take to answer at all. A
// datagram the kernel dropped on the way (counted) runs the case again;
// one the server lost fails it.
func TestUDPPingPong(t *testing.T) {
	server.AgainOnDrops(t, func(t testing.TB) {
		var log shouttest.Log
		srv := &server.Server{Logger: log.Logger()}
		srv.StopSourceClock()
		to := net.UDPAddrFromAddrPort(netip.MustParseAddrPort(shouttest.Start(t, srv)))
		echo, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer echo.Close()
		server.WatchDrops(t, to.Port)
		server.WatchDrops(t, port(echo.LocalAddr()))
		if _, err := echo.WriteTo([]byte("ping-pong"), to); err != nil {
			t.Fatal(err)
		}
		// Echo back whatever comes, until shout logs the loop (then the
		// read's deadline ends the wait) or answers twice.
		echo.SetReadDeadline(time.Now().Add(bound))
		var looped bool
		logged := make(chan struct{})
		go func() {
			defer close(logged)
			looped = log.WaitFor("reason=loop", bound)
			echo.SetReadDeadline(time.Now())
		}()
		defer func() { <-logged }()
		buf := make([]byte, 2048)
		count := 0
		for {
			n, from, err := echo.ReadFromUDP(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if count++; count > 1 {
				t.Fatalf("answered its own reply, bounced back: a loop (%q)", buf[:n])
			}
			if string(buf[:n]) != "PING-PONG" {
				t.Errorf("got %q", buf[:n])
			}
			echo.WriteToUDP(buf[:n], from)
		}
		<-logged
		switch {
		case count == 0:
			t.Fatal("no reply")
		case !looped:
			t.Errorf("no loop logged:\n%s", log.String())
		}
	})
}

// Several forged datagrams at once from another echo service's address
// keep as many replies bouncing; each must be known coming back, not only
// the last one sent there (it was: three forged datagrams from another
// shout kept both answering each other, 40,000 datagrams a second, for
// good). The sources' clock stands still, so every reply comes back
// within the loop window however slow the test.
func TestUDPPingPongSeveral(t *testing.T) {
	obs := make(datagrams, 16)
	srv := &server.Server{Observer: obs}
	srv.StopSourceClock()
	pc := newFakePacketConn("127.0.0.1:5000")
	shouttest.ServePacket(t, srv, pc)
	echo := netip.MustParseAddrPort("192.0.2.7:40000")
	pings := []string{"ping 1", "ping 2", "ping 3"}
	for _, p := range pings {
		pc.in <- fakeDatagram{echo, []byte(p)}
		if d := obs.next(t); d.Reason != server.ReasonNone {
			t.Fatalf("%q observed %v, want an answer", p, d.Reason)
		}
	}
	replies := pc.written()
	if len(replies) != len(pings) {
		t.Fatalf("sent %v, want %d replies", replies, len(pings))
	}
	for _, r := range replies { // the echo service sends each back
		pc.in <- fakeDatagram{echo, r.data}
		if d := obs.next(t); d.Reason != server.ReasonLoop {
			t.Errorf("%q bounced back: observed %v, want %v", r.data, d.Reason, server.ReasonLoop)
		}
	}
	for _, r := range pc.written()[len(pings):] {
		t.Errorf("answered %q bounced back: sent it again", r.data)
	}
}

// A client that sends the same text to two of a server's listeners, one
// right after the other, gets both replies: its datagram to the second
// is not the reply the first sent, coming back (that would come back to
// the first). The sources' clock stands still, so the second datagram
// comes within the loop window of the first reply however slow the test.
// A datagram the kernel dropped on the way (counted) runs the case again:
// sent again, the first listener's would be taken for its reply coming
// back. One the server lost fails it.
func TestUDPSameTextTwoListeners(t *testing.T) {
	t.Run("sockets", func(t *testing.T) {
		server.AgainOnDrops(t, func(t testing.TB) {
			obs := make(datagrams, 16)
			srv := &server.Server{Observer: obs}
			srv.StopSourceClock()
			client, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			server.WatchDrops(t, port(client.LocalAddr()))
			buf := make([]byte, 2048)
			for i := range 2 {
				pc, err := net.ListenPacket("udp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				shouttest.ServePacket(t, srv, pc)
				server.WatchDrops(t, port(pc.LocalAddr()))
				if _, err := client.WriteTo([]byte("SAME"), pc.LocalAddr()); err != nil {
					t.Fatal(err)
				}
				if d := obs.next(t); d.Reason != server.ReasonNone {
					t.Fatalf("listener %d of 2: observed %v, want an answer", i+1, d.Reason)
				}
				client.SetReadDeadline(time.Now().Add(bound))
				n, from, err := client.ReadFrom(buf)
				if err != nil || string(buf[:n]) != "SAME" || from.String() != pc.LocalAddr().String() {
					t.Fatalf("listener %d of 2: got %q from %v, %v; want SAME from %v", i+1, buf[:n], from, err, pc.LocalAddr())
				}
			}
		})
	})
	t.Run("one datagram a read", func(t *testing.T) {
		obs := make(datagrams, 16)
		srv := &server.Server{Observer: obs}
		srv.StopSourceClock()
		from := netip.MustParseAddrPort("127.0.0.1:40000")
		for i, local := range []string{"127.0.0.1:5000", "127.0.0.1:5001"} {
			pc := newFakePacketConn(local)
			shouttest.ServePacket(t, srv, pc)
			pc.in <- fakeDatagram{from, []byte("SAME")}
			if d := obs.next(t); d.Reason != server.ReasonNone {
				t.Fatalf("listener %d of 2: observed %v, want an answer", i+1, d.Reason)
			}
			if sent := pc.written(); len(sent) != 1 || sent[0].addr != from || string(sent[0].data) != "SAME" {
				t.Errorf("listener %d of 2: sent %v, want one SAME to %v", i+1, sent, from)
			}
		}
	})
}

// cutPacketConn is a fakePacketConn whose first write waits for the
// connection to close, and fails as a closed socket's does.
type cutPacketConn struct {
	*fakePacketConn
	writing chan struct{}
}

func (c cutPacketConn) WriteTo([]byte, net.Addr) (int, error) {
	close(c.writing)
	<-c.done
	return 0, net.ErrClosed
}

// A reply that the stop closes the socket under is not sent: the datagram
// is reported as cut by the stop, not as answered (the metrics would
// count a reply that never left), and logged at info level, as the
// stop's doing.
func TestUDPReplyCutByClose(t *testing.T) {
	pc := cutPacketConn{newFakePacketConn("127.0.0.1:5000"), make(chan struct{})}
	obs := make(datagrams, 16)
	var log shouttest.Log
	srv := &server.Server{Observer: server.Observers(server.NewLogObserver(log.Logger()), obs)} // logged before obs hears
	shouttest.ServePacket(t, srv, pc)
	pc.in <- fakeDatagram{netip.MustParseAddrPort("127.0.0.1:40000"), []byte("cut")}
	select {
	case <-pc.writing:
	case <-time.After(bound):
		t.Fatal("no reply written")
	}
	srv.Close()
	if d := obs.next(t); d.Reason != server.ReasonShutdown || !errors.Is(d.Err, net.ErrClosed) {
		t.Errorf("observed %v (%v), want %v with net.ErrClosed", d.Reason, d.Err, server.ReasonShutdown)
	}
	if l := log.String(); !strings.Contains(l, `level=INFO msg="reply not sent" reason=shutdown`) {
		t.Errorf("no info line for the reply not sent:\n%s", l)
	}
}

// A source that floods gets no more replies than its budget allows, and
// one that sends a datagram at a time is answered all the while.
func TestUDPBudget(t *testing.T) {
	const rate = 64 << 10
	var counts reasons
	addr := shouttest.Start(t, &server.Server{SourceRate: rate, Observer: &counts})
	dial := func() net.Conn {
		c, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	flood, polite := dial(), dial()

	// Count the flood's replies until it has stopped and gone quiet.
	var got atomic.Int64
	stop, counted := make(chan struct{}), make(chan struct{})
	halt := sync.OnceFunc(func() { close(stop) })
	// On a failed round too, the reader ends before the test does (and
	// before the cleanups close its socket): an error it reported after
	// the test had ended would panic the whole package's run.
	t.Cleanup(func() { halt(); <-counted })
	start := time.Now()
	go func() {
		defer close(counted)
		buf := make([]byte, 2048)
		for time.Since(start) < 3*bound {
			flood.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			n, err := flood.Read(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				select {
				case <-stop:
					return
				default:
					continue
				}
			}
			if err != nil {
				t.Error(err)
				return
			}
			got.Add(int64(n))
		}
	}()

	// Rounds of 100 datagrams, few enough that the server's receive
	// buffer holds them, each followed by one polite exchange, which the
	// server reads after the flood's round and must answer. The polite
	// datagram is sent again only when the kernel counted a drop (a
	// busy machine's server left without CPU while the flood filled its
	// socket): one the server loses fails the test.
	msg := bytes.Repeat([]byte("flood "), 256/6)
	u := &udpClient{c: polite}
	const rounds, perRound = 40, 100
	for round := range rounds {
		for range perRound {
			if _, err := flood.Write(msg); err != nil {
				t.Fatal(err)
			}
		}
		send, want := fmt.Sprintf("polite %d", round), fmt.Sprintf("POLITE %d", round)
		got, err := u.exchange([]byte(send))
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if string(got) != want {
			t.Fatalf("round %d: got %q, want %q", round, got, want)
		}
	}
	halt()
	<-counted
	elapsed := time.Since(start)
	sent := rounds * perRound * len(msg)
	limit := rate + int64(rate*elapsed.Seconds())
	if n := got.Load(); n > limit {
		t.Errorf("the flood got %d bytes of replies in %v, more than the budget allows (%d)", n, elapsed, limit)
	} else {
		t.Logf("the flood sent %d bytes and got %d back in %v (budget %d)", sent, n, elapsed, limit)
	}
	if counts.n[server.ReasonBudget].Load() == 0 {
		t.Error("no datagram was dropped for its budget")
	}
}

// A reply that fits the read buffer (65,535 bytes) but not one datagram
// to its client (65,507 bytes over IPv4, 65,527 over IPv6) is too large,
// as one over 65,535 is: no reply, ReasonTooLarge, nothing charged to the
// source. It was a send failure ("message too long").
func TestReplyTooLargeForItsFamily(t *testing.T) {
	// "ΐ" (2 bytes) becomes "Ϊ́" (6).
	for _, tc := range []struct {
		network, addr string
		ascii, grown  int
	}{
		{"udp4", "127.0.0.1:0", 65480, 7}, // 65,494 bytes in, 65,522 out
		{"udp6", "[::1]:0", 65520, 2},     // 65,524 in, 65,532 out
	} {
		t.Run(tc.network, func(t *testing.T) {
			pc, err := net.ListenPacket(tc.network, tc.addr)
			if err != nil {
				t.Skipf("no %s on loopback here: %v", tc.network, err)
			}
			obs := make(datagrams, 4)
			shouttest.ServePacket(t, &server.Server{Observer: obs, Logger: discard()}, pc)
			c, err := net.Dial(tc.network, pc.LocalAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			msg := append(bytes.Repeat([]byte("a"), tc.ascii), bytes.Repeat([]byte("ΐ"), tc.grown)...)
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			if d := obs.next(t); d.Reason != server.ReasonTooLarge || d.Err != nil || d.BytesOut != 0 {
				t.Errorf("a reply of %d bytes: reason %q (%v), %d bytes out; want %q, none out",
					tc.ascii+6*tc.grown, d.Reason, d.Err, d.BytesOut, server.ReasonTooLarge)
			}
			// The largest that fits is answered whole.
			largest := 65507
			if tc.network == "udp6" {
				largest = 65527
			}
			if _, err := c.Write(bytes.Repeat([]byte("b"), largest)); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1<<16)
			c.SetReadDeadline(time.Now().Add(bound))
			if n, err := c.Read(buf); err != nil || n != largest || !bytes.Equal(buf[:n], bytes.Repeat([]byte("B"), largest)) {
				t.Errorf("the largest datagram: %d bytes back, %v; want %d", n, err, largest)
			}
		})
	}
}

// failingPacketConn is a UDP socket whose reads all fail with err, each
// read's time sent on reads.
type failingPacketConn struct {
	net.PacketConn
	err   error
	reads chan time.Time
}

func (f *failingPacketConn) ReadFrom([]byte) (int, net.Addr, error) {
	select {
	case f.reads <- time.Now():
	default:
	}
	return 0, nil, f.err
}

// A read that fails again and again (here a deadline someone set on the
// socket) makes the worker wait before each next read, 5 ms doubling, as
// Serve does after a failed accept: it read again at once, spinning on the
// CPU and never returning. An ICMP error for an earlier reply, which a
// client can cause at will, does not make it wait.
func TestPacketReadFailsAgain(t *testing.T) {
	serveFailing := func(t *testing.T, err error, reads int) chan time.Time {
		real, lerr := net.ListenPacket("udp", "127.0.0.1:0")
		if lerr != nil {
			t.Fatal(lerr)
		}
		f := &failingPacketConn{PacketConn: real, err: err, reads: make(chan time.Time, reads)}
		old := runtime.GOMAXPROCS(1)                  // one worker: the reads are its
		t.Cleanup(func() { runtime.GOMAXPROCS(old) }) // after the server's, which runs first
		shouttest.ServePacket(t, &server.Server{Logger: discard()}, f)
		return f.reads
	}
	t.Run("deadline", func(t *testing.T) {
		reads := serveFailing(t, os.ErrDeadlineExceeded, 5)
		var at []time.Time
		for range 5 {
			select {
			case r := <-reads:
				at = append(at, r)
			case <-time.After(bound):
				t.Fatalf("%d reads in %v", len(at), bound)
			}
		}
		for i, want := range []time.Duration{5, 10, 20, 40} {
			if gap := at[i+1].Sub(at[i]); gap < want*time.Millisecond {
				t.Errorf("read %d came %v after the one before, want at least %v", i+2, gap, want*time.Millisecond)
			}
		}
	})
	t.Run("icmp", func(t *testing.T) {
		const n = 200 // with the waits above, over a minute
		reads := serveFailing(t, &net.OpError{Op: "read", Net: "udp", Err: os.NewSyscallError("recvfrom", syscall.ECONNREFUSED)}, n)
		deadline := time.After(bound)
		for i := range n {
			select {
			case <-reads:
			case <-deadline:
				t.Fatalf("%d reads in %v: the worker waited after ICMP errors", i, bound)
			}
		}
	})
}

// A reply that comes back from where it went is known in every mode, and
// with a Transformer not upper's: x/text's, and rot13, whose reply
// transformed again is its datagram (a guard that looked for a datagram
// where its reply goes, as stop 61 tried for the modes whose reply
// transformed again is itself, would miss it; so would it Greek's, whose
// "ΐ" upper-cased twice loses its accents). The datagram sent again is
// answered again, unless it is its own reply (echo; or text no mode
// changes).
func TestUDPPingPongModes(t *testing.T) {
	const text = "ping straße ı ǅ ΐ ά i"
	type mode struct {
		name string
		t    transform.Transformer
	}
	modes := []mode{{"rot13", rot13{}}, {"cases.Upper", cases.Upper(language.Und)}}
	for _, m := range upper.ModeNames() {
		for _, lang := range []string{"", "tr", "el"} {
			mo, _ := upper.ParseMode(m)
			if tr, err := upper.New(mo, lang); err == nil {
				modes = append(modes, mode{m + " " + lang, tr})
			}
		}
	}
	echo := netip.MustParseAddrPort("192.0.2.7:40000")
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			for _, data := range []string{text, "PING 1"} {
				obs := make(datagrams, 4)
				srv := &server.Server{Observer: obs, Transformer: m.t}
				srv.StopSourceClock()
				pc := newFakePacketConn("127.0.0.1:5000")
				shouttest.ServePacket(t, srv, pc)
				pc.in <- fakeDatagram{echo, []byte(data)}
				if d := obs.next(t); d.Reason != server.ReasonNone {
					t.Fatalf("%q observed %v, want an answer", data, d.Reason)
				}
				sent := pc.written()
				if len(sent) != 1 {
					t.Fatalf("%q: sent %v, want one reply", data, sent)
				}
				reply := sent[0].data
				pc.in <- fakeDatagram{echo, reply} // bounced back
				if d := obs.next(t); d.Reason != server.ReasonLoop {
					t.Errorf("%q, its reply %q bounced back: observed %v, want %v", data, reply, d.Reason, server.ReasonLoop)
				}
				pc.in <- fakeDatagram{echo, []byte(data)} // sent again
				want := server.ReasonNone
				if string(reply) == data {
					want = server.ReasonLoop
				}
				if d := obs.next(t); d.Reason != want {
					t.Errorf("%q sent again after its reply %q: observed %v, want %v", data, reply, d.Reason, want)
				}
				if n := len(pc.written()); want == server.ReasonNone && n != 2 || want == server.ReasonLoop && n != 1 {
					t.Errorf("%q: %d replies sent in all, after its reply bounced back and it was sent again", data, n)
				}
			}
		})
	}
}

// rot13 turns each ASCII letter 13 places on: its output, turned again,
// is its input.
type rot13 struct{ transform.NopResetter }

func (rot13) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	n := copy(dst, src)
	for i, c := range dst[:n] {
		switch {
		case 'a' <= c && c <= 'z':
			dst[i] = 'a' + (c-'a'+13)%26
		case 'A' <= c && c <= 'Z':
			dst[i] = 'A' + (c-'A'+13)%26
		}
	}
	if n < len(src) {
		err = transform.ErrShortDst
	}
	return n, n, err
}

// A datagram whose source cannot afford a reply as long as it is is
// turned away before it is transformed: a flood over its budget costs
// little more than its reads. It is observed with no reply made
// (BytesOut 0); one the budget turns away once its reply is made, longer
// than it, with the reply's size.
func TestUDPBudgetBeforeTransform(t *testing.T) {
	for _, c := range []struct {
		mode     upper.Mode
		reason   server.Reason // of "ŉ", 2 bytes, with 2 bytes of budget left
		bytesOut int
	}{
		{upper.Upper, server.ReasonBudget, 3}, // "ʼN"
		{upper.ASCII, server.ReasonNone, 2},   // "ŉ"
	} {
		t.Run(c.mode.String(), func(t *testing.T) {
			tr, err := upper.New(c.mode, "")
			if err != nil {
				t.Fatal(err)
			}
			obs := make(datagrams, 4)
			srv := &server.Server{Observer: obs, Transformer: tr, SourceRate: 10} // 10 bytes at once
			srv.StopSourceClock()
			pc := newFakePacketConn("127.0.0.1:5000")
			shouttest.ServePacket(t, srv, pc)
			from := netip.MustParseAddrPort("192.0.2.7:40000")
			for _, d := range []struct {
				data     string
				reason   server.Reason
				bytesOut int
			}{
				{"12345678", server.ReasonNone, 8},
				{"abc", server.ReasonBudget, 0}, // 3 bytes: more than the 2 left
				{"ŉ", c.reason, c.bytesOut},
			} {
				pc.in <- fakeDatagram{from, []byte(d.data)}
				if got := obs.next(t); got.Reason != d.reason || got.BytesOut != d.bytesOut {
					t.Errorf("%q: observed %v, %d bytes out; want %v, %d", d.data, got.Reason, got.BytesOut, d.reason, d.bytesOut)
				}
			}
		})
	}
}
