//go:build unix

package server_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"shout/internal/shouttest"
	"shout/server"
)

// FuzzClients drives one server with a script of client behaviour decoded
// from the fuzz input: connections opened and interleaved, messages
// written in chunks split anywhere (inside multi-byte characters too),
// replies read in full, in part or not at all, clients that flood and stop
// reading, half-close, close with replies unread, or reset. Every client
// must receive exactly the uppercase of what it sent (a prefix of it, if
// it did not read to the end), and every connection must be closed, with
// a reason that fits what its client did. TestMain runs it once per
// driver; it is aimed at the event loops, whose buffering and state
// changes are where a byte could be lost or a connection leak.
//
// The clients are raw non-blocking sockets, so the script decides exactly
// when a client reads and writes, and every wait is a poll bounded by
// bound.
func FuzzClients(f *testing.F) {
	op := func(kind, slot byte) byte { return kind | slot<<3 }
	for _, seed := range [][]byte{
		// a message split inside characters, read, more, half-close
		{0, op(1, 0), 7, 4, 5, 6, 7, 8, 9, 10, 3, 5, op(3, 0), op(1, 0), 0, 16, 200, op(6, 0)},
		// three connections interleaved: one resets, one closes, one half-closes
		{1, op(1, 0), 3, 4, 5, 6, 9, 7, op(1, 1), 2, 17, 18, 19, 1, op(4, 0), 0, op(1, 0), 0, 5, 3,
			op(7, 1), 1, op(3, 0), op(1, 2), 1, 8, 9, 4, op(7, 2), 0, op(6, 0)},
		// flood without reading, then reset
		{0, op(5, 0), 4, 2, op(7, 0), 1},
		// flood without reading, then close with replies unread
		{0, op(5, 0), 6, 4, op(7, 0), 0},
		// flood, a message, then half-close and read every reply
		{1, op(5, 0), 9, 3, op(1, 0), 1, 2, 5, 6, op(6, 0)},
		// bytes that are not UTF-8, partial reads, then Shutdown
		{2, op(2, 0), 8, 0xff, 0xc3, 'a', 0xe5, 0x93, 0x00, 0xce, 0xf0, op(4, 0), 0,
			op(1, 1), 2, 11, 12, 0, 1, op(2, 1), 3, 0xe2, 0x84, 0x80, op(5, 1), 8, 3},
		// flooded connections left open at Shutdown
		{3, op(5, 0), 8, 0, op(5, 1), 4, 1, op(1, 2), 6, 1, 2, 3, 4, 5, 6, 200, op(4, 2), 3},
		// short timeouts: a held character answered at the idle timeout, a
		// flood dropped at the write timeout, then a connection served
		{4, op(1, 0), 1, 1, 17, 2, op(5, 1), 9, 5, op(0, 0), op(0, 1), op(1, 2), 0, 0, 0, op(3, 2)},
		// short timeouts, smallest reads, a held character at Shutdown
		{7, op(5, 0), 4, 5, op(1, 1), 1, 4, 17, 3, op(3, 1), op(2, 0), 3, 'a', 'b', 'c',
			op(0, 1), op(1, 1), 0, 4, 1},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		runScript(t, data)
	})
}

// pieces are what written messages are made of: characters whose
// uppercase is longer than they are (ß, ﬁ, ΐ, ŉ), that change length in
// bytes (İ is already upper, ı → I), that uppercase does not change (哈),
// and bytes that are not UTF-8 or begin a character they do not finish.
var pieces = []string{
	"a", "z", " ", "\n", "ß", "哈", "ﬁ", "İ", "ı", "ΐ", "é", "ŉ", "ǰ", "Ω",
	"straße", "hello egon ", "\xff", "\xc3", "\xe5\x93", "\x00", "𝔞", "ǅ",
}

const (
	maxOps      = 256
	slots       = 4
	maxConns    = 24
	maxFlood    = 4 << 20 // bytes a client may flood in all
	readSomeMax = 64 << 10
)

// fclient is one client connection of a script.
type fclient struct {
	fd        int
	addr      string // its local address: the server's Remote
	sent, got []byte
	tail      []byte // the rest of a message written in part
	flooded   int
	shut      bool // write side shut
	readAll   bool // read to the server's end of file after its own
	dropped   bool // the server closed first (timeouts only)
}

