package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
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

// A client that keeps taking its replies, however long it takes, gets
// every one and then end of file: the close that waits for replies still
// queued resets them away only for a client that took none of them for
// WriteTimeout (review r38 of c95550f saw each of these clients reset).
//   - After its end of file, a client reading slowly is not cut at 30
//     Lingers: it was reset once they passed. Nor is it closed then
//     with a FIN behind the replies, which would leave them to the
//     kernel: the server holds the connection while it takes them.
//   - With WriteTimeout 0 the server closes at its end of file as it
//     always did, resetting nothing: a client that paused longer than
//     Linger before reading was reset.
//   - A lingering close (here Shutdown's) that reaches its bound of 30
//     Lingers while the client still takes its replies closes with a FIN
//     behind them: it reset them.
//   - With WriteTimeout 0, a lingering close whose client took none of
//     its replies for Linger closes with a FIN behind them, as it always
//     did, resetting nothing.
//
// The client's receive buffer is far smaller than the replies, and it
// reads a little at a time, so that taking them lasts far longer than 30
// Lingers (Linger is short); its pace only makes the old resets come, the
// test asserts no time.
func TestQueuedRepliesReachASlowReader(t *testing.T) {
	for _, tc := range []struct {
		name         string
		writeTimeout time.Duration
		stop         bool // Shutdown once every reply is written
		halfClose    bool
		pause, gap   time.Duration
		want         server.Reason
	}{
		{"end of file, read slowly past 30 Lingers", bound, false, true, 0, 10 * time.Millisecond, server.ReasonEOF},
		{"end of file, no write timeout, a pause longer than Linger", 0, false, true, 200 * time.Millisecond, 0, server.ReasonEOF},
		{"stop, read slowly past 30 Lingers", bound, true, false, 0, 10 * time.Millisecond, server.ReasonShutdown},
		{"stop, no write timeout, a pause longer than Linger", 0, true, false, 200 * time.Millisecond, 0, server.ReasonShutdown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := &queuedObserver{more: make(chan struct{}, 1), closed: make(chan server.ConnInfo, 64)}
			srv := &server.Server{
				Logger:       discard(),
				Observer:     obs,
				Linger:       5 * time.Millisecond, // 30 of them: 150 ms
				WriteTimeout: tc.writeTimeout,
			}
			addr := shouttest.Start(t, srv)
			c := dialRcvbuf(t, addr, 4<<10)
			const n = 256 << 10
			wrote := make(chan error, 1)
			go func() {
				_, err := c.Write([]byte(strings.Repeat("a", n)))
				if err == nil && tc.halfClose {
					err = c.CloseWrite()
				}
				wrote <- err
			}()
			var stopped <-chan error
			if tc.pause > 0 || tc.stop {
				// Every reply written, queued behind the client's window,
				// and its end of file sent, if it sends one: then the
				// server stops, if it does, and the client pauses.
				if err := <-wrote; err != nil {
					t.Fatal(err)
				}
				if err := obs.wait(t, n); err != nil {
					t.Fatalf("a reply failed: %v", err)
				}
			}
			if tc.stop {
				ctx, cancel := context.WithTimeout(context.Background(), 2*bound)
				defer cancel()
				stopped = shutdownCtx(ctx, srv)
			}
			time.Sleep(tc.pause) // (a stop's lingers meanwhile)
			got := 0
			buf := make([]byte, 4<<10)
			c.SetReadDeadline(time.Now().Add(2 * bound))
			var err error
			for got <= n {
				var k int
				k, err = c.Read(buf)
				got += k
				if err != nil {
					break
				}
				if tc.halfClose && tc.writeTimeout > 0 && got < n/2 {
					select {
					case info := <-obs.closed:
						// (Closed with a FIN, the kernel would go on
						// delivering them, on a socket no limit counts.)
						t.Fatalf("the server closed the connection (%v) with the client still taking its replies, %d bytes of %d read",
							info.Reason, got, n)
					default:
					}
				}
				time.Sleep(tc.gap)
			}
			if got != n || !errors.Is(err, io.EOF) {
				t.Fatalf("the client read %d bytes of %d replies, then %v (reset: %v); want all, then end of file",
					got, n, err, errors.Is(err, syscall.ECONNRESET))
			}
			if tc.pause == 0 && !tc.stop {
				if err := <-wrote; err != nil {
					t.Fatal(err)
				}
			}
			obs.closedFor(t, tc.want, "")
			if tc.stop {
				shutdownReturned(t, stopped)
			}
		})
	}
}

