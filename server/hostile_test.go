//go:build unix

package server_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"shout/internal/certs"
	"shout/internal/shouttest"
	"shout/server"
)

// Hostile clients, which TestMain runs against both drivers. The memory
// a client that never reads may hold is TestBlockedClientMemory's; these
// check what such clients, and others, are told and that the server goes
// on serving.

// rawAddr is the local address of a raw socket: the server's Remote.
func rawAddr(t *testing.T, fd int) string {
	t.Helper()
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	a := sa.(*unix.SockaddrInet4)
	return net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
}

// floodUntilDropped writes msg to fd, never reading, until the server
// drops the connection; blocked, once its writes stop being taken, is
// closed. It returns the write error that ended it.
func floodUntilDropped(fd int, msg []byte, blocked chan<- struct{}) error {
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) {
		_, err := unix.Write(fd, msg)
		switch {
		case err == unix.EAGAIN:
			if blocked != nil {
				close(blocked)
				blocked = nil
			}
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
			unix.Poll(pfd, int(time.Until(deadline)/time.Millisecond)+1)
		case err == unix.EINTR, err == nil:
		default:
			return err
		}
	}
	return errors.New("the server never dropped the client")
}

// Clients that send and never read are dropped once their reply has been
// stuck for WriteTimeout, each told as a write timeout with its reply
// cut short by the deadline, while the server keeps answering others.
// Until then the server reads at most what the sockets' buffers hold of
// the replies, and the one it holds, 2×ReadSize (its read and that read's
// reply): then it reads nothing more. (Only TestBlockedClientMemory, a
// budget the race detector skips, stood for that bound.)
func TestFloodNeverReadWriteTimeout(t *testing.T) {
	shouttest.CheckFDs(t)
	obs := &floodObserver{fuzzObserver: newFuzzObserver()}
	// A send buffer of fixed size (listenSmall): one the kernel sizes
	// grew to 4 MB for each client, and the server, filling eight of them
	// under the race detector on a busy machine, took longer than the
	// clients wait to be dropped (bound). A reply is stuck whatever the
	// size of the buffer it is stuck behind.
	ln := listenSmall(t)
	var sndbuf int // the accepted sockets' send buffer, as the listener's
	if rc, err := ln.(*net.TCPListener).SyscallConn(); err != nil {
		t.Fatal(err)
	} else {
		rc.Control(func(fd uintptr) { sndbuf = sockBuf(t, int(fd), unix.SO_SNDBUF) })
	}
	shouttest.Serve(t, &server.Server{Observer: obs, WriteTimeout: 200 * time.Millisecond}, ln)
	addr := ln.Addr().String()
	const n = 8
	msg := []byte(strings.Repeat("straße ﬁ ΐ hello egon 哈哈哈 ", 2000)) // replies longer than requests
	fds := make([]int, n)
	for i := range fds {
		fds[i] = rawDial(t, addr)
	}
	t.Cleanup(func() { closeAll(fds) })
	errs := make([]error, n)
	blocked := make([]chan struct{}, n)
	var wg sync.WaitGroup
	// After a failure below, the floods end (within bound) before their
	// descriptors are closed, and the numbers taken by others.
	t.Cleanup(wg.Wait)
	for i, fd := range fds {
		blocked[i] = make(chan struct{})
		wg.Go(func() { errs[i] = floodUntilDropped(fd, msg, blocked[i]) })
	}
	for _, b := range blocked {
		select {
		case <-b:
		case <-time.After(bound):
			t.Fatal("a flooding client never blocked")
		}
	}
	c := dial(t, addr) // served while the others are stuck
	io.WriteString(c, "still serving ß")
	got := make([]byte, len("STILL SERVING SS"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "STILL SERVING SS" {
		t.Fatalf("got %q, %v", got, err)
	}
	wg.Wait()
	for i, fd := range fds {
		if !errors.Is(errs[i], unix.ECONNRESET) && !errors.Is(errs[i], unix.EPIPE) {
			t.Errorf("flooding client %d: %v, want dropped", i, errs[i])
		}
		addr := rawAddr(t, fd)
		obs.waitClose(t, addr)
		obs.mu.Lock()
		ci, cut := obs.closes[addr], obs.cut[addr]
		obs.mu.Unlock()
		if ci.Reason != server.ReasonWriteTimeout {
			t.Errorf("flooding client %d: closed for %v (%v), want write timeout", i, ci.Reason, ci.Err)
		}
		if !cut {
			t.Errorf("flooding client %d: no reply cut short by the deadline", i)
		}
		if most := sndbuf + sockBuf(t, fd, unix.SO_RCVBUF) + 2*32<<10; ci.BytesIn > int64(most) {
			t.Errorf("flooding client %d: the server read %d bytes of it, more than the %d its replies' buffers and its own hold",
				i, ci.BytesIn, most)
		}
	}
}

// sockBuf is socket fd's buffer size opt (SO_SNDBUF, SO_RCVBUF): what
// the kernel counts it at, at least the bytes it holds.
func sockBuf(t *testing.T, fd, opt int) int {
	t.Helper()
	n, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, opt)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// floodObserver also notes, by client, a reply cut short by a deadline.
type floodObserver struct {
	*fuzzObserver
	cut map[string]bool
}

func (o *floodObserver) ConnReply(c *server.ConnInfo, n int, err error) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		o.mu.Lock()
		if o.cut == nil {
			o.cut = map[string]bool{}
		}
		o.cut[c.Remote.String()] = true
		o.mu.Unlock()
	}
}

