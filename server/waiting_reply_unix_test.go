//go:build unix

package server_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/text/transform"

	"shout/internal/deadline"
	"shout/server"
)

// repeat is a Transformer that writes each byte it reads n times, upper
// case, and says so (an Expander): a reply far larger than the message,
// and than what the sockets between server and client hold, so that the
// server's write of it waits for the client.
type repeat struct {
	transform.NopResetter
	n int
}

func (r repeat) MaxExpansion() int { return r.n }

func (r repeat) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	for _, b := range src {
		if len(dst)-nDst < r.n {
			return nDst, nSrc, transform.ErrShortDst
		}
		if 'a' <= b && b <= 'z' {
			b -= 'a' - 'A'
		}
		nDst += copy(dst[nDst:nDst+r.n], bytes.Repeat([]byte{b}, r.n))
		nSrc++
	}
	return nDst, nSrc, nil
}

// waitingClient serves srv on a listener with a small send buffer and
// dials it with a small receive buffer: a reply of more than some tens of
// kilobytes waits in the server until the client reads.
func waitingClient(t *testing.T, srv *server.Server) net.Conn {
	t.Helper()
	return waitingClientSent(t, srv, "")
}

// waitingClientSent is waitingClient whose client has sent first before
// the server accepts it: a test whose IdleTimeout is short does not
// depend on how soon after the accept it runs (a goroutine a busy
// machine runs late found its client closed as idle, rightly).
//
// Each of the client's reads and writes may stall for bound, not the
// whole conversation: a megabyte through these buffers, on a machine so
// busy that the two ends ran a few milliseconds a second, took longer
// than bound ("read 755712 bytes, ... i/o timeout").
func waitingClientSent(t *testing.T, srv *server.Server, first string) net.Conn {
	t.Helper()
	ln := listenSendBuffer(t, 4<<10)
	d := net.Dialer{Timeout: bound, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<10) })
	}}
	c, err := d.Dial("tcp", ln.Addr().String()) // queued until the server accepts it
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	sc := deadline.Steady(c, bound)
	if _, err := io.WriteString(sc, first); err != nil {
		ln.Close()
		t.Fatal(err)
	}
	serveOn(t, srv, ln)
	return sc
}

// A read whose reply overflows the reply buffer is answered in parts; the
// input not yet transformed when the socket takes no more waits with the
// reply, down to its last byte. Here 257 bytes read at once, each written
// 1024 times: the buffer holds the reply to 256 of them (256 times the
// claimed expansion), the write of that waits, and one byte is left.
func TestReplyWaitingKeepsTheLastByteUnread(t *testing.T) {
	const n = 1024
	c := waitingClient(t, &server.Server{Transformer: repeat{n: n}, Logger: discard()})
	msg := bytes.Repeat([]byte("a"), 256)
	msg = append(msg, 'b')
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	want := append(bytes.Repeat([]byte("A"), 256*n), bytes.Repeat([]byte("B"), n)...)
	got := make([]byte, len(want))
	if k, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %d of %d bytes (%d B), %v; want %d A then %d B", k, len(want), bytes.Count(got[:k], []byte("B")), err, 256*n, n)
	}
}

// A connection owing nothing at Shutdown, whose reply waits for the
// client, ends (the server's end of file) as soon as that reply is all
// written, however long Linger is: it does not wait out the stop's wait
// for bytes owed, which is as long as Linger.
func TestShutdownEndsOnceTheWaitingReplyIsWritten(t *testing.T) {
	const n = 4096
	srv := &server.Server{Transformer: repeat{n: n}, Linger: time.Hour, Logger: discard()}
	c := waitingClient(t, srv)
	want := bytes.Repeat([]byte("X"), n) // served before the stop: accepted
	got := make([]byte, n)
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("x: got %d bytes, %v; want %d X", len(got), err, n)
	}
	msg := bytes.Repeat([]byte("a"), 256) // 1 MiB of reply: it waits
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	stopped := shutdownCtx(context.Background(), srv)
	got, err := io.ReadAll(c)
	if err != nil || len(got) != len(msg)*n || len(bytes.Trim(got, "A")) != 0 {
		t.Fatalf("read %d bytes, %v; want %d A then end of file", len(got), err, len(msg)*n)
	}
	c.Close()
	shutdownReturned(t, stopped)
}

