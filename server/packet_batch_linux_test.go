package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
	"golang.org/x/text/transform"
)

// These tests drive one batch worker by hand: datagrams are queued on the
// server's socket first, so that one recvmmsg reads several.

const batchBound = 10 * time.Second

// recorder is an Observer that keeps a copy of each DatagramInfo, in order.
type recorder struct {
	mu sync.Mutex
	ds []DatagramInfo
}

func (*recorder) ConnOpen(*ConnInfo)         {}
func (*recorder) ConnRead(*ConnInfo, []byte) {}
func (*recorder) ConnClose(*ConnInfo)        {}
func (r *recorder) Datagram(d *DatagramInfo) {
	c := *d
	c.Data = bytes.Clone(d.Data)
	r.mu.Lock()
	r.ds = append(r.ds, c)
	r.mu.Unlock()
}

func (r *recorder) list() []DatagramInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]DatagramInfo(nil), r.ds...)
}

func listenUDP(t testing.TB, network, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if a, ok := t.(*attempt); ok {
		a.watch(c.LocalAddr().(*net.UDPAddr).Port)
	}
	return c
}

// runBatches makes a batch worker for pc, passes it to each of setup, and
// has it read and answer until want datagrams have been handled, and
// returns how many each read got.
func runBatches(t testing.TB, s *Server, pc *net.UDPConn, want int, setup ...func(*batchWorker)) (sizes []int) {
	t.Helper()
	w := s.newPacketConn(pc).newBatchWorker()
	if w == nil {
		t.Fatal("no batch worker for a *net.UDPConn")
	}
	defer w.unmap()
	for _, f := range setup {
		f(w)
	}
	end := time.Now().Add(batchBound)
	for total := 0; total < want; {
		n, err := awaitRead(t, pc, end, w.read)
		if err != nil {
			t.Fatalf("read after %d of %d datagrams: %v", total, want, err)
		}
		w.handle(n)
		sizes = append(sizes, n)
		total += n
	}
	return sizes
}

// expectReplies reads len(want) replies on c, in order, each from from if
// it is valid.
func expectReplies(t testing.TB, c *net.UDPConn, from netip.AddrPort, want ...string) {
	t.Helper()
	buf := make([]byte, maxDatagram)
	end := time.Now().Add(batchBound)
	for i, w := range want {
		var src netip.AddrPort
		n, err := awaitRead(t, c, end, func() (n int, err error) {
			n, src, err = c.ReadFromUDPAddrPort(buf)
			return n, err
		})
		if err != nil {
			t.Fatalf("%v: reply %d of %d: %v", c.LocalAddr(), i+1, len(want), err)
		}
		if got := string(buf[:n]); got != w {
			t.Errorf("%v: reply %d is %q (%d bytes), want %q (%d bytes)", c.LocalAddr(), i+1, trim(got), n, trim(w), len(w))
		}
		if src = unmapPort(src); from.IsValid() && src != from {
			t.Errorf("%v: reply %d from %v, want %v", c.LocalAddr(), i+1, src, from)
		}
	}
}

// expectNoMore checks that nothing more came to c: each reply was sent
// during handle, and on loopback is queued before sendmmsg returns.
func expectNoMore(t testing.TB, c *net.UDPConn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	buf := make([]byte, maxDatagram)
	if n, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("%v: unexpected %q, %v", c.LocalAddr(), trim(string(buf[:n])), err)
	}
}

func trim(s string) string {
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return s
}

type sent struct {
	from   *net.UDPConn
	data   string
	reason Reason
}

func send(t testing.TB, to netip.AddrPort, ds []sent) {
	t.Helper()
	for _, d := range ds {
		if _, err := d.from.WriteToUDPAddrPort([]byte(d.data), to); err != nil {
			t.Fatal(err)
		}
	}
}

// checkObserved compares what the observer saw with what was sent, in
// order.
func checkObserved(t testing.TB, got []DatagramInfo, want []sent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("observed %d datagrams, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		from := w.from.LocalAddr().(*net.UDPAddr).AddrPort()
		if unmapPort(g.Remote) != unmapPort(from) || string(g.Data) != w.data || g.Reason != w.reason {
			t.Errorf("datagram %d: observed %q from %v, %v (%v); want %q from %v, %v",
				i+1, trim(string(g.Data)), g.Remote, g.Reason, g.Err, trim(w.data), from, w.reason)
		}
	}
}