// Many clients at once past MaxConns: each reads end of file, is told
// rejected for ErrMaxConns and never opened, and those admitted are
// served throughout.
func TestRejectFlood(t *testing.T) {
	shouttest.CheckFDs(t)
	obs := newFuzzObserver()
	const limit, over = 4, 100
	addr := shouttest.Start(t, &server.Server{Observer: obs, MaxConns: limit})
	held := make([]*net.TCPConn, limit)
	for i := range held {
		held[i] = dial(t, addr)
		io.WriteString(held[i], "in")
		got := make([]byte, 2)
		if _, err := io.ReadFull(held[i], got); err != nil || string(got) != "IN" {
			t.Fatalf("got %q, %v", got, err)
		}
	}
	addrs := make([]string, over)
	var wg sync.WaitGroup
	for i := range addrs {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", addr, bound)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			addrs[i] = c.LocalAddr().String()
			c.SetDeadline(time.Now().Add(bound))
			if n, err := c.Read(make([]byte, 1)); err != io.EOF {
				t.Errorf("connection over the limit: read %d, %v; want EOF", n, err)
			}
		})
	}
	wg.Wait()
	for _, c := range held {
		io.WriteString(c, "still")
		got := make([]byte, 5)
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "STILL" {
			t.Errorf("admitted client after the flood: got %q, %v", got, err)
		}
	}
	for _, a := range addrs {
		if a == "" {
			continue
		}
		obs.waitClose(t, a)
		obs.mu.Lock()
		ci, opened := obs.closes[a], obs.opens[a]
		obs.mu.Unlock()
		if ci.Reason != server.ReasonRejected || !errors.Is(ci.Err, server.ErrMaxConns) || opened {
			t.Errorf("client %s over the limit: closed for %v (%v), opened %v; want rejected for %v, never opened", a, ci.Reason, ci.Err, opened, server.ErrMaxConns)
		}
	}
}

