package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"shout/internal/shouttest"
	"shout/server"
)

// A client that sends, shuts its write side and never reads leaves its
// replies queued in the server's socket. Closed with them there, the
// socket would live on in the kernel as an orphan holding them (up to
// the send buffer, megabytes over loopback) for as long as the client
// keeps its window shut: memory no --max-conns counts, freed only when
// the kernel gives up probing, minutes later. So a close after the
// client stopped taking its replies resets the connection, as a write
// timeout does, and the client's socket is closed at once. It was left
// in FIN_WAIT2, the server's replies and FIN queued behind its shut
// window: 3,000 such clients held 1.2 GB of the kernel's TCP memory
// after the server had closed every one. The connection ends as a write
// timeout, not as answered (ReasonEOF): its log line and metrics do not
// count replies thrown away as delivered.
func TestClosedWithRepliesQueuedResets(t *testing.T) {
	obs := &queuedObserver{more: make(chan struct{}, 1), closed: make(chan server.ConnInfo, 1)}
	addr := shouttest.Start(t, &server.Server{
		Logger:       discard(),
		Observer:     obs,
		Linger:       20 * time.Millisecond,
		WriteTimeout: 50 * time.Millisecond, // the client takes nothing: stuck at once
	})
	fd := rawDialBuffer(t, addr, 4<<10) // its window far smaller than the replies
	t.Cleanup(func() { unix.Close(fd) })
	sendRaw(t, fd, 128<<10)
	if err := unix.Shutdown(fd, unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	obs.closedFor(t, server.ReasonWriteTimeout, "") // (its replies reset away)
	resetSeen(t, fd)
}

// A client that resets the connection while replies wait queued for it
// after its end of file has left: the server closes at once, and not as
// a write timeout. SIOCOUTQ went on counting the replies on the reset
// socket, so the server waited WriteTimeout (30 s by default) for them to
// be taken, holding the connection's place among MaxConns and a stop
// meanwhile, and logged a write timeout. A client that sent a line and
// closed at once (printf 'hi\n' | nc -q0), its kernel resetting the reply,
// was held so by the goroutine driver whenever the server read its end of
// file before the reset came; one that shut its write side, left its
// replies queued and then reset, by both drivers. Its reason is the
// reset, its replies thrown away: it was its end of file, whose "eof"
// says answered, if the server read that before the reset came. A client
// that takes every reply and closes is answered, as ever. WriteTimeout
// outlasts bound, so that a wait for it fails the
// test whatever the close says: the event loop's sweep, once the wait
// had ended, looked at the queue through the fix and did not call the
// close a write timeout (review r46 saw the loop's look during the wait
// reverted and this test pass, 5 s late).
func TestResetAfterEOFEndsWaitForQueuedReplies(t *testing.T) {
	for _, tc := range []struct {
		name  string
		leave func(t *testing.T, addr string, obs *queuedObserver)
		want  server.Reason
	}{
		{"sent a line and closed", func(t *testing.T, addr string, _ *queuedObserver) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write([]byte("hi\n")); err != nil {
				t.Fatal(err)
			}
			c.Close()
		}, server.ReasonReset},
		{"half-closed with replies queued, then reset", halfClosedThenReset(false), server.ReasonReset},
		{"half-closed with replies queued, reset while the server waits for them", halfClosedThenReset(true), server.ReasonReset},
		{"took every reply and closed", tookEveryReply, server.ReasonEOF},
	} {
		for _, wrapped := range []bool{false, true} {
			name := tc.name
			var wrap func(net.Conn) (net.Conn, error)
			if wrapped {
				// (As the PROXY protocol's: the queue is its socket's.)
				name += ", wrapped"
				wrap = func(c net.Conn) (net.Conn, error) { return closeWriter{c}, nil }
			}
			t.Run(name, func(t *testing.T) {
				obs := &queuedObserver{more: make(chan struct{}, 1), closed: make(chan server.ConnInfo, 1)}
				addr := shouttest.Start(t, &server.Server{
					Logger:       discard(),
					Observer:     obs,
					WrapConn:     wrap,
					Linger:       20 * time.Millisecond,
					WriteTimeout: 3 * bound, // outlasts the wait below: the old wait ended only with it
				})
				tc.leave(t, addr, obs)
				select {
				case info := <-obs.closed:
					if info.Reason != tc.want {
						t.Errorf("closed for %v, want %v", info.Reason, tc.want)
					}
				case <-time.After(bound):
					t.Fatalf("the server did not close the connection within %v", bound)
				}
			})
		}
	}
}

