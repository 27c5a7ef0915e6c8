package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"shout/internal/shouttest"
	"shout/server"
	"shout/upper"
)

// serveTCP serves srv on a TCP listener of its own on 127.0.0.1, so that
// only its lines are in the trace, until the test ends.
func serveTCP(t *testing.T, srv *server.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	shouttest.Serve(t, srv, ln)
	return ln.Addr().String()
}

// scriptedSession is what the issue asks the trace to be checked on:
// connect, two lines in one write, one character (ß) split across two
// writes, half-close. Each write waits for the reply to the one before,
// so the server reads each write on its own. It returns every reply and
// the client's own address.
func scriptedSession(t *testing.T, addr string) (string, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, bound)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(bound))
	var got bytes.Buffer
	for _, step := range []struct{ send, reply string }{
		{"one\ntwo\n", "ONE\nTWO\n"},
		{"stra\xc3", "STRA"}, // ß is c3 9f; its uppercase, SS, waits for the 9f
		{"\x9fe\n", "SSE\n"},
	} {
		if _, err := io.WriteString(c, step.send); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(step.reply))
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatalf("after %q: %v", step.send, err)
		}
		got.Write(buf)
	}
	c.(*net.TCPConn).CloseWrite()
	rest, err := io.ReadAll(c)
	if err != nil || len(rest) != 0 {
		t.Errorf("after the half-close: read %q, %v; want end of file", rest, err)
	}
	got.Write(rest)
	return got.String(), c.LocalAddr().String()
}

// matchLines checks got, line by line, against want, whose lines are
// literal but for {fd} (a number), {n} (a number) and {any} (anything).
func matchLines(t testing.TB, got string, want []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	for i, w := range want {
		re := regexp.QuoteMeta(w)
		re = strings.NewReplacer(`\{fd\}`, `\d+`, `\{n\}`, `\d+`, `\{any\}`, `.*`).Replace(re)
		if i >= len(lines) {
			t.Errorf("line %d missing; want %s", i+1, w)
			continue
		}
		if !regexp.MustCompile("^" + re + "$").MatchString(lines[i]) {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, lines[i], w)
		}
	}
	if len(lines) > len(want) {
		t.Errorf("%d more lines than wanted:\n%s", len(lines)-len(want), strings.Join(lines[len(want):], "\n"))
	}
	if t.Failed() {
		t.Logf("whole trace:\n%s", got)
	}
}