// A client that resets while the server is stuck in the middle of its
// reply is closed as reset (the server's write may meet it as EPIPE),
// holds nothing after, and the server goes on serving.
func TestResetMidReply(t *testing.T) {
	shouttest.CheckFDs(t)
	obs := newFuzzObserver()
	addr := shouttest.Start(t, &server.Server{Observer: obs})
	msg := []byte(strings.Repeat("ΐ ß ﬁ ", 4000)) // the reply is three times as long
	want := []byte(ref(string(msg)))
	for range 10 {
		fd := rawDial(t, addr)
		a := rawAddr(t, fd)
		sent := 0
		for { // until the server is stuck writing and the sockets are full
			n, err := unix.Write(fd, msg)
			if err == unix.EAGAIN {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			sent += n
		}
		if !wait(t, fd, unix.POLLIN, bound) {
			t.Fatal("no reply")
		}
		got := make([]byte, 1<<10)
		n, err := unix.Read(fd, got)
		if err != nil || !bytes.HasPrefix(want, got[:n]) {
			t.Fatalf("read %d, %v: not the start of the reply", n, err)
		}
		unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
		unix.Close(fd)
		obs.waitClose(t, a)
		obs.mu.Lock()
		ci := obs.closes[a]
		obs.mu.Unlock()
		if !resetClose(ci.Reason) {
			t.Errorf("client %s reset after %d bytes sent: closed for %v (%v), want reset", a, sent, ci.Reason, ci.Err)
		}
	}
	c := dial(t, addr)
	io.WriteString(c, "next")
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "NEXT" {
		t.Fatalf("got %q, %v", got, err)
	}
}

// A client that sends a large message, half-closes at once and only then
// reads gets every reply byte, the held character at the end answered as
// it is, then end of file. Until it reads, the server's reply is stuck:
// it stops reading, and must find the end of input behind the rest of
// the message once the client drains it. (TestLargeMessageStreams reads
// while it writes.)
func TestHalfCloseAfterLargeMessage(t *testing.T) {
	shouttest.CheckFDs(t)
	obs := newFuzzObserver()
	addr := shouttest.Start(t, &server.Server{Observer: obs, ReadSize: 512})
	msg := []byte(strings.Repeat("straße ﬁ ΐ 哈 ", 48<<10/22) + "\xc3")
	want := ref(string(msg))
	fd := rawDial(t, addr)
	t.Cleanup(func() { unix.Close(fd) })
	a := rawAddr(t, fd)
	for p := msg; len(p) > 0; {
		n, err := unix.Write(fd, p)
		switch {
		case err == unix.EAGAIN:
			if !wait(t, fd, unix.POLLOUT, bound) {
				t.Fatalf("the message did not fit in the sockets' buffers: %d of %d bytes sent", len(msg)-len(p), len(msg))
			}
		case err != nil:
			t.Fatal(err)
		default:
			p = p[n:]
		}
	}
	if err := unix.Shutdown(fd, unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 64<<10)
	for {
		if !wait(t, fd, unix.POLLIN, bound) {
			t.Fatalf("got %d of %d bytes, then nothing within %v", len(got), len(want), bound)
		}
		n, err := unix.Read(fd, buf)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != want {
		t.Fatalf("got %d bytes, want %d; %s", len(got), len(want), diff(got, []byte(want)))
	}
	obs.waitClose(t, a)
	obs.mu.Lock()
	ci := obs.closes[a]
	obs.mu.Unlock()
	if ci.Reason != server.ReasonEOF || ci.BytesIn != int64(len(msg)) || ci.BytesOut != int64(len(want)) {
		t.Errorf("closed for %v (%v), %d in, %d out; want eof, %d, %d", ci.Reason, ci.Err, ci.BytesIn, ci.BytesOut, len(msg), len(want))
	}
}

// The slow readers below read for 2.5 or 3 WriteTimeouts. The timeout
// is 2 s, not 1: on a machine busy enough that the client reads at half
// its pace or less, its kernel, holding the window back for room enough,
// can let a second pass with nothing acknowledged, as for a client that
// stopped.
const (
	slowReaderTimeout = 2 * time.Second
	slowReads         = int(2.5 * float64(slowReaderTimeout) / float64(10*time.Millisecond))
)

// A client that takes its replies slowly, but takes them, is not dropped:
// the write timeout is for a client that stops reading. With a large
// send buffer the kernel wakes a blocked write only once a third of the
// buffer is free, so a write can wait for longer than WriteTimeout while
// the client reads all along; what it takes from the send queue counts.
func TestSlowReaderNotDropped(t *testing.T) {
	needLinux(t, "SIOCOUTQ")
	shouttest.CheckFDs(t)
	untilNotHeldUp(t, slowReader)
}

func slowReader(t *testing.T) (held time.Duration, err error) {
	ln := bigSendBuffer(t)
	serveOn(t, &server.Server{WriteTimeout: slowReaderTimeout}, ln)
	fd := rawDial(t, ln.Addr().String())
	defer unix.Close(fd)
	// Write all along, so that the server, answering, fills its send
	// buffer and its write waits: until the reads below end, or stop
	// for bound. (Not for bound in all: on a busy machine the 250 reads
	// below take longer, and then wait for replies to nothing.)
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(done)
	var lastRead atomic.Int64
	lastRead.Store(time.Now().UnixNano())
	wg.Go(func() {
		msg := bytes.Repeat([]byte("slow reader "), 5000)
		for time.Since(time.Unix(0, lastRead.Load())) < bound {
			select {
			case <-done:
				return
			default:
			}
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
			if n, _ := unix.Poll(pfd, 10); n <= 0 {
				continue
			}
			if _, err := unix.Write(fd, msg); err != nil && err != unix.EAGAIN && err != unix.EINTR {
				return // dropped: the reads below say so
			}
		}
	})
	// Read up to 4 KB every 10 ms, for 2.5 WriteTimeouts: far less than
	// frees a third of the server's send buffer. (A few hundred bytes at
	// a time, the client's window opens, and the server sees its queue
	// shrink, only every half second: too near WriteTimeout on a busy
	// machine.)
	buf := make([]byte, 4096)
	last := time.Now()
	for i := range slowReads {
		if !wait(t, fd, unix.POLLIN, bound) {
			t.Fatalf("read %d: no reply within %v", i, bound)
		}
		n, err := unix.Read(fd, buf)
		if n <= 0 {
			return max(held, time.Since(last)), fmt.Errorf("read %d: dropped (%d, %v) while the client reads", i, n, err)
		}
		held, last = max(held, time.Since(last)), time.Now()
		lastRead.Store(last.UnixNano())
		time.Sleep(10 * time.Millisecond)
	}
	return held, nil
}

// A write a wrapper makes of its own inside a read, as TLS answers a
// client's KeyUpdate and sends its alerts, to a client that takes
// nothing is timed as a reply's is: the client is dropped for its write
// timeout. The write held the read around it, and the connection, for
// good, past IdleTimeout and WriteTimeout, and a stop for its whole
// context (a TLS 1.3 client sending KeyUpdates and reading nothing held
// shout's connections for minutes, and its stop for --shutdown-timeout).
//
// Without an idle timeout, nothing but the write timeout's cut ends the
// read the wrapper goes on with: one that only marked the connection
// timed out held it for good, its client taking nothing. Traced, its
// reads and replies are another function's (stepTraced).
func TestWrapperWriteInReadTimed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		idle   time.Duration
		traced bool
	}{
		{"idle timeout", 200 * time.Millisecond, false},
		{"no idle timeout", 0, false},
		{"traced", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := newFuzzObserver()
			var o server.Observer = obs
			if tc.traced {
				o = server.Observers(obs, server.NewTraceObserver(io.Discard))
			}
			fd := sendK(t, &server.Server{Observer: o, IdleTimeout: tc.idle, WriteTimeout: 200 * time.Millisecond},
				func(c net.Conn, answer []byte) net.Conn { return &writesInRead{Conn: c, answer: answer} })
			t.Cleanup(func() { unix.Close(fd) })
			if ci := obs.closed(t, rawAddr(t, fd)); ci.Reason != server.ReasonWriteTimeout {
				t.Errorf("closed for %v (%v), want write timeout", ci.Reason, ci.Err)
			}
		})
	}
}