type script struct {
	t       *testing.T
	data    []byte
	srv     *server.Server
	addr    string
	obs     *fuzzObserver
	slot    [slots]*fclient
	opened  int
	expect  map[string][]server.Reason // by client address: the reasons that fit
	clients []*fclient
	// shutdown: the script ends with a Shutdown, not with every client
	// half-closing.
	shutdown bool
	// timeouts: the server has short idle and write timeouts and Linger,
	// so it may close any connection the script leaves idle or unread,
	// gracefully or not; the clients then see end of file or a reset
	// where they did not expect one, drop the connection, and what they
	// got is checked as at a Shutdown.
	timeouts bool
}

func (s *script) next() byte {
	if len(s.data) == 0 {
		return 0
	}
	b := s.data[0]
	s.data = s.data[1:]
	return b
}

func runScript(t *testing.T, data []byte) {
	shouttest.CheckFDs(t)
	s := &script{t: t, obs: newFuzzObserver(), expect: map[string][]server.Reason{}}
	s.data = data
	head := s.next()
	s.srv = &server.Server{Observer: s.obs, Logger: discard()}
	if head&1 != 0 {
		s.srv.ReadSize = 512 // the smallest: more reads, more held characters
	}
	s.shutdown = head&2 != 0
	if s.timeouts = head&4 != 0; s.timeouts {
		s.srv.IdleTimeout, s.srv.WriteTimeout, s.srv.Linger = 20*time.Millisecond, 40*time.Millisecond, 50*time.Millisecond
	}
	s.addr = shouttest.Start(t, s.srv)
	t.Cleanup(func() {
		for _, c := range s.clients {
			if c.fd >= 0 {
				unix.Close(c.fd)
			}
		}
	})
	for op := 0; op < maxOps && len(s.data) > 0; op++ {
		b := s.next()
		i := int(b>>3) % slots
		c := s.slot[i]
		kind := b & 7
		fresh := c == nil
		if c == nil && kind < 6 {
			if c = s.open(); c == nil {
				continue
			}
			s.slot[i] = c
		}
		switch kind {
		case 0: // open; with timeouts, wait until the server drops it
			if !fresh && s.timeouts {
				s.waitDropped(c)
			}
		case 1: // a message of pieces, written up to a split anywhere in it
			n := 1 + int(s.next())%8
			for range n {
				c.tail = append(c.tail, pieces[int(s.next())%len(pieces)]...)
			}
			at := int(s.next()) % (len(c.tail) + 1)
			s.write(c, c.tail[:at])
			c.tail = c.tail[at:]
		case 2: // raw bytes from the input, after any rest of a message
			n := int(s.next()) % 16
			raw := append(c.tail, s.data[:min(n, len(s.data))]...)
			s.data = s.data[min(n, len(s.data)):]
			c.tail = nil
			s.write(c, raw)
		case 3: // read every reply that must come
			s.readAnswered(c)
		case 4: // read what has come, some of it
			s.readSome(c, (int(s.next())+1)*256)
		case 5: // flood without reading, until the kernel takes no more
			p := []byte(pieces[int(s.next())%len(pieces)])
			s.flood(c, p, 16<<10<<(s.next()%6))
		case 6: // half-close: every reply, then end of file
			if c != nil {
				s.halfClose(c)
				s.slot[i] = nil
			}
		case 7: // close or reset, replies unread or not
			if c != nil {
				s.abort(c, s.next()&1 != 0)
				s.slot[i] = nil
			}
		}
		if c != nil && c.dropped && s.slot[i] == c {
			s.checkDropped(c)
			s.close(c, false)
			s.slot[i] = nil
		}
	}
	if s.shutdown {
		s.stop()
	} else {
		for i, c := range s.slot {
			if c != nil {
				s.halfClose(c)
				s.slot[i] = nil
			}
		}
	}
	s.checkCloses()
}

func (s *script) open() *fclient {
	t := s.t
	if s.opened >= maxConns {
		return nil
	}
	s.opened++
	fd := rawDial(t, s.addr)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	a := sa.(*unix.SockaddrInet4)
	c := &fclient{fd: fd, addr: net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))}
	s.clients = append(s.clients, c)
	return c
}