// In one batch, datagrams from several sources: those the guard or a
// budget turns away get no reply, the others are answered, each reply to
// its own source, and the observer hears of all of them in order.
func TestBatchSources(t *testing.T) {
	againOnDrops(t, func(t testing.TB) {
		pc := listenUDP(t, "udp4", "127.0.0.1:0")
		to := pc.LocalAddr().(*net.UDPAddr).AddrPort()
		// Three addresses: a budget is an address's, all its ports'.
		a := listenUDP(t, "udp4", "127.0.0.1:0")
		b := listenUDP(t, "udp4", "127.0.0.2:0")
		c := listenUDP(t, "udp4", "127.0.0.3:0")
		// A budget of 10 bytes a second, 10 at once: a spends 9 on its first
		// reply and cannot afford a second.
		rec := &recorder{}
		s := &Server{SourceRate: 10, Observer: rec, Logger: slog.New(slog.DiscardHandler)}
		ds := []sent{
			{a, "123456789", ReasonNone},
			{pc, "from myself", ReasonOwnAddress},
			{b, "bbbbbbbbb", ReasonNone},
			{a, "abcdefghi", ReasonBudget},
			{b, "", ReasonNone}, // an empty reply, which costs nothing
			{c, "ß st", ReasonNone},
		}
		// A source on a port whose service answers datagrams, if this test
		// may bind one.
		if echo, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7}); err == nil {
			defer echo.Close()
			ds = append(ds[:3], append([]sent{{echo, "echo", ReasonReflectorPort}}, ds[3:]...)...)
			defer expectNoMore(t, echo)
		} else {
			t.Logf("no source on the echo port: %v", err)
		}
		send(t, to, ds)
		sizes := runBatches(t, s, pc, len(ds))
		if sizes[0] < 2 {
			t.Errorf("reads got %v datagrams: the first was not a batch", sizes)
		}
		checkObserved(t, rec.list(), ds)
		expectReplies(t, a, to, "123456789")
		expectReplies(t, b, to, "BBBBBBBBB", "")
		expectReplies(t, c, to, "SS ST")
		expectNoMore(t, a)
		expectNoMore(t, b)
	})
}

// On a wildcard listener, each reply of a batch leaves from the address
// its datagram was sent to.
func TestBatchReplyFromDestination(t *testing.T) {
	for _, network := range []string{"udp4", "udp"} { // "udp" on 0.0.0.0 is dual-stack IPv6
		t.Run(network, func(t *testing.T) {
			againOnDrops(t, func(t testing.TB) {
				pc := listenUDP(t, network, "0.0.0.0:0")
				port := pc.LocalAddr().(*net.UDPAddr).AddrPort().Port()
				rec := &recorder{}
				s := &Server{Observer: rec, Logger: slog.New(slog.DiscardHandler)}
				c := listenUDP(t, "udp4", "127.0.0.1:0")
				dsts := []string{"127.0.0.2", "127.0.0.1", "127.0.0.3", "127.0.0.2"}
				for i, d := range dsts {
					to := netip.AddrPortFrom(netip.MustParseAddr(d), port)
					if _, err := c.WriteToUDPAddrPort([]byte{'a' + byte(i)}, to); err != nil {
						t.Fatal(err)
					}
				}
				sizes := runBatches(t, s, pc, len(dsts))
				if sizes[0] < 2 {
					t.Errorf("reads got %v datagrams: the first was not a batch", sizes)
				}
				got := rec.list()
				for i, d := range dsts {
					to := netip.AddrPortFrom(netip.MustParseAddr(d), port)
					expectReplies(t, c, to, string(rune('A'+i)))
					if l := unmapPort(got[i].Local); l != to || got[i].Reason != ReasonNone {
						t.Errorf("datagram %d: observed Local %v, %v; want %v", i+1, l, got[i].Reason, to)
					}
				}
			})
		})
	}
}

// repeat is a Transformer that writes each byte's uppercase n times, to
// make large replies from small datagrams.
type repeat int