// dialRcvbuf dials addr with a receive buffer of rcvbuf bytes, set before
// the connect so that the window offered is that small.
func dialRcvbuf(t *testing.T, addr string, rcvbuf int) *net.TCPConn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		if cerr := rc.Control(func(fd uintptr) {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
		}); cerr != nil {
			return cerr
		}
		return err
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// A wrapped connection (TLS, or a wrapper such as the PROXY protocol's)
// whose client sends, shuts its write side and never reads is reset
// after the write timeout too, its replies freed: the queue is looked at
// in the socket under the wrapper, or under the *tls.Conn that a listener
// such as tls.NewListener's returns, found through its NetConn (a walk
// that stopped at the first wrapper closed that one at its end of file,
// as if it were not over TCP). It was closed at once at the
// end of file, the client's socket left in FIN_WAIT2 (state 5) behind
// the replies the kernel held for it. So it is when TLS's close_notify
// cannot be written: queued behind the replies in a full send buffer, it
// fails once crypto/tls's 5 s deadline passes (here its socket fails the
// write at once); the connection was then closed without the wait, the
// replies left to the kernel.
func TestWrappedClosedWithRepliesQueuedResets(t *testing.T) {
	store, err := certs.SelfSigned([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	tlsServer := func(c net.Conn) (net.Conn, error) {
		tc := tls.Server(c, &tls.Config{GetCertificate: store.GetCertificate})
		if err := tc.Handshake(); err != nil {
			return nil, &server.WrapError{Reason: server.ReasonHandshake, Err: err}
		}
		return tc, nil
	}
	tlsClient := func(t *testing.T, c *net.TCPConn) interface {
		io.Writer
		CloseWrite() error
	} {
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
		if err := tc.Handshake(); err != nil {
			t.Fatalf("handshake: %v", err)
		}
		return tc
	}
	var full atomic.Bool // set once every reply is written
	for _, tc := range []struct {
		name string
		wrap func(net.Conn) (net.Conn, error)
		// tlsListener: the server is given a listener whose Accept returns
		// *tls.Conn (tls.NewListener's): the socket is under the
		// connection accepted, found through its NetConn.
		tlsListener bool
		// client wraps the client's side of the connection.
		client func(t *testing.T, c *net.TCPConn) interface {
			io.Writer
			CloseWrite() error
		}
	}{
		{"wrapper", func(c net.Conn) (net.Conn, error) { return closeWriter{c}, nil }, false,
			func(_ *testing.T, c *net.TCPConn) interface {
				io.Writer
				CloseWrite() error
			} {
				return c
			}},
		{"TLS", tlsServer, false, tlsClient},
		{"TLS, close_notify not written", func(c net.Conn) (net.Conn, error) {
			return tlsServer(fullConn{c, &full})
		}, false, tlsClient},
		{"a listener of *tls.Conn", nil, true, tlsClient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			full.Store(false)
			obs := &queuedObserver{more: make(chan struct{}, 1), closed: make(chan server.ConnInfo, 64)}
			srv := &server.Server{
				Logger:       discard(),
				Observer:     obs,
				WrapConn:     tc.wrap,
				Linger:       20 * time.Millisecond,
				WriteTimeout: time.Second, // the client takes nothing: stuck once it passes (shorter, a slow machine timed out the replies' writes)
			}
			var addr string
			if tc.tlsListener {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				shouttest.Serve(t, srv, tls.NewListener(ln, &tls.Config{GetCertificate: store.GetCertificate}))
				addr = ln.Addr().String()
			} else {
				addr = shouttest.Start(t, srv)
			}
			c := dialRcvbuf(t, addr, 4<<10) // its window far smaller than the replies
			w := tc.client(t, c)
			const n = 64 << 10
			c.SetWriteDeadline(time.Now().Add(bound))
			obs.queueReplies(t, w, n)
			full.Store(true)
			if err := w.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			obs.closedFor(t, server.ReasonWriteTimeout, "") // (its replies reset away)
			rc, err := c.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			rc.Control(func(fd uintptr) { resetSeen(t, int(fd)) })
		})
	}
}

// closeWriter is a wrapper that gives neither its socket nor the one
// under it, as the PROXY protocol's does not, but shuts the write side.
type closeWriter struct{ net.Conn }

func (c closeWriter) CloseWrite() error {
	return c.Conn.(interface{ CloseWrite() error }).CloseWrite()
}

// A TCP client whose end of file comes with replies still queued for it
// has the write side shut at once, its end of file queued behind them,
// so that it reads end of file right after its last reply, not once the
// server has seen it take them all. Here WriteTimeout and Linger outlast
// bound, and the client takes nothing until the server's socket is in
// LAST_ACK (its write side shut after the client's): it stayed in
// CLOSE_WAIT.
func TestEOFWithRepliesQueuedShutsWriteSideAtOnce(t *testing.T) {
	obs := &queuedObserver{more: make(chan struct{}, 1), closed: make(chan server.ConnInfo, 64)}
	addr := shouttest.Start(t, &server.Server{
		Logger:       discard(),
		Observer:     obs,
		Linger:       3 * bound,
		WriteTimeout: 3 * bound,
	})
	c := dialRcvbuf(t, addr, 4<<10) // its window far smaller than the replies
	const n = 64 << 10
	c.SetDeadline(time.Now().Add(bound))
	obs.queueReplies(t, c, n)
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	awaitServerState(t, c.LocalAddr().(*net.TCPAddr), c.RemoteAddr().(*net.TCPAddr), tcpLastAck,
		"the client's end of file, its replies queued", "LAST_ACK: its write side shut")
	got, err := readToEnd(c)
	if got != n || err != nil {
		t.Errorf("the client read %d bytes of %d replies, then %v; want all, then end of file", got, n, err)
	}
	obs.closedFor(t, server.ReasonEOF, " of the client taking every reply")
}

// Linux's TCP states that tests wait for the server's socket to reach.
const (
	tcpFinWait1  = 4
	tcpCloseWait = 8
	tcpLastAck   = 9
)

// awaitServerState waits, bound at most, for the server's socket of the
// client's connection from local to remote to be in TCP state want
// (named so in wantName), after what the test did.
func awaitServerState(t *testing.T, local, remote *net.TCPAddr, want int, after, wantName string) {
	t.Helper()
	state := -1
	for end := time.Now().Add(bound); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if state = tcpState(t, remote, local); state == want {
			return
		}
	}
	t.Fatalf("the server's socket is in TCP state %d %v after %s; want %d (%s)", state, bound, after, want, wantName)
}