// A client that resets the connection while a write its wrapper makes
// of its own inside a read is under way ends as the reset: that write
// met it, not the write timeout, which is longer than the test. The
// write took the reset's error from the socket, and the read after it
// met the end of file: the close said "eof", answered.
func TestWrapperWriteInReadReset(t *testing.T) {
	obs := newFuzzObserver()
	got := make(chan struct{})
	fd := sendK(t, &server.Server{Observer: obs, WriteTimeout: 3 * bound},
		func(c net.Conn, answer []byte) net.Conn { return &writesInRead{Conn: c, answer: answer, got: got} })
	addr := rawAddr(t, fd)
	select {
	case <-got:
	case <-time.After(bound):
		unix.Close(fd)
		t.Fatalf("the server did not read the client's K within %v", bound)
	}
	if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1}); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	unix.Close(fd) // a reset
	if ci := obs.closed(t, addr); !resetClose(ci.Reason) {
		t.Errorf("closed for %v (%v), want reset", ci.Reason, ci.Err)
	}
}

// sendK serves srv with the connections wrapped by wrap, given an answer
// far more than the client's and the server's buffers hold for it to
// write of its own, over a listener with a small send buffer; and has a
// raw client connect and send "K". It returns the client's socket, for
// the caller to close.
func sendK(t *testing.T, srv *server.Server, wrap func(c net.Conn, answer []byte) net.Conn) (fd int) {
	t.Helper()
	shouttest.CheckFDs(t)
	ln := listenSmall(t)
	answer := bytes.Repeat([]byte("k"), 1<<20)
	srv.WrapConn = func(c net.Conn) (net.Conn, error) { return wrap(c, answer), nil }
	shouttest.Serve(t, srv, ln)
	fd = rawDial(t, ln.Addr().String())
	if _, err := unix.Write(fd, []byte("K")); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	return fd
}