// write writes p whole; while the server cannot take it (it is stuck
// writing replies this client has not read), the client reads.
func (s *script) write(c *fclient, p []byte) {
	t := s.t
	deadline := time.Now().Add(bound)
	for len(p) > 0 {
		n, err := unix.Write(c.fd, p)
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			ev := s.poll(c, unix.POLLIN|unix.POLLOUT, deadline)
			if ev&unix.POLLIN != 0 && s.readSome(c, readSomeMax) {
				if !c.dropped {
					t.Fatalf("client %s: end of file while writing", c.addr)
				}
				return
			}
		case err != nil:
			s.gone(c, "write", err)
			return
		default:
			c.sent = append(c.sent, p[:n]...)
			p = p[n:]
		}
	}
}

// flood writes p over and over, up to limit bytes, until the socket takes
// no more, reading nothing.
func (s *script) flood(c *fclient, p []byte, limit int) {
	limit = min(limit, maxFlood-c.flooded)
	buf := bytes.Repeat(p, max(1, 8<<10/len(p)))
	for w := 0; w < limit; {
		n, err := unix.Write(c.fd, buf[:min(len(buf), limit-w)])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return
		}
		if err != nil {
			s.gone(c, "flood", err)
			return
		}
		c.sent = append(c.sent, buf[:n]...)
		c.flooded += n
		w += n
	}
}

// poll waits until c's socket is ready for one of events, failing the
// test past the deadline.
func (s *script) poll(c *fclient, events int16, deadline time.Time) int16 {
	t := s.t
	for {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("client %s: not ready within %v (sent %d, got %d)", c.addr, bound, len(c.sent), len(c.got))
		}
		pfd := []unix.PollFd{{Fd: int32(c.fd), Events: events}}
		n, err := unix.Poll(pfd, int(left/time.Millisecond)+1)
		if err == unix.EINTR || n == 0 {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return pfd[0].Revents
	}
}

// readSome reads what has come, up to limit bytes, without waiting. It
// reports whether the server closed its side.
func (s *script) readSome(c *fclient, limit int) (eof bool) {
	buf := make([]byte, min(limit, readSomeMax))
	for limit > 0 {
		n, err := unix.Read(c.fd, buf[:min(limit, len(buf))])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return false
		case err != nil:
			s.gone(c, "read", err)
			return true
		case n == 0:
			if !c.shut {
				s.gone(c, "read", io.EOF)
			}
			return true
		}
		c.got = append(c.got, buf[:n]...)
		limit -= n
	}
	return false
}

// readAnswered reads until the client has the reply to every byte it sent
// but an incomplete character at the end, which the server may hold.
func (s *script) readAnswered(c *fclient) {
	want := ref(string(c.sent[:complete(c.sent)]))
	deadline := time.Now().Add(bound)
	for len(c.got) < len(want) {
		s.poll(c, unix.POLLIN, deadline)
		if s.readSome(c, readSomeMax) {
			return // dropped
		}
	}
	s.checkPrefix(c)
}

// complete is the length of p less an incomplete UTF-8 character at its
// end.
func complete(p []byte) int {
	for i := len(p) - 1; i >= 0 && i >= len(p)-utf8.UTFMax; i-- {
		if !utf8.RuneStart(p[i]) {
			continue
		}
		if !utf8.FullRune(p[i:]) {
			return i
		}
		break
	}
	return len(p)
}

// waitDropped waits, reading nothing, until the server closes c, as its
// timeouts do to every connection in the end, then reads what is left.
func (s *script) waitDropped(c *fclient) {
	s.obs.waitClose(s.t, c.addr)
	deadline := time.Now().Add(bound)
	for !c.dropped {
		s.poll(c, unix.POLLIN, deadline)
		s.readSome(c, readSomeMax)
	}
}

// gone notes that the server dropped c, which is fine only if the
// server has timeouts.
func (s *script) gone(c *fclient, op string, err error) {
	switch {
	case !s.timeouts:
		s.t.Fatalf("client %s: %s: %v (sent %d, got %d)", c.addr, op, err, len(c.sent), len(c.got))
	case err == io.EOF, err == unix.ECONNRESET, err == unix.EPIPE, err == unix.ENOTCONN:
		c.dropped = true
	default:
		s.t.Fatalf("client %s: %s: %v", c.addr, op, err)
	}
}

// checkDropped checks what c got before the server dropped it: the start
// of the uppercase of what it sent, but for a character the server held
// and answered as it was when it gave up.
func (s *script) checkDropped(c *fclient) {
	want := []byte(ref(string(c.sent)))
	got := c.got
	if r := heldAtStop(got, want); r != nil && bytes.Contains(c.sent, r) {
		got = got[:len(got)-len(r)]
	}
	if !bytes.HasPrefix(want, got) {
		s.t.Fatalf("client %s: got %d bytes that are not a prefix of the %d of the uppercase of what it sent: %s", c.addr, len(c.got), len(want), diff(c.got, want))
	}
}