func (r repeat) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	for _, c := range src {
		if len(dst)-nDst < int(r) {
			return nDst, nSrc, transform.ErrShortDst
		}
		for range int(r) {
			dst[nDst] = upperASCII(c)
			nDst++
		}
		nSrc++
	}
	return nDst, nSrc, nil
}

func (repeat) Reset() {}

func upperASCII(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// A batch whose replies do not fit in one buffer together, with one reply
// too large for the buffer, one too large for IPv4 (65,520 bytes: that
// fits the buffer, and sendmmsg failed it with EMSGSIZE, reported as a
// send failure), and one whose send fails in the middle of a sendmmsg:
// the others are all answered, whole and in order.
func TestBatchLargeReplies(t *testing.T) {
	againOnDrops(t, func(t testing.TB) {
		pc := listenUDP(t, "udp4", "127.0.0.1:0")
		to := pc.LocalAddr().(*net.UDPAddr).AddrPort()
		c := listenUDP(t, "udp4", "127.0.0.1:0")
		c.SetReadBuffer(1 << 20)
		bad := listenUDP(t, "udp4", "127.0.0.1:0")
		rec := &recorder{}
		const x = 30
		s := &Server{Transformer: repeat(x), Observer: rec, Logger: slog.New(slog.DiscardHandler)}
		tooLarge := strings.Repeat("t", maxDatagram/x+1) // more than 65,535 bytes of reply
		tooLargeV4 := strings.Repeat("v", 65520/x)       // 65,520: more than IPv4 carries
		ds := []sent{
			{c, "hi", ReasonNone},
			{c, strings.Repeat("a", 1000), ReasonNone}, // 30,000 bytes of reply
			{c, tooLarge, ReasonTooLarge},
			{c, "", ReasonNone},
			{c, tooLargeV4, ReasonTooLarge},
			// Sent with one sendmmsg, of which only the second fails.
			{c, "y", ReasonNone},
			{bad, "x", ReasonSendFailed},
			{c, "z", ReasonNone},
			{c, strings.Repeat("b", 1000), ReasonNone},
			{c, strings.Repeat("c", 1000), ReasonNone},
			// Too large for what b's and c's replies left of the buffer: they
			// are sent, and it is answered from the start of it. The observer
			// hears of it once it is, not while it was too large.
			{c, strings.Repeat("d", 1000), ReasonNone},
			{c, "ok", ReasonNone},
		}
		send(t, to, ds)
		sizes := runBatches(t, s, pc, len(ds), func(w *batchWorker) {
			refuseTo(w, bad.LocalAddr().(*net.UDPAddr).AddrPort(), unix.EMSGSIZE)
		})
		if sizes[0] < 2 {
			t.Errorf("reads got %v datagrams: the first was not a batch", sizes)
		}
		got := rec.list()
		checkObserved(t, got, ds)
		if d := got[4]; d.BytesOut != 0 || d.Err != nil {
			t.Errorf("the reply too large for IPv4: %d bytes out, %v; want none, and no error", d.BytesOut, d.Err)
		}
		if err := got[6].Err; !errors.Is(err, syscall.EMSGSIZE) {
			t.Errorf("the reply whose send failed: %v, want EMSGSIZE", err)
		}
		expectReplies(t, c, to, strings.Repeat("H", x)+strings.Repeat("I", x),
			strings.Repeat("A", 1000*x), "", strings.Repeat("Y", x), strings.Repeat("Z", x),
			strings.Repeat("B", 1000*x), strings.Repeat("C", 1000*x), strings.Repeat("D", 1000*x),
			strings.Repeat("O", x)+strings.Repeat("K", x))
		expectNoMore(t, c)
		expectNoMore(t, bad)
	})
}

// blocker is an Observer that stops at the first datagram until released.
type blocker struct {
	recorder
	inside, release chan struct{}
	once            sync.Once
}

func (b *blocker) Datagram(d *DatagramInfo) {
	b.once.Do(func() {
		close(b.inside)
		<-b.release
	})
	b.recorder.Datagram(d)
}

// Closing the server while a worker is in the middle of a batch, and the
// others wait in recvmmsg: the batch is finished, every datagram of it
// reported, and ServePacket returns ErrServerClosed. A datagram reported
// as answered had its reply sent; one whose reply the close cut (a worker
// that sent after it) is reported as cut by the stop, and got none.
func TestBatchClose(t *testing.T) {
	againOnDrops(t, func(t testing.TB) {
		pc := listenUDP(t, "udp4", "127.0.0.1:0")
		to := pc.LocalAddr().(*net.UDPAddr).AddrPort()
		c := listenUDP(t, "udp4", "127.0.0.1:0")
		obs := &blocker{inside: make(chan struct{}), release: make(chan struct{})}
		s := &Server{Observer: obs, Logger: slog.New(slog.DiscardHandler)}
		const n = 8
		for i := range n {
			if _, err := c.WriteToUDPAddrPort([]byte{'a' + byte(i)}, to); err != nil {
				t.Fatal(err)
			}
		}
		served := make(chan error, 1)
		go func() { served <- s.ServePacket(pc) }()
		select {
		case <-obs.inside:
		case <-time.After(batchBound):
			t.Fatal("no datagram observed")
		}
		s.closeAll(true) // Close, without waiting for the workers
		close(obs.release)
		select {
		case err := <-served:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("ServePacket returned %v, want ErrServerClosed", err)
			}
		case <-time.After(batchBound):
			t.Fatal("ServePacket did not return after Close")
		}
		s.Close()
		got := obs.list()
		if len(got) == 0 {
			t.Fatal("the batch being answered was not reported")
		}
		var answered []string
		for i, d := range got {
			switch {
			case len(d.Data) != 1:
				t.Errorf("datagram %d: %q", i+1, d.Data)
			case d.Reason == ReasonNone:
				answered = append(answered, strings.ToUpper(string(d.Data)))
			case d.Reason != ReasonShutdown || !errors.Is(d.Err, net.ErrClosed):
				t.Errorf("datagram %d: %q, %v (%v); want answered, or cut by the stop", i+1, d.Data, d.Reason, d.Err)
			}
		}
		// On loopback a reply is queued for c before sendmmsg returns: what
		// c has now is every reply sent.
		if replies := queued(t, c, n); !slices.Equal(sorted(replies), sorted(answered)) {
			t.Errorf("c got replies %q; reported as answered: %q", replies, answered)
		}
		t.Logf("%d of %d datagrams read before the close, %d answered", len(got), n, len(answered))

		// A batch read before the close and answered after it, deterministically:
		// none of its replies is sent, and none is reported as answered.
		pc = listenUDP(t, "udp4", "127.0.0.1:0")
		to = pc.LocalAddr().(*net.UDPAddr).AddrPort()
		rec := &recorder{}
		s = &Server{Observer: rec, Logger: slog.New(slog.DiscardHandler)}
		w := s.newPacketConn(pc).newBatchWorker()
		defer w.unmap()
		for i := range 4 {
			if _, err := c.WriteToUDPAddrPort([]byte{'a' + byte(i)}, to); err != nil {
				t.Fatal(err)
			}
		}
		k, err := awaitRead(t, pc, time.Now().Add(batchBound), w.read)
		if err != nil {
			t.Fatal(err)
		}
		s.closeAll(true)
		pc.Close() // as closeAll does the packet connections it serves
		w.handle(k)
		for i, d := range rec.list() {
			if d.Reason != ReasonShutdown || !errors.Is(d.Err, net.ErrClosed) {
				t.Errorf("datagram %d of %d read before the close, answered after: %q, %v (%v); want %v, net.ErrClosed",
					i+1, k, d.Data, d.Reason, d.Err, ReasonShutdown)
			}
		}
		if replies := queued(t, c, 4); len(replies) > 0 {
			t.Errorf("replies %q sent after the close", replies)
		}
	})
}