// A stop that lingers for the replies still queued for a client ends
// once the client, after its end of file, resets the connection: the
// stop, not only the connection, waited for WriteTimeout (30 s by
// default) with the fix's look reverted. Linger and WriteTimeout outlast
// bound: only the reset can end the wait within it.
func TestResetEndsStopsWaitForQueuedReplies(t *testing.T) {
	obs := &queuedObserver{more: make(chan struct{}, 1), closed: make(chan server.ConnInfo, 1)}
	srv := &server.Server{
		Logger:       discard(),
		Observer:     obs,
		Linger:       3 * bound,
		WriteTimeout: 3 * bound,
	}
	addr := shouttest.Start(t, srv)
	c := dialRcvbuf(t, addr, 4<<10) // its window far smaller than the replies
	c.SetDeadline(time.Now().Add(bound))
	obs.queueReplies(t, c, 64<<10)
	ctx, cancel := context.WithTimeout(context.Background(), 2*bound)
	defer cancel()
	stopped := shutdownCtx(ctx, srv)
	// The stop lingers once it has shut its write side: the server's
	// socket in FIN_WAIT1, its FIN queued behind the replies.
	awaitServerState(t, c.LocalAddr().(*net.TCPAddr), c.RemoteAddr().(*net.TCPAddr), tcpFinWait1,
		"Shutdown", "FIN_WAIT1: its write side shut")
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := c.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	c.Close() // a reset, after the end of file
	obs.closedFor(t, server.ReasonShutdown, " of the client's reset")
	shutdownReturned(t, stopped)
}

// halfClosedThenReset is a client that sends, shuts its write side, its
// window far smaller than the replies, and resets the connection once
// every reply is written; once the server waits for them too (its socket
// in LAST_ACK, its write side shut after the client's end of file), if
// waiting: the reset comes then to the looks of the wait itself (the
// event loop's sweeps), not to the look that decides whether to wait.
func halfClosedThenReset(waiting bool) func(t *testing.T, addr string, obs *queuedObserver) {
	return func(t *testing.T, addr string, obs *queuedObserver) {
		fd := halfClosedQueued(t, addr, obs, waiting)
		if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1}); err != nil {
			t.Fatal(err)
		}
		unix.Close(fd) // a reset
	}
}

