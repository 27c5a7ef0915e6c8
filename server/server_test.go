package server_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/goleak"
	"golang.org/x/text/cases"
	"golang.org/x/text/language"

	"shout/internal/deadline"
	"shout/internal/shouttest"
	"shout/server"
	"shout/upper"
)

// TestMain runs every test once for each driver: with the event loops
// wherever they can serve (EngineAuto, as a Server chooses by default),
// then with a goroutine per connection. SHOUT_TEST_ENGINE=loop (or
// goroutine, or auto) runs them once, with that driver, to chase what
// fails with one.
//
// Fuzzing (-fuzz) runs once, with the driver SHOUT_TEST_ENGINE names
// (auto by default): the fuzz workers are processes of their own that run
// TestMain too, serve the coordinator in their first m.Run and would
// start a second one for the other driver; the environment, which they
// inherit, keeps every process on one driver.
func TestMain(m *testing.M) {
	engines := []server.Engine{server.EngineAuto, server.EngineGoroutine}
	flag.Parse()
	if name := os.Getenv("SHOUT_TEST_ENGINE"); name != "" || fuzzing() {
		e, err := server.ParseEngine(cmp.Or(name, "auto"))
		if err != nil {
			fmt.Println("SHOUT_TEST_ENGINE:", err)
			os.Exit(2)
		}
		engines = []server.Engine{e}
	}
	for _, e := range engines {
		fmt.Printf("=== engine %v\n", e)
		server.SetTestEngine(e)
		if code := m.Run(); code != 0 {
			fmt.Printf("FAIL with engine %v\n", e)
			os.Exit(code)
		}
		if err := goleak.Find(); err != nil {
			fmt.Printf("goroutines leaked with engine %v: %v\n", e, err)
			os.Exit(1)
		}
	}
	os.Exit(0)
}

// fuzzing reports whether the test binary is fuzzing, as the coordinator
// (-test.fuzz) or one of its workers (-test.fuzzworker).
func fuzzing() bool {
	f, w := flag.Lookup("test.fuzz"), flag.Lookup("test.fuzzworker")
	return f != nil && f.Value.String() != "" || w != nil && w.Value.String() == "true"
}

// bound is how long any single wait in these tests may take before the
// test fails: generous, since it only matters when something is broken.
const bound = 10 * time.Second

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	return shouttest.Dial(t, "tcp", addr, bound).(*net.TCPConn)
}

func ref(s string) string { return cases.Upper(language.Und).String(s) }

// states reports each ConnState change on a channel, for tests to wait on.
func states() (func(net.Conn, server.ConnState), <-chan server.ConnState) {
	ch := make(chan server.ConnState, 1000)
	return func(_ net.Conn, s server.ConnState) { ch <- s }, ch
}

func waitState(t *testing.T, ch <-chan server.ConnState, want server.ConnState) {
	t.Helper()
	select {
	case s := <-ch:
		if s != want {
			t.Fatalf("state %v, want %v", s, want)
		}
	case <-time.After(bound):
		t.Fatalf("no %v state within %v", want, bound)
	}
}