// queued reads what c has queued now, up to max datagrams, without
// waiting (a deadline already past would read nothing).
func queued(t testing.TB, c *net.UDPConn, max int) []string {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	buf := make([]byte, maxDatagram)
	err = rc.Control(func(fd uintptr) {
		for range max {
			n, _, err := unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
			if err != nil {
				return
			}
			got = append(got, string(buf[:n]))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// An ICMP error for an earlier reply fails a read (here with IP_RECVERR,
// which makes Linux report one on an unconnected socket too); the worker
// reads on, and answers what comes next.
func TestBatchICMPError(t *testing.T) {
	againOnDrops(t, func(t testing.TB) {
		pc := listenUDP(t, "udp4", "127.0.0.1:0")
		to := pc.LocalAddr().(*net.UDPAddr).AddrPort()
		rc, err := pc.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		rc.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVERR, 1) })
		if err != nil {
			t.Fatal(err)
		}
		s := &Server{Logger: slog.New(slog.DiscardHandler)}
		w := s.newPacketConn(pc).newBatchWorker()
		defer w.unmap()
		end := time.Now().Add(batchBound)

		gone, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		gone.WriteToUDPAddrPort([]byte("x"), to)
		gone.Close() // its reply draws "port unreachable"
		n, err := awaitRead(t, pc, end, w.read)
		if err != nil {
			t.Fatal(err)
		}
		w.handle(n)

		c := listenUDP(t, "udp4", "127.0.0.1:0")
		c.WriteToUDPAddrPort([]byte("y"), to)
		var failed error
		var delay time.Duration
		for answered := false; !answered; {
			n, err := awaitRead(t, pc, end, w.read)
			if errors.Is(err, os.ErrDeadlineExceeded) { // (the loop's bound)
				t.Fatalf("the datagram after the ICMP error was not read: %v", err)
			}
			if err != nil {
				if err := w.readError(err, &delay); err != nil {
					t.Fatalf("the worker would stop: %v", err)
				}
				if delay != 0 {
					t.Errorf("the worker waits %v after %v, which a client can cause at will", delay, err)
				}
				failed = err
				continue
			}
			w.handle(n)
			answered = true
		}
		if !errors.Is(failed, syscall.ECONNREFUSED) {
			t.Errorf("read failed with %v, want ECONNREFUSED", failed)
		}
		expectReplies(t, c, to, "Y")
	})
}

// BenchmarkReplies is what a batch worker spends on a batch of 16
// datagrams of 64 bytes, read and answered (the clients' sends and reads
// are not timed), with the replies to one client sent as one message the
// kernel cuts (gso) or each as its own: from one client, four, or
// sixteen. On loopback the way out includes delivering each reply to its
// client's socket.
func BenchmarkReplies(b *testing.B) {
	for _, clients := range []int{1, 4, 16} {
		for _, gso := range []bool{false, true} {
			b.Run(fmt.Sprintf("clients=%d/gso=%v", clients, gso), func(b *testing.B) {
				pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
				if err != nil {
					b.Fatal(err)
				}
				defer pc.Close()
				to := pc.LocalAddr().(*net.UDPAddr).AddrPort()
				s := &Server{Logger: slog.New(slog.DiscardHandler)}
				w := s.newPacketConn(pc).newBatchWorker()
				defer w.unmap()
				if gso && !w.gso {
					b.Skip("this kernel has no UDP_SEGMENT")
				}
				w.gso = gso
				cs := make([]*net.UDPConn, clients)
				for i := range cs {
					if cs[i], err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
						b.Fatal(err)
					}
					defer cs[i].Close()
				}
				msg := bytes.Repeat([]byte("x"), 64)
				buf := make([]byte, 128)
				pc.SetReadDeadline(time.Now().Add(time.Hour))
				for b.Loop() {
					b.StopTimer()
					for i := range batchLen {
						if _, err := cs[i%clients].WriteToUDPAddrPort(msg, to); err != nil {
							b.Fatal(err)
						}
					}
					b.StartTimer()
					for done := 0; done < batchLen; {
						n, err := w.read()
						if err != nil {
							b.Fatal(err)
						}
						w.handle(n)
						done += n
					}
					b.StopTimer()
					for i := range batchLen {
						c := cs[i%clients]
						c.SetReadDeadline(time.Now().Add(batchBound))
						if n, err := c.Read(buf); n != len(msg) || err != nil {
							b.Fatalf("reply %d: %d bytes, %v", i, n, err)
						}
					}
					b.StartTimer()
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batchLen), "ns/datagram")
			})
		}
	}
}