// fds is every fd= a trace names, in order, without repeats.
func fds(trace string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^trace fd=(\d+) `).FindAllStringSubmatch(trace, -1) {
		if len(out) == 0 || out[len(out)-1] != m[1] {
			out = append(out, m[1])
		}
	}
	return out
}

func TestTraceStream(t *testing.T) {
	var log shouttest.Log
	srv := &server.Server{Logger: discard(), Observer: server.NewTraceObserver(&log)}
	addr := serveTCP(t, srv)
	got, client := scriptedSession(t, addr)
	if want := "ONE\nTWO\nSTRASSE\n"; got != want {
		t.Errorf("replies %q, want %q", got, want)
	}
	if !log.WaitFor("close()", bound) {
		t.Fatalf("no close in the trace:\n%s", log.String())
	}
	trace := log.String()
	matchLines(t, trace, []string{
		`trace fd={fd} socket(AF_INET, SOCK_STREAM) → fd {fd}: the tcp socket to listen on`,
		`trace fd={fd} setsockopt(SOL_SOCKET, SO_REUSEADDR, 1): a restart can bind this address at once, while old connections wait out TIME_WAIT`,
		`trace fd={fd} bind(` + addr + `)`,
		`trace fd={fd} listen({n}): up to {n} connections wait for accept() (the backlog: net.core.somaxconn, which Go passes; the lesson asks for 5)`,
		`trace fd={fd} accept() → fd {fd}, client ` + client + `: a new socket for this client; fd {fd} goes on listening`,
		`trace fd={fd} recv(1024) → 8 bytes "one\ntwo\n": 2 lines in one read: TCP is a byte stream, not messages`,
		`trace fd={fd} send(8) → 8 bytes "ONE\nTWO\n"`,
		`trace fd={fd} recv(1024) → 5 bytes "stra\xc3": ends inside a character, 1 of its 2 bytes: a character split across reads`,
		`trace fd={fd} send(4) → 4 bytes "STRA"`,
		`trace fd={fd} holds back 1 byte "\xc3": a character split across reads: waiting for its last byte`,
		`trace fd={fd} recv(1023) → 3 bytes "\x9fe\n": its first byte completes 'ß', the character split across reads; the end of a line begun in an earlier read: one line over 2 reads: TCP is a byte stream, not messages`,
		`trace fd={fd} send(4) → 4 bytes "SSE\n"`,
		`trace fd={fd} recv(1024) → 0 bytes: end of file: the client will send no more (it closed, or half-closed with shutdown(SHUT_WR))`,
		`trace fd={fd} close(): eof, the client said it was done and had every reply; 16 bytes in, 16 out, in {any}`,
	})
	// The listener's lines and the accept name the listener; every line
	// after names the connection's socket.
	if f := fds(trace); len(f) != 2 || f[0] == f[1] {
		t.Errorf("descriptors in order %v, want the listener's then the connection's", f)
	}
	if !strings.Contains(trace, "accept() → fd "+fds(trace)[len(fds(trace))-1]+",") {
		t.Errorf("accept does not name the descriptor the connection's lines use")
	}
}

// Tracing never changes a reply: the scripted session gets the same
// bytes back from a traced server and an untraced one.
func TestTraceChangesNoReply(t *testing.T) {
	var log shouttest.Log
	traced, _ := scriptedSession(t, serveTCP(t, &server.Server{Logger: discard(), Observer: server.NewTraceObserver(&log)}))
	plain, _ := scriptedSession(t, serveTCP(t, &server.Server{Logger: discard()}))
	if traced != plain {
		t.Errorf("traced server replied %q, untraced %q", traced, plain)
	}
	for _, msg := range []string{"hello egon 哈哈哈", strings.Repeat("ﬁ ŉ ΐ \x1b\xff", 300)} {
		a := exchangeUDP(t, shouttest.Start(t, &server.Server{Logger: discard(), Observer: server.NewTraceObserver(&log)}), msg)
		b := exchangeUDP(t, shouttest.Start(t, &server.Server{Logger: discard()}), msg)
		if a != b {
			t.Errorf("udp: traced server replied %q, untraced %q", a, b)
		}
	}
}

// exchangeUDP sends msg to addr from a new UDP socket and returns the
// reply (see exchangeOn).
func exchangeUDP(t *testing.T, addr, msg string) string {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return exchangeOn(t, c, msg)
}

// A datagram the kernel dropped on the way (counted) runs a case again:
// sent again, it would be in the trace twice. One the server lost fails
// it.
func TestTraceDatagrams(t *testing.T) {
	t.Run("answered", func(t *testing.T) {
		server.AgainOnDrops(t, func(t testing.TB) {
			var log shouttest.Log
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			shouttest.ServePacket(t, &server.Server{Logger: discard(), Observer: server.NewTraceObserver(&log)}, pc)
			addr := pc.LocalAddr().String()
			server.WatchDrops(t, port(pc.LocalAddr()))
			c, err := net.Dial("udp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			client := c.LocalAddr().String()
			server.WatchDrops(t, port(c.LocalAddr()))
			big := strings.Repeat("y", 1500)
			// An empty datagram is a message like any other: the trace says
			// so, where a learner of TCP reads 0 bytes as the end of file.
			for i, msg := range []string{"straße", "", big} {
				if got := exchangeOn(t, c, msg); got != strings.ToUpper(strings.ReplaceAll(msg, "ß", "ss")) {
					t.Errorf("reply %q", got)
				}
				// The worker traces its sendto once sent: wait for it, so
				// that the next datagram's lines, maybe another worker's,
				// come after.
				if !log.WaitFor(fmt.Sprintf("sendto(%s, %d)", client, len(strings.ReplaceAll(msg, "ß", "ss"))), bound) {
					t.Fatalf("no sendto %d in the trace:\n%s", i+1, log.String())
				}
			}
			matchLines(t, log.String(), []string{
				`trace fd={fd} socket(AF_INET, SOCK_DGRAM) → fd {fd}: a udp socket`,
				`trace fd={fd} bind(` + addr + `): no listen, no accept: each recvfrom says who sent the datagram`,
				`trace fd={fd} recvfrom(65535) → 7 bytes from ` + client + ` "straße"`,
				`trace fd={fd} sendto(` + client + `, 7) → 7 bytes "STRASSE"`,
				`trace fd={fd} recvfrom(65535) → 0 bytes from ` + client + ` "": an empty datagram, a message all the same (over TCP, recv → 0 bytes is the end of file)`,
				`trace fd={fd} sendto(` + client + `, 0) → 0 bytes ""`,
				`trace fd={fd} recvfrom(65535) → 1500 bytes from ` + client + ` "` + big[:64] + `"… (1436 more): more than the lesson's recvfrom(1024) takes: it would get the first 1024 bytes, and the rest would be lost`,
				`trace fd={fd} sendto(` + client + `, 1500) → 1500 bytes "` + strings.ToUpper(big[:64]) + `"… (1436 more)`,
			})
			if f := fds(log.String()); len(f) != 1 {
				t.Errorf("descriptors %v, want one", f)
			}
		})
	})
	t.Run("dropped", func(t *testing.T) {
		server.AgainOnDrops(t, func(t testing.TB) {
			var log shouttest.Log
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			// A budget of 1 byte a second: no reply fits.
			shouttest.ServePacket(t, &server.Server{Logger: discard(), SourceRate: 1, Observer: server.NewTraceObserver(&log)}, pc)
			c, err := net.Dial("udp", pc.LocalAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			server.WatchDrops(t, port(pc.LocalAddr()))
			server.WatchDrops(t, port(c.LocalAddr()))
			io.WriteString(c, "hello")
			if !log.WaitFor("no sendto", bound) {
				t.Fatalf("no drop in the trace:\n%s", log.String())
			}
			if want := "no sendto: over budget, its source spent its bytes for now (SourceRate)\n"; !strings.HasSuffix(log.String(), want) {
				t.Errorf("trace ends\n%s\nwant it to end %q", log.String(), want)
			}
		})
	})
}