func TestConcurrentClients(t *testing.T) {
	shouttest.CheckFDs(t)
	var log shouttest.Log
	addr := shouttest.Start(t, &server.Server{Logger: log.Logger()})
	const clients, messages = 300, 20
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", addr, bound)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			// A bound on each stall, not on the whole conversation: all
			// clients' round trips under the race detector on a busy
			// machine took longer than bound, and a fifth of the clients
			// timed out near their last message.
			sc := deadline.Steady(c, bound)
			for j := range messages {
				msg := fmt.Sprintf("client %d message %d: hello egon 哈哈哈 straße ﬁ\n", i, j)
				if _, err := io.WriteString(sc, msg); err != nil {
					errs <- err
					return
				}
				want := ref(msg)
				got := make([]byte, len(want))
				if _, err := io.ReadFull(sc, got); err != nil || string(got) != want {
					errs <- fmt.Errorf("client %d: got %q, %v; want %q", i, got, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A reply comes back at once, without a newline, and a character split
// across writes is answered when it completes.
func TestNoFramingSplitCharacter(t *testing.T) {
	addr := shouttest.Start(t, &server.Server{Logger: new(shouttest.Log).Logger()})
	c := dial(t, addr)
	steps := []struct{ send, want string }{
		{"abc", "ABC"},
		{"x\xc3", "X"}, // first byte of "é": held
		{"\xa9", "É"},
		{"\xe5\x93", "\xe5\x93"}, // first bytes of "哈": nothing in CJK changes, so not held
		{"\x88\n", "\x88\n"},
		{"\xff\x00bin", "\xff\x00BIN"},
	}
	for _, s := range steps {
		if _, err := io.WriteString(c, s.send); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(s.want))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != s.want {
			t.Fatalf("sent %q: got %q, %v; want %q", s.send, got, err, s.want)
		}
	}
}

// plainListener hands out connections that hide their file descriptor,
// as a TLS or proxy wrapper would: the server reads them with Read.
type plainListener struct{ net.Listener }

type plainConn struct{ net.Conn }

func (l plainListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return plainConn{c}, nil
}

func TestWrappedConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &server.Server{Logger: new(shouttest.Log).Logger()}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(plainListener{ln}) }()
	defer func() { srv.Close(); <-done }()
	c := dial(t, ln.Addr().String())
	io.WriteString(c, "x\xc3")
	got := make([]byte, 1)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "X" {
		t.Fatalf("got %q, %v", got, err)
	}
	io.WriteString(c, "\xa9 ok \xe2\x84") // "é", then an incomplete ⅰ
	c.CloseWrite()
	rest, err := io.ReadAll(c)
	if err != nil || string(rest) != "É OK \xe2\x84" {
		t.Fatalf("got %q, %v", rest, err)
	}
}

func TestHalfClose(t *testing.T) {
	addr := shouttest.Start(t, &server.Server{Logger: new(shouttest.Log).Logger()})
	c := dial(t, addr)
	io.WriteString(c, "abc\xc3") // ends in an incomplete character, flushed as is
	c.CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "ABC\xc3" {
		t.Fatalf("got %q, %v; want %q then EOF", got, err, "ABC\xc3")
	}
}

func TestLargeMessageStreams(t *testing.T) {
	addr := shouttest.Start(t, &server.Server{Logger: new(shouttest.Log).Logger()})
	c := dial(t, addr)
	sc := deadline.Steady(c, bound)                                  // a stall bound: 16 MiB under the race detector takes long
	msg := bytes.Repeat([]byte("hello egon 哈哈哈 straße "), 16<<20/30) // ~16 MiB, no newline
	go func() {
		sc.Write(msg)
		c.CloseWrite()
	}()
	got, err := io.ReadAll(sc)
	if err != nil {
		t.Fatal(err)
	}
	if want := cases.Upper(language.Und).Bytes(msg); !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d", len(got), len(want))
	}
}

// failingListener fails its first n Accepts as a process out of file
// descriptors does.
type failingListener struct {
	net.Listener
	n int
}

func (l *failingListener) Accept() (net.Conn, error) {
	if l.n > 0 {
		l.n--
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

func TestAcceptErrorsBackOff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var log shouttest.Log
	srv := &server.Server{Logger: log.Logger()}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(&failingListener{Listener: ln, n: 3}) }()
	defer func() {
		srv.Close()
		if err := <-done; !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	}()
	c := dial(t, ln.Addr().String()) // served once the errors pass
	io.WriteString(c, "still serving")
	got := make([]byte, 13)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "STILL SERVING" {
		t.Fatalf("got %q, %v", got, err)
	}
	out := log.String()
	for _, want := range []string{"retry_in=5ms", "retry_in=10ms", "retry_in=20ms", "too many open files"} {
		if !strings.Contains(out, want) {
			t.Errorf("log has no %s:\n%s", want, out)
		}
	}
}