// pack groups replies to one client into messages the kernel cuts into
// datagrams, under its rules, and keeps each client's replies in order.
func TestBatchPack(t *testing.T) {
	pc := listenUDP(t, "udp4", "127.0.0.1:0")
	s := &Server{Logger: slog.New(slog.DiscardHandler)}
	w := s.newPacketConn(pc).newBatchWorker()
	if w == nil {
		t.Fatal("no batch worker")
	}
	defer w.unmap()
	x, y := netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")
	type reply struct {
		to   byte // the client: its port
		from netip.Addr
		size int
	}
	a, b := byte(1), byte(2)
	for _, tc := range []struct {
		name    string
		gso     bool
		gsoMax  int
		replies []reply
		want    [][]int // the queued replies in each message, in order
	}{
		{"one client's run, ended by a shorter one", true, gsoMaxBytes,
			[]reply{{a, x, 64}, {a, x, 64}, {b, x, 64}, {a, x, 64}, {a, x, 10}, {a, x, 64}},
			[][]int{{0, 1, 3, 4}, {2}, {5}}},
		{"a longer reply starts a message, a shorter one joins it", true, gsoMaxBytes,
			[]reply{{a, x, 64}, {a, x, 100}, {a, x, 64}, {a, x, 64}},
			[][]int{{0}, {1, 2}, {3}}},
		{"sent from another address: no reply passes another to its client", true, gsoMaxBytes,
			[]reply{{a, x, 64}, {a, y, 64}, {a, x, 64}, {b, y, 64}, {b, y, 64}},
			[][]int{{0}, {1}, {2}, {3, 4}}},
		{"empty replies are not cut", true, gsoMaxBytes,
			[]reply{{a, x, 0}, {a, x, 0}},
			[][]int{{0}, {1}}},
		{"no more than a datagram can carry", true, gsoMaxBytes,
			[]reply{{a, x, 30000}, {a, x, 30000}, {a, x, 30000}},
			[][]int{{0, 1}, {2}}},
		{"not larger than what was refused", true, 63,
			[]reply{{a, x, 64}, {a, x, 64}, {a, x, 63}, {a, x, 63}},
			[][]int{{0}, {1}, {2, 3}}},
		{"without offload", false, gsoMaxBytes,
			[]reply{{a, x, 64}, {a, x, 64}},
			[][]int{{0}, {1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w.gso, w.gsoMax, w.pktinfo = tc.gso, tc.gsoMax, true
			for q, r := range tc.replies {
				sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&w.names[q]))
				*sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Port: uint16(r.to) << 8, Addr: [4]byte{127, 0, 0, 1}}
				w.r[q].Hdr.Namelen = unix.SizeofSockaddrInet4
				w.qslot[q], w.qfrom[q], w.qif[q] = q, r.from, 0
				w.qiov[q].Base = &w.out[0]
				w.qiov[q].SetLen(r.size)
			}
			w.pack(w.all[:len(tc.replies)])
			var got [][]int
			for m := range w.nw {
				lo, hi := w.span(m)
				got = append(got, slices.Clone(w.wq[lo:hi]))
				h := &w.w[m].Hdr
				if int(h.Iovlen) != hi-lo || h.Iov != &w.wiov[lo] {
					t.Errorf("message %d: %d iovecs at %p, want %d at %p", m, h.Iovlen, h.Iov, hi-lo, &w.wiov[lo])
				}
				seg, from := controls(t, unsafe.Slice(h.Control, h.Controllen))
				if want := tc.replies[w.wq[lo]].size; hi-lo > 1 && seg != want || hi-lo == 1 && seg != 0 {
					t.Errorf("message %d of %d replies: cut to %d bytes, want %d", m, hi-lo, seg, want)
				}
				if want := tc.replies[w.wq[lo]].from; from != want {
					t.Errorf("message %d: sent from %v, want %v", m, from, want)
				}
			}
			if !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Errorf("messages %v, want %v", got, tc.want)
			}
		})
	}
}