// A reply waiting for a client that reads nothing is given up after all
// of WriteTimeout from when it began to wait, never sooner, however long
// the server had served before: the wait is timed from its start, not
// from the driver's first moment.
func TestWriteTimeoutNeverEarly(t *testing.T) {
	const timeout = 200 * time.Millisecond
	var obs recorder
	srv := &server.Server{WriteTimeout: timeout, Observer: &obs, Logger: discard()}
	c := waitingClient(t, srv)
	exchange(t, c, "x", "X")
	// The server has served for longer than WriteTimeout before the
	// reply waits: a wait timed from the server's start would be over
	// at once. (Time passing is what is tested here.)
	time.Sleep(2 * timeout)
	began := time.Now() // before the reply can wait
	go func() {
		chunk := bytes.Repeat([]byte("a"), 64<<10)
		for range 1024 { // until the server closes; at most 64 MiB
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	ci := obs.waitClose(t)
	if ci.Reason != server.ReasonWriteTimeout {
		t.Fatalf("closed for %v, %v; want the write timeout", ci.Reason, ci.Err)
	}
	if waited := ci.End.Sub(began); waited < timeout {
		t.Errorf("given up %v after the client stopped reading, before WriteTimeout (%v)", waited, timeout)
	}
}

// held is repeat that holds the backslashes at the end of its input, as
// an incomplete character, until the next byte or the end of input: what
// a server answers then, as a graceful close begins, is a reply of n
// bytes for each.
type held struct{ repeat }

func (h held) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	if rest := bytes.TrimRight(src, `\`); !atEOF && len(rest) < len(src) {
		nDst, nSrc, err = h.repeat.Transform(dst, rest, false)
		if err == nil {
			err = transform.ErrShortSrc
		}
		return nDst, nSrc, err
	}
	return h.repeat.Transform(dst, src, atEOF)
}

// The reply to what is held at a graceful close (here the idle
// timeout's) is written whole, even when it waits for the client, and the
// client then reads end of file: the close goes on once it is written.
func TestHeldReplyWaitingAtCloseThenEOF(t *testing.T) {
	const n = server.MaxExpansionLimit // more than the sockets between hold
	srv := &server.Server{Transformer: held{repeat{n: n}}, IdleTimeout: 50 * time.Millisecond, Logger: discard()}
	c := waitingClientSent(t, srv, `x\`)
	got, err := io.ReadAll(c)
	want := append(bytes.Repeat([]byte("X"), n), bytes.Repeat([]byte(`\`), n)...)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes (%d X), %v; want %d X, %d backslashes, then end of file", len(got), bytes.Count(got, []byte("X")), err, n, n)
	}
}

// A client whose reply waits for it is not idle, however long it takes
// to read: the idle timeout counts from when the reply is all written,
// as the goroutine driver sets its read deadline only after its write.
// (Here "b" waits in the socket by then, which an idle timeout answers
// anyway; a client that sends only once it has read the reply is
// TestReplyWrittenAfterIdleFiredRearms's.)
func TestWaitingReplyIsNotIdle(t *testing.T) {
	const n, idle = server.MaxExpansionLimit, 50 * time.Millisecond
	srv := &server.Server{Transformer: repeat{n: n}, IdleTimeout: idle, Logger: discard()}
	// Each message is sent while the client is not idle: "a" before the
	// server accepts it, "b" while the reply to "a" waits. (Sent after
	// the reply was read, "b" came too late whenever the test ran more
	// than IdleTimeout late, and the client was closed as idle, rightly.)
	msgs := []string{"a", "b"}
	c := waitingClientSent(t, srv, msgs[0])
	for i, msg := range msgs {
		// The reply waits, for several idle timeouts: what is tested is
		// time passing.
		time.Sleep(4 * idle)
		if i+1 < len(msgs) {
			if _, err := io.WriteString(c, msgs[i+1]); err != nil {
				t.Fatal(err)
			}
		}
		got := make([]byte, n)
		want := bytes.Repeat([]byte(strings.ToUpper(msg)), n)
		if k, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: read %d of %d bytes, %v; want the reply whole", msg, k, n, err)
		}
	}
}

// A reply that waited while the goroutine driver's watcher took its
// client for idle starts the idle timeout again once it is written: the
// client that reads it and only then sends is answered, not closed as
// idle the moment the reply is out. TestWaitingReplyIsNotIdle's "b" waits
// in the socket as that reply is written, which an idle timeout answers
// anyway; here nothing waits. The client sends only once the server has
// taken the timeout back (its read deadline cleared), or, without the
// rearm, reads the end of file the idle close sends: which of the two
// comes first is not left to how soon the server looks at its socket. The
// watcher is held from the moment it fired, so that however late the
// test sends (a busy machine) the client is idle by no clock but a wrong
// one; and its deadline lands only once the server has read a, as it
// would after a read that took longer than IdleTimeout to answer.
func TestReplyWrittenAfterIdleFiredRearms(t *testing.T) {
	if server.EngineUnderTest() != server.EngineGoroutine {
		t.Skip("a wrapped listener is the goroutine driver's, whichever the tests run: once is enough")
	}
	const n, idle = server.MaxExpansionLimit, 50 * time.Millisecond
	h := &deadlineHooks{fired: make(chan struct{}), release: make(chan struct{}), rearmed: make(chan struct{})}
	obs := &firstRead{read: make(chan struct{})}
	srv := &server.Server{Transformer: repeat{n: n}, IdleTimeout: idle, Observer: obs, Logger: discard()}
	ln := listenSendBuffer(t, 4<<10)
	d := net.Dialer{Timeout: bound, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<10) })
	}}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(bound))
	io.WriteString(c, "a") // before the server accepts it, which times the idle from then
	closed := obs.ch()     // (made before the server can close anything)
	serveOn(t, srv, hookListener{ln, h})
	var releaseWatcher sync.Once
	t.Cleanup(func() { releaseWatcher.Do(func() { close(h.release) }) }) // before serveOn's Close
	select {
	case <-h.fired:
	case <-time.After(bound):
		t.Fatalf("the watcher did not take the client for idle within %v while its reply waited", bound)
	}
	hold := server.HoldIdle()
	defer hold()
	select {
	case <-obs.read:
	case <-time.After(bound):
		t.Fatalf("a not read within %v", bound)
	}
	releaseWatcher.Do(func() { close(h.release) })
	got := make([]byte, n)
	if k, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, bytes.Repeat([]byte("A"), n)) {
		t.Fatalf("a: read %d of %d bytes, %v; want the reply whole", k, n, err)
	}
	select {
	case <-h.rearmed:
	case <-closed:
		k, err := c.Read(got)
		t.Fatalf("a's reply written, the server closed the client for %v; want the idle timeout started again (the client read %d, %v)",
			obs.waitClose(t).Reason, k, err)
	case <-time.After(bound):
		t.Fatalf("a's reply written, the idle timeout not started again within %v", bound)
	}
	if _, err := io.WriteString(c, "b"); err != nil {
		t.Fatal(err)
	}
	if k, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, bytes.Repeat([]byte("B"), n)) {
		t.Fatalf("b, sent once a's reply was read: read %d of %d bytes, %v; want the reply whole", k, n, err)
	}
	hold()
	if k, err := c.Read(got); k != 0 || err != io.EOF {
		t.Fatalf("read %d, %v; want end of file at the idle timeout", k, err)
	}
}

// firstRead is an Observer that closes read at its first ConnRead.
type firstRead struct {
	recorder
	once sync.Once
	read chan struct{}
}

func (f *firstRead) ConnRead(*server.ConnInfo, []byte) { f.once.Do(func() { close(f.read) }) }