// halfClosedQueued is a raw client that sends, shuts its write side, its
// window far smaller than the replies, and has every reply written; and,
// if waiting, the server waiting for them to be taken (its socket in
// LAST_ACK, its write side shut after the client's end of file).
func halfClosedQueued(t *testing.T, addr string, obs *queuedObserver, waiting bool) (fd int) {
	t.Helper()
	fd = rawDialBuffer(t, addr, 4<<10)
	const n = 128 << 10
	sendRaw(t, fd, n)
	if err := unix.Shutdown(fd, unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	if err := obs.wait(t, n); err != nil {
		t.Fatalf("a reply failed: %v", err)
	}
	if waiting {
		local, remote := fdAddrs(t, fd)
		awaitServerState(t, local, remote, tcpLastAck,
			"the client's end of file, its replies written", "LAST_ACK: waiting for them to be taken")
	}
	return fd
}

// tookEveryReply is a client that sends, shuts its write side, its
// window far smaller than the replies, takes every reply up to the
// server's end of file, and closes.
func tookEveryReply(t *testing.T, addr string, _ *queuedObserver) {
	c := dialRcvbuf(t, addr, 4<<10)
	defer c.Close()
	c.SetDeadline(time.Now().Add(bound))
	const n = 128 << 10
	if _, err := c.Write([]byte(strings.Repeat("a", n))); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.Copy(io.Discard, c)
	if err != nil || got != n {
		t.Fatalf("took %d bytes of replies of %d: %v", got, n, err)
	}
}

// fdAddrs is IPv4 TCP socket fd's own address and its peer's.
func fdAddrs(t *testing.T, fd int) (local, remote *net.TCPAddr) {
	t.Helper()
	addr := func(sa unix.Sockaddr, err error) *net.TCPAddr {
		in, ok := sa.(*unix.SockaddrInet4)
		if err != nil || !ok {
			t.Fatalf("socket address %v: %v", sa, err)
		}
		return &net.TCPAddr{IP: net.IP(in.Addr[:]), Port: in.Port}
	}
	return addr(unix.Getsockname(fd)), addr(unix.Getpeername(fd))
}

// resetSeen waits, bound at most, for the client's socket fd to be closed
// by the server's reset, sent as the server closed with replies queued
// that the client took none of: over loopback it comes at once, but a
// busy machine may deliver it a little later. It waits in poll, which a
// reset wakes (POLLERR); a hang-up that came first (the server's end of
// file, then its reset) wakes it too, and leaves it woken, so then it
// looks again a millisecond later.
func resetSeen(t *testing.T, fd int) {
	t.Helper()
	var state uint8
	for end := time.Now().Add(bound); ; {
		ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			t.Fatal(err)
		}
		if state = ti.State; state == tcpClose {
			return
		}
		wait := time.Until(end)
		if wait <= 0 {
			break
		}
		fds := []unix.PollFd{{Fd: int32(fd)}} // POLLERR and POLLHUP, which poll always reports
		if n, _ := unix.Poll(fds, int(wait.Milliseconds())+1); n > 0 && fds[0].Revents&unix.POLLERR == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	t.Errorf("the client's socket is in TCP state %d %v after the server closed with replies queued that it took none of; want %d (closed by a reset)",
		state, bound, tcpClose)
}

// tcpClose is Linux's TCP_CLOSE, a socket's state once reset.
const tcpClose = 7

// The same holds for a graceful close (here Shutdown's) that lingers with
// replies queued for a client that takes none: whether the client then
// sends its end of file (the linger waits for the replies, with nothing
// more to read) or not (it waits for the client to take some), the
// close that ends the wait resets the connection. The replies are
// written whole before the stop, so that no write timeout is what resets
// it. Linger is long enough that a wait which ignored the client taking
// none would last past bound (30 Lingers): a client that takes none is
// reset after WriteTimeout or Linger, whichever is longer.
func TestLingerClosedWithRepliesQueuedResets(t *testing.T) {
	for _, tc := range []struct {
		name      string
		halfClose bool
	}{
		{"end of file while lingering", true},
		{"no end of file", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			untilNotDropped(t, func(t *testing.T) (dropped string) {
				obs := &queuedObserver{more: make(chan struct{}, 1), closed: make(chan server.ConnInfo, 64)}
				srv := &server.Server{
					Logger:       discard(),
					Observer:     obs,
					Linger:       400 * time.Millisecond, // 30 of them past bound
					WriteTimeout: 50 * time.Millisecond,
				}
				addr := shouttest.Start(t, srv)
				fd := rawDialBuffer(t, addr, 4<<10) // its window far smaller than the replies
				t.Cleanup(func() { unix.Close(fd) })
				// Every reply written, most of it queued behind the client's
				// shut window.
				if dropped := obs.fill(t, fd, 64<<10); dropped != "" {
					return dropped
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*bound)
				defer cancel()
				stopped := shutdownCtx(ctx, srv)
				if tc.halfClose {
					// Once the stop has begun (the listener closed), the
					// client's end of file comes to the linger, as a rule.
					for end := time.Now().Add(bound); ; time.Sleep(time.Millisecond) {
						c, err := net.Dial("tcp", addr)
						if err != nil {
							break
						}
						c.Close()
						if time.Now().After(end) {
							t.Fatalf("the listener still accepts %v after Shutdown", bound)
						}
					}
					if err := unix.Shutdown(fd, unix.SHUT_WR); err != nil {
						t.Fatal(err)
					}
				}
				local, err := unix.Getsockname(fd)
				if err != nil {
					t.Fatal(err)
				}
				port := local.(*unix.SockaddrInet4).Port
				for {
					select {
					case info := <-obs.closed:
						if info.Remote.(*net.TCPAddr).Port != port {
							continue // a probe of the listener above
						}
						// An end of file that came before the connection
						// stopped (its loop ran late) is read as one, and
						// waited after as any: its client taking none of the
						// replies for WriteTimeout, it ends as a write
						// timeout (reset away), never as eof (answered).
						if info.Reason != server.ReasonShutdown && !(tc.halfClose && info.Reason == server.ReasonWriteTimeout) {
							t.Errorf("closed for %v, want %v", info.Reason, server.ReasonShutdown)
						}
					case <-time.After(bound):
						t.Fatalf("the server did not close the connection within %v", bound)
					}
					break
				}
				shutdownReturned(t, stopped)
				resetSeen(t, fd)
				return ""
			})
		})
	}
}

// queuedObserver tells of the replies written and of each connection
// closed.
type queuedObserver struct {
	mu      sync.Mutex
	written int
	err     error
	more    chan struct{} // (buffered) a reply was written
	closed  chan server.ConnInfo
}