// controls reads the segment size and the source address from a
// message's control messages.
func controls(t *testing.T, b []byte) (seg int, from netip.Addr) {
	t.Helper()
	cms, err := unix.ParseSocketControlMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, cm := range cms {
		switch {
		case cm.Header.Level == unix.IPPROTO_UDP && cm.Header.Type == unix.UDP_SEGMENT:
			seg = int(binary.NativeEndian.Uint16(cm.Data))
		case cm.Header.Level == unix.IPPROTO_IP && cm.Header.Type == unix.IP_PKTINFO:
			from = netip.AddrFrom4([4]byte(cm.Data[4:8]))
		}
	}
	return seg, from
}

// countCuts counts the messages of several replies w tries to send, or
// skips t where the kernel cuts none.
func countCuts(t testing.TB, w *batchWorker) *int {
	t.Helper()
	if !w.gso {
		t.Skip("no segmentation offload for UDP here (Linux 5.0 or later)")
	}
	n := new(int)
	send := w.writeF
	w.writeF = func(fd uintptr) bool {
		for m := w.first; m < w.nw; m++ {
			if w.w[m].Hdr.Iovlen > 1 {
				*n++
			}
		}
		return send(fd)
	}
	return n
}

// refuseTo makes w's sends to dst fail with errno, cut or not, as a
// route that takes nothing to it does (a blackhole route: EINVAL).
func refuseTo(w *batchWorker, dst netip.AddrPort, errno unix.Errno) {
	send := w.writeF
	w.writeF = func(fd uintptr) bool {
		for m := w.first; m < w.nw; m++ {
			lo, _ := w.span(m)
			if unmapPort(w.source(w.qslot[w.wq[lo]])) != dst {
				continue
			}
			if m == w.first {
				w.n, w.errno = 0, errno
				return true
			}
			all := w.nw
			w.nw = m // send those before it
			ok := send(fd)
			w.nw = all
			return ok
		}
		return send(fd)
	}
}