// exchangeOn is udpExchange, in strings.
func exchangeOn(t testing.TB, c net.Conn, msg string) string {
	t.Helper()
	return string(udpExchange(t, c, []byte(msg)))
}

// A client that resets the connection: the trace says reset, not end of
// file.
func TestTraceReset(t *testing.T) {
	var log shouttest.Log
	addr := serveTCP(t, &server.Server{Logger: discard(), Observer: server.NewTraceObserver(&log)})
	c, err := net.DialTimeout("tcp", addr, bound)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(bound))
	io.WriteString(c, "bye\n")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).SetLinger(0) // close sends a reset
	c.Close()
	if !log.WaitFor("close()", bound) {
		t.Fatalf("no close in the trace:\n%s", log.String())
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	last2 := lines[len(lines)-2:]
	if !strings.Contains(last2[0], "recv(1024) → connection reset (RST)") || !strings.Contains(last2[1], "close(): reset by the client; 4 bytes in, 4 out") {
		t.Errorf("trace ends\n%s\nwant a reset, then a close for it", strings.Join(last2, "\n"))
	}
}

// Stopping: the trace shows the half-close a graceful stop makes.
func TestTraceShutdownHalfCloses(t *testing.T) {
	var log shouttest.Log
	srv := &server.Server{Logger: discard(), Observer: server.NewTraceObserver(&log)}
	addr := serveTCP(t, srv)
	c, err := net.DialTimeout("tcp", addr, bound)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(bound))
	io.WriteString(c, "hi\n")
	buf := make([]byte, 3)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	stopped := shutdownCtx(t.Context(), srv)
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 { // the server's half-close
		t.Fatalf("read %q, %v; want end of file", rest, err)
	}
	c.Close() // our end of file: the server closes
	shutdownReturned(t, stopped)
	trace := log.String()
	for _, want := range []string{
		"shutdown(SHUT_WR): half-close: the client reads end of file after the last reply; reading on until its own end of file, so that close() sends no reset\n",
		"recv → 0 bytes: end of file: the client is done too\n",
		"close(): shutdown, the server is stopping; 3 bytes in, 3 out",
	} {
		if !strings.Contains(trace, want) {
			t.Errorf("trace lacks %q:\n%s", want, trace)
		}
	}
}