// tcpState is the TCP state of the IPv4 socket from local to remote, as
// /proc/net/tcp tells it, or -1 if there is none.
func tcpState(t *testing.T, local, remote *net.TCPAddr) int {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	hex := func(a *net.TCPAddr) string {
		ip := a.IP.To4()
		return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], a.Port)
	}
	l, r := hex(local), hex(remote)
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) > 3 && f[1] == l && f[2] == r {
			st, err := strconv.ParseInt(f[3], 16, 0)
			if err != nil {
				t.Fatal(err)
			}
			return int(st)
		}
	}
	return -1
}

// Where nothing would be reset, a client's end of file closes its
// connection at once, with the replies still queued, as before the wait
// for them: with WriteTimeout 0, with Linger off, and over a Unix socket,
// whose queue is the client's own to read; whether the end of file comes
// as the connection is served or while a stop lingers. Linger and
// WriteTimeout, where set, outlast bound, and the client reads nothing
// until the server has closed: a wait for the replies would fail the
// test. Waited for, with WriteTimeout 0 a client that paused longer than
// Linger before reading was reset (r38), and over a Unix socket a stop
// that lingered waited for the client to read.
func TestEOFClosesAtOnceWhereNothingIsReset(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		network              string
		linger, writeTimeout time.Duration
		stop                 bool
	}{
		{"TCP, no write timeout", "tcp", 3 * bound, 0, false},
		{"TCP, no write timeout, stopping", "tcp", 3 * bound, 0, true},
		{"TCP, Linger off", "tcp", -1, 3 * bound, false},
		{"Unix", "unix", 3 * bound, 3 * bound, false},
		{"Unix, stopping", "unix", 3 * bound, 3 * bound, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := &queuedObserver{more: make(chan struct{}, 1), closed: make(chan server.ConnInfo, 64)}
			srv := &server.Server{
				Logger:       discard(),
				Observer:     obs,
				Linger:       tc.linger,
				WriteTimeout: tc.writeTimeout,
			}
			addr := "127.0.0.1:0"
			if tc.network == "unix" {
				addr = filepath.Join(t.TempDir(), "s")
			}
			ln, err := net.Listen(tc.network, addr)
			if err != nil {
				t.Fatal(err)
			}
			shouttest.Serve(t, srv, ln)
			var c interface {
				net.Conn
				CloseWrite() error
			}
			if tc.network == "unix" {
				c = shouttest.Dial(t, "unix", ln.Addr().String(), bound).(*net.UnixConn)
			} else {
				c = dialRcvbuf(t, ln.Addr().String(), 4<<10) // its window far smaller than the replies
			}
			const n = 64 << 10
			c.SetDeadline(time.Now().Add(bound))
			obs.queueReplies(t, c, n)
			var stopped <-chan error
			if tc.stop {
				ctx, cancel := context.WithTimeout(context.Background(), 2*bound)
				defer cancel()
				stopped = shutdownCtx(ctx, srv)
				// The stop lingers once it has shut its write side, which a
				// Unix socket tells at once, its replies queued or not.
				if tc.network == "unix" {
					if !rdhup(t, c.(syscall.Conn), bound) {
						t.Fatalf("the server did not shut its write side within %v of Shutdown", bound)
					}
				} else {
					// Over TCP, the server's socket in FIN_WAIT1 (its
					// FIN queued behind the replies) tells it.
					awaitServerState(t, c.LocalAddr().(*net.TCPAddr), c.RemoteAddr().(*net.TCPAddr), tcpFinWait1,
						"Shutdown", "FIN_WAIT1: its write side shut")
				}
			}
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			want := server.ReasonEOF
			if tc.stop {
				want = server.ReasonShutdown
			}
			obs.closedFor(t, want, " of the client's end of file: it waits for the replies queued")
			got, err := readToEnd(c)
			if got != n || err != nil {
				t.Errorf("the client read %d bytes of %d replies, then %v; want all, then end of file", got, n, err)
			}
			if tc.stop {
				shutdownReturned(t, stopped)
			}
		})
	}
}