// When the kernel refuses to cut a message into datagrams (here because
// the socket came to send no checksums, which cutting needs), its replies
// are sent one by one, none is lost or reported failed, and replies that
// large are cut no more.
func TestBatchCutRefused(t *testing.T) {
	againOnDrops(t, func(t testing.TB) {
		pc := listenUDP(t, "udp4", "127.0.0.1:0")
		to := pc.LocalAddr().(*net.UDPAddr).AddrPort()
		rec := &recorder{}
		var logs bytes.Buffer // one goroutine: runBatches's
		s := &Server{Observer: rec, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
		a := listenUDP(t, "udp4", "127.0.0.1:0")
		b := listenUDP(t, "udp4", "127.0.0.1:0")
		ds := []sent{{b, "b1", ReasonNone}, {a, "a1", ReasonNone}, {a, "a2", ReasonNone}, {a, "a3", ReasonNone}, {b, "b2", ReasonNone}}
		send(t, to, ds)
		var w *batchWorker
		var cuts *int
		runBatches(t, s, pc, len(ds), func(bw *batchWorker) {
			w, cuts = bw, countCuts(t, bw)
			bw.rc.Control(func(fd uintptr) { // after the worker looked: it cuts, and the kernel refuses
				if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NO_CHECK, 1); err != nil {
					t.Skip("SO_NO_CHECK:", err)
				}
			})
		})
		checkObserved(t, rec.list(), ds)
		expectReplies(t, a, to, "A1", "A2", "A3")
		expectReplies(t, b, to, "B1", "B2")
		expectNoMore(t, a)
		expectNoMore(t, b)
		if *cuts == 0 {
			t.Error("no message was cut, so none was refused")
		}
		if !w.gso || w.gsoMax >= 2 {
			t.Errorf("after a refusal of 2-byte datagrams: cutting %v, up to %d bytes; want on, below 2", w.gso, w.gsoMax)
		}
		want := fmt.Sprintf(`level=INFO msg="datagram replies cut only up to a smaller size" local=%s err="sendmmsg: invalid argument" largest_cut=1 total=1`, to)
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log:\n%s\nwant a line with\n%s", &logs, want)
		}
	})
}

