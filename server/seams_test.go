//go:build linux

package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"shout/internal/shouttest"
	"shout/server"
)

// ledger is a ReplyObserver that checks each connection's calls as they
// come: one open before anything else, reads and replies only while
// open, one close, and at the close counts that agree with what it was
// told (BytesIn with the reads, BytesOut with the replies, a reply for
// every read). Connections are told apart by their remote address.
type ledger struct {
	mu     sync.Mutex
	conns  map[string]*ledgerConn
	errs   []string
	closed chan server.ConnInfo
}

type ledgerConn struct {
	opened, closed bool
	reads, replies int
	in, out        int64
}

func newLedger() *ledger {
	return &ledger{conns: map[string]*ledgerConn{}, closed: make(chan server.ConnInfo, 100)}
}

func (l *ledger) fail(format string, args ...any) {
	l.errs = append(l.errs, fmt.Sprintf(format, args...))
}

func (l *ledger) conn(c *server.ConnInfo) *ledgerConn {
	k := c.Remote.String()
	lc := l.conns[k]
	if lc == nil {
		lc = &ledgerConn{}
		l.conns[k] = lc
	}
	return lc
}

func (l *ledger) ConnOpen(c *server.ConnInfo) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lc := l.conn(c)
	if lc.opened || lc.closed {
		l.fail("%v: opened again", c.Remote)
	}
	lc.opened = true
}

func (l *ledger) ConnRead(c *server.ConnInfo, p []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lc := l.conn(c)
	if !lc.opened || lc.closed {
		l.fail("%v: read while not open", c.Remote)
	}
	lc.reads++
	lc.in += int64(len(p))
}

func (l *ledger) ConnReply(c *server.ConnInfo, n int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lc := l.conn(c)
	if !lc.opened || lc.closed {
		l.fail("%v: reply while not open", c.Remote)
	}
	lc.replies++
	lc.out += int64(n)
}

func (l *ledger) ConnClose(c *server.ConnInfo) {
	l.mu.Lock()
	lc := l.conn(c)
	switch {
	case lc.closed:
		l.fail("%v: closed twice (%v)", c.Remote, c.Reason)
	case !lc.opened && c.Reason != server.ReasonRejected:
		l.fail("%v: closed (%v) without an open", c.Remote, c.Reason)
	case lc.opened && c.Reason == server.ReasonRejected:
		l.fail("%v: opened, then closed as rejected", c.Remote)
	case c.BytesIn != lc.in:
		l.fail("%v: BytesIn %d, reads of %d", c.Remote, c.BytesIn, lc.in)
	case c.BytesOut != lc.out:
		l.fail("%v: BytesOut %d, replies of %d", c.Remote, c.BytesOut, lc.out)
	case lc.replies != lc.reads:
		l.fail("%v: %d reads, %d replies (%v)", c.Remote, lc.reads, lc.replies, c.Reason)
	}
	lc.closed = true
	l.mu.Unlock()
	l.closed <- *c
}

func (l *ledger) Datagram(*server.DatagramInfo) {}

// check fails t for every fault the ledger saw.
func (l *ledger) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.errs {
		t.Error(e)
	}
}

// waitClose waits for the next close.
func (l *ledger) waitClose(t *testing.T) server.ConnInfo {
	t.Helper()
	select {
	case c := <-l.closed:
		return c
	case <-time.After(bound):
		t.Fatal("no close")
		return server.ConnInfo{}
	}
}

// floodBlocked writes msg to non-blocking fd, never reading, until the
// kernel takes no more: the server's reply waits for the client. It
// returns the write's error if the server drops the client first.
func floodBlocked(t *testing.T, fd int, msg []byte) error {
	t.Helper()
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) {
		_, err := unix.Write(fd, msg)
		switch {
		case err == unix.EAGAIN:
			// Taken no more now; once more after a pause in which the
			// server could read, so that it is blocked writing.
			if !wait(t, fd, unix.POLLOUT, 200*time.Millisecond) {
				return nil
			}
		case err == nil || err == unix.EINTR:
		default:
			return err
		}
	}
	t.Fatal("the server kept reading from a client that does not read")
	return nil
}