// writesInRead is a wrapper that, as TLS answers a KeyUpdate, writes
// answer from within its Read when the client sends "K", and reads on;
// the write's error, as TLS's, is left for the next write to meet. got,
// if not nil, is closed as it reads the "K"; mu, if not nil, is held
// from then until the answer is written, as tls.Conn holds its write
// lock.
type writesInRead struct {
	net.Conn
	answer []byte
	got    chan struct{}
	mu     *sync.Mutex
}

func (w *writesInRead) Read(p []byte) (int, error) {
	for {
		n, err := w.Conn.Read(p)
		if n != 1 || p[0] != 'K' {
			return n, err
		}
		if w.mu != nil {
			w.mu.Lock()
		}
		if w.got != nil {
			close(w.got)
			w.got = nil
		}
		w.Conn.Write(w.answer)
		if w.mu != nil {
			w.mu.Unlock()
		}
	}
}

// As TestSlowReaderNotDropped, over TLS from a Listener that wraps what
// it accepts (tls.NewListener): what the client takes of the socket
// under the wrapper counts.
func TestSlowReaderNotDroppedTLS(t *testing.T) {
	needLinux(t, "SIOCOUTQ")
	shouttest.CheckFDs(t)
	untilNotHeldUp(t, slowReaderTLS)
}

func slowReaderTLS(t *testing.T) (held time.Duration, err error) {
	ln := bigSendBuffer(t)
	store, err := certs.SelfSigned([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, &server.Server{WriteTimeout: slowReaderTimeout}, tls.NewListener(ln, &tls.Config{GetCertificate: store.GetCertificate}))
	// A small receive buffer, as rawDial's: the client's reads are soon
	// of what the server sends, and stop once it is dropped.
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) (err error) {
		rc.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 16<<10) })
		return err
	}}
	c, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	// Write all along, so that the server, answering, fills its send
	// buffer and its write waits; closing c ends the writes.
	var wg sync.WaitGroup
	defer wg.Wait()
	defer c.Close()
	wg.Go(func() {
		msg := bytes.Repeat([]byte("slow reader "), 5000)
		for {
			c.SetWriteDeadline(time.Now().Add(bound))
			if _, err := c.Write(msg); err != nil {
				return
			}
		}
	})
	// Read 4 KB every 10 ms, as TestSlowReaderNotDropped does, each read
	// within bound (on a busy machine all 250 take longer than bound).
	buf := make([]byte, 4096)
	last := time.Now()
	for i := range slowReads {
		c.SetReadDeadline(time.Now().Add(bound))
		if _, err := io.ReadFull(c, buf); err != nil {
			return max(held, time.Since(last)), fmt.Errorf("read %d: dropped (%v) while the client reads", i, err)
		}
		held, last = max(held, time.Since(last)), time.Now()
		time.Sleep(10 * time.Millisecond)
	}
	return held, nil
}

// untilNotHeldUp runs a slow reader's try again while it fails after its
// client itself read nothing for half a WriteTimeout or more, three tries
// at most, as TestWrapReadsTimeTheIdle does. A test not run for that long
// (a busy machine; stall.sh with stops of 0.5 to 2 s) leaves its client
// without reading for as long as the server waits, and then a drop is
// right ('dropped (read: connection reset by peer) while the client
// reads', a write timeout, the client's reads 2 s apart). A server that
// misses the reads of a client on pace drops it with the client's reads
// 10 or 100 ms apart.
func untilNotHeldUp(t *testing.T, try func(*testing.T) (held time.Duration, err error)) {
	t.Helper()
	for i := 1; i <= 3; i++ {
		held, err := try(t)
		if err == nil {
			return
		}
		if held < slowReaderTimeout/2 {
			t.Fatalf("%v (the client's reads at most %v apart; try %d)", err, held, i)
		}
		t.Logf("try %d: %v, with the client's reads %v apart: the test was held up", i, err, held)
	}
	t.Skip("skipped: the client was held up in every try (a stalled machine); its reads were not checked")
}

