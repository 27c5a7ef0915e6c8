//go:build unix

package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/text/transform"

	"shout/internal/certs"
	"shout/internal/shouttest"
	"shout/server"
)

// blowUp answers each byte with blowUpLen copies of it: a reply far
// larger than the read that asked for it, so that the server has read all
// that its client sent when the reply gets stuck. (With replies the size
// of their input, the input behind a stuck reply lies unread, and the
// kernel resets a socket closed with input unread, whatever the server
// does.)
type blowUp struct{ transform.NopResetter }

const blowUpLen = server.MaxExpansionLimit

func (blowUp) MaxExpansion() int { return blowUpLen }

func (blowUp) Transform(dst, src []byte, _ bool) (nDst, nSrc int, err error) {
	n := min(len(src), len(dst)/blowUpLen)
	for i, b := range src[:n] {
		d := dst[i*blowUpLen : (i+1)*blowUpLen]
		for j := range d {
			d[j] = b
		}
	}
	if n < len(src) {
		err = transform.ErrShortDst
	}
	return n * blowUpLen, n, err
}

// A client dropped for taking none of its reply for WriteTimeout reads a
// reset once it reads, not what was queued for it and then end of file:
// that is a reply cut short it cannot tell from a whole one, and the
// kernel held what was queued, up to a send buffer, on a socket no limit
// counted any more. Its 16 bytes' reply is 1 MiB, far more than the
// buffers between hold, and it sends nothing more: the server has read
// all of its input when it drops it. Over TLS from a Listener that wraps
// what it accepts (tls.NewListener), the socket beneath is reset too.
func TestWriteTimeoutResets(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool
	}{
		{"tcp", false},
		{"tls", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shouttest.CheckFDs(t)
			obs := newFuzzObserver()
			ln := listenSmall(t)
			var sl net.Listener = ln
			if tc.tls {
				store, err := certs.SelfSigned([]string{"127.0.0.1"})
				if err != nil {
					t.Fatal(err)
				}
				sl = tls.NewListener(ln, &tls.Config{GetCertificate: store.GetCertificate})
			}
			// A client the machine starves may be dropped before it
			// reads: it reads only once it has been, whenever that is.
			serveOn(t, &server.Server{Observer: obs, Transformer: blowUp{}, WriteTimeout: 100 * time.Millisecond}, sl)
			d := &net.Dialer{Timeout: bound, Control: func(_, _ string, rc syscall.RawConn) (err error) {
				rc.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 16<<10) })
				return err
			}}
			c, err := d.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			remote := c.LocalAddr().String()
			if tc.tls {
				c = tls.Client(c, &tls.Config{InsecureSkipVerify: true})
			}
			const sent = "0123456789abcdef"
			c.SetDeadline(time.Now().Add(bound))
			if _, err := io.WriteString(c, sent); err != nil {
				t.Fatal(err)
			}
			ci := obs.closed(t, remote)
			if ci.Reason != server.ReasonWriteTimeout {
				t.Fatalf("closed for %v (%v), want write timeout", ci.Reason, ci.Err)
			}
			if ci.BytesIn != int64(len(sent)) {
				t.Fatalf("the server read %d bytes of %d: the close found input unread", ci.BytesIn, len(sent))
			}
			c.SetDeadline(time.Now().Add(bound))
			n, err := io.Copy(io.Discard, c)
			if err == nil {
				err = io.EOF
			}
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("the client read %d bytes of the reply, then %v; want a reset", n, err)
			}
		})
	}
}

// A connection that holds part of a character at Shutdown, whose client
// takes none of that part's answer for WriteTimeout, is dropped at once,
// as it is while the server runs: over TCP with a reset, over a Unix
// socket (which has none) with a close. It is not closed gracefully
// first: a graceful close lingers while replies stay queued, for as long
// as Linger when that is longer than WriteTimeout, for a client that
// already took none for WriteTimeout. Linger is an hour, so a linger is
// not over before the test's bound.
func TestHeldReplyStuckAtShutdownResets(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) { heldReplyStuck(t, network, false) })
	}
}

// The same at the idle timeout, where the held part is answered too: the
// connection is dropped for the write timeout, not closed gracefully
// behind a reply the client takes none of.
func TestHeldReplyStuckAtIdleTimeoutResets(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) { heldReplyStuck(t, network, true) })
	}
}

// readToEnd reads c to its end of file, within bound of now: a deadline
// set before the test's waits, each bound already, ran out during them
// on a busy machine (under -race and two CPU hogs,
// TestEOFWithRepliesQueuedShutsWriteSideAtOnce read "0 bytes of 65536
// replies, then ... i/o timeout").
func readToEnd(c net.Conn) (int64, error) {
	c.SetReadDeadline(time.Now().Add(bound))
	return io.Copy(io.Discard, c)
}