// A mapping that looks ahead (Greek drops accents) holds a whole letter
// back, not a piece of one: the trace says which.
func TestTraceLookAhead(t *testing.T) {
	el, err := upper.New(upper.Upper, "el")
	if err != nil {
		t.Fatal(err)
	}
	var log shouttest.Log
	addr := serveTCP(t, &server.Server{Logger: discard(), Transformer: el, Observer: server.NewTraceObserver(&log)})
	c, err := net.DialTimeout("tcp", addr, bound)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(bound))
	io.WriteString(c, "α")
	if !log.WaitFor("holds back", bound) {
		t.Fatalf("nothing held:\n%s", log.String())
	}
	io.WriteString(c, "\n")
	buf := make([]byte, len("Α\n"))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "Α\n" {
		t.Fatalf("got %q, %v", buf, err)
	}
	if want := `holds back 2 bytes "α": the mapping looks ahead: the last letter waits for the next character, which may change its uppercase`; !strings.Contains(log.String(), want) {
		t.Errorf("trace lacks %q:\n%s", want, log.String())
	}
}

// A connection over MaxConns: its accept, the half-close that turns it
// away, and a close that says why.
func TestTraceRejected(t *testing.T) {
	var log shouttest.Log
	addr := serveTCP(t, &server.Server{Logger: discard(), MaxConns: 1, Linger: -1, Observer: server.NewTraceObserver(&log)})
	first, err := net.DialTimeout("tcp", addr, bound)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if got := exchangeOn(t, first, "in\n"); got != "IN\n" {
		t.Fatalf("first connection: %q", got)
	}
	// The client can read the reply before the observer has traced its
	// send: wait for that line, so that the rejection's are the last.
	if !log.WaitFor(`send(3) → 3 bytes "IN\n"`, bound) {
		t.Fatalf("the first connection's send is not in the trace:\n%s", log.String())
	}
	second, err := net.DialTimeout("tcp", addr, bound)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	second.SetDeadline(time.Now().Add(bound))
	if rest, err := io.ReadAll(second); err != nil || len(rest) != 0 {
		t.Errorf("second connection read %q, %v; want end of file", rest, err)
	}
	if !log.WaitFor("close(): rejected", bound) {
		t.Fatalf("no rejection in the trace:\n%s", log.String())
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	matchLines(t, strings.Join(lines[len(lines)-3:], "\n"), []string{
		`trace fd={fd} accept() → fd {fd}, client ` + second.LocalAddr().String() + `: a new socket for this client; fd {fd} goes on listening`,
		`trace fd={fd} shutdown(SHUT_WR): half-close: the client reads end of file after the last reply; reading on until its own end of file, so that close() sends no reset`,
		`trace fd={fd} close(): rejected, server: connection limit reached (MaxConns); 0 bytes in, 0 out, in {any}`,
	})
}

// heldAccept is a listener whose Accept, once the socket's accept has
// returned a connection, tells accepted and waits for release before it
// returns it: a stop can come in between.
type heldAccept struct {
	net.Listener
	accepted, release chan struct{}
}

func (l heldAccept) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		close(l.accepted)
		<-l.release
	}
	return c, err
}

// stopMark is a StopObserver that marks when the server stopped.
type stopMark struct {
	recorder
	stopped atomic.Bool
}

func (m *stopMark) ServerStopped() { m.stopped.Store(true) }