// A client that reads steadily through a small send buffer is not
// dropped either. The server's writer, woken as the client takes some,
// fills the buffer again at once, so its send queue is found as long at
// each look while the client reads all along: what the client has
// acknowledged in all counts, not the queue's length alone.
func TestSlowReaderSmallSendBufferNotDropped(t *testing.T) {
	needLinux(t, "SIOCOUTQ")
	shouttest.CheckFDs(t)
	untilNotHeldUp(t, slowReaderSmallSendBuffer)
}

func slowReaderSmallSendBuffer(t *testing.T) (held time.Duration, err error) {
	ln := listenSendBuffer(t, 4608)
	var log shouttest.Log
	serveOn(t, &server.Server{WriteTimeout: slowReaderTimeout, Logger: log.Logger()}, ln)
	// A small receive buffer too: the client's window opens, and the
	// server sees it take some, every few hundred milliseconds.
	fd := rawDialBuffer(t, ln.Addr().String(), 4096)
	t.Cleanup(func() { unix.Close(fd) })
	// One message whose reply takes the client seconds to read.
	last := time.Now() // the client's last read, or the start
	msg := bytes.Repeat([]byte("slow reader "), 8000)
	for len(msg) > 0 {
		if !wait(t, fd, unix.POLLOUT, bound) {
			t.Fatal("the server takes no more of the message")
		}
		n, err := unix.Write(fd, msg)
		if err != nil && err != unix.EAGAIN && err != unix.EINTR {
			t.Fatal(err)
		}
		msg = msg[max(n, 0):]
	}
	// Read 1 KB a 100 ms for 3 WriteTimeouts: less than the reply, so
	// the server always has more to send, and the log, not the reads,
	// says if it was dropped. The pace is kept by the clock, not by the
	// reads: one after a late wake-up (a busy machine) takes what a
	// client on pace would have taken by then. (Read 1 KB a wake-up, a
	// client woken at a fifth of its pace, its window opening every few
	// reads, took nothing the server saw for a WriteTimeout, and was
	// dropped, rightly.)
	const total = int(3*slowReaderTimeout/(100*time.Millisecond)) * 1024
	buf := make([]byte, 16<<10)
	start := time.Now()
	for took, i := 0, 0; took < total; i++ {
		if i == 10*total/1024 { // (bounded: a read takes 1 byte at least)
			t.Fatalf("%d reads took %d bytes of %d", i, took, total)
		}
		due := min(int(time.Since(start)/(100*time.Millisecond)+1)*1024, total)
		if due > took {
			if !wait(t, fd, unix.POLLIN, bound) {
				t.Fatalf("read %d: no reply within %v", i, bound)
			}
			n, err := unix.Read(fd, buf[:min(due-took, len(buf))])
			held = max(held, time.Since(last))
			if n <= 0 {
				return held, fmt.Errorf("read %d: dropped (%d, %v) while the client reads:\n%s", i, n, err, log.String())
			}
			last = time.Now()
			took += n
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Contains(log.String(), "close") {
		return held, fmt.Errorf("closed while the client reads:\n%s", log.String())
	}
	return held, nil
}

// bigSendBuffer is a listener whose accepted sockets take its send
// buffer: one far larger than what a slow client reads within
// WriteTimeout.
func bigSendBuffer(t *testing.T) net.Listener {
	t.Helper()
	return listenSendBuffer(t, 4<<20)
}

// listenSendBuffer is a listener whose accepted sockets take its send
// buffer, of size bytes (which the kernel doubles).
func listenSendBuffer(t *testing.T, size int) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, size) })
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// Close, or Shutdown past its context, ends a connection served over a
// wrapper that a Listener made (tls.NewListener's *tls.Conn) whose read
// is held in a write of the wrapper's own to a client that takes nothing
// (TLS's answer to a KeyUpdate): the server closes the socket under the
// wrapper, which ends the write. It closed the wrapper, whose Close waits
// for that write (tls.Conn's close_notify takes the write lock the answer
// holds): Close never returned, holding the server's lock meanwhile.
// lockedAnswer has tls.Conn's locks; the server has no write timeout, as
// none times such a write (see Server.Serve). Under a wrapper of its own
// too (tls.NewListener over a Listener whose connections give theirs
// through NetConn), the socket is the one closed (a walk one wrapper
// deep survived the tests, review53).
func TestCloseEndsWriteInListenersWrapper(t *testing.T) {
	for _, outer := range []bool{false, true} {
		t.Run(fmt.Sprint("wrapped again: ", outer), func(t *testing.T) {
			closeEndsWriteInListenersWrapper(t, outer)
		})
	}
}