// A connection whose reply waits for its client, meeting each way a
// connection ends, tells its observer a consistent story: one open, a
// reply (cut short or not) for every read, byte counts that match the
// calls, one close with the reason that fits. Over TCP and Unix sockets.
func TestBlockedReplyMeetsEveryEnd(t *testing.T) {
	msg := []byte(strings.Repeat("blocked ", 1024))
	for _, network := range []string{"tcp", "unix"} {
		for _, tc := range []struct {
			name string
			srv  func() *server.Server
			end  func(t *testing.T, srv *server.Server, fd *int) // sets *fd to -1 if it closes it
			want []server.Reason
		}{
			{"close", func() *server.Server { return &server.Server{} }, func(t *testing.T, srv *server.Server, fd *int) {
				srv.Close()
			}, []server.Reason{server.ReasonShutdown}},
			{"shutdown timeout", func() *server.Server { return &server.Server{} }, func(t *testing.T, srv *server.Server, fd *int) {
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				defer cancel()
				srv.Shutdown(ctx)
			}, []server.Reason{server.ReasonShutdown}},
			{"reset", func() *server.Server { return &server.Server{} }, func(t *testing.T, srv *server.Server, fd *int) {
				unix.SetsockoptLinger(*fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
				unix.Close(*fd)
				*fd = -1
			}, []server.Reason{server.ReasonReset, server.ReasonBrokenPipe}},
			{"write timeout", func() *server.Server { return &server.Server{WriteTimeout: 100 * time.Millisecond} }, func(t *testing.T, srv *server.Server, fd *int) {
				// The client sends whenever it can until it is dropped.
				// floodBlocked takes a pause in the server's reads (a busy
				// machine) for a reply that waits; over a Unix socket,
				// whose sender's buffer is all the client can queue, the
				// server then wrote every reply, had none stuck to time
				// out, and kept the connection for good.
				floodUntilDropped(*fd, msg, nil)
			}, []server.Reason{server.ReasonWriteTimeout}},
		} {
			t.Run(network+"/"+tc.name, func(t *testing.T) {
				shouttest.CheckFDs(t)
				obs := newLedger()
				srv := tc.srv()
				srv.Observer, srv.Logger = obs, discard()
				var fd int
				if network == "tcp" {
					ln := listenSmall(t)
					serveOn(t, srv, ln)
					fd = rawDial(t, ln.Addr().String())
				} else {
					ln := listenUnix(t)
					serveOn(t, srv, ln)
					fd = rawDialUnix(t, ln.Addr().String())
				}
				// Closed once: a second close of the number, once the
				// process has given it to another socket, closes that one.
				defer func() {
					if fd >= 0 {
						unix.Close(fd)
					}
				}()
				if err := floodBlocked(t, fd, msg); err != nil && srv.WriteTimeout <= 0 {
					t.Fatalf("flood: %v", err)
				}
				tc.end(t, srv, &fd)
				c := obs.waitClose(t)
				srv.Close()
				obs.check(t)
				ok := false
				for _, r := range tc.want {
					ok = ok || c.Reason == r
				}
				if !ok {
					t.Errorf("closed for %v (%v), want one of %v", c.Reason, c.Err, tc.want)
				}
			})
		}
	}
}

func listenUnix(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// rawDialUnix connects a non-blocking Unix socket to path.
func rawDialUnix(t *testing.T, path string) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 16<<10)
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	return fd
}