func (o *queuedObserver) ConnOpen(*server.ConnInfo)         {}
func (o *queuedObserver) ConnRead(*server.ConnInfo, []byte) {}
func (o *queuedObserver) Datagram(*server.DatagramInfo)     {}
func (o *queuedObserver) ConnClose(c *server.ConnInfo) {
	o.closed <- *c
}

func (o *queuedObserver) ConnReply(_ *server.ConnInfo, n int, err error) {
	o.mu.Lock()
	o.written += n
	if err != nil && o.err == nil {
		o.err = err
	}
	o.mu.Unlock()
	select {
	case o.more <- struct{}{}:
	default:
	}
}

// sendRaw writes n bytes to the non-blocking socket fd, as the server
// takes them (bound at most for each wait).
func sendRaw(t *testing.T, fd, n int) {
	t.Helper()
	if err := sendRawErr(t, fd, n); err != nil {
		t.Fatal(err)
	}
}

// sendRawErr is sendRaw, returning a write's error.
func sendRawErr(t *testing.T, fd, n int) error {
	t.Helper()
	msg := []byte(strings.Repeat("a", n))
	for sent := 0; sent < len(msg); {
		if !wait(t, fd, unix.POLLOUT, bound) {
			t.Fatalf("the server took %d of %d bytes within %v", sent, len(msg), bound)
		}
		k, err := unix.Write(fd, msg[sent:])
		if err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return err
		}
		sent += k
	}
	return nil
}

// queueReplies writes n bytes to w and waits, bound at most, until the
// server has written every reply: most of them queued behind a client's
// window far smaller than they are.
func (o *queuedObserver) queueReplies(t *testing.T, w io.Writer, n int) {
	t.Helper()
	if _, err := w.Write([]byte(strings.Repeat("a", n))); err != nil {
		t.Fatal(err)
	}
	if err := o.wait(t, n); err != nil {
		t.Fatalf("a reply failed: %v", err)
	}
}

// closedFor waits, bound at most, for the server to close the
// connection, and checks that it closed for want; after says after what
// the close was due, in the failure.
func (o *queuedObserver) closedFor(t *testing.T, want server.Reason, after string) {
	t.Helper()
	select {
	case info := <-o.closed:
		if info.Reason != want {
			// Who and why too: a close the test did not bring about
			// (once under load, "closed for reset, want shutdown" in
			// TestEOFInStopWaitsForQueuedReplies) is told apart from
			// its client's.
			t.Errorf("closed for %v (%v), want %v; the connection from %v, %d bytes in, %d out",
				info.Reason, info.Err, want, info.Remote, info.BytesIn, info.BytesOut)
		}
	case <-time.After(bound):
		t.Fatalf("the server did not close the connection within %v%s", bound, after)
	}
}

// wait waits until want bytes of replies are written or one failed, for
// bound at most; it returns the failure.
func (o *queuedObserver) wait(t *testing.T, want int) error {
	t.Helper()
	for end := time.Now().Add(bound); ; {
		o.mu.Lock()
		written, err := o.written, o.err
		o.mu.Unlock()
		if written >= want || err != nil {
			return err
		}
		select {
		case <-o.more:
		case <-time.After(time.Until(end)):
			t.Fatalf("%d of %d bytes of replies written after %v", written, want, bound)
		}
	}
}

// fill sends n bytes on fd, a client that takes none of their replies,
// and waits, bound at most, until the server has written every reply; it
// says how the server dropped the client first, if it did, for its
// write timeout, or returns "". The goroutine driver times a write while
// under way, however short, so one that a busy machine held up for
// WriteTimeout rightly ends a client taking none, before the test could
// check anything with it.
func (o *queuedObserver) fill(t *testing.T, fd, n int) (dropped string) {
	t.Helper()
	sendErr := sendRawErr(t, fd, n)
	err := o.wait(t, n)
	switch {
	case err == nil && sendErr != nil:
		t.Fatal(sendErr)
	case err != nil && !errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatalf("a reply failed: %v", err)
	case err != nil:
		o.mu.Lock()
		defer o.mu.Unlock()
		return fmt.Sprintf("dropped for its write timeout (a reply: %v), %d of %d bytes of replies written", err, o.written, n)
	}
	return ""
}

