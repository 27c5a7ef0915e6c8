package client_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"shout/client"
	"shout/internal/shouttest"
	"shout/server"
)

// matchTrace checks got line by line against want, whose lines are
// literal but for {fd}, a number.
func matchTrace(t *testing.T, got string, want []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	for i, w := range want {
		re := strings.ReplaceAll(regexp.QuoteMeta(w), `\{fd\}`, `\d+`)
		if i >= len(lines) || !regexp.MustCompile("^"+re+"$").MatchString(lines[i]) {
			g := "(none)"
			if i < len(lines) {
				g = lines[i]
			}
			t.Errorf("line %d:\n got %s\nwant %s", i+1, g, w)
		}
	}
	if len(lines) > len(want) {
		t.Errorf("%d more lines than wanted: %q", len(lines)-len(want), lines[len(want):])
	}
	if t.Failed() {
		t.Logf("whole trace:\n%s", got)
	}
}

// The client's side of the scripted session: connect, two lines in one
// write, ß split across two writes, half-close.
func TestTraceStream(t *testing.T) {
	addr := startShout(t)
	var log shouttest.Log
	raw := dial(t, "tcp", addr)
	local := raw.LocalAddr().String()
	c := client.Trace(raw, &log)
	c.SetDeadline(time.Now().Add(bound))
	var got bytes.Buffer
	for _, step := range []struct{ send, reply string }{
		{"one\ntwo\n", "ONE\nTWO\n"},
		{"stra\xc3", "STRA"},
		{"\x9fe\n", "SSE\n"},
	} {
		io.WriteString(c, step.send)
		buf := make([]byte, len(step.reply))
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatalf("after %q: %v", step.send, err)
		}
		got.Write(buf)
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
		t.Errorf("after the half-close: %q, %v; want end of file", rest, err)
	}
	c.Close()
	if got.String() != "ONE\nTWO\nSTRASSE\n" {
		t.Errorf("replies %q", got.String())
	}
	matchTrace(t, log.String(), []string{
		`trace fd={fd} connect(` + addr + `) → connected from ` + local + `: the kernel picked the port and made the connection; it waits in the server's backlog until accept() takes it`,
		`trace fd={fd} send(8) "one\ntwo\n"`,
		`trace fd={fd} recv(8) → 8 bytes "ONE\nTWO\n"`,
		`trace fd={fd} send(5) "stra\xc3"`,
		`trace fd={fd} recv(4) → 4 bytes "STRA"`,
		`trace fd={fd} send(3) "\x9fe\n"`,
		`trace fd={fd} recv(4) → 4 bytes "SSE\n"`,
		`trace fd={fd} shutdown(SHUT_WR): half-close: the server reads end of file; its replies can still come`,
		`trace fd={fd} recv(512) → 0 bytes: end of file: the server closed its side`,
		`trace fd={fd} close()`,
	})
}

// Over UDP: a datagram the server drops, the timeout, the retry, the reply.
func TestTraceDatagramRetry(t *testing.T) {
	timeout := handTimeouts(t) // the retry's wait must not time out too
	addr := udpServer(t, func(n int) bool {
		if n == 0 {
			timeout()
			return true
		}
		return false
	})
	var log shouttest.Log
	raw := dial(t, "udp", addr)
	local := raw.LocalAddr().String()
	c := client.Trace(raw, &log)
	var out bytes.Buffer
	redial := func() (net.Conn, error) { return client.Trace(dial(t, "udp", addr), &log), nil } // one line: never called
	res, err := client.Datagrams(c, redial, strings.NewReader("hello\n"), &out, io.Discard, bound, 2)
	c.Close()
	if err != nil || res.Answered != 1 || out.String() != "HELLO\n" {
		t.Fatalf("%+v, %q, %v", res, out.String(), err)
	}
	matchTrace(t, log.String(), []string{
		`trace fd={fd} connect(` + addr + `) from ` + local + `: UDP's connect sends nothing; it fixes where each sendto goes and whose datagrams recvfrom takes`,
		`trace fd={fd} sendto(` + addr + `, 5) "hello"`,
		`trace fd={fd} recvfrom(131072) → no reply within 10s: timed out; UDP does not resend, so shout does`,
		`trace fd={fd} sendto(` + addr + `, 5) again, retry 1 "hello"`,
		`trace fd={fd} recvfrom(131072) → 5 bytes "HELLO"`,
		`trace fd={fd} close()`,
	})
}

// The client's lines are marked as the server's are.
func TestTracePrefix(t *testing.T) {
	if client.TracePrefix != server.TracePrefix {
		t.Errorf("client.TracePrefix %q, server.TracePrefix %q", client.TracePrefix, server.TracePrefix)
	}
	var c net.Conn = client.Trace(dial(t, "tcp", startShout(t)), io.Discard)
	c.Close()
}

// heldShut is a connection whose half-close returns only once the reader
// has seen the end of file it causes: as when the caller is descheduled
// right after the FIN goes.
type heldShut struct {
	*net.TCPConn
	read <-chan struct{}
}