// Connections rejected at a limit, then reset, closed or left open by
// their clients while the server stops, are each told once, as rejected,
// and give back every place they held: the server admits as many again.
func TestRejectedGiveBackTheirPlaces(t *testing.T) {
	for _, tc := range []struct {
		name string
		srv  func() *server.Server
	}{
		{"max conns", func() *server.Server { return &server.Server{MaxConns: 2} }},
		{"per ip", func() *server.Server { return &server.Server{MaxConnsPerIP: 2} }},
		{"both", func() *server.Server { return &server.Server{MaxConns: 2, MaxConnsPerIP: 2} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := newLedger()
			hook, states := states()
			srv := tc.srv()
			srv.Observer, srv.Logger, srv.ConnState = obs, discard(), hook
			addr := shouttest.Start(t, srv)
			for round := range 3 {
				held := []*net.TCPConn{dial(t, addr), dial(t, addr)}
				waitState(t, states, server.StateNew)
				waitState(t, states, server.StateNew)
				for i := range 3 {
					over := dial(t, addr)
					waitState(t, states, server.StateRejected)
					if c := obs.waitClose(t); c.Reason != server.ReasonRejected {
						t.Fatalf("round %d: closed for %v, want rejected", round, c.Reason)
					}
					switch i {
					case 0:
						over.SetLinger(0)
						over.Close()
					case 1:
						over.Close()
					}
				}
				for _, c := range held {
					exchange(t, c, "x", "X")
					c.Close()
					waitState(t, states, server.StateClosed)
					if c := obs.waitClose(t); c.Reason != server.ReasonEOF {
						t.Fatalf("round %d: closed for %v, want eof", round, c.Reason)
					}
				}
			}
			obs.check(t)
		})
	}
}

// A connection in each state a graceful close or a limit puts it in
// meets each way it can end (its client's end of file or reset, Close):
// it is closed once, for the reason its state says, with counts that
// match what its observer was told.
func TestLingeringMeetsEveryEnd(t *testing.T) {
	type setup struct {
		name string
		srv  func() *server.Server
		// into puts c in the state, on srv; it returns the reason c's
		// close must have.
		into func(t *testing.T, srv *server.Server, obs *ledger, c *net.TCPConn) server.Reason
	}
	eofAfter := func(t *testing.T, c *net.TCPConn, want string) {
		t.Helper()
		if got, err := io.ReadAll(c); err != nil || string(got) != want {
			t.Fatalf("read %q, %v; want %q, then end of file", got, err, want)
		}
	}
	setups := []setup{
		{"reading", func() *server.Server { return &server.Server{} }, func(t *testing.T, srv *server.Server, obs *ledger, c *net.TCPConn) server.Reason {
			exchange(t, c, "x", "X")
			return 0 // as the end says
		}},
		{"lingering after shutdown", func() *server.Server { return &server.Server{Linger: time.Hour} }, func(t *testing.T, srv *server.Server, obs *ledger, c *net.TCPConn) server.Reason {
			io.WriteString(c, "x")
			waitAcked(t, c)
			go srv.Shutdown(context.Background())
			eofAfter(t, c, "X")
			return server.ReasonShutdown
		}},
		{"lingering after idle timeout", func() *server.Server { return &server.Server{IdleTimeout: 20 * time.Millisecond, Linger: time.Hour} }, func(t *testing.T, srv *server.Server, obs *ledger, c *net.TCPConn) server.Reason {
			eofAfter(t, c, "")
			return server.ReasonIdleTimeout
		}},
		{"rejected", func() *server.Server { return &server.Server{MaxConns: 1, Linger: time.Hour} }, nil},
	}
	ends := []struct {
		name string
		end  func(srv *server.Server, c *net.TCPConn)
		want server.Reason // for a connection reading
	}{
		{"eof", func(srv *server.Server, c *net.TCPConn) { c.Close() }, server.ReasonEOF},
		{"reset", func(srv *server.Server, c *net.TCPConn) { c.SetLinger(0); c.Close() }, server.ReasonReset},
		{"close", func(srv *server.Server, c *net.TCPConn) { srv.Close() }, server.ReasonShutdown},
	}
	for _, st := range setups {
		for _, e := range ends {
			t.Run(st.name+"/"+e.name, func(t *testing.T) {
				shouttest.CheckFDs(t)
				obs := newLedger()
				hook, states := states()
				srv := st.srv()
				srv.Observer, srv.Logger, srv.ConnState = obs, discard(), hook
				addr := shouttest.Start(t, srv)
				c := dial(t, addr)
				want := e.want
				if st.into != nil {
					waitState(t, states, server.StateNew)
					if r := st.into(t, srv, obs, c); r != 0 {
						want = r
					}
				} else {
					// Over MaxConns: told at once, and never again.
					waitState(t, states, server.StateNew)
					over := dial(t, addr)
					waitState(t, states, server.StateRejected)
					if got := obs.waitClose(t); got.Reason != server.ReasonRejected {
						t.Fatalf("closed for %v, want rejected", got.Reason)
					}
					if n, err := over.Read(make([]byte, 1)); n != 0 || err != io.EOF {
						t.Fatalf("rejected: read %d, %v; want end of file", n, err)
					}
					c.Close() // the one admitted
					if got := obs.waitClose(t); got.Reason != server.ReasonEOF {
						t.Fatalf("closed for %v, want eof", got.Reason)
					}
					c, want = over, 0
				}
				e.end(srv, c)
				if want != 0 {
					if got := obs.waitClose(t); got.Reason != want {
						t.Errorf("closed for %v (%v), want %v", got.Reason, got.Err, want)
					}
				}
				srv.Close()
				obs.check(t)
				select {
				case got := <-obs.closed:
					t.Errorf("closed again, for %v", got.Reason)
				default:
				}
			})
		}
	}
}