// checkPrefix checks that what c got is the start of the uppercase of
// what it sent.
func (s *script) checkPrefix(c *fclient) {
	if s.timeouts {
		s.checkDropped(c) // an idle timeout may have answered a held character
		return
	}
	want := ref(string(c.sent))
	if !bytes.HasPrefix([]byte(want), c.got) {
		s.t.Fatalf("client %s: sent %d bytes, got %d bytes that are not a prefix of their uppercase: %s", c.addr, len(c.sent), len(c.got), diff(c.got, []byte(want)))
	}
}

func diff(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Sprintf("first difference at %d: got %q, want %q", i, got[i:min(i+16, len(got))], want[i:min(i+16, len(want))])
}

// halfClose shuts c's write side, reads to end of file and checks it got
// the uppercase of everything it sent; the server must see end of file.
func (s *script) halfClose(c *fclient) {
	t := s.t
	s.write(c, c.tail)
	c.tail = nil
	if !c.dropped {
		if err := unix.Shutdown(c.fd, unix.SHUT_WR); err != nil {
			s.gone(c, "shutdown", err)
		}
		c.shut = true
	}
	deadline := time.Now().Add(bound)
	for !c.dropped {
		s.poll(c, unix.POLLIN, deadline)
		if s.readSome(c, readSomeMax) {
			break
		}
	}
	if s.timeouts {
		// It may have timed out before the end: checkCloses checks what
		// it got once it knows why the server closed it.
		c.readAll = !c.dropped
		s.close(c, false, server.ReasonEOF)
		return
	}
	if want := ref(string(c.sent)); string(c.got) != want {
		t.Fatalf("client %s: sent %d bytes and half-closed: got %d bytes, want %d; %s", c.addr, len(c.sent), len(c.got), len(want), diff(c.got, []byte(want)))
	}
	c.readAll = true
	s.close(c, false, server.ReasonEOF)
}

// abort closes c, resetting it or not, whatever it has not read.
func (s *script) abort(c *fclient, reset bool) {
	s.checkPrefix(c)
	if reset {
		s.close(c, true, server.ReasonReset, server.ReasonBrokenPipe)
		return
	}
	s.close(c, false, server.ReasonEOF, server.ReasonReset, server.ReasonBrokenPipe)
}