// untilNotDropped runs try, a test with a client that takes none of its
// replies, again where the server dropped that client for its write
// timeout before the test could check anything with it (see fill), up to
// three tries in all.
func untilNotDropped(t *testing.T, try func(*testing.T) (dropped string)) {
	t.Helper()
	var drops []string
	for len(drops) < 3 {
		dropped := try(t)
		if dropped == "" {
			return
		}
		drops = append(drops, dropped)
		t.Logf("try %d: %s", len(drops), dropped)
	}
	t.Fatalf("the client was dropped before the test's stop in %d tries: %s", len(drops), strings.Join(drops, "; "))
}

// A client that takes every reply and only then resets the connection,
// after its end of file, was answered: its close is "eof". Only replies
// still queued for it (SIOCOUTQ counting them) make its reset the reason.
// The server, held in the reply, reads the end of file once its socket
// is closed by the reset.
func TestResetAfterEveryReplyTakenIsEOF(t *testing.T) {
	for _, wrapped := range []bool{false, true} {
		name := "plain"
		var wrap func(net.Conn) (net.Conn, error)
		if wrapped {
			name = "wrapped" // (the goroutine driver with either engine)
			wrap = func(c net.Conn) (net.Conn, error) { return closeWriter{c}, nil }
		}
		t.Run(name, func(t *testing.T) {
			obs := newHoldingObserver(0)
			addr := shouttest.Start(t, &server.Server{
				Logger:       discard(),
				Observer:     obs,
				WrapConn:     wrap,
				Linger:       20 * time.Millisecond,
				WriteTimeout: 3 * bound,
			})
			t.Cleanup(obs.let) // (before the server's stop, which waits for it)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			tc := c.(*net.TCPConn)
			defer tc.Close()
			tc.SetDeadline(time.Now().Add(bound))
			if _, err := tc.Write([]byte("hi\n")); err != nil {
				t.Fatal(err)
			}
			if err := tc.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			select {
			case <-obs.held:
			case <-time.After(bound):
				t.Fatalf("no reply written within %v", bound)
			}
			got := make([]byte, 3)
			if _, err := io.ReadFull(tc, got); err != nil || string(got) != "HI\n" {
				t.Fatalf("read %q, %v; want %q", got, err, "HI\n")
			}
			local, remote := tc.LocalAddr().(*net.TCPAddr), tc.RemoteAddr().(*net.TCPAddr)
			if err := tc.SetLinger(0); err != nil {
				t.Fatal(err)
			}
			tc.Close() // a reset, every reply taken
			awaitServerState(t, local, remote, -1, "the client's reset", "none: closed by the reset")
			obs.let()
			obs.closedFor(t, server.ReasonEOF, "")
		})
	}
}

// holdingObserver is a queuedObserver that holds the ConnReply that
// brings the replies written to at bytes (the first reply's, at 0),
// closing held, until release is closed (let).
type holdingObserver struct {
	queuedObserver
	at      int
	once    sync.Once
	held    chan struct{}
	release chan struct{}
	let     func() // closes release, once
}

// startHeld starts srv, quiet, with a holdingObserver that holds it in
// the reply that brings what it has written to at bytes, let go at the
// test's end before the server's stop, which waits for it.
func startHeld(t *testing.T, at int, srv *server.Server) (*holdingObserver, string) {
	t.Helper()
	obs := newHoldingObserver(at)
	srv.Logger, srv.Observer = discard(), obs
	addr := shouttest.Start(t, srv)
	t.Cleanup(obs.let)
	return obs, addr
}

func newHoldingObserver(at int) *holdingObserver {
	o := &holdingObserver{
		queuedObserver: queuedObserver{more: make(chan struct{}, 1), closed: make(chan server.ConnInfo, 1)},
		at:             at,
		held:           make(chan struct{}),
		release:        make(chan struct{}),
	}
	o.let = sync.OnceFunc(func() { close(o.release) })
	return o
}

func (o *holdingObserver) ConnReply(info *server.ConnInfo, n int, err error) {
	o.queuedObserver.ConnReply(info, n, err)
	o.mu.Lock()
	reached := o.written >= o.at
	o.mu.Unlock()
	if reached {
		o.once.Do(func() {
			close(o.held)
			<-o.release
		})
	}
}

// stopHeld waits, bound at most, for the server to be held in the reply
// that reached o's count, then begins srv's stop, with a context of 2
// bounds, and waits for it to have begun.
func (o *holdingObserver) stopHeld(t *testing.T, srv *server.Server) <-chan error {
	t.Helper()
	select {
	case <-o.held:
	case <-time.After(bound):
		t.Fatalf("the replies were not all written within %v", bound)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*bound)
	t.Cleanup(cancel)
	stopped := shutdownCtx(ctx, srv)
	<-srv.Stopping()
	return stopped
}