// A listener closed from outside ends its Serve with net.ErrClosed, and
// no more: the connections it brought are served on, and stop with the
// server as any other.
func TestListenerClosedFromOutsideLeavesItsConnections(t *testing.T) {
	shouttest.CheckFDs(t)
	obs := newLedger()
	srv := &server.Server{Observer: obs, Logger: discard()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := serveOn(t, srv, ln)
	c := dial(t, ln.Addr().String())
	exchange(t, c, "before", "BEFORE")
	ln.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Serve: %v, want net.ErrClosed", err)
		}
	case <-time.After(bound):
		t.Fatal("Serve did not return")
	}
	exchange(t, c, "after", "AFTER")
	// Served again on a listener of its own, the server serves both.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done2 := serveOn(t, srv, ln2)
	d := dial(t, ln2.Addr().String())
	exchange(t, d, "new", "NEW")
	exchange(t, c, "old", "OLD")
	stopped := shutdownCtx(context.Background(), srv)
	for _, x := range []*net.TCPConn{c, d} {
		if got, err := io.ReadAll(x); err != nil || len(got) != 0 {
			t.Errorf("after Shutdown: read %q, %v; want end of file", got, err)
		}
		x.Close()
		if got := obs.waitClose(t); got.Reason != server.ReasonShutdown {
			t.Errorf("closed for %v, want shutdown", got.Reason)
		}
	}
	shutdownReturned(t, stopped)
	if err := <-done2; err != server.ErrServerClosed {
		t.Errorf("second Serve: %v, want ErrServerClosed", err)
	}
	obs.check(t)
}

// Serve on a listener closed already fails as Accept on it does, with
// either driver: net.ErrClosed, in an accept error that names the
// listener, not the call that found it closed.
func TestServeClosedListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	srv := &server.Server{Logger: discard()}
	defer srv.Close()
	err = srv.Serve(ln)
	want := fmt.Sprintf("accept tcp %v: %v", ln.Addr(), net.ErrClosed)
	if !errors.Is(err, net.ErrClosed) || err.Error() != want {
		t.Errorf("Serve: %v; want %s", err, want)
	}
}