func closeEndsWriteInListenersWrapper(t *testing.T, outer bool) {
	shouttest.CheckFDs(t)
	srv := &server.Server{Logger: discard()}
	ln := listenSmall(t)
	got := make(chan struct{})
	answer := bytes.Repeat([]byte("k"), 1<<20) // far more than the buffers hold
	errs := make(chan error, 1)
	go func() {
		errs <- srv.Serve(wrapsAccepted{ln, func(c net.Conn) net.Conn {
			var w net.Conn = lockedAnswer{&writesInRead{Conn: c, answer: answer, got: got, mu: new(sync.Mutex)}}
			if outer {
				w = givesNetConn{w, w}
			}
			return w
		}})
	}()
	fd := rawDial(t, ln.Addr().String())
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte("K")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(bound):
		t.Fatalf("the server did not read the client's K within %v", bound)
	}
	closed := make(chan struct{})
	go func() {
		srv.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(bound):
		// A reset ends the write, and the test.
		unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1})
		unix.Close(fd)
		<-closed
		t.Errorf("Close did not return within %v, the read held in a write of the wrapper's own", bound)
	}
	if err := <-errs; !errors.Is(err, server.ErrServerClosed) {
		t.Errorf("Serve: %v, want ErrServerClosed", err)
	}
}

// wrapsAccepted is a Listener that wraps each connection it accepts, as
// tls.NewListener's does.
type wrapsAccepted struct {
	net.Listener
	wrap func(net.Conn) net.Conn
}

func (l wrapsAccepted) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.wrap(c), nil
}

// lockedAnswer is writesInRead with tls.Conn's locks: its Close takes
// the write lock its answer holds (as close_notify does), and it gives
// the connection under it through NetConn, as tls.Conn does.
type lockedAnswer struct{ *writesInRead }

func (w lockedAnswer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.Conn.Close()
}

func (w lockedAnswer) NetConn() net.Conn { return w.Conn }

// A Listener's wrapper whose NetConn gives no connection is closed itself
// at Close, as a wrapper without NetConn is: the walk to the socket under
// it stopped at the nil it gave, and Close panicked closing that, holding
// the server's lock.
func TestCloseWrapperWithNoNetConn(t *testing.T) {
	shouttest.CheckFDs(t)
	srv := &server.Server{Logger: discard()}
	ln := listenSmall(t)
	errs := make(chan error, 1)
	go func() {
		errs <- srv.Serve(wrapsAccepted{ln, func(c net.Conn) net.Conn { return givesNetConn{c, nil} }})
	}()
	c := dial(t, ln.Addr().String())
	defer c.Close()
	c.SetDeadline(time.Now().Add(bound))
	// A reply: the connection is served.
	if _, err := io.WriteString(c, "a\n"); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 2)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "A\n" {
		t.Fatalf("got %q, %v; want \"A\\n\"", got, err)
	}
	srv.Close()
	if err := <-errs; !errors.Is(err, server.ErrServerClosed) {
		t.Errorf("Serve: %v, want ErrServerClosed", err)
	}
	if n, err := c.Read(got); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the client read %d bytes, then %v; want the connection closed", n, err)
	}
}

// givesNetConn is a wrapper of Conn whose NetConn gives under.
type givesNetConn struct {
	net.Conn
	under net.Conn
}

func (w givesNetConn) NetConn() net.Conn { return w.under }