// heldReplyStuck is TestHeldReplyStuckAtShutdownResets's run over
// network, or, if idle, TestHeldReplyStuckAtIdleTimeoutResets's: the
// held part is answered at the idle timeout rather than at a stop.
func heldReplyStuck(t *testing.T, network string, idle bool) {
	shouttest.CheckFDs(t)
	const n, held64 = server.MaxExpansionLimit, 64 // 4 MiB of answer: more than the sockets between hold
	obs := &cutReply{firstRead: firstRead{read: make(chan struct{})}, cut: make(chan error, 1)}
	closed := obs.ch()
	srv := &server.Server{Transformer: held{repeat{n: n}}, WriteTimeout: 100 * time.Millisecond, Linger: time.Hour,
		Observer: obs, Logger: discard()}
	want := server.ReasonShutdown
	if idle {
		srv.IdleTimeout, want = 200*time.Millisecond, server.ReasonWriteTimeout
	}
	var ln net.Listener
	d := net.Dialer{Timeout: bound}
	if network == "tcp" {
		ln = listenSendBuffer(t, 4<<10)
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<10) })
		}
	} else {
		var err error
		if ln, err = net.Listen("unix", filepath.Join(t.TempDir(), "s")); err != nil {
			t.Fatal(err)
		}
	}
	c, err := d.Dial(network, ln.Addr().String())
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(bound))
	if _, err := io.WriteString(c, strings.Repeat(`\`, held64)); err != nil {
		ln.Close()
		t.Fatal(err)
	}
	serveOn(t, srv, ln)
	select {
	case <-obs.read:
	case <-time.After(bound):
		t.Fatalf("nothing read within %v", bound)
	}
	var stopped <-chan error
	if !idle {
		stopped = shutdownCtx(context.Background(), srv)
	}
	select {
	case err := <-obs.cut:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the held part's answer cut short by %v; want the write timeout", err)
		}
	case <-time.After(bound):
		t.Fatalf("the held part's answer not given up within %v (WriteTimeout %v)", bound, srv.WriteTimeout)
	}
	select {
	case <-closed:
	case <-time.After(bound):
		t.Fatalf("the held part's answer given up for the write timeout, the connection not closed within %v after: closed gracefully, it lingers (Linger %v)",
			bound, srv.Linger)
	}
	if ci := obs.waitClose(t); ci.Reason != want {
		t.Fatalf("closed for %v (%v); want %v", ci.Reason, ci.Err, want)
	}
	if !idle {
		shutdownReturned(t, stopped)
	}
	k, err := readToEnd(c)
	switch {
	case network == "tcp" && !errors.Is(err, syscall.ECONNRESET):
		t.Fatalf("the client read %d bytes of the answer, then %v; want a reset", k, err)
	case network == "unix" && (err != nil || k >= held64*n):
		t.Fatalf("the client read %d bytes of the answer (of %d), then %v; want what was queued, then end of file", k, held64*n, err)
	}
}

// cutReply is firstRead that also sends on cut the error of the first
// reply cut short.
type cutReply struct {
	firstRead
	cutOnce sync.Once
	cut     chan error
}

func (c *cutReply) ConnReply(_ *server.ConnInfo, _ int, err error) {
	if err != nil {
		c.cutOnce.Do(func() { c.cut <- err })
	}
}

// A client that shuts its write side and then resets while the server
// is writing its reply reset the connection, and is logged so: the
// kernel says EPIPE, not ECONNRESET, to a write on a TCP connection reset
// after the client's end of file, and the close said "broken pipe", in
// both drivers, where "reset" is what happened. (A TCP client's close
// never breaks the pipe: the server may write after its end of file; only
// a reset does.) Its 16 bytes' reply is 1 MiB, far more than the buffers
// between hold, so the server has read all of its input, and its end of
// file has come, when the client resets.
func TestResetAfterEOFWhileWritingIsReset(t *testing.T) {
	shouttest.CheckFDs(t)
	obs := newFuzzObserver()
	ln := listenSmall(t)
	serveOn(t, &server.Server{Observer: obs, Transformer: blowUp{}}, ln)
	fd := rawDial(t, ln.Addr().String())
	a := rawAddr(t, fd)
	if _, err := unix.Write(fd, []byte("0123456789abcdef")); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	if err := unix.Shutdown(fd, unix.SHUT_WR); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	if !wait(t, fd, unix.POLLIN, bound) { // the server is writing
		unix.Close(fd)
		t.Fatal("no reply")
	}
	if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1}); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	unix.Close(fd) // a reset
	if ci := obs.closed(t, a); !resetClose(ci.Reason) {
		t.Errorf("closed for %v (%v) after %d bytes out, want reset", ci.Reason, ci.Err, ci.BytesOut)
	}
}

// Over a Unix socket, which has no reset, a client that closes while the
// server writes its reply broke the pipe, and the close still says so:
// only over TCP is a write's EPIPE a reset's.
func TestUnixClientGoneWhileWritingIsBrokenPipe(t *testing.T) {
	shouttest.CheckFDs(t)
	obs := newFuzzObserver()
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, &server.Server{Observer: obs, Transformer: blowUp{}}, ln)
	c, err := net.DialTimeout("unix", ln.Addr().String(), bound)
	if err != nil {
		t.Fatal(err)
	}
	a := c.LocalAddr().String()
	c.SetDeadline(time.Now().Add(bound))
	if _, err := io.WriteString(c, "0123456789abcdef"); err != nil {
		c.Close()
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); err != nil { // the server is writing
		c.Close()
		t.Fatal(err)
	}
	c.Close()
	if ci := obs.closed(t, a); ci.Reason != server.ReasonBrokenPipe {
		t.Errorf("closed for %v (%v) after %d bytes out, want broken pipe", ci.Reason, ci.Err, ci.BytesOut)
	}
}

// resetClose reports whether r is how a connection its client reset is
// closed: reset; a write's EPIPE is told for one only on Linux (see
// brokenPipe), broken pipe elsewhere.
func resetClose(r server.Reason) bool {
	return r == server.ReasonReset || runtime.GOOS != "linux" && r == server.ReasonBrokenPipe
}