// afterStop is the trace's writer: it keeps every line, and those written
// once mark said the server had stopped.
type afterStop struct {
	shouttest.Log
	mark *stopMark
	late atomic.Int64
}

func (w *afterStop) Write(p []byte) (int, error) {
	if w.mark.stopped.Load() {
		w.late.Add(1)
	}
	return w.Log.Write(p)
}

// A connection accepted as Shutdown begins, too late to be served, is not
// traced as accepted with no close, after the server has told its
// observers that it stopped.
func TestTraceAcceptedAsStopBegins(t *testing.T) {
	mark := &stopMark{}
	w := &afterStop{mark: mark}
	srv := &server.Server{Logger: discard(), Linger: -1, Observer: server.Observers(server.NewTraceObserver(w), mark)}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := heldAccept{Listener: inner, accepted: make(chan struct{}), release: make(chan struct{})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	c, err := net.DialTimeout("tcp", inner.Addr().String(), bound)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-ln.accepted:
	case <-time.After(bound):
		t.Fatal("not accepted")
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	close(ln.release)
	select {
	case err := <-served:
		if !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(bound):
		t.Fatal("Serve did not return")
	}
	trace := w.String()
	if n := w.late.Load(); n > 0 {
		t.Errorf("%d trace writes after the server stopped", n)
	}
	if a, cl := strings.Count(trace, "accept() →"), strings.Count(trace, "close():"); a != cl {
		t.Errorf("%d accepts traced, %d closes", a, cl)
	}
	if t.Failed() {
		t.Logf("trace:\n%s", trace)
	}
}

// A stop that completes while Serve is starting (its listener tracked,
// not yet traced) is the last thing the trace tells: the listener was
// traced after ServerStopped, as if served after the stop. (A listener
// Serve does not drain: a stop waits for the Serve of one it drains.)
func TestTraceListenerNotAfterStop(t *testing.T) {
	mark := &stopMark{}
	w := &afterStop{mark: mark}
	srv := &server.Server{Logger: discard(), Observer: server.Observers(server.NewTraceObserver(w), mark)}
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := struct{ net.Listener }{tl}
	held, release := make(chan struct{}), make(chan struct{})
	server.HoldServe(func() { close(held); <-release })
	t.Cleanup(func() { server.HoldServe(nil) })
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case <-held:
	case <-time.After(bound):
		close(release)
		t.Fatal("Serve did not start")
	}
	err = srv.Shutdown(context.Background())
	close(release)
	if err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case err := <-served:
		if !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("Serve: %v, want %v", err, server.ErrServerClosed)
		}
	case <-time.After(bound):
		t.Fatal("Serve did not return")
	}
	if n := w.late.Load(); n > 0 {
		t.Errorf("%d trace writes after the server stopped:\n%s", n, w.String())
	}
}

// A net.Listener of the caller's may hand Serve connections with no
// remote address (RemoteAddr nil): the trace's accept line took its text,
// and the server died of a nil dereference at its first client. (Found
// in review, as the log's open line had with no local address.)
func TestTraceAcceptWithoutRemoteAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var log shouttest.Log
	shouttest.Serve(t, &server.Server{Logger: discard(), Observer: server.NewTraceObserver(&log)}, noRemoteListener{ln})
	c := shouttest.Dial(t, "tcp", ln.Addr().String(), bound)
	if _, err := io.WriteString(c, "hi\n"); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 3)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "HI\n" {
		t.Fatalf("reply %q, %v; want %q", got, err, "HI\n")
	}
	// The accept line comes before the connection is served.
	if trace := log.String(); !regexp.MustCompile(`(?m)^trace fd=\S+ accept\(\) → fd \S+, a client without an address: a new socket`).MatchString(trace) {
		t.Errorf("no accept line for a client without an address:\n%s", trace)
	}
}

// noRemoteListener's connections have no remote address.
type noRemoteListener struct{ net.Listener }

type noRemoteConn struct{ net.Conn }

func (noRemoteConn) RemoteAddr() net.Addr { return nil }

func (l noRemoteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if c != nil {
		c = noRemoteConn{c}
	}
	return c, err
}