func TestCloseReasons(t *testing.T) {
	tests := []struct {
		name   string
		srv    *server.Server
		client func(t *testing.T, c *net.TCPConn)
		reason string
	}{
		{"eof", &server.Server{}, func(t *testing.T, c *net.TCPConn) { c.Close() }, "reason=eof"},
		{"reset", &server.Server{}, func(t *testing.T, c *net.TCPConn) {
			c.SetLinger(0)
			c.Close()
		}, "reason=reset"},
		{"idle timeout", &server.Server{IdleTimeout: 50 * time.Millisecond}, func(t *testing.T, c *net.TCPConn) {
			if _, err := c.Read(make([]byte, 1)); err != io.EOF {
				t.Errorf("read after idle timeout: %v, want EOF", err)
			}
		}, `reason="idle timeout"`},
		{"write timeout", &server.Server{WriteTimeout: 50 * time.Millisecond}, func(t *testing.T, c *net.TCPConn) {
			// Send and never read until the server gives up on us. The
			// receive buffer stays as it is: one far smaller than
			// loopback's 64 KiB segments (4 KiB) can stall the kernel's
			// delivery of what we send, with every reply already in the
			// server's send queue, so nothing of the server's waits on a
			// write to time out.
			chunk := bytes.Repeat([]byte("x"), 64<<10)
			for range 4096 {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
			t.Error("the server never stopped reading")
		}, `reason="write timeout"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log shouttest.Log
			hook, ch := states()
			srv := tc.srv
			srv.Logger, srv.ConnState = log.Logger(), hook
			addr := shouttest.Start(t, srv)
			c := dial(t, addr)
			waitState(t, ch, server.StateNew)
			tc.client(t, c)
			waitState(t, ch, server.StateClosed)
			if !strings.Contains(log.String(), tc.reason) {
				t.Errorf("log has no %s:\n%s", tc.reason, log.String())
			}
		})
	}
}

func TestMaxConns(t *testing.T) {
	hook, ch := states()
	addr := shouttest.Start(t, &server.Server{MaxConns: 2, ConnState: hook, Logger: new(shouttest.Log).Logger()})
	a, b := dial(t, addr), dial(t, addr)
	waitState(t, ch, server.StateNew)
	waitState(t, ch, server.StateNew)
	over := dial(t, addr)
	waitState(t, ch, server.StateRejected)
	if n, err := over.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("connection over the limit: read %d, %v; want EOF", n, err)
	}
	a.Close()
	waitState(t, ch, server.StateClosed)
	c := dial(t, addr) // a place is free again
	waitState(t, ch, server.StateNew)
	for _, conn := range []*net.TCPConn{b, c} {
		io.WriteString(conn, "ok")
		got := make([]byte, 2)
		if _, err := io.ReadFull(conn, got); err != nil || string(got) != "OK" {
			t.Errorf("got %q, %v", got, err)
		}
	}
}

func TestShutdownAnswersWhatArrived(t *testing.T) {
	needLinux(t, "TCP_INFO")
	hook, ch := states()
	srv := &server.Server{ConnState: hook, Logger: new(shouttest.Log).Logger()}
	addr := shouttest.Start(t, srv)
	idle := dial(t, addr)
	busy := dial(t, addr)
	waitState(t, ch, server.StateNew)
	waitState(t, ch, server.StateNew)
	io.WriteString(busy, "sent before shutdown\n")
	waitAcked(t, busy)
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got, err := io.ReadAll(busy); err != nil || string(got) != "SENT BEFORE SHUTDOWN\n" {
		t.Errorf("busy client: got %q, %v", got, err)
	}
	if got, err := io.ReadAll(idle); err != nil || len(got) != 0 {
		t.Errorf("idle client: got %q, %v; want EOF", got, err)
	}
	if _, err := net.DialTimeout("tcp", addr, bound); err == nil {
		t.Error("still accepting after Shutdown")
	}
}

// A client slow to read its replies when the server stops still gets the
// reply to every byte that had reached the server: the wait for its
// input is timed from when the server can read again, not from the stop.
func TestShutdownWaitsForASlowReader(t *testing.T) {
	needLinux(t, "TCP_INFO")
	srv := &server.Server{Linger: 50 * time.Millisecond, Logger: new(shouttest.Log).Logger()}
	addr := shouttest.Start(t, srv)
	c := dial(t, addr)
	// Fill both directions: the server is stuck writing, input queued.
	chunk := bytes.Repeat([]byte("y"), 64<<10)
	c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	for range 4096 {
		if _, err := c.Write(chunk); err != nil {
			break
		}
	}
	acked, err := bytesAcked(c)
	if err != nil {
		t.Fatal(err)
	}
	stopped := shutdown(t, srv)
	time.Sleep(10 * srv.Linger) // the slow reader (what is tested, not a wait for an event)
	c.SetDeadline(time.Now().Add(bound))
	got, err := io.Copy(io.Discard, c)
	if err != nil || got < acked {
		t.Errorf("got %d reply bytes, then %v; %d had reached the server before the stop", got, err, acked)
	}
	shutdownReturned(t, stopped)
}

// stuckWriting serves srv to a client with a small receive buffer, over
// a listener whose connections have a small send buffer, that has sent
// more than the buffers between them hold and reads nothing. It returns
// the client once the server has read from it: the server is stuck
// writing the reply, with input still queued behind it.
//
// All the input is in the server's socket before the server reads any of
// it, so that the server's being stuck never rests on the client's
// sending. A client that wrote for 200 ms instead, its receive buffer
// shrunk after connecting, went on sending while its own receive queue
// overflowed; on Linux 6.18 such a client takes no window update until
// it reads, so a server late a moment at the first read (20 ms, forced)
// closed its window for good in 2 runs of 10, and was left with all it
// got answered, the replies in its socket and nothing to write:
// TestShutdownDropsClientTakingNoReply then passed the bug it is for.
func stuckWriting(t *testing.T, srv *server.Server) net.Conn {
	t.Helper()
	lc := net.ListenConfig{Control: bufControl(syscall.SO_SNDBUF, 4<<10)} // the connections inherit it
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := net.Dialer{Timeout: bound, Control: bufControl(syscall.SO_RCVBUF, 4<<10)}
	c, err := d.Dial("tcp", ln.Addr().String()) // queued until the server accepts it
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(bound))
	msg := bytes.Repeat([]byte("y"), 48<<10) // within the server's receive window, and far more than the replies' way holds
	if _, err := c.Write(msg); err != nil {
		ln.Close()
		t.Fatal(err)
	}
	inServer(t, c.(*net.TCPConn))
	obs := &readSignal{read: make(chan struct{}, 1)}
	srv.Observer = obs
	serveOn(t, srv, ln)
	select {
	case <-obs.read:
	case <-time.After(bound):
		t.Fatalf("the server read nothing within %v", bound)
	}
	return c
}

// bufControl is a Control for a Dialer or ListenConfig that sets the
// socket's buffer opt (SO_SNDBUF or SO_RCVBUF) to n bytes.
func bufControl(opt, n int) func(_, _ string, rc syscall.RawConn) error {
	return func(_, _ string, rc syscall.RawConn) error {
		var err error
		if cerr := rc.Control(func(fd uintptr) { err = setSockBuf(fd, opt, n) }); cerr != nil {
			return cerr
		}
		return err
	}
}

func TestShutdownTimeoutClosesSlowReader(t *testing.T) {
	hook, ch := states()
	srv := &server.Server{ConnState: hook, Logger: new(shouttest.Log).Logger()}
	stuckWriting(t, srv)
	waitState(t, ch, server.StateNew)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want deadline exceeded", err)
	}
	waitState(t, ch, server.StateClosed)
}

// A client that takes none of its replies is dropped at WriteTimeout
// during a stop as at any other time. The stop's replies to what it had
// sent waited for good once the server was stopping, so a Shutdown whose
// context has no deadline (shout serve --shutdown-timeout 0) never
// returned, whatever WriteTimeout said.
func TestShutdownDropsClientTakingNoReply(t *testing.T) {
	hook, ch := states()
	srv := &server.Server{WriteTimeout: time.Second, Linger: 50 * time.Millisecond, ConnState: hook, Logger: new(shouttest.Log).Logger()}
	stuckWriting(t, srv) // the server stuck writing, with input queued: well within WriteTimeout, which has not fired yet
	waitState(t, ch, server.StateNew)
	// No deadline: it returns only if it gives the client up (WriteTimeout).
	shutdownReturned(t, shutdownCtx(context.Background(), srv))
	waitState(t, ch, server.StateClosed)
}

// Restarting at once on the same port works although the old server's
// connection is in TIME_WAIT (SO_REUSEADDR).
func TestRestartSamePort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	hook, ch := states()
	srv := &server.Server{ConnState: hook, Logger: new(shouttest.Log).Logger()}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	c := dial(t, addr)
	waitState(t, ch, server.StateNew)
	if err := srv.Shutdown(context.Background()); err != nil { // the server closes first: TIME_WAIT is its
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, server.ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	io.ReadAll(c)
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("restart on %s: %v", addr, err)
	}
	srv2 := &server.Server{Logger: new(shouttest.Log).Logger()}
	go srv2.Serve(ln2)
	defer srv2.Close()
	c2 := dial(t, addr)
	io.WriteString(c2, "again")
	got := make([]byte, 5)
	if _, err := io.ReadFull(c2, got); err != nil || string(got) != "AGAIN" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestUDP(t *testing.T) {
	addr := shouttest.Start(t, &server.Server{Logger: new(shouttest.Log).Logger()})
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	u := &udpClient{c: c}
	exchange := func(msg []byte) []byte {
		t.Helper()
		got, err := u.exchange(msg)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := exchange([]byte("hello egon 哈哈哈")); string(got) != "HELLO EGON 哈哈哈" {
		t.Errorf("got %q", got)
	}
	big := bytes.Repeat([]byte("abcdefg"), 65507/7+1)[:65507] // the largest IPv4 UDP payload
	if got := exchange(big); !bytes.Equal(got, bytes.ToUpper(big)) {
		t.Errorf("65,507-byte datagram: got %d bytes back", len(got))
	}
	if got := exchange([]byte("ends cut \xc3")); string(got) != "ENDS CUT \xc3" {
		t.Errorf("got %q", got)
	}
}

// On a wildcard socket that takes IPv4 too ([::], or 0.0.0.0 in Go), a
// datagram from an IPv4 client is logged with its IPv4 address, as a TCP
// connection's is, not the IPv4-mapped IPv6 one the socket reports.
func TestUDPLogUnmapped(t *testing.T) {
	pc, err := net.ListenPacket("udp", "[::]:0")
	if err != nil {
		t.Skip("no dual-stack socket here:", err)
	}
	var log shouttest.Log
	shouttest.ServePacket(t, &server.Server{Logger: log.Logger()}, pc)
	port := strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)
	c, err := net.Dial("udp4", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := udpExchange(t, c, []byte("hello")); string(got) != "HELLO" {
		t.Fatalf("got %q", got)
	}
	if want := "remote=" + c.LocalAddr().String() + " "; !log.WaitFor(want, bound) {
		t.Fatalf("no %q in the log:\n%s", want, log.String())
	}
}

func TestUDPManyClients(t *testing.T) {
	addr := shouttest.Start(t, &server.Server{Logger: new(shouttest.Log).Logger()})
	// Each client's first error comes back to the test's goroutine, which
	// alone may end the test.
	errs := make(chan error, 64)
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			c, err := net.Dial("udp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			u := &udpClient{c: c}
			for j := range 20 {
				msg := fmt.Sprintf("udp client %d datagram %d straße", i, j)
				got, err := u.exchange([]byte(msg))
				if err != nil {
					errs <- fmt.Errorf("client %d: %w", i, err)
					return
				}
				if string(got) != ref(msg) {
					errs <- fmt.Errorf("client %d: got %q, want %q", i, got, ref(msg))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A mode that expands past the largest datagram cannot reply; it says so.
func TestUDPReplyTooLarge(t *testing.T) {
	var log shouttest.Log
	addr := shouttest.Start(t, &server.Server{Logger: log.Logger()})
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	u := &udpClient{c: c}
	exchange := func(msg []byte) string {
		t.Helper()
		got, err := u.exchange(msg)
		if err != nil {
			t.Fatal(err)
		}
		return string(got)
	}
	if got := exchange(bytes.Repeat([]byte("ß"), 30000)); len(got) != 60000 { // 60,000 bytes in, 60,000 out ("SS"): fits
		t.Fatalf("read %d bytes, want 60,000", len(got))
	}
	if _, err := c.Write(bytes.Repeat([]byte("\u0390"), 20000)); err != nil { // 40,000 bytes in, 120,000 out: too large
		t.Fatal(err)
	}
	if got := exchange([]byte("next")); got != "NEXT" {
		t.Fatalf("after a reply too large: %q", got)
	}
	if !log.WaitFor("reply not sent", bound) {
		t.Errorf("no warning logged:\n%s", log.String())
	}
	// A flood of them is logged at most once a second.
	for range 100 {
		c.Write(bytes.Repeat([]byte("\u0390"), 20000))
	}
	if got := exchange([]byte("last")); got != "LAST" {
		t.Fatalf("after the flood: %q", got)
	}
	if n := strings.Count(log.String(), "reply not sent"); n > 5 {
		t.Errorf("%d warnings for 101 replies not sent: not rate-limited", n)
	}
}

func TestModes(t *testing.T) {
	for _, tc := range []struct {
		mode upper.Mode
		lang string
		want string
	}{
		{upper.Upper, "", "STRASSE ISTANBUL"},
		{upper.Upper, "tr", "STRASSE İSTANBUL"},
		{upper.ASCII, "", "STRAßE ISTANBUL"},
		{upper.Echo, "", "straße istanbul"},
	} {
		tr, err := upper.New(tc.mode, tc.lang)
		if err != nil {
			t.Fatal(err)
		}
		addr := shouttest.Start(t, &server.Server{Transformer: tr, Logger: new(shouttest.Log).Logger()})
		c := dial(t, addr)
		io.WriteString(c, "straße istanbul")
		got := make([]byte, len(tc.want))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != tc.want {
			t.Errorf("%v %s: got %q, %v; want %q", tc.mode, tc.lang, got, err, tc.want)
		}
		u, _ := net.Dial("udp", addr)
		u.SetDeadline(time.Now().Add(bound))
		if got := udpExchange(t, u, []byte("straße istanbul")); string(got) != tc.want {
			t.Errorf("udp %v %s: got %q; want %q", tc.mode, tc.lang, got, tc.want)
		}
		u.Close()
	}
}

// What a client sends reaches the log escaped, never as raw control
// characters, in either format, and stays escaped for a viewer that
// decodes the JSON: C0 and C1 controls, DEL, bidi overrides, zero-width
// and line-separator characters, and bytes that are not UTF-8.
func TestLogEscapesClientBytes(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		for _, evil := range []string{
			"\x1b[31mred\x07\r\x00\xff line\nnext",
			"red\x7f",              // DEL alone: the text handler does not quote it
			"red \u009b31m \u0085", // C1: CSI, NEL
			"red\u202egnp.exe",     // right-to-left override
			"red\u200b\u2066\u2028\ufeff",
		} {
			t.Run(format+"/"+strconv.QuoteToASCII(evil), func(t *testing.T) {
				var log shouttest.Log
				logger := log.Logger()
				if format == "json" {
					logger = slogJSON(&log)
				}
				hook, ch := states()
				addr := shouttest.Start(t, &server.Server{Logger: logger, ConnState: hook})
				c := dial(t, addr)
				io.WriteString(c, evil)
				c.CloseWrite()
				io.ReadAll(c)
				waitState(t, ch, server.StateNew)
				waitState(t, ch, server.StateClosed)
				out := log.String()
				for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
					if r, ok := unsafeRune(line); ok {
						t.Fatalf("raw %U in log line %q", r, line)
					}
					if format != "json" {
						continue
					}
					var rec map[string]any
					if err := json.Unmarshal([]byte(line), &rec); err != nil {
						t.Fatalf("not JSON: %s", line)
					}
					if data, _ := rec["data"].(string); data != "" {
						if r, ok := unsafeRune(data); ok {
							t.Fatalf("decoded data holds raw %U: %q", r, data)
						}
					}
				}
				if !strings.Contains(out, "red") {
					t.Errorf("message not logged:\n%s", out)
				}
			})
		}
	}
}

// unsafeRune finds a character that can drive a terminal or hide text.
func unsafeRune(s string) (rune, bool) {
	for i, r := range s {
		switch {
		case r == utf8.RuneError && strings.HasPrefix(s[i:], "\xff"):
			return r, true
		case r < 0x20 || r >= 0x7f && r <= 0x9f,
			r >= 0x200b && r <= 0x200f, r >= 0x202a && r <= 0x202e,
			r >= 0x2066 && r <= 0x2069, r == 0x2028, r == 0x2029, r == 0xfeff:
			return r, true
		}
	}
	return 0, false
}