// rdhup reports whether c's peer shut its write side within d, as poll
// tells (POLLRDHUP), whatever is still queued to read.
func rdhup(t *testing.T, c syscall.Conn, d time.Duration) bool {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	rc.Control(func(f uintptr) { fd = int(f) })
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
	for end := time.Now().Add(d); time.Now().Before(end); {
		n, err := unix.Poll(pfd, int(time.Until(end)/time.Millisecond)+1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 && pfd[0].Revents&unix.POLLRDHUP != 0 {
			return true
		}
	}
	return false
}

// fullConn is a socket whose send buffer is full once full is set: a
// write fails, as one does whose deadline passed before it found room.
type fullConn struct {
	net.Conn
	full *atomic.Bool
}

func (c fullConn) Write(p []byte) (int, error) {
	if c.full.Load() {
		return 0, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.ErrDeadlineExceeded}
	}
	return c.Conn.Write(p)
}

// A lingering close whose read fails (a wrapper's read here, as a TLS
// record that fails to decrypt fails one) with replies still queued for
// a client that took none of them closes with a FIN behind them, as a
// close always did, on a server with no write timeout: only a write
// timeout says that a client that takes nothing is stuck. Without
// resetStuck's check of it, no write timeout read as one of zero, which
// every client had outlasted, and the replies were reset away.
func TestLingerReadFailsWithoutWriteTimeoutKeepsReplies(t *testing.T) {
	obs := &queuedObserver{more: make(chan struct{}, 1), closed: make(chan server.ConnInfo, 64)}
	shut := make(chan struct{})
	srv := &server.Server{
		Logger:   discard(),
		Observer: obs,
		Linger:   bound, // the failed read, not Linger, ends the wait
		WrapConn: func(c net.Conn) (net.Conn, error) { return &failAfterShut{Conn: c, shut: shut}, nil },
	}
	addr := shouttest.Start(t, srv)
	c := dialRcvbuf(t, addr, 4<<10) // its window far smaller than the replies
	c.SetDeadline(time.Now().Add(2 * bound))
	const n = 64 << 10
	obs.queueReplies(t, c, n)
	ctx, cancel := context.WithTimeout(context.Background(), 2*bound)
	defer cancel()
	stopped := shutdownCtx(ctx, srv)
	select {
	case <-shut: // the write side shut: the linger's read waits
	case <-time.After(bound):
		t.Fatalf("the stop did not shut the connection's write side within %v", bound)
	}
	if _, err := c.Write([]byte("x")); err != nil { // wakes the read, which fails
		t.Fatal(err)
	}
	obs.closedFor(t, server.ReasonShutdown, " after its read failed")
	got, err := io.ReadAll(c)
	if len(got) != n || err != nil {
		t.Errorf("the client read %d bytes of %d replies, then %v (reset: %v); want all, then end of file",
			len(got), n, err, errors.Is(err, syscall.ECONNRESET))
	}
	shutdownReturned(t, stopped)
}

// failAfterShut is a connection whose reads fail once its write side is
// shut (and shut is closed): a graceful close's linger reads then.
type failAfterShut struct {
	net.Conn
	shut     chan struct{}
	isShut   atomic.Bool
	shutOnce sync.Once
}

func (c *failAfterShut) CloseWrite() error {
	err := c.Conn.(interface{ CloseWrite() error }).CloseWrite()
	c.isShut.Store(true)
	c.shutOnce.Do(func() { close(c.shut) })
	return err
}

func (c *failAfterShut) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.isShut.Load() && err == nil {
		return 0, errors.New("a read that failed")
	}
	return n, err
}