// A client that resets the connection after its end of file, replies
// still queued for it, ends as the reset where the server waits for no
// queued reply (WriteTimeout or Linger off) and closes at once: the look
// at the send queue that names the close is made there too, on both
// drivers. Nothing tested it: the close without that look passed every
// test, logging "eof", answered, for replies thrown away. The server,
// held in its last reply, reads the end of file once the reset has
// closed its socket.
func TestResetAfterEOFWithoutWaitIsReset(t *testing.T) {
	const n = 128 << 10
	for _, tc := range []struct {
		name         string
		writeTimeout time.Duration
		linger       time.Duration
	}{
		{"no write timeout", 0, 20 * time.Millisecond},
		{"no linger", 3 * bound, -1},
	} {
		for _, wrapped := range []bool{false, true} {
			name, wrap := wrappedOrNot(tc.name, wrapped)
			t.Run(name, func(t *testing.T) {
				obs, addr := startHeld(t, n, &server.Server{WrapConn: wrap, Linger: tc.linger, WriteTimeout: tc.writeTimeout})

				fd := rawDialBuffer(t, addr, 4<<10) // its window far smaller than the replies
				sendRaw(t, fd, n)
				if err := unix.Shutdown(fd, unix.SHUT_WR); err != nil {
					unix.Close(fd)
					t.Fatal(err)
				}
				select {
				case <-obs.held:
				case <-time.After(bound):
					unix.Close(fd)
					t.Fatalf("the replies were not all written within %v", bound)
				}
				resetQueued(t, fd)
				obs.let()
				obs.closedFor(t, server.ReasonReset, "")
			})
		}
	}
}

// resetQueued resets client socket fd, replies still queued for it, so
// closing it, once the server's socket has taken its end of file (fd's
// write side shut: CLOSE_WAIT), and waits, bound at most, for the
// server's socket to be closed by the reset. The end of file is sent
// when the write side is shut, but it may reach the server after a reset
// sent at once, and the server reads the reset alone, not an end of file
// and then a reset.
func resetQueued(t *testing.T, fd int) {
	t.Helper()
	local, remote := fdAddrs(t, fd)
	waited := false
	defer func() {
		if !waited {
			unix.Close(fd) // (the wait failed the test)
		}
	}()
	awaitServerState(t, local, remote, tcpCloseWait, "the client's end of file", "CLOSE_WAIT: its end of file come")
	waited = true
	err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1})
	unix.Close(fd) // a reset, the replies queued
	if err != nil {
		t.Fatal(err)
	}
	awaitServerState(t, local, remote, -1, "the client's reset", "none: closed by the reset")
}

// wrappedOrNot is a case named name, and its server's WrapConn: wrapped
// (by closeWriter: the goroutine driver with either engine), or not.
func wrappedOrNot(name string, wrapped bool) (string, func(net.Conn) (net.Conn, error)) {
	if !wrapped {
		return name, nil
	}
	return name + ", wrapped", func(c net.Conn) (net.Conn, error) { return closeWriter{c}, nil }
}

// A connection whose replies, queued after the client's end of file, are
// dropped by the server's own kernel giving up on the client (here
// TCP_USER_TIMEOUT over the client's shut window; a retransmission
// timeout alike), not by a reset from the client, is not the client's
// reset (its SO_ERROR is ETIMEDOUT), nor answered: it ends as such a
// timeout does at any other time, an error that says so, on both
// drivers, wrapped or not, whether the timeout comes while the server
// waits for the replies or before its first look at them (the server
// held in its last reply until then). It was "eof", answered, for
// replies never delivered; only the goroutine driver's wait was tested
// (wrapped, to reach the server's socket), and the event loop's looks,
// made to name a reset alone, survived the tests.
func TestTimedOutAfterEOFIsNotReset(t *testing.T) {
	const n = 128 << 10
	for _, tc := range []struct {
		name  string
		first bool // timed out before the server's first look, not while it waits
	}{
		{"while it waits", false},
		{"before its first look", true},
	} {
		for _, wrapped := range []bool{false, true} {
			name, wrap := wrappedOrNot(tc.name, wrapped)
			t.Run(name, func(t *testing.T) {
				obs, addr := startHeld(t, n, &server.Server{WrapConn: wrap, Linger: 20 * time.Millisecond,
					WriteTimeout: 3 * bound}) // (the write timeout outlasts the wait below)
				if !tc.first {
					obs.let()
				}
				fd := halfClosedQueued(t, addr, &obs.queuedObserver, !tc.first)
				t.Cleanup(func() { unix.Close(fd) })
				local, remote := fdAddrs(t, fd)
				if tc.first {
					awaitServerState(t, local, remote, tcpCloseWait, "the client's end of file", "CLOSE_WAIT: its end of file come")
				}
				if err := unix.SetsockoptInt(serverFD(t, local, remote), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, 1); err != nil {
					t.Fatal(err)
				}
				if tc.first {
					awaitServerState(t, local, remote, -1, "its user timeout", "none: closed by the timeout")
					obs.let()
				}
				select {
				case info := <-obs.closed:
					const want = "replies still queued after the client's end of file were dropped: tcp: connection timed out"
					if info.Reason != server.ReasonError || info.Err == nil || info.Err.Error() != want || !errors.Is(info.Err, syscall.ETIMEDOUT) {
						t.Errorf("closed for %v (%v), want %v saying %q", info.Reason, info.Err, server.ReasonError, want)
					}
				case <-time.After(bound):
					t.Fatalf("the server did not close the connection within %v of its user timeout", bound)
				}
			})
		}
	}
}