func (c heldShut) CloseWrite() error {
	err := c.TCPConn.CloseWrite()
	select {
	case <-c.read:
	case <-time.After(bound):
	}
	return err
}

// The client's half-close is traced before the server's end of file that
// it causes. It was traced after the call returned, and the reader had
// often traced the end of file by then: a learner read it as the server
// closing first.
func TestTraceHalfCloseBeforeItsAnswer(t *testing.T) {
	raw := dial(t, "tcp", startShout(t))
	read := make(chan struct{})
	var log shouttest.Log
	c := client.Trace(heldShut{raw.(*net.TCPConn), read}, &log)
	c.SetDeadline(time.Now().Add(bound))
	io.WriteString(c, "a\n")
	if _, err := io.ReadFull(c, make([]byte, 2)); err != nil {
		t.Fatal(err)
	}
	go func() { io.ReadAll(c); close(read) }()
	c.(interface{ CloseWrite() error }).CloseWrite()
	<-read
	c.Close()
	trace := log.String()
	shut, eof := strings.Index(trace, "shutdown(SHUT_WR)"), strings.Index(trace, "end of file")
	if shut < 0 || eof < 0 || eof < shut {
		t.Errorf("the server's end of file is traced before the client's half-close that caused it:\n%s", trace)
	}
}

// Over a Unix socket the connect line names no port, which it has not:
// it said "connected from @: the kernel picked the port".
func TestTraceUnixConnect(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	raw := dial(t, "unix", path)
	var log shouttest.Log
	c := client.Trace(raw, &log)
	c.Close()
	if line := strings.SplitN(log.String(), "\n", 2)[0]; strings.Contains(line, "port") || !strings.Contains(line, "without a name") {
		t.Errorf("connect line %q: want no port, and a socket without a name", line)
	}
}

// A Unix socket's name is the user's, and may hold ESC and a newline:
// the connect line printed it raw (shout connect --trace unix://…), a
// colour turned on and a trace line forged. It is escaped, as shout's
// other lines escape it.
func TestTraceEscapesTheSocketName(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s\x1b[31m\nt")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Skipf("no such Unix socket name here: %v", err)
	}
	defer ln.Close()
	raw := dial(t, "unix", path)
	var log shouttest.Log
	c := client.Trace(raw, &log)
	c.Close()
	want := "connect(" + filepath.Join(filepath.Dir(path), `s\x1b[31m\nt`) + ") → connected from"
	if got := log.String(); strings.ContainsAny(got, "\x1b") || !strings.Contains(got, want) {
		t.Errorf("trace %q: want %q in it, and no ESC", got, want)
	}
}

// Over TLS the lines name the socket's descriptor, as over TCP: they said
// fd=?, since a TLS connection is no syscall.Conn.
func TestTraceTLSNamesTheSocket(t *testing.T) {
	cfg := selfSignedServer(t)
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(bound))
		tc := tls.Server(c, cfg)
		io.Copy(tc, tc)
		tc.CloseWrite()
	})
	raw := dial(t, "tcp", addr)
	local := raw.LocalAddr().String()
	tc, err := client.Handshake(context.Background(), raw, addr, &tls.Config{InsecureSkipVerify: true}, bound)
	if err != nil {
		t.Fatal(err)
	}
	var log shouttest.Log
	c := client.Trace(tc, &log)
	c.SetDeadline(time.Now().Add(bound))
	io.WriteString(c, "hi\n")
	if _, err := io.ReadFull(c, make([]byte, 3)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	matchTrace(t, log.String(), []string{
		`trace fd={fd} connect(` + addr + `) → connected from ` + local + `: the kernel picked the port and made the connection; it waits in the server's backlog until accept() takes it`,
		`trace fd={fd} send(3) "hi\n"`,
		`trace fd={fd} recv(3) → 3 bytes "hi\n"`,
		`trace fd={fd} close()`,
	})
}

// A datagram's wait that timed out is traced as the timeout given. It
// was the deadline's time left when set, rounded to the millisecond: "no
// reply within 499ms" of --timeout 500ms on a client delayed half a
// millisecond before setting it. A timeout with a fraction of a
// millisecond shows the same with no delay to provoke: never 10.0015s.
func TestTraceDatagramWaitIsTheTimeout(t *testing.T) {
	timeout := handTimeouts(t) // the wait ends on the test's clock
	addr := udpServer(t, func(int) bool { timeout(); return true })
	var log shouttest.Log
	c := client.Trace(dial(t, "udp", addr), &log)
	redial := func() (net.Conn, error) { t.Error("one line, one socket: redialled"); return nil, net.ErrClosed }
	wait := bound + 1500*time.Microsecond
	res, err := client.Datagrams(c, redial, strings.NewReader("hello\n"), io.Discard, io.Discard, wait, 0)
	c.Close()
	if err != nil || res.Lost != 1 {
		t.Fatalf("%+v, %v; want the line lost", res, err)
	}
	want := "recvfrom(131072) → no reply within 10.0015s: timed out"
	if !strings.Contains(log.String(), want) {
		t.Errorf("trace:\n%s\nwant a line with %q", log.String(), want)
	}
}