// Where the kernel cannot cut at all (EIO: no checksum offload on the way
// out, IPsec), the worker stops cutting and says so.
func TestBatchCutRefusedLogged(t *testing.T) {
	pc := listenUDP(t, "udp4", "127.0.0.1:0")
	var logs bytes.Buffer
	s := &Server{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	w := s.newPacketConn(pc).newBatchWorker()
	defer w.unmap()
	w.gso = true
	w.refused(unix.EIO, 100)
	if w.gso {
		t.Error("still cutting after EIO")
	}
	want := fmt.Sprintf(`level=INFO msg="datagram replies no longer cut" local=%s err="sendmmsg: input/output error" total=1`, pc.LocalAddr())
	if !strings.Contains(logs.String(), want) {
		t.Errorf("log:\n%s\nwant a line with\n%s", &logs, want)
	}
}

// A client the way to which takes no datagram at all (a blackhole route)
// gets no reply, each reported failed, and does not stop the worker from
// cutting the replies to other clients.
func TestBatchCutRefusedByClient(t *testing.T) {
	againOnDrops(t, func(t testing.TB) {
		pc := listenUDP(t, "udp4", "127.0.0.1:0")
		to := pc.LocalAddr().(*net.UDPAddr).AddrPort()
		rec := &recorder{}
		var logs bytes.Buffer
		s := &Server{Observer: rec, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
		bad := listenUDP(t, "udp4", "127.0.0.1:0")
		good := listenUDP(t, "udp4", "127.0.0.1:0")
		var w *batchWorker
		var cuts *int
		setup := func(bw *batchWorker) {
			w = bw
			refuseTo(w, bad.LocalAddr().(*net.UDPAddr).AddrPort(), unix.EINVAL)
			cuts = countCuts(t, w)
		}
		ds := []sent{{bad, "x1", ReasonSendFailed}, {bad, "x2", ReasonSendFailed}, {good, "a1", ReasonNone}, {good, "a2", ReasonNone}, {good, "a3", ReasonNone}}
		send(t, to, ds)
		runBatches(t, s, pc, len(ds), setup)
		checkObserved(t, rec.list(), ds)
		expectReplies(t, good, to, "A1", "A2", "A3")
		expectNoMore(t, good)
		expectNoMore(t, bad)
		if !w.gso || w.gsoMax != gsoMaxBytes {
			t.Errorf("after one client's way refused its replies: cutting %v, up to %d bytes; want on, up to %d", w.gso, w.gsoMax, gsoMaxBytes)
		}
		if *cuts < 2 {
			t.Errorf("%d messages tried cut, want the refused one and the good client's", *cuts)
		}
		if strings.Contains(logs.String(), `msg="datagram replies`) { // either line refused logs
			t.Errorf("logged that the server cuts less, though it does not:\n%s", &logs)
		}
	})
}

// With segmentation offload, a client that sends a run of datagrams gets
// each reply as a datagram of its own, in order, whatever their sizes; on
// a wildcard listener too, where each message says where it is from (on
// a dual-stack socket, to an IPv4 client).
func TestBatchCutReplies(t *testing.T) {
	for _, tc := range []struct{ network, listen string }{{"udp4", "127.0.0.1:0"}, {"udp", "[::]:0"}} {
		t.Run(tc.network, func(t *testing.T) {
			againOnDrops(t, func(t testing.TB) {
				pc := listenUDP(t, tc.network, tc.listen)
				to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), pc.LocalAddr().(*net.UDPAddr).AddrPort().Port())
				rec := &recorder{}
				s := &Server{Observer: rec, Logger: slog.New(slog.DiscardHandler)}
				a := listenUDP(t, "udp4", "127.0.0.1:0")
				b := listenUDP(t, "udp4", "127.0.0.1:0")
				ds := []sent{
					{a, "aaaa", ReasonNone}, {a, "bbbb", ReasonNone}, {b, "1111", ReasonNone}, {a, "cccc", ReasonNone},
					{a, "ß", ReasonNone}, {a, "dddd", ReasonNone}, {a, "straße", ReasonNone}, {a, "eeeeeee", ReasonNone},
					{b, "2222", ReasonNone}, {a, "", ReasonNone}, {a, "ffff", ReasonNone},
				}
				send(t, to, ds)
				var cuts *int
				sizes := runBatches(t, s, pc, len(ds), func(w *batchWorker) { cuts = countCuts(t, w) })
				if sizes[0] < 4 {
					t.Errorf("reads got %v datagrams: the first batch was too small to cut", sizes)
				}
				if *cuts == 0 {
					t.Error("no message was cut")
				}
				checkObserved(t, rec.list(), ds)
				expectReplies(t, a, to, "AAAA", "BBBB", "CCCC", "SS", "DDDD", "STRASSE", "EEEEEEE", "", "FFFF")
				expectReplies(t, b, to, "1111", "2222")
				expectNoMore(t, a)
				expectNoMore(t, b)
			})
		})
	}
}