// A write a wrapper makes of its own inside a read of the stop's (TLS's
// answer to a KeyUpdate that came as the server stopped), to a client
// that takes nothing, is cut by the write timeout as a reply's is, and
// the connection dropped with a reset, as one whose reply met it is at
// a stop: the stop's read carried on past the cut, and closed the
// connection gracefully (where TLS waits up to WriteTimeout again for
// its close_notify), its FIN queued behind what the client never took,
// for the kernel to hold on a socket no limit counts (the client's
// socket stayed established).
func TestWrapperWriteInStopResets(t *testing.T) {
	obs := newFuzzObserver()
	held := make(chan struct{})
	srv := &server.Server{Observer: obs, WriteTimeout: 200 * time.Millisecond}
	fd := sendK(t, srv, func(c net.Conn, answer []byte) net.Conn { return &writesInStop{Conn: c, answer: answer, held: held} })
	t.Cleanup(func() { unix.Close(fd) })
	select {
	case <-held:
	case <-time.After(bound):
		t.Fatalf("the server read no second time within %v", bound)
	}
	stopped := shutdown(t, srv)
	if ci := obs.closed(t, rawAddr(t, fd)); ci.Reason != server.ReasonShutdown {
		t.Errorf("closed for %v (%v), want shutdown", ci.Reason, ci.Err)
	}
	resetSeen(t, fd)
	shutdownReturned(t, stopped)
}

// writesInStop is a wrapper that, as TLS answers a KeyUpdate, writes
// answer from within a read of the stop's: it passes the client's "K"
// on, holds the read after it (closing held) until the stop's deadline
// ends it, and writes in the next, then reads on; the write's error, as
// TLS's, is left for the next write to meet.
type writesInStop struct {
	net.Conn
	answer []byte
	held   chan struct{}
	step   int // 0: before the "K"; 1: after it; 2: the stop's read; 3: written
}

func (w *writesInStop) Read(p []byte) (int, error) {
	switch w.step {
	case 0:
		n, err := w.Conn.Read(p)
		if n == 1 && p[0] == 'K' {
			w.step = 1
		}
		return n, err
	case 1:
		close(w.held)
		for {
			if _, err := w.Conn.Read(p); err != nil {
				w.step = 2
				return 0, err
			}
		}
	case 2:
		w.step = 3
		w.Conn.Write(w.answer)
	}
	return w.Conn.Read(p)
}

// A client whose end of file the stop reads, replies still queued for it,
// has them waited for as at any end of file (the README: "at a stop or at
// any time"), the close the stop's (shutdown): one that takes none is
// reset after the write timeout, not left with them to the kernel on a
// socket no limit counts; one that resets after its end of file ends it
// as the stop's close too, not as a reset of its own. The stop reads it
// where it cannot count what had arrived (a wrapped connection's, as
// TLS's or the PROXY protocol's: it reads until the client pauses): the
// goroutine driver's stop closed such a connection at once, as the event
// loop's never did (its replies left to the kernel, the client's socket
// never reset). The server, held in the last reply, reads the end of
// file once the stop has begun.
func TestEOFInStopWaitsForQueuedReplies(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reset bool // the client resets after its end of file, before the stop reads it
	}{
		{"takes none", false},
		{"resets", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			untilNotDropped(t, func(t *testing.T) string { return eofInStop(t, tc.reset) })
		})
	}
}