// close closes c once the server has accepted it: closed or reset in the
// listener's queue, a connection may never be accepted, or be dropped by
// accept (ECONNABORTED), and the server would rightly see nothing of it.
func (s *script) close(c *fclient, reset bool, fit ...server.Reason) {
	s.obs.waitOpen(s.t, c.addr)
	if reset {
		unix.SetsockoptLinger(c.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	}
	unix.Close(c.fd)
	c.fd = -1
	s.expect[c.addr] = fit
}

// stop stops the server gracefully with clients still connected: each
// gets the replies to what the server read before it stopped, then end of
// file, never a reset. A connection still in the listener's queue is
// reset when the listener closes, so the stop waits until the server has
// accepted every client.
func (s *script) stop() {
	t := s.t
	for _, c := range s.slot {
		if c != nil {
			s.obs.waitOpen(t, c.addr)
		}
	}
	stopped := shutdown(t, s.srv)
	for i, c := range s.slot {
		if c == nil {
			continue
		}
		s.slot[i] = nil
		c.shut = true // end of file is what the client waits for
		deadline := time.Now().Add(bound)
		for {
			s.poll(c, unix.POLLIN, deadline)
			if s.readSome(c, readSomeMax) {
				break
			}
		}
		// The server may have stopped inside a character: it answers it as
		// it is, and reads no more.
		s.checkDropped(c)
		s.close(c, false, server.ReasonShutdown)
	}
	shutdownReturned(t, stopped)
}

// heldAtStop is the incomplete character at the end of got, if got is not
// a prefix of want only for it.
func heldAtStop(got, want []byte) []byte {
	k := complete(got)
	if k == len(got) || bytes.HasPrefix(want, got) {
		return nil
	}
	return got[k:]
}

// checkCloses waits until the server has closed every connection the
// script opened, and checks each was opened once and closed for a reason
// that fits what its client did.
func (s *script) checkCloses() {
	t := s.t
	for addr := range s.expect {
		s.obs.waitClose(t, addr)
	}
	s.obs.mu.Lock()
	defer s.obs.mu.Unlock()
	if len(s.obs.opens) != len(s.expect) || len(s.obs.closes) != len(s.expect) {
		t.Errorf("%d connections opened by clients; the server saw %d open and %d close", len(s.expect), len(s.obs.opens), len(s.obs.closes))
	}
	for _, c := range s.clients {
		ci, fit := s.obs.closes[c.addr], s.expect[c.addr]
		if s.shutdown {
			// A client's close may reach the server after its stop did.
			fit = append(fit, server.ReasonShutdown)
		}
		if s.timeouts {
			fit = append(fit, server.ReasonIdleTimeout, server.ReasonWriteTimeout)
			if ci.Reason == server.ReasonEOF && c.readAll {
				if want := ref(string(c.sent)); string(c.got) != want {
					t.Errorf("client %s: sent %d bytes and half-closed, and the server saw its end: got %d bytes, want %d; %s", c.addr, len(c.sent), len(c.got), len(want), diff(c.got, []byte(want)))
				}
			} else {
				s.checkDropped(c)
			}
		}
		if !s.obs.opens[c.addr] {
			t.Errorf("client %s: closed, never opened", c.addr)
		}
		t.Logf("client %s: sent %d, got %d, closed for %v", c.addr, len(c.sent), len(c.got), ci.Reason)
		ok := false
		for _, r := range fit {
			ok = ok || ci.Reason == r
		}
		if !ok {
			t.Errorf("client %s: closed for %v (%v), want one of %v", c.addr, ci.Reason, ci.Err, fit)
		}
		if ci.Reason == server.ReasonEOF && c.readAll {
			// Half-closed and read to the end: the counts are exact.
			if ci.BytesIn != int64(len(c.sent)) || ci.BytesOut != int64(len(c.got)) {
				t.Errorf("client %s: sent %d and got %d; the server counts %d in and %d out", c.addr, len(c.sent), len(c.got), ci.BytesIn, ci.BytesOut)
			}
		}
	}
}

// fuzzObserver keeps which connections opened and how they closed, by the
// client's address.
type fuzzObserver struct {
	mu      sync.Mutex
	opens   map[string]bool
	closes  map[string]server.ConnInfo
	changed chan struct{}
}

func newFuzzObserver() *fuzzObserver {
	return &fuzzObserver{opens: map[string]bool{}, closes: map[string]server.ConnInfo{}, changed: make(chan struct{}, 1)}
}

func (o *fuzzObserver) ConnRead(*server.ConnInfo, []byte) {}
func (o *fuzzObserver) Datagram(*server.DatagramInfo)     {}

func (o *fuzzObserver) ConnClose(c *server.ConnInfo) {
	o.mu.Lock()
	o.closes[c.Remote.String()] = *c
	o.mu.Unlock()
	o.signal()
}

func (o *fuzzObserver) ConnOpen(c *server.ConnInfo) {
	o.mu.Lock()
	o.opens[c.Remote.String()] = true
	o.mu.Unlock()
	o.signal()
}

func (o *fuzzObserver) signal() {
	select {
	case o.changed <- struct{}{}:
	default:
	}
}

// waitClose waits until the server has closed the connection from addr.
func (o *fuzzObserver) waitClose(t *testing.T, addr string) {
	t.Helper()
	o.wait(t, func() bool { _, ok := o.closes[addr]; return ok },
		"client %s: closed, and the server has not closed its connection within %v", addr, bound)
}

// closed waits until the server has closed the connection from addr,
// and returns what it was told of it then.
func (o *fuzzObserver) closed(t *testing.T, addr string) server.ConnInfo {
	t.Helper()
	o.waitClose(t, addr)
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closes[addr]
}

// waitOpen waits until the server has opened the connection from addr.
func (o *fuzzObserver) waitOpen(t *testing.T, addr string) {
	t.Helper()
	o.wait(t, func() bool { return o.opens[addr] }, "client %s: connected, and the server has not opened it within %v", addr, bound)
}

func (o *fuzzObserver) wait(t *testing.T, done func() bool, format string, args ...any) {
	t.Helper()
	timeout := time.After(bound)
	for {
		o.mu.Lock()
		ok := done()
		o.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-o.changed:
		case <-timeout:
			t.Fatalf(format, args...)
		}
	}
}