// eofInStop is a try of TestEOFInStopWaitsForQueuedReplies (see
// untilNotDropped).
func eofInStop(t *testing.T, reset bool) (dropped string) {
	const n = 128 << 10
	srv := &server.Server{
		WrapConn:     func(c net.Conn) (net.Conn, error) { return closeWriter{c}, nil },
		Linger:       20 * time.Millisecond,
		WriteTimeout: 100 * time.Millisecond,
	}
	obs, addr := startHeld(t, n, srv)
	fd := rawDialBuffer(t, addr, 4<<10) // its window far smaller than the replies
	closed := false
	t.Cleanup(func() {
		if !closed {
			unix.Close(fd)
		}
	})
	if dropped := obs.fill(t, fd, n); dropped != "" {
		return dropped
	}
	stopped := obs.stopHeld(t, srv)
	if err := unix.Shutdown(fd, unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	if reset {
		closed = true
		resetQueued(t, fd)
	}
	obs.let()
	obs.closedFor(t, server.ReasonShutdown, "")
	if !reset {
		resetSeen(t, fd)
	}
	shutdownReturned(t, stopped)
	return ""
}

// Over a Unix socket, whose queue is the client's own to read, a
// client's end of file that the stop reads (a wrapped connection's)
// closes at once, as any there does, and the close is the stop's
// (shutdown), not "eof": the wait for the replies queued, which names a
// TCP connection's close, is skipped there with the reason it was given
// (the skip's "eof" passed every test, review53 mutant 8). The client
// then reads every reply, and end of file.
func TestEOFInStopOverUnixIsShutdown(t *testing.T) {
	const n = 64 << 10 // (a Unix socket's buffers hold them)
	obs := newHoldingObserver(n)
	srv := &server.Server{
		Logger:       discard(),
		Observer:     obs,
		WrapConn:     func(c net.Conn) (net.Conn, error) { return closeWriter{c}, nil },
		Linger:       3 * bound,
		WriteTimeout: 3 * bound,
	}
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	shouttest.Serve(t, srv, ln)
	t.Cleanup(obs.let) // (before the server's stop, which waits for it)
	c := shouttest.Dial(t, "unix", ln.Addr().String(), bound).(*net.UnixConn)
	c.SetDeadline(time.Now().Add(bound))
	if _, err := c.Write([]byte(strings.Repeat("a", n))); err != nil {
		t.Fatal(err)
	}
	stopped := obs.stopHeld(t, srv)
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	obs.let()
	obs.closedFor(t, server.ReasonShutdown, " of the client's end of file")
	if got, err := readToEnd(c); got != n || err != nil {
		t.Errorf("the client read %d bytes of %d replies, then %v; want all, then end of file", got, n, err)
	}
	shutdownReturned(t, stopped)
}

// A client that resets the connection after its end of file, between the
// server's look at the replies still queued and its shutdown of the
// write side, which then fails, ends it as the reset, on both drivers:
// the close that follows the failed shutdown looks at the queue again.
// Nothing placed a reset there: the event loop's close without that look
// passed every test, logging "eof", answered, for replies thrown away
// (review52 mutant d).
func TestResetBeforeEOFShutdownIsReset(t *testing.T) {
	at, resetDone := make(chan struct{}), make(chan struct{})
	var once sync.Once
	server.HoldEOFShutdown(func() {
		once.Do(func() {
			close(at)
			<-resetDone
		})
	})
	t.Cleanup(func() { server.HoldEOFShutdown(nil) }) // (after the server's stop: cleanups run last first)
	obs := &queuedObserver{more: make(chan struct{}, 1), closed: make(chan server.ConnInfo, 1)}
	addr := shouttest.Start(t, &server.Server{
		Logger:       discard(),
		Observer:     obs,
		Linger:       20 * time.Millisecond,
		WriteTimeout: 3 * bound, // outlasts the test: only the reset ends the wait
	})
	t.Cleanup(func() {
		select {
		case <-resetDone:
		default:
			close(resetDone) // (before the server's stop, which waits for the held connection)
		}
	})
	fd := rawDialBuffer(t, addr, 4<<10) // its window far smaller than the replies
	sendRaw(t, fd, 128<<10)
	if err := unix.Shutdown(fd, unix.SHUT_WR); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	select {
	case <-at:
	case <-time.After(bound):
		unix.Close(fd)
		t.Fatalf("the server did not come to shut its write side within %v of the client's end of file", bound)
	}
	resetQueued(t, fd)
	close(resetDone)
	obs.closedFor(t, server.ReasonReset, "")
}
