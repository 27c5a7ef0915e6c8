package client_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"shout/client"
	"shout/endpoint"
	"shout/internal/certs"
	"shout/internal/named"
	"shout/internal/shouttest"
	"shout/server"
	"shout/upper"
)

func TestMain(m *testing.M) {
	// A Terminal's editor starts one watcher of the window's size, which
	// stays for the process (TestTerminalDatagramRefusedGoesToNextAddress).
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/ergochat/readline/internal/platform.DefaultOnSizeChanged.func1.1"))
}

const bound = 10 * time.Second

func startShout(t *testing.T) string {
	return shouttest.Start(t, &server.Server{Logger: slog.New(slog.DiscardHandler)})
}

func dial(t *testing.T, network, addr string) net.Conn {
	t.Helper()
	c, err := client.Dial(context.Background(), endpoint.Endpoint{Network: network, Address: addr}, bound)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// dialer dials addr over UDP again, for Datagrams.
func dialer(t *testing.T, addr string) func() (net.Conn, error) {
	return func() (net.Conn, error) {
		return client.Dial(context.Background(), endpoint.Endpoint{Network: "udp", Address: addr}, bound)
	}
}

// tracedDialer dials addr over UDP again, as dialer does, traced to w.
func tracedDialer(t *testing.T, addr string, w io.Writer) func() (net.Conn, error) {
	dial := dialer(t, addr)
	return func() (net.Conn, error) {
		c, err := dial()
		if err != nil {
			return nil, err
		}
		return client.Trace(c, w), nil
	}
}

// datagrams runs client.Datagrams on the lines of in, over a socket
// dialed to addr, and returns its result, what it wrote to out and to
// warn, and its error.
func datagrams(t *testing.T, addr, in string, timeout time.Duration, retries int) (res client.DatagramResult, out, warn string, err error) {
	t.Helper()
	c := dial(t, "udp", addr)
	defer c.Close()
	var o, w bytes.Buffer
	res, err = client.Datagrams(c, dialer(t, addr), strings.NewReader(in), &o, &w, timeout, retries)
	return res, o.String(), w.String(), err
}

// datagramsCounted is datagrams, and also returns how many datagrams the
// kernel dropped while it ran, counted: at the machine's loopback
// backlog (a burst of other packages' tests fills it), or at the
// server's socket or the client's (the first and those dialled again for
// the lines after a lost one), their receive buffers full. addr is an
// IP address and port: the client's sockets are wrapped, and one dialled
// to a name so would not try the name's next address.
func datagramsCounted(t *testing.T, addr string, in string, timeout time.Duration, retries int) (res client.DatagramResult, out, warn string, dropped int64, err error) {
	t.Helper()
	var socks atomic.Int64 // what the client's sockets dropped, each counted as it closes
	server := 0
	if _, p, err := net.SplitHostPort(addr); err == nil {
		server, _ = strconv.Atoi(p)
	}
	before := shouttest.BacklogDrops() + shouttest.UDPSocketDrops(server)
	c := &dropsCounted{Conn: dial(t, "udp", addr), n: &socks}
	redial := dialer(t, addr)
	var o, w bytes.Buffer
	res, err = client.Datagrams(c, func() (net.Conn, error) {
		c, err := redial()
		if err != nil {
			return nil, err
		}
		return &dropsCounted{Conn: c, n: &socks}, nil
	}, strings.NewReader(in), &o, &w, timeout, retries)
	c.Close()
	dropped = shouttest.BacklogDrops() + shouttest.UDPSocketDrops(server) - before + socks.Load()
	return res, o.String(), w.String(), dropped, err
}

// dropsCounted is a UDP socket that adds to n what it dropped, its
// receive buffer full, as it closes: the count goes with it.
type dropsCounted struct {
	net.Conn
	n    *atomic.Int64
	once sync.Once
}

func (c *dropsCounted) Close() error {
	c.once.Do(func() {
		if a, ok := c.LocalAddr().(*net.UDPAddr); ok {
			c.n.Add(shouttest.UDPSocketDrops(a.Port))
		}
	})
	return c.Conn.Close()
}

// answeredRuns bounds how many times answeredDatagrams runs.
const answeredRuns = 3

// answeredDatagrams is datagrams against a server that answers every
// datagram: run again, answeredRuns times at most, when a line was lost
// or sent again and the kernel counted a drop meanwhile. A line lost
// while the counters held still is the client's loss (or the server's),
// and the test sees it.
func answeredDatagrams(t *testing.T, addr, in string, timeout time.Duration, retries int) (res client.DatagramResult, out, warn string, err error) {
	t.Helper()
	for run := 1; ; run++ {
		var dropped int64
		res, out, warn, dropped, err = datagramsCounted(t, addr, in, timeout, retries)
		if dropped == 0 || res.Lost == 0 && res.Retries == 0 || run == answeredRuns {
			return res, out, warn, err
		}
		t.Logf("run %d: %+v, and the kernel dropped %d datagrams meanwhile (the loopback backlog, the client's socket or the server's); running it again", run, res, dropped)
	}
}

// selfSignedServer is the TLS configuration of a server for 127.0.0.1
// whose certificate no client trusts: it signed it itself.
func selfSignedServer(t *testing.T) *tls.Config {
	t.Helper()
	store, err := certs.SelfSigned([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := certs.ServerConfig(store, "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestPipeLargeInput(t *testing.T) {
	addr := startShout(t)
	var in bytes.Buffer
	for i := range 200000 {
		in.WriteString("line ")
		in.WriteString(strings.Repeat("straße 哈", i%5))
		in.WriteString("\n")
	}
	want := new(upper.Transformer).String(in.String())
	var out bytes.Buffer
	// Silence is not what this tests, and the Pipe ends at the server's
	// end of file: the timeout only bounds a failure. At a second, a
	// server that a busy machine left without CPU for one was taken for
	// stuck (1 -race run in 5 at load average 35).
	res, err := client.Pipe(dial(t, "tcp", addr), bytes.NewReader(in.Bytes()), &out, bound)
	if err != nil || !res.Complete() || !res.Closed || res.Silent {
		t.Fatalf("Pipe: %+v, %v; want every line answered, then the server's end of file", res, err)
	}
	if out.String() != want {
		t.Fatalf("got %d bytes, want %d", out.Len(), len(want))
	}
	if res.LinesSent != 200000 || res.LinesBack != 200000 {
		t.Errorf("lines: %+v", res)
	}
}

// The lesson's first server answers one message and closes.
func TestPipeServerClosesAfterFirstReply(t *testing.T) {
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		buf := make([]byte, 1024)
		n, _ := c.Read(buf)
		c.Write(bytes.ToUpper(buf[:n]))
	})
	in := strings.NewReader(strings.Repeat("one more line\n", 100000))
	var out bytes.Buffer
	res, err := client.Pipe(dial(t, "tcp", addr), in, &out, bound)
	if err != nil {
		t.Fatalf("Pipe: %v", err)
	}
	if res.Complete() || !res.Closed {
		t.Errorf("result %+v: want closed and incomplete", res)
	}
	if !strings.HasPrefix(out.String(), "ONE MORE LINE\n") {
		t.Errorf("got %q", out.String()[:min(out.Len(), 40)])
	}
	if p := res.Problem(addr, bound); !strings.Contains(p, "closed the connection") {
		t.Errorf("problem: %q", p)
	}
}

// A server that answers but never closes, even after a half-close: every
// line answered, and then silence for the timeout, is complete. (Pipe
// does not hang on it; it waits for its end of file only that long.) The
// input ends only once both replies are out, so the silence is the
// server's whatever the timeout.
// A server that closes before it takes any input (one at its connection
// limit) is said so; it was "before all input was sent (0 bytes sent, 0
// of 0 lines unanswered)".
func TestPipeServerClosesAtOnce(t *testing.T) {
	res := client.PipeResult{InputLeft: true}
	if p, want := res.Problem("127.0.0.1:9", bound), "127.0.0.1:9 closed the connection before any input was sent"; p != want {
		t.Errorf("got %q, want %q", p, want)
	}
}

// What a server sent before it closed is a TLS alert (PipeResult.TLSAlert)
// only where it is one alert record, whole, and nothing else: seven
// bytes of plain text, or an alert with more after it, are not. (A plain
// server's reply of 21 3 3 0 2 'A' '!' was said to be one: "what came
// back is a TLS alert: it speaks TLS".)
func TestPipeTLSAlert(t *testing.T) {
	alert := []byte{21, 3, 3, 0, 2, 2, 50} // fatal: decode_error
	for _, tc := range []struct {
		name  string
		reply []byte
		want  bool
	}{
		{"alert", alert, true},
		{"alert of TLS 1.0", []byte{21, 3, 1, 0, 2, 2, 50}, true},
		{"seven bytes of text", []byte("HELLO!\n"), false},
		{"alert and more", append(slices.Clone(alert), '\n'), false},
		{"less than an alert", alert[:6], false},
		{"a handshake record", []byte{22, 3, 3, 0, 2, 2, 50}, false},
		{"another length", []byte{21, 3, 3, 0, 3, 2, 50}, false},
		{"no version of TLS", []byte{21, 3, 5, 0, 2, 2, 50}, false},
		{"no version of SSL 3", []byte{21, 2, 0, 0, 2, 2, 50}, false},
		{"no level of alert", []byte{21, 3, 3, 0, 2, 'A', '!'}, false}, // (warning is 1, fatal 2)
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := shouttest.StreamServer(t, func(c net.Conn) {
				c.SetDeadline(time.Now().Add(bound))
				io.Copy(io.Discard, c) // to the client's end of file
				c.Write(tc.reply)
			})
			var out bytes.Buffer
			res, err := client.Pipe(dial(t, "tcp", addr), strings.NewReader("hi\n"), &out, bound)
			if err != nil || !res.Closed || res.TLSAlert != tc.want || !bytes.Equal(out.Bytes(), tc.reply) {
				t.Errorf("Pipe: %+v, %v, out %q; want closed, TLSAlert %v, the reply unchanged", res, err, out.Bytes(), tc.want)
			}
		})
	}
}

// Input that is itself shaped as a TLS alert (binary input, a capture
// replayed) comes back from a server that echoes it (shout serve, whose
// uppercase leaves such bytes as they are) as the same seven bytes, and
// the server closes at its end: answered, not a TLS server's alert. It
// was taken for one and for no answer at all: status 1, "closed the
// connection with 0 of 1 lines unanswered; what came back is a TLS
// alert", where before the alert counted only for the hint.
func TestPipeEchoOfAlertShapedInput(t *testing.T) {
	addr := startShout(t)
	for _, in := range [][]byte{
		{21, 3, 3, 0, 2, 2, 50},   // no newline
		{21, 3, 3, 0, 2, 2, '\n'}, // fatal: unexpected_message, a line
	} {
		var out bytes.Buffer
		res, err := client.Pipe(dial(t, "tcp", addr), bytes.NewReader(in), &out, bound)
		if err != nil || !res.Closed || !res.Complete() || !bytes.Equal(out.Bytes(), in) {
			t.Errorf("input %v: Pipe: %+v, %v, out %v; want its echo, closed, complete (problem %q)", in, res, err, out.Bytes(), res.Problem(addr, bound))
		}
	}
	// A fatal alert in reply to a warning's bytes is no echo: an alert.
	tls := shouttest.StreamServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(bound))
		io.Copy(io.Discard, c)
		c.Write([]byte{21, 3, 3, 0, 2, 2, 50})
	})
	res, err := client.Pipe(dial(t, "tcp", tls), bytes.NewReader([]byte{21, 3, 3, 0, 2, 1, 0}), io.Discard, bound)
	if err != nil || !res.TLSAlert || res.Complete() {
		t.Errorf("a fatal alert to a warning's bytes: Pipe: %+v, %v; want a TLS alert, not complete", res, err)
	}
}

// A server that closes on input with no newline, nothing back, did not
// answer it; but where no input was sent there was none to answer, and a
// server silent for the timeout, not closing, has only not answered yet:
// as with lines answered and then silence, neither fails.
func TestPipeNoNewlineClosedOrSilent(t *testing.T) {
	release := make(chan struct{})
	silent := shouttest.StreamServer(t, func(c net.Conn) {
		io.Copy(io.Discard, c)
		<-release
	})
	t.Cleanup(func() { close(release) }) // (before StreamServer's, which waits for the handler)
	closing := shouttest.StreamServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(bound))
		io.Copy(io.Discard, c)
	})
	for _, tc := range []struct {
		name, addr, in string
		silence        time.Duration
		problem        string // "": complete
	}{
		{"nothing sent, the server closes", closing, "", bound, ""},
		{"no newline, the server silent", silent, "hi", 10 * time.Millisecond, ""},
		{"no newline, the server closes", closing, "hi", bound, "ADDR closed the connection with the input unanswered (2 bytes, no newline)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := client.Pipe(dial(t, "tcp", tc.addr), strings.NewReader(tc.in), io.Discard, tc.silence)
			want := strings.ReplaceAll(tc.problem, "ADDR", tc.addr)
			if err != nil || res.Complete() != (want == "") || res.Problem(tc.addr, tc.silence) != want && want != "" {
				t.Errorf("Pipe: %+v, %v: complete %v, problem %q; want %q", res, err, res.Complete(), res.Problem(tc.addr, tc.silence), want)
			}
		})
	}
}

// A TLS alert's bytes are no reply's: one whose description is 10,
// unexpected_message, the byte of a newline, was counted a line back, and
// connect said "closed the connection with 0 of 1 lines unanswered" of a
// line that none answered.
func TestPipeTLSAlertAnswersNoLine(t *testing.T) {
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(bound))
		io.Copy(io.Discard, c)
		c.Write([]byte{21, 3, 3, 0, 2, 2, 10}) // fatal: unexpected_message
	})
	res, err := client.Pipe(dial(t, "tcp", addr), strings.NewReader("hi\n"), io.Discard, bound)
	want := addr + " closed the connection with 1 of 1 lines unanswered"
	if err != nil || !res.TLSAlert || res.Complete() || res.Problem(addr, bound) != want {
		t.Errorf("Pipe: %+v, %v: problem %q; want a TLS alert, %q", res, err, res.Problem(addr, bound), want)
	}
}

func TestPipeServerNeverCloses(t *testing.T) {
	addr := neverClosingServer(t)
	pr, pw := io.Pipe()
	out := newShown("A\nB\n")
	go func() {
		pw.Write([]byte("a\nb\n"))
		select {
		case <-out.shown:
		case <-time.After(bound):
		}
		pw.Close()
	}()
	res, err := client.Pipe(dial(t, "tcp", addr), pr, out, 10*time.Millisecond)
	if err != nil || !res.Complete() || !res.Silent || out.String() != "A\nB\n" {
		t.Fatalf("got %q, %+v, %v", out.String(), res, err)
	}
}

// A server that greets, then answers each line, sends as many newlines as
// it was sent before its last reply: what it sends after that is read,
// up to its end of file, not dropped. (Pipe left once as many newlines
// came back as went out: printf 'a\nb\nc\n' | shout connect printed
// "welcome A B", status 0, and C was lost.) The server sends C only once
// B is out, so that the count is complete before it.
func TestPipeReadsToEndOfFile(t *testing.T) {
	out := newShown("welcome\nA\nB\n")
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		c.Write([]byte("welcome\n"))
		sc := bufio.NewScanner(c)
		for sc.Scan() && sc.Text() != "c" {
			c.Write(append(bytes.ToUpper(sc.Bytes()), '\n'))
		}
		for sc.Scan() { // to the client's end of file
		}
		select {
		case <-out.shown:
		case <-time.After(bound):
		}
		c.Write([]byte("C\n"))
	})
	res, err := client.Pipe(dial(t, "tcp", addr), strings.NewReader("a\nb\nc\n"), out, bound)
	if err != nil || !res.Complete() || !res.Closed || out.String() != "welcome\nA\nB\nC\n" {
		t.Fatalf("got %q, %+v, %v; want all four lines, to the server's end of file", out.String(), res, err)
	}
}

// shown is an output that closes shown once it holds want.
type shown struct {
	want  string
	mu    sync.Mutex
	buf   bytes.Buffer
	shown chan struct{}
}

func newShown(want string) *shown { return &shown{want: want, shown: make(chan struct{})} }

func (s *shown) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	had := strings.Contains(s.buf.String(), s.want)
	s.buf.Write(p)
	if !had && strings.Contains(s.buf.String(), s.want) {
		close(s.shown)
	}
	return len(p), nil
}

func (s *shown) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// A server that never answers: the silence timeout ends the wait.
func TestPipeSilentServer(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	addr := shouttest.StreamServer(t, func(c net.Conn) { io.Copy(io.Discard, c); <-release })
	res, err := client.Pipe(dial(t, "tcp", addr), strings.NewReader("hello?\n"), io.Discard, 50*time.Millisecond)
	if err != nil || res.Complete() || !res.Silent {
		t.Fatalf("%+v, %v: want silent and incomplete", res, err)
	}
	if p := res.Problem(addr, 50*time.Millisecond); !strings.Contains(p, "no reply from") || !strings.Contains(p, "1 of 1 lines unanswered") {
		t.Errorf("problem: %q", p)
	}
}

// A server that stops reading (nor answers, nor closes): once the socket's
// buffers are full, the silence timeout ends the wait on it too, before
// input is done. (Pipe waited for ever: its reader waited for silence only
// once input was done, and input never was.)
func TestPipeServerStopsReading(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	addr := shouttest.StreamServer(t, func(c net.Conn) { <-release })
	// Far more than loopback's socket buffers hold.
	in := io.LimitReader(neverEnding('x'), 64<<20)
	done := make(chan struct{})
	var res client.PipeResult
	var err error
	go func() {
		defer close(done)
		res, err = client.Pipe(dial(t, "tcp", addr), in, io.Discard, 100*time.Millisecond)
	}()
	select {
	case <-done:
	case <-time.After(bound):
		t.Fatalf("Pipe still waiting after %v on a server that reads nothing, with a silence timeout of 100 ms", bound)
	}
	if err != nil || res.Complete() || !res.Stuck {
		t.Fatalf("%+v, %v: want stuck and incomplete", res, err)
	}
	if p := res.Problem(addr, 100*time.Millisecond); !strings.Contains(p, "stopped reading") {
		t.Errorf("problem: %q", p)
	}
}

// pausingWriter blocks its first Write until released (a pager waiting
// for its user), then writes through. paused is closed once that first
// Write waits.
type pausingWriter struct {
	once    sync.Once
	paused  chan struct{}
	release chan struct{}
	n       atomic.Int64 // bytes written: read while Pipe writes
}

func (w *pausingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.paused); <-w.release })
	w.n.Add(int64(len(p)))
	return len(p), nil
}

// Output that pauses for longer than the silence timeout (less waiting
// for its user) holds the replies up and so the server's reading: that is
// not a server that stopped reading, and every line is still answered.
//
// Longer by the watch's clock, which the test moves while the output
// waits and the sender is held in a write, and holds still after: by the
// real clock a server left without CPU for longer than the silence
// timeout once the output went on took nothing meanwhile, and was rightly
// taken for stuck (4 runs in 30 under -race at load average 20).
//
// A server that stops reading fails the test; it hung it: the sender
// held in a write for ever, and the watch, which looks only on the
// test's ticks, never looking again to end the Pipe.
func TestPipeSlowOutputIsNotAStuckServer(t *testing.T) {
	var clock atomic.Int64
	ticks := make(chan time.Time)
	client.SetWatchClock(t, func() time.Duration { return time.Duration(clock.Load()) }, ticks)
	addr := startShout(t)
	in := strings.Repeat(strings.Repeat("x", 99)+"\n", 200000) // 20 MB, far more than the sockets hold
	w := &pausingWriter{paused: make(chan struct{}), release: make(chan struct{})}
	c := dial(t, "tcp", addr)
	piped := make(chan struct{})
	var res client.PipeResult
	var err error
	go func() {
		defer close(piped)
		res, err = client.Pipe(c, strings.NewReader(in), w, bound)
	}()
	// release lets the output go on and waits for the Pipe's end, as
	// long as the output moves; once it stops for bound, the server
	// stopped reading: the test closes the connection and fails.
	released := false
	release := func() {
		released = true
		close(w.release)
		last := int64(-1)
		for range 60 { // 10 minutes at most, at bound
			select {
			case <-piped:
				return
			case <-time.After(bound):
			}
			if n := w.n.Load(); n != last {
				last = n
				continue
			}
			break
		}
		c.Close()
		<-piped
		t.Errorf("the output stopped at %d of %d bytes: the server stopped reading (or the output took 10 minutes)", w.n.Load(), len(in))
	}
	defer func() {
		if !released {
			release()
		}
	}()
	select {
	case <-w.paused:
	case <-piped:
		t.Fatalf("Pipe ended before its output paused: %+v, %v", res, err)
	case <-time.After(bound):
		t.Fatalf("no output within %v", bound)
	}
	// The replies back up into the server, which stops reading: the
	// sender's buffer fills and stays full, the sender held in a write.
	if runtime.GOOS != "linux" {
		t.Log("not checked here: that the sender is held in a write when the watch looks. Only Linux tells a socket's send queue and whether it is full (sendQueue); here the test waits 20 looks, and the watch, while the sender is not in a write, takes no server for stuck, paused output or not")
	}
	for last, same, deadline := -1, 0, time.Now().Add(bound); same < 20; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the sender's buffer not full and still within %v", bound)
		}
		if q, full := sendQueue(c); full && q == last {
			same++
		} else {
			last, same = q, 0
		}
	}
	// A look at the start, which notes what the server has taken, then
	// looks at twice the silence timeout and more, the output still
	// waiting. Each send returns once the watch has the tick, and so has
	// done with the one before.
	for i := range 4 {
		clock.Store(int64(time.Duration(2*i) * bound))
		select {
		case ticks <- time.Time{}:
		case <-time.After(bound): // the watch, done, takes no more
			t.Fatalf("the stuck watch stopped looking while the output paused: it took the server for stuck")
		}
	}
	release()
	if t.Failed() {
		return
	}
	if err != nil || !res.Complete() || res.Stuck || w.n.Load() != int64(len(in)) {
		t.Fatalf("%+v, %v, %d bytes out: want all %d answered; the output paused for twice the silence timeout, not the server", res, err, w.n.Load(), len(in))
	}
}

// A server that reads steadily but slowly, and answers only at the end,
// never stopped reading: all the input goes. (Once it has all gone, what
// the server's socket holds is out of sight, and its reading it is
// silence as any other: the test takes either ending.)
//
// Pipe sees the server take bytes only when the server's kernel opens
// the window again, once a good part of its receive buffer is free; the
// sender's write, meanwhile, waits until a good part of its send buffer
// is free, here (a third of 2 MB, or of 416 KiB where net.core.wmem_max
// is Linux's default) longer than the server takes to read the silence
// timeout's worth: where the socket did not tell what the server took,
// the server was taken for stuck. Slow is by the watch's clock, which the
// server moves as it reads and ticks after each read: by the real clock a
// server that a busy machine left without CPU for longer than the silence
// timeout took nothing meanwhile, and was rightly taken for stuck.
func TestPipeSlowReaderIsNotStuck(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("where the socket does not say how much the server took, a slow reader is seen only as the buffer drains")
	}
	const (
		rate    = 200 << 10 // bytes a second, on the watch's clock
		silence = 400 * time.Millisecond
	)
	var clock atomic.Int64 // how long the server's reading took, at rate
	ticks := make(chan time.Time)
	piped := make(chan struct{})
	dialed := make(chan net.Conn, 1)
	client.SetWatchClock(t, func() time.Duration { return time.Duration(clock.Load()) }, ticks)
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		// Fixed, so that the server takes bytes in steps of the same size.
		if err := c.(*net.TCPConn).SetReadBuffer(32 << 10); err != nil {
			t.Error(err)
			return
		}
		// The server reads once the sender's buffer is full and has
		// stayed so for 20 looks a millisecond apart: the sender waits
		// in a write, as one faster than its server does. (Under -race a
		// server reading at once outran the sender, whose writes then
		// never waited: the test passed with what it tests switched off.)
		cc := <-dialed
		for last, same, deadline := -1, 0, time.Now().Add(bound); same < 20 && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if q, full := sendQueue(cc); full && q == last {
				same++
			} else {
				last, same = q, 0
			}
		}
		buf := make([]byte, 16<<10)
		total := 0
		for {
			n, err := c.Read(buf)
			total += n
			clock.Store(int64(time.Duration(total) * time.Second / rate))
			select {
			case ticks <- time.Time{}: // the watch looks, each read
			case <-piped:
			}
			if err != nil {
				fmt.Fprintf(c, "%d\n", total)
				return
			}
		}
	})
	c := dial(t, "tcp", addr)
	if err := c.(*net.TCPConn).SetWriteBuffer(1 << 20); err != nil { // the kernel doubles it
		t.Fatal(err)
	}
	dialed <- c
	in := strings.Repeat("x", 4<<20) + "\n"
	var out bytes.Buffer
	res, err := client.Pipe(c, strings.NewReader(in), &out, silence)
	close(piped)
	if err != nil || res.Stuck || res.InputLeft || !res.Silent && out.String() != fmt.Sprint(len(in))+"\n" {
		t.Fatalf("%+v, %v, %q: the server read all the time", res, err, out.String())
	}
}

// Lines are counted as sent once they are written to the connection,
// not once they are read from input: yes | shout connect, the server
// gone, reported 64 KiB of lines more than it sent (195,559,424 "y" lines
// where 391,053,312 bytes went out), since a buffer's lines were counted
// before its write failed.
func TestPipeCountsLinesSentNotRead(t *testing.T) {
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		c.Write([]byte("Y\n"))
	})
	res, err := client.Pipe(dial(t, "tcp", addr), yes{}, io.Discard, bound)
	if err != nil || res.Complete() || !res.InputLeft {
		t.Fatalf("%+v, %v: want input left unsent", res, err)
	}
	if res.LinesSent != res.Sent/2 { // every line is "y\n"
		t.Errorf("%d lines sent in %d bytes, want %d", res.LinesSent, res.Sent, res.Sent/2)
	}
	if p, want := res.Problem(addr, bound), fmt.Sprintf(" of %d lines unanswered", res.Sent/2); !strings.Contains(p, want) {
		t.Errorf("problem %q, want %q in it", p, want)
	}
}

// yes reads as yes(1) writes: "y\n" for ever.
type yes struct{}

func (yes) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = "y\n"[i%2]
	}
	return len(p) &^ 1, nil
}

// neverEnding reads as its byte for ever.
type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

// udpServer answers with the uppercase, but for the datagrams drop says.
func udpServer(t *testing.T, drop func(n int) bool) string {
	return shouttest.PacketServer(t, func(n int, b []byte) [][]byte {
		if drop(n) {
			return nil
		}
		return [][]byte{bytes.ToUpper(b)}
	})
}

// handTimeouts makes the test Datagrams' clock (client.SetReplyTimeouts):
// timeout ends the wait for a reply that will not come, called where the
// test drops or holds the datagram; the timeout given to Datagrams, bound,
// ends only a wait that a fault left without one. A timeout that no wait
// takes within bound is dropped: that wait ends by its own timeout.
func handTimeouts(t *testing.T) (timeout func()) {
	ticks := make(chan struct{})
	client.SetReplyTimeouts(t, ticks)
	return func() {
		select {
		case ticks <- struct{}{}:
		case <-time.After(bound):
		}
	}
}

// Retries are counted exactly: each drop ends its wait on the test's
// clock (handTimeouts), and a reply that comes is never taken for none.
func TestDatagramsRetryAndLoss(t *testing.T) {
	tests := []struct {
		name     string
		drop     func(n int) bool
		answered int
		lost     int
		retries  int
	}{
		{"every other dropped", func(n int) bool { return n%2 == 0 }, 3, 0, 3},
		{"all dropped", func(int) bool { return true }, 0, 3, 6},
		{"none dropped", func(int) bool { return false }, 3, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			timeout := handTimeouts(t)
			addr := udpServer(t, func(n int) bool {
				if tc.drop(n) {
					timeout()
					return true
				}
				return false
			})
			res, out, warn, err := datagrams(t, addr, "one\n\n  \ntwo\nthree\n", bound, 2)
			if err != nil {
				t.Fatal(err)
			}
			if res.Sent != 3 || res.Answered != tc.answered || res.Lost != tc.lost || res.Retries != tc.retries {
				t.Errorf("result %+v", res)
			}
			if tc.answered == 3 && out != "ONE\nTWO\nTHREE\n" {
				t.Errorf("got %q", out)
			}
			if got := strings.Count(warn, "lost"); got != tc.lost {
				t.Errorf("%d loss lines, want %d: %q", got, tc.lost, warn)
			}
		})
	}
}

// A line lost after its one try (--retries 0) says "1 try", not "1
// tries".
func TestDatagramsLostAfterOneTry(t *testing.T) {
	timeout := handTimeouts(t)
	addr := udpServer(t, func(int) bool {
		timeout()
		return true
	})
	_, _, warn, err := datagrams(t, addr, "one\n", bound, 0)
	if want := "after 1 try of "; err != nil || !strings.Contains(warn, want) {
		t.Errorf("Datagrams: %v, warnings %q; want %q", err, warn, want)
	}
}

func TestDatagramsAgainstShout(t *testing.T) {
	addr := startShout(t)
	res, out, _, err := answeredDatagrams(t, addr, "hello egon 哈哈哈\r\nstraße\n", bound, 0)
	if err != nil || res.Answered != 2 || out != "HELLO EGON 哈哈哈\nSTRASSE\n" {
		t.Fatalf("got %q, %+v, %v", out, res, err)
	}
}

// A server that ends each reply with a newline, as line servers do, has
// each reply on a line of its own: another newline after it printed an
// empty line after every reply, two lines out for each line in.
func TestDatagramsReplyEndingInNewline(t *testing.T) {
	addr := shouttest.PacketServer(t, func(_ int, b []byte) [][]byte {
		return [][]byte{append(bytes.ToUpper(b), '\n')}
	})
	res, out, _, err := answeredDatagrams(t, addr, "one\ntwo\n", bound, 0)
	if err != nil || res.Answered != 2 || out != "ONE\nTWO\n" {
		t.Fatalf("got %q, %+v, %v; want \"ONE\\nTWO\\n\"", out, res, err)
	}
}

// Retries past MaxRetries are MaxRetries: retries+1 tries wrapped, and
// at the largest int a line was sent no times and said lost "after
// -9223372036854775808 tries".
func TestDatagramsMostRetries(t *testing.T) {
	addr := startShout(t)
	res, out, _, err := answeredDatagrams(t, addr, "hi\n", bound, math.MaxInt)
	if err != nil || res.Answered != 1 || out != "HI\n" {
		t.Fatalf("retries %d: got %q, %+v, %v; want the line answered", math.MaxInt, out, res, err)
	}
}

func TestDialErrors(t *testing.T) {
	closed := shouttest.Refusing(t)
	_, err := client.Dial(context.Background(), endpoint.Endpoint{Network: "tcp", Address: closed}, bound)
	if err == nil || err.Error() != "connect "+closed+": connection refused" {
		t.Errorf("refused: %v", err)
	}
	_, err = client.Dial(context.Background(), endpoint.Endpoint{Network: "unix", Address: t.TempDir() + "/none"}, bound)
	if err == nil || !strings.HasSuffix(err.Error(), ": no such socket") {
		t.Errorf("unix: %v", err)
	}
	var ce *client.ConnError
	if !errors.As(err, &ce) {
		t.Errorf("not a ConnError: %T", err)
	}
	// A file of another kind at the path: connect says only "connection
	// refused", which sent one looking for a server that had stopped.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = client.Dial(context.Background(), endpoint.Endpoint{Network: "unix", Address: file}, bound)
	if want := "connect " + file + ": a regular file is there, not a socket"; err == nil || err.Error() != want {
		t.Errorf("unix, a regular file: %v; want %q", err, want)
	}
}

func TestCause(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "nosuch.example", IsNotFound: true}}, "unknown host nosuch.example"},
		{&net.DNSError{Err: "server misbehaving", Name: "x.example"}, "cannot look up x.example: server misbehaving"},
		{context.DeadlineExceeded, "timed out"},
		{io.ErrUnexpectedEOF, "unexpected EOF"},
	}
	for _, tc := range tests {
		if got := client.Cause(tc.err); got != tc.want {
			t.Errorf("Cause(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// A reply that comes after its retry's (the server answers the first try
// late) is not the next line's answer.
func TestDatagramsDuplicateReply(t *testing.T) {
	timeout := handTimeouts(t)
	addr := shouttest.PacketServer(t, func(n int, b []byte) [][]byte {
		switch n {
		case 0:
			timeout()
			return nil // held: answered with the retry
		case 1:
			return [][]byte{bytes.ToUpper(b), bytes.ToUpper(b)}
		}
		return [][]byte{bytes.ToUpper(b)}
	})
	res, out, warn, err := datagrams(t, addr, "one\ntwo\nthree\n", bound, 2)
	if err != nil {
		t.Fatal(err)
	}
	if out != "ONE\nTWO\nTHREE\n" || res.Answered != 3 || res.Lost != 0 {
		t.Errorf("got %q, %+v, warnings %q; want ONE TWO THREE", out, res, warn)
	}
}

// lateServer is a stand-in UDP server that answers every datagram with
// its uppercase but held, whose reply it sends (to held's sender) only
// when release comes, before release's own: a reply late for its line.
// It calls timeout each time it holds held (handTimeouts).
func lateServer(t *testing.T, held, release string, timeout func()) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 1024)
		var heldFrom net.Addr
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			switch string(buf[:n]) {
			case held:
				heldFrom = from
				timeout()
				continue
			case release:
				pc.WriteTo(bytes.ToUpper([]byte(held)), heldFrom)
			}
			pc.WriteTo(bytes.ToUpper(buf[:n]), from)
		}
	}()
	return pc.LocalAddr().String()
}

// A reply to a line reported lost, coming while the next line waits, is
// not that line's answer.
func TestDatagramsLateReply(t *testing.T) {
	addr := lateServer(t, "one", "two", handTimeouts(t))
	res, out, warn, err := datagrams(t, addr, "one\ntwo\nthree\n", bound, 1)
	if err != nil {
		t.Fatal(err)
	}
	if out != "TWO\nTHREE\n" || res.Answered != 2 || res.Lost != 1 {
		t.Errorf("got %q, %+v; want TWO THREE and one lost", out, res)
	}
	if !strings.Contains(warn, "line 1: no reply") {
		t.Errorf("warnings %q", warn)
	}
}

// A reply that comes after its line was reported lost is reported late,
// as the README says: the watch on the lost line's socket read with the
// deadline of its last wait, long past, and gave up at once. Once the
// late reply is taken from line 1's socket, the next line's report says
// it.
func TestDatagramsLateReplyReported(t *testing.T) {
	addr := lateServer(t, "slow", "release", handTimeouts(t))
	taken := make(chan struct{}, 1)
	client.SetLateTaken(t, taken)
	c := dial(t, "udp", addr)
	defer c.Close()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	warn := &notifying{wrote: make(chan struct{}, 1)}
	ran := make(chan error, 1)
	go func() {
		_, err := client.Datagrams(c, dialer(t, addr), inR, outW, warn, bound, 0)
		outW.Close()
		ran <- err
	}()
	replies := bufio.NewReader(outR)
	send := func(line string) {
		t.Helper()
		if _, err := io.WriteString(inW, line+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	reply := func(want string) {
		t.Helper()
		if got, err := replies.ReadString('\n'); err != nil || got != want+"\n" {
			t.Fatalf("reply %q, %v; want %q", got, err, want)
		}
	}
	send("slow")
	deadline := time.After(bound)
	for !strings.Contains(warn.String(), "line 1: no reply") {
		select {
		case <-warn.wrote:
		case <-deadline:
			t.Fatalf("line 1 never reported lost; warnings %q", warn.String())
		}
	}
	send("release")
	reply("RELEASE")
	// SLOW was sent before RELEASE; the goroutine that takes it from line
	// 1's socket may wait for a CPU while many lines go by (200 did, on a
	// loaded machine), so the next line is sent once it has.
	select {
	case <-taken:
	case <-time.After(bound):
		t.Fatalf("the late reply to line 1 was never taken; warnings %q", warn.String())
	}
	send("x")
	reply("X")
	if !strings.Contains(warn.String(), "late reply to line 1: SLOW") {
		t.Fatalf("the late reply to line 1, taken before line 3 was sent, was not reported; warnings %q", warn.String())
	}
	inW.Close()
	if _, err := io.ReadAll(replies); err != nil {
		t.Fatal(err)
	}
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
}

// notifying is a buffer safe for one writer and one reader, which signals
// each write on wrote.
type notifying struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func (n *notifying) Write(p []byte) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	select {
	case n.wrote <- struct{}{}:
	default:
	}
	return n.buf.Write(p)
}

func (n *notifying) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.buf.String()
}

// A refusal (ICMP port unreachable) loses its line; the next one is sent.
func TestDatagramsRefused(t *testing.T) {
	addr := shouttest.RefusingUDP(t)
	res, _, warn, err := datagrams(t, addr, "one\ntwo\n", bound, 0)
	if err != nil {
		t.Fatalf("Datagrams: %v", err)
	}
	if res.Sent != 2 || res.Lost != 2 || strings.Count(warn, "connection refused") != 2 {
		t.Errorf("%+v, warnings %q: want both lines refused", res, warn)
	}
}

// A line to a port where nothing listens was taken for answered, its own
// datagram for the reply, where the system gave its socket that very port
// on the same address (a port just freed is in the range it gives from:
// CI met it at the prompt, stop 53, where "two" came back as its reply):
// the socket was connected to itself. It is dialled again, and each line
// is refused, at an address as at each of a name's. Here each dial's
// first socket is bound to the address it is dialled to.
func TestDatagramsSelfConnectedDialledAgain(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"address", func(t *testing.T) string { return closedUDPPort(t) }},
		{"name", func(t *testing.T) string {
			name, server, six, letGo := twoAddrsRefusing(t)
			letGo(server) // (the dial to it takes the port)
			letGo(six)
			return name
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.addr(t)
			dials := 0
			client.SetUDPLocal(t, func(to string) net.Addr {
				if dials++; dials%2 == 0 {
					return nil
				}
				a, err := net.ResolveUDPAddr("udp", to)
				if err != nil {
					t.Errorf("dialled %q: %v", to, err)
					return nil
				}
				return a
			})
			res, out, warn, err := datagrams(t, addr, "one\ntwo\n", bound, 0)
			if err != nil {
				t.Fatalf("Datagrams: %v", err)
			}
			if res.Sent != 2 || res.Lost != 2 || strings.Count(warn, "connection refused") != 2 || out != "" {
				t.Errorf("%+v, out %q, warnings %q: want both lines refused, no reply", res, out, warn)
			}
		})
	}
}

// A socket the system gives the port it is dialled to three times running
// is not used: Dial says so, after three dials, as it says (two or four
// passed the tests, review54).
func TestDialSelfConnectedEveryTime(t *testing.T) {
	addr := closedUDPPort(t)
	dials := 0
	client.SetUDPLocal(t, func(to string) net.Addr {
		dials++
		a, _ := net.ResolveUDPAddr("udp", to)
		return a
	})
	c, err := client.Dial(context.Background(), endpoint.Endpoint{Network: "udp", Address: addr}, bound)
	if err == nil {
		c.Close()
	}
	if want := "connect " + addr + ": the system gave the socket the address and port it connects to, three times"; err == nil || err.Error() != want {
		t.Errorf("Dial: %v; want %q", err, want)
	}
	if dials != 3 {
		t.Errorf("dialled %d times, want 3", dials)
	}
}

// A socket given the port it dials, on another of the machine's
// addresses, is not connected to itself: its datagrams reach the server
// there, and it is used. (Told by the port alone, which passed the tests,
// review54, one of bench's sockets spread over 127.0.0.x that the system
// gave the server's port was dialled again, and three running failed.)
func TestDialSamePortElsewhereIsUsed(t *testing.T) {
	srv, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	port := srv.LocalAddr().(*net.UDPAddr).Port
	local := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: port}
	if pc, err := net.ListenPacket("udp", local.String()); err != nil {
		t.Skipf("no %v here: %v", local, err) // (macOS has 127.0.0.1 alone)
	} else {
		pc.Close()
	}
	client.SetUDPLocal(t, func(string) net.Addr { return local })
	c, err := client.Dial(context.Background(), endpoint.Endpoint{Network: "udp", Address: srv.LocalAddr().String()}, bound)
	if err != nil {
		t.Fatalf("Dial: %v; want a socket from %v", err, local)
	}
	defer c.Close()
	if _, err := c.Write([]byte("x\n")); err != nil {
		t.Fatal(err)
	}
	srv.SetReadDeadline(time.Now().Add(bound))
	buf := make([]byte, 16)
	n, from, err := srv.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "x\n" || from.String() != local.String() {
		t.Errorf("the server read %q from %v, %v; want %q from %v", buf[:n], from, err, "x\n", local)
	}
}

// closedUDPPort is an address on 127.0.0.1 where nothing listens, its
// port let go: free for the tests that bind their own socket to it (the
// self-connected dial). One that wants it refused throughout takes
// shouttest.RefusingUDP's, which no other socket can take meanwhile.
func closedUDPPort(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().String()
}

// twoAddrs is a name for tests, and a server on 127.0.0.1 that it names
// second: first it names [::1] at the server's port, where nothing
// listens. (localhost is so on macOS and most Linux: ::1, then 127.0.0.1,
// where shout serve listens by default.) It skips where there is no
// IPv6 loopback, or the port is taken on it. [::1]'s port is held for the
// test, refusing (shouttest.RefuseDatagrams): let go, any socket of the
// tests running at once could take it, and answer there.
func twoAddrs(t *testing.T) (name, server string) {
	t.Helper()
	server = udpServer(t, func(int) bool { return false })
	name, pc := twoAddrsFor(t, server)
	refuse(t, pc) // nothing listens there: a datagram there is refused
	return name, server
}

// refuse makes pc, a socket of the test's, refuse every datagram from
// now on, its port held (shouttest.RefuseDatagrams).
func refuse(t *testing.T, pc net.PacketConn) {
	t.Helper()
	if err := shouttest.RefuseDatagrams(pc); err != nil {
		t.Fatal(err)
	}
}

// twoAddrsFor is a name for tests that names [::1] at server's port,
// then server (on 127.0.0.1), and a socket bound there on [::1], for the
// test to close. It skips where there is no IPv6 loopback, or the port
// is taken on it.
func twoAddrsFor(t *testing.T, server string) (name string, pc net.PacketConn) {
	t.Helper()
	_, port, _ := net.SplitHostPort(server)
	pc, err := net.ListenPacket("udp", net.JoinHostPort("::1", port))
	if err != nil {
		t.Skipf("no [::1]:%s to take: %v", port, err)
	}
	t.Cleanup(func() { pc.Close() })
	client.SetLookup(t, func(ctx context.Context, network, host string) ([]netip.Addr, error) {
		if host != "twoaddrs.test" {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		return []netip.Addr{netip.MustParseAddr("::1"), netip.MustParseAddr("127.0.0.1")}, nil
	})
	return net.JoinHostPort("twoaddrs.test", port), pc
}

// twoAddrsRefusing is a name for tests, as twoAddrsFor's, at whose
// addresses nothing listens: server (127.0.0.1) and six ([::1]), at one
// port. Both are held for the test, refusing, until letGo lets one go,
// for a server of the test's own to take (a socket of the tests running
// at once may take it first: the test skips, saying so).
func twoAddrsRefusing(t *testing.T) (name, server, six string, letGo func(addr string)) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	refuse(t, pc)
	server = pc.LocalAddr().String()
	name, pc6 := twoAddrsFor(t, server)
	refuse(t, pc6)
	_, port, _ := net.SplitHostPort(server)
	six = net.JoinHostPort("::1", port)
	held := map[string]net.PacketConn{server: pc, six: pc6}
	return name, server, six, func(addr string) { held[addr].Close() }
}

// lateRefusal is a name for tests, as twoAddrsFor's, whose [::1] takes
// the first datagram, unanswered, and then closes (a server stopped
// there): the line's next try there is refused, late. Its 127.0.0.1
// answers none. Each datagram taken ends its wait (handTimeouts); sent4
// is how many 127.0.0.1 took.
func lateRefusal(t *testing.T) (name string, sent4 func() int) {
	t.Helper()
	timeout := handTimeouts(t)
	server, sent4 := silentServer(t, timeout)
	name, pc := twoAddrsFor(t, server)
	go refuseAfterFirst(pc, timeout)
	return name, sent4
}

// silentServer is a server on 127.0.0.1 that answers no datagram, each
// one it takes ending its wait (timeout); taken is how many it took.
func silentServer(t *testing.T, timeout func()) (addr string, taken func() int) {
	var n atomic.Int32
	addr = udpServer(t, func(int) bool {
		n.Add(1)
		timeout()
		return true
	})
	return addr, func() int { return int(n.Load()) }
}

// refuseAfterFirst takes pc's first datagram, unanswered, and makes pc
// refuse every datagram from then on, its port held, before it ends that
// datagram's wait (timeout): the try after it is refused, late, as at a
// server stopped there. (Closed, pc let its port go, for any socket of
// the tests running at once to take.)
func refuseAfterFirst(pc net.PacketConn, timeout func()) {
	buf := make([]byte, 1<<16)
	if _, _, err := pc.ReadFrom(buf); err != nil {
		return
	}
	if shouttest.RefuseDatagrams(pc) != nil {
		pc.Close() // (closed already, at the test's end)
	}
	timeout()
}

// A line refused at a name's first address after a try there went
// unanswered goes to the next address with the tries it has left, not
// retries+1 more: a line's wait stays within (retries+1) timeouts,
// wherever its tries go. (With --retries 1 --timeout 1s a line waited
// 3 s: 1 s at [::1], refused, then 2 s at 127.0.0.1.)
func TestDatagramsLateRefusalKeepsLineBound(t *testing.T) {
	name, sent4 := lateRefusal(t)
	res, out, warn, err := datagrams(t, name, "one\n", bound, 1)
	if err != nil || res.Lost != 1 || len(out) > 0 {
		t.Fatalf("Datagrams: %+v, %v, out %q, warnings %q; want the line lost", res, err, out, warn)
	}
	if got := sent4(); got != 1 {
		t.Errorf("127.0.0.1 was sent the line %d times; want 1: with --retries 1, one try was left after [::1]'s unanswered one (warnings %q)", got, warn)
	}
}

// threeAddrsLateRefusals is a name for tests, threeaddrs.test, that
// names [::1], 127.0.0.2 and then 127.0.0.1 at one port. [::1] and
// 127.0.0.2 each take the first datagram, unanswered, and then close: a
// line's next try at each is refused, late. 127.0.0.1 answers none. Each
// datagram taken ends its wait (handTimeouts); sent4 is how many
// 127.0.0.1 took. It skips where [::1] or 127.0.0.2 cannot be bound.
func threeAddrsLateRefusals(t *testing.T) (name string, sent4 func() int) {
	t.Helper()
	timeout := handTimeouts(t)
	server, sent4 := silentServer(t, timeout)
	_, port, _ := net.SplitHostPort(server)
	for _, host := range []string{"::1", "127.0.0.2"} {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, port))
		if err != nil {
			t.Skipf("no %s to take: %v", net.JoinHostPort(host, port), err)
		}
		t.Cleanup(func() { pc.Close() })
		go refuseAfterFirst(pc, timeout)
	}
	client.SetLookup(t, func(ctx context.Context, network, host string) ([]netip.Addr, error) {
		if host != "threeaddrs.test" {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		return []netip.Addr{netip.MustParseAddr("::1"), netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.1")}, nil
	})
	return net.JoinHostPort("threeaddrs.test", port), sent4
}

// A line refused late at a name's first address and then at its second
// goes on to its third with the tries it still has: with --retries 2, one
// unanswered try at each of the first two leaves one for the third. (Not
// to go past the second address, or to count the tries at each address
// alone, passed every other test.)
func TestDatagramsLateRefusalsAcrossThreeAddresses(t *testing.T) {
	name, sent4 := threeAddrsLateRefusals(t)
	res, out, warn, err := datagrams(t, name, "one\n", bound, 2)
	if err != nil || res.Lost != 1 || len(out) > 0 {
		t.Fatalf("Datagrams: %+v, %v, out %q, warnings %q; want the line lost at 127.0.0.1", res, err, out, warn)
	}
	if got := sent4(); got != 1 {
		t.Errorf("127.0.0.1 was sent the line %d times; want 1: with --retries 2, one try was left after [::1]'s and 127.0.0.2's (warnings %q)", got, warn)
	}
}

// A line lost after tries at a name's addresses that refused it late
// says where they went: "no reply from 127.0.0.1:P after 2 tries" said
// the tries at [::1] were 127.0.0.1's too. With one address, or tries at
// one, it says as before where it got none.
func TestDatagramsLostAfterLateRefusalSaysWhere(t *testing.T) {
	for _, tc := range []struct {
		name    string
		addrs   func(t *testing.T) (string, func() int)
		retries int
		want    string // %[1]s the port, %[2]v the timeout
	}{
		{"two addresses", lateRefusal, 1, "no reply after 2 tries of %[2]v (1 to [::1]:%[1]s, then refused; 1 to 127.0.0.1:%[1]s): lost"},
		{"three addresses", threeAddrsLateRefusals, 2, "no reply after 3 tries of %[2]v (1 to [::1]:%[1]s, then refused; 1 to 127.0.0.2:%[1]s, then refused; 1 to 127.0.0.1:%[1]s): lost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name, _ := tc.addrs(t)
			_, port, _ := net.SplitHostPort(name)
			res, _, warn, err := datagrams(t, name, "one\n", bound, tc.retries)
			if want := "shout: line 1: " + fmt.Sprintf(tc.want, port, bound) + "\n"; err != nil || res.Lost != 1 || warn != want {
				t.Errorf("Datagrams: %+v, %v, warnings %q; want %q", res, err, warn, want)
			}
		})
	}
}

// A line refused late at a name's [::1] and too long for its 127.0.0.1
// is not sent (not in Sent), and neither are its retries (in Retries):
// its retry at [::1] was counted, a retry of no line sent.
func TestDatagramsNotSentLineHasNoRetries(t *testing.T) {
	name, sent4 := lateRefusal(t)
	long := strings.Repeat("a", client.MaxDatagram+10) // (less than client.MaxDatagram6)
	res, _, warn, err := datagrams(t, name, long+"\n", bound, 1)
	if err != nil || res != (client.DatagramResult{TooLong: 1}) || sent4() != 0 {
		t.Errorf("Datagrams: %+v, %v, warnings %q, %d sent to 127.0.0.1; want only 1 line too long", res, err, warn, sent4())
	}
}

// refusedThenSilent is a name for tests, as twoAddrsFor's, whose [::1]
// (six) refuses every datagram and whose 127.0.0.1 (server) answers
// none: each datagram it takes ends its wait (handTimeouts).
func refusedThenSilent(t *testing.T) (name, server, six string) {
	t.Helper()
	timeout := handTimeouts(t)
	server = udpServer(t, func(int) bool {
		timeout()
		return true
	})
	name, pc := twoAddrsFor(t, server)
	refuse(t, pc)
	_, port, _ := net.SplitHostPort(server)
	return name, server, net.JoinHostPort("::1", port)
}

// A line refused at once at a name's [::1] and lost at its 127.0.0.1
// had all its tries there: it says so as where there is one address,
// with no "0 to [::1]", its retries there are counted, and 127.0.0.1,
// which did not refuse it, is where the next line goes first.
func TestDatagramsRefusedThenLost(t *testing.T) {
	name, server, six := refusedThenSilent(t)
	var trace notifying
	c := client.Trace(dial(t, "udp", name), &trace)
	var out, warn bytes.Buffer
	res, err := client.Datagrams(c, tracedDialer(t, name, &trace), strings.NewReader("one\ntwo\n"), &out, &warn, bound, 1)
	if want := (client.DatagramResult{Sent: 2, Lost: 2, Retries: 2}); err != nil || res != want {
		t.Errorf("Datagrams: %+v, %v; want %+v", res, err, want)
	}
	var want string
	for _, n := range []int{1, 2} {
		want += fmt.Sprintf("shout: line %d: no reply from %s after 2 tries of %v: lost\n", n, server, bound)
	}
	if warn.String() != want {
		t.Errorf("warnings %q; want %q", warn.String(), want)
	}
	if got, want := connects(trace.String()), []string{six, server, server}; !slices.Equal(got, want) {
		t.Errorf("sockets connected to %v; want %v: line 2 to %s alone", got, want, server)
	}
}

// Over UDP a name's first address was the only one: udp://localhost:8080
// to shout serve (127.0.0.1) was refused at ::1, every line lost, where
// TCP went on to 127.0.0.1. A line refused at one address goes to the
// next, and later lines go there first: the trace shows one connect to
// [::1], each refused once.
func TestDatagramsRefusedGoesToNextAddress(t *testing.T) {
	name, server := twoAddrs(t)
	var trace notifying
	c := client.Trace(dial(t, "udp", name), &trace)
	redial := tracedDialer(t, name, &trace)
	var out, warn bytes.Buffer
	res, err := client.Datagrams(c, redial, strings.NewReader("one\ntwo\n"), &out, &warn, bound, 0)
	if err != nil || res.Answered != 2 || res.Lost != 0 || out.String() != "ONE\nTWO\n" || warn.Len() > 0 {
		t.Errorf("Datagrams: %+v, %v, out %q, warnings %q; want both lines answered by %s", res, err, out.String(), warn.String(), server)
	}
	if tr := trace.String(); strings.Count(tr, "connect([::1]") != 1 || strings.Count(tr, "connect("+server+")") != 2 || strings.Count(tr, "refused") != 1 {
		t.Errorf("trace:\n%s\nwant one connect to [::1], refused, and the lines sent to %s", tr, server)
	}
}

// connects is the addresses a trace's sockets were connected to, in order.
func connects(trace string) []string {
	var addrs []string
	for _, m := range regexp.MustCompile(`connect\(([^)]*)\)`).FindAllStringSubmatch(trace, -1) {
		addrs = append(addrs, m[1])
	}
	return addrs
}

// upperUntilClosed answers each datagram on pc with its uppercase until
// pc is closed, and then closes done.
func upperUntilClosed(pc net.PacketConn) (done chan struct{}) {
	done = make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1<<16)
		for {
			k, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(bytes.ToUpper(buf[:k]), from)
		}
	}()
	return done
}

// An address of a name that refused a line too is not where later lines
// go first: when each refused, the next line went first to the one that
// refused last, and so in turn, each line's refusal naming another
// address. A line refused at every address leaves the order as it was,
// the resolver's ([::1] first) or, once 127.0.0.1 took a line,
// 127.0.0.1 first: a server that comes back there is sent the next line
// alone, as at first, with no refusal at [::1]. A server that comes up
// while every address refuses is found by the next line.
func TestDatagramsRefusedEverywhereKeepsOrder(t *testing.T) {
	name, server, six, letGo := twoAddrsRefusing(t)
	// up starts a server at 127.0.0.1; stop stops it.
	up := func() (stop func()) {
		t.Helper()
		letGo(server)
		pc, err := net.ListenPacket("udp", server)
		if err != nil {
			t.Skipf("%s taken since: %v", server, err)
		}
		done := upperUntilClosed(pc)
		stop = func() { pc.Close(); <-done }
		t.Cleanup(stop)
		return stop
	}
	var trace notifying
	c := client.Trace(dial(t, "udp", name), &trace)
	redial := tracedDialer(t, name, &trace)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	warn := &notifying{wrote: make(chan struct{}, 1)}
	ran := make(chan error, 1)
	go func() {
		_, err := client.Datagrams(c, redial, inR, outW, warn, bound, 0)
		outW.Close()
		ran <- err
	}()
	replies := bufio.NewReader(outR)
	// line sends the line n, and waits for its reply, or its refusal.
	line := func(n int, text, reply string) {
		t.Helper()
		if _, err := io.WriteString(inW, text+"\n"); err != nil {
			t.Fatal(err)
		}
		if reply != "" {
			if got, err := replies.ReadString('\n'); err != nil || got != reply+"\n" {
				t.Fatalf("line %d: reply %q, %v; want %q", n, got, err, reply)
			}
			return
		}
		deadline := time.After(bound)
		for said := fmt.Sprintf("line %d: ", n); !strings.Contains(warn.String(), said); {
			select {
			case <-warn.wrote:
			case <-deadline:
				t.Fatalf("line %d never said refused; warnings %q", n, warn.String())
			}
		}
	}
	line(1, "one", "")
	line(2, "two", "")
	stop := up()
	line(3, "three", "THREE")
	stop()
	line(4, "four", "")
	up()
	line(5, "five", "FIVE")
	inW.Close()
	if _, err := io.ReadAll(replies); err != nil {
		t.Fatal(err)
	}
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	want := []string{six, server, six, server, six, server, server, six, server}
	if got := connects(trace.String()); !slices.Equal(got, want) {
		t.Errorf("sockets connected to %v; want %v (lines 1, 2 and 3 to [::1] first, 4 and 5 to %s)", got, want, server)
	}
	for _, n := range []int{1, 2} {
		if said := fmt.Sprintf("line %d: receive %s: connection refused: lost", n, server); !strings.Contains(warn.String(), said) {
			t.Errorf("warnings %q; want %q", warn.String(), said)
		}
	}
}

// writeFunc is a writer that gives each write to its func.
type writeFunc func(p []byte)

func (f writeFunc) Write(p []byte) (int, error) {
	f(p)
	return len(p), nil
}

// A line refused at every address of a name leaves [::1] where the next
// line goes first: a line there longer than IPv4 carries, and not IPv6,
// is sent, and a server that came up at [::1] since answers it. It was
// said too long for 127.0.0.1, where the line refused went last, and
// not sent.
func TestDatagramsRefusedEverywhereNextLineFitsFirstAddress(t *testing.T) {
	name, _, six, letGo := twoAddrsRefusing(t)
	long := strings.Repeat("a", client.MaxDatagram+10) // (less than client.MaxDatagram6)
	var warn bytes.Buffer
	var upErr error
	up := false
	w := writeFunc(func(p []byte) {
		warn.Write(p)
		if up || !bytes.HasPrefix(p, []byte("shout: line 1: ")) {
			return
		}
		up = true // before line 2 is read: a server at [::1]
		letGo(six)
		pc, err := net.ListenPacket("udp", six)
		if err != nil {
			upErr = err
			return
		}
		done := upperUntilClosed(pc)
		t.Cleanup(func() { pc.Close(); <-done })
	})
	c := dial(t, "udp", name)
	defer c.Close()
	var out bytes.Buffer
	res, err := client.Datagrams(c, dialer(t, name), strings.NewReader("one\n"+long+"\n"), &out, w, bound, 0)
	if upErr != nil {
		t.Skipf("%s taken since: %v", six, upErr)
	}
	if want := (client.DatagramResult{Sent: 2, Answered: 1, Lost: 1}); err != nil || res != want || out.String() != strings.ToUpper(long)+"\n" {
		t.Errorf("Datagrams: %+v, %v, %d bytes out, warnings %q; want %+v, line 2 answered at [::1]", res, err, out.Len(), warn.String(), want)
	}
}

// A line that IPv6 carries and IPv4 does not, to a name whose [::1]
// refused and whose 127.0.0.1 answered: the line after the refusal went
// to 127.0.0.1 first, as each later one does, and its send failed
// ("message too long"), which ended the run, the lines after it unsent.
// The first line, refused at [::1], is not sent to 127.0.0.1 either: it
// is said too long for it, as the third is, in the same words. (It was
// said "connection refused: lost", and counted in the sum's "lines got
// no reply", from a server that answered every line it could take.) The
// lines after them are answered, sent to 127.0.0.1 first: [::1] is
// connected to once.
func TestDatagramsLongLineAfterNextAddress(t *testing.T) {
	name, _ := twoAddrs(t)
	long := strings.Repeat("a", client.MaxDatagram+10) // (less than client.MaxDatagram6)
	var trace notifying
	c := client.Trace(dial(t, "udp", name), &trace)
	defer c.Close()
	var o, w bytes.Buffer
	res, err := client.Datagrams(c, tracedDialer(t, name, &trace), strings.NewReader(long+"\none\n"+long+"\ntwo\n"), &o, &w, bound, 0)
	out, warn := o.String(), w.String()
	if err != nil || res.Answered != 2 || res.Lost != 0 || res.Sent != 2 || res.TooLong != 2 || out != "ONE\nTWO\n" {
		t.Errorf("Datagrams: %+v, %v, out %q, warnings %q; want lines 2 and 4 answered, 1 and 3 too long", res, err, out, warn)
	}
	if got := strings.Count(trace.String(), "connect([::1]"); got != 1 {
		t.Errorf("[::1] connected to %d times; want once, for line 1:\n%s", got, trace.String())
	}
	var want string
	for _, n := range []int{1, 3} {
		want += fmt.Sprintf("shout: line %d: longer than %d bytes, the most one datagram carries: not sent\n", n, client.MaxDatagram)
	}
	if warn != want {
		t.Errorf("warnings %q; want %q", warn, want)
	}
	if got, want := res.Problem(), fmt.Sprintf("2 lines longer than %d bytes not sent", client.MaxDatagram); got != want {
		t.Errorf("Problem() = %q, want %q", got, want)
	}
}

// Lines too long for IPv4, to a name whose [::1] refused and whose
// 127.0.0.1 was taken: each is said longer than IPv4's most, the limit of
// where lines go, and so is the sum of them. The sum named IPv6's, c's
// ("2 lines longer than 65527 bytes not sent" after two warnings of
// 65507), and so did the warning of a line longer than both. Whether the
// line refused at [::1] was answered at 127.0.0.1 or too long for it,
// later lines go to 127.0.0.1 first, and are said over its limit.
func TestDatagramsLongLinesAfterNextAddressSaidAtIPv4Limit(t *testing.T) {
	ipv4Only := strings.Repeat("a", client.MaxDatagram+10) // (less than client.MaxDatagram6)
	longer := strings.Repeat("b", 70000)                   // (more than both)
	for _, tc := range []struct {
		name           string
		in             string
		answered, lost int
		tooLong        []int // the lines said too long
	}{
		{"one for IPv6, then longer than both", "one\n" + ipv4Only + "\n" + longer + "\ntwo\n", 2, 0, []int{2, 3}},
		{"longer than both first", "one\n" + longer + "\ntwo\n", 2, 0, []int{2}},
		{"after a line refused, one for IPv6, then longer than both", ipv4Only + "\n" + ipv4Only + "\n" + longer + "\ntwo\n", 1, 0, []int{1, 2, 3}},
		{"after a line refused, longer than both", ipv4Only + "\n" + longer + "\ntwo\n", 1, 0, []int{1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name, _ := twoAddrs(t)
			res, out, warn, err := datagrams(t, name, tc.in, bound, 0)
			if err != nil || res.Answered != tc.answered || res.Lost != tc.lost || res.TooLong != len(tc.tooLong) || !strings.HasSuffix(out, "TWO\n") {
				t.Fatalf("Datagrams: %+v, %v, out %q, warnings %q; want %d answered, %d lost, lines %v too long", res, err, out, warn, tc.answered, tc.lost, tc.tooLong)
			}
			for _, n := range tc.tooLong {
				if want := fmt.Sprintf("shout: line %d: longer than %d bytes,", n, client.MaxDatagram); !strings.Contains(warn, want) {
					t.Errorf("warnings %q; want %q", warn, want)
				}
			}
			lines := fmt.Sprintf("%d lines", len(tc.tooLong))
			if len(tc.tooLong) == 1 {
				lines = "1 line"
			}
			if got, want := res.Problem(), fmt.Sprintf("%s longer than %d bytes not sent", lines, client.MaxDatagram); !strings.HasSuffix(got, want) || strings.Contains(got, "IPv6") {
				t.Errorf("Problem() = %q, want it to end %q", got, want)
			}
		})
	}
}

// The sum names each limit that lines were said to be over, and how many
// lines were over each.
func TestDatagramResultProblem(t *testing.T) {
	for _, tc := range []struct {
		res  client.DatagramResult
		want string
	}{
		{client.DatagramResult{Sent: 2, Answered: 2}, ""},
		{client.DatagramResult{Sent: 3, Lost: 1}, "1 of 3 lines got no reply"},
		{client.DatagramResult{TooLong: 1}, "1 line longer than 65507 bytes not sent"},
		{client.DatagramResult{TooLong: 2, TooLong6: 2}, "2 lines longer than 65527 bytes not sent"},
		{client.DatagramResult{Sent: 2, Lost: 2, TooLong: 3, TooLong6: 1}, "2 of 2 lines got no reply; 3 lines not sent: 1 longer than 65527 bytes (IPv6), 2 longer than 65507 bytes (IPv4)"},
	} {
		if got := tc.res.Problem(); got != tc.want {
			t.Errorf("%+v: Problem() = %q, want %q", tc.res, got, tc.want)
		}
	}
}

// A line lost at one of a name's addresses (no reply: the server there
// may have taken it, and be slow) is not sent to the next: only a
// refusal says nothing was taken there. Sent on, a line a server took
// would be taken twice, by two servers.
func TestDatagramsLostNotSentElsewhere(t *testing.T) {
	server := udpServer(t, func(int) bool { return false })
	name, pc := twoAddrsFor(t, server)
	timeout := handTimeouts(t)
	go func() { // takes every datagram and answers none
		buf := make([]byte, 1<<16)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			timeout()
		}
	}()
	var trace notifying
	c := client.Trace(dial(t, "udp", name), &trace)
	var out, warn bytes.Buffer
	res, err := client.Datagrams(c, dialer(t, name), strings.NewReader("one\n"), &out, &warn, bound, 0)
	if err != nil || res.Lost != 1 || res.Answered != 0 || out.Len() > 0 {
		t.Errorf("Datagrams: %+v, %v, out %q, warnings %q; want the line lost at [::1]", res, err, out.String(), warn.String())
	}
	if tr := trace.String(); strings.Contains(tr, "connect("+server+")") {
		t.Errorf("trace:\n%s\nwant nothing sent to %s", tr, server)
	}
}

// A name whose first address cannot be dialled (here a link-local one
// without its interface: "invalid argument"; likewise ::1 where IPv6 is
// off) is dialled at its next, as net.Dialer goes on: Dial failed.
func TestDialUDPNameFirstAddressFails(t *testing.T) {
	client.SetLookup(t, func(ctx context.Context, network, host string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("fe80::1"), netip.MustParseAddr("127.0.0.1")}, nil
	})
	if c, err := net.Dial("udp", "[fe80::1]:9"); err == nil {
		c.Close()
		t.Skip("fe80::1 dialled here without its interface")
	}
	c, err := client.Dial(context.Background(), endpoint.Endpoint{Network: "udp", Address: "badfirst.test:9"}, bound)
	if err != nil {
		t.Fatalf("Dial: %v; want 127.0.0.1:9", err)
	}
	defer c.Close()
	if got := c.RemoteAddr().String(); got != "127.0.0.1:9" {
		t.Errorf("dialled %s; want 127.0.0.1:9", got)
	}
}

// A name looked up to one address is dialled at that address, not
// looked up again by the dial (which asked the resolver twice for each
// line's socket).
func TestDialUDPNameOneAddress(t *testing.T) {
	client.SetLookup(t, func(ctx context.Context, network, host string) ([]netip.Addr, error) {
		if host != "localhost" {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.2")}, nil // not what the system says
	})
	c := dial(t, "udp", "localhost:9")
	defer c.Close()
	if got := c.RemoteAddr().String(); got != "127.0.0.2:9" {
		t.Errorf("dialled %s; want 127.0.0.2:9, the address looked up", got)
	}
}

// A line longer than one datagram carries is reported as such, by its
// number, and not sent, however much longer; one that fits is sent whole,
// with or without a carriage return. (Lines up to 64 KiB got past the check, and
// failed to send with "message too long".)
func TestDatagramsLongLine(t *testing.T) {
	addr := udpServer(t, func(int) bool { return false })
	for _, tc := range []struct {
		name string
		line string
		ok   bool
	}{
		{"the most a datagram carries", strings.Repeat("a", client.MaxDatagram) + "\n", true},
		{"the most, with a carriage return", strings.Repeat("a", client.MaxDatagram) + "\r\n", true},
		{"one byte more", strings.Repeat("a", client.MaxDatagram+1) + "\n", false},
		{"up to 64 KiB", strings.Repeat("a", 65534) + "\n", false},
		{"past 64 KiB", strings.Repeat("a", 70000) + "\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, out, warn, err := answeredDatagrams(t, addr, tc.line, bound, 0)
			switch {
			case tc.ok && (err != nil || res.Answered != 1 || len(out) != client.MaxDatagram+1):
				t.Errorf("%+v, %v, %d bytes out; want it answered", res, err, len(out))
			case !tc.ok && (err != nil || res.Sent != 0 || res.TooLong != 1 || !strings.Contains(warn, "line 1: longer than")):
				t.Errorf("%+v, %v, warnings %q; want it reported as longer than a datagram, unsent", res, err, warn)
			}
		})
	}
}

// Over IPv6 a datagram carries 20 bytes more than over IPv4, and a line
// that fits is sent: every line past IPv4's most was refused as longer
// than "the most one datagram carries". An IPv4-mapped address is
// reached over IPv4, and has its limit.
func TestDatagramsLongLineIPv6(t *testing.T) {
	addr := shouttest.PacketServerIPv6(t, func(_ int, b []byte) [][]byte { return [][]byte{bytes.ToUpper(b)} })
	for _, tc := range []struct {
		name string
		size int
		ok   bool
	}{
		{"the most an IPv6 datagram carries", client.MaxDatagram6, true},
		{"one byte more", client.MaxDatagram6 + 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, out, warn, err := answeredDatagrams(t, addr, strings.Repeat("a", tc.size)+"\n", bound, 0)
			switch {
			case tc.ok && (err != nil || res.Answered != 1 || len(out) != tc.size+1):
				t.Errorf("%+v, %v, %d bytes out, warnings %q; want it answered", res, err, len(out), warn)
			case !tc.ok && (err != nil || res.Sent != 0 || res.TooLong != 1 || !strings.Contains(warn, fmt.Sprintf("longer than %d bytes", client.MaxDatagram6))):
				t.Errorf("%+v, %v, warnings %q; want it reported as longer than %d bytes, unsent", res, err, warn, client.MaxDatagram6)
			case !tc.ok && (res.TooLong6 != 1 || res.Problem() != fmt.Sprintf("1 line longer than %d bytes not sent", client.MaxDatagram6)):
				t.Errorf("%+v: Problem() = %q; want the line said over IPv6's limit, as its warning said", res, res.Problem())
			}
		})
	}
	for a, want := range map[string]int{"[::1]:9": client.MaxDatagram6, "[::ffff:127.0.0.1]:9": client.MaxDatagram, "127.0.0.1:9": client.MaxDatagram} {
		ua, err := net.ResolveUDPAddr("udp", a)
		if err != nil {
			t.Fatal(err)
		}
		if got := client.MaxPayload(ua); got != want {
			t.Errorf("MaxPayload(%s) = %d, want %d", a, got, want)
		}
	}
}

// One line too long for a datagram is reported, by its number, and the
// lines after it are sent: as a lost line, it fails alone. (It ended the
// run: "x", 70,000 bytes, "y" printed X, an error, and y was never sent.)
func TestDatagramsLongLineGoesOn(t *testing.T) {
	addr := udpServer(t, func(int) bool { return false })
	in := "x\n" + strings.Repeat("a", 70000) + "\n" + "y\n" + strings.Repeat("b", client.MaxDatagram+1)
	res, out, warn, err := answeredDatagrams(t, addr, in, bound, 0)
	if err != nil || out != "X\nY\n" || res.Sent != 2 || res.Answered != 2 || res.TooLong != 2 {
		t.Fatalf("%+v, %v, %q: want x and y answered, two lines too long", res, err, out)
	}
	for _, n := range []string{"line 2: longer than", "line 4: longer than"} {
		if !strings.Contains(warn, n) {
			t.Errorf("warnings %q lack %q", warn, n)
		}
	}
}

// Datagrams' zero timeout is Terminal's default, not a wait of nothing
// that loses every line at once, and retries below zero are none: each
// line is still sent once, not counted sent and lost unsent.
func TestDatagramsZeroTimeoutNegativeRetries(t *testing.T) {
	addr := udpServer(t, func(int) bool { return false })
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		retries int
	}{
		{"zero timeout", 0, 0},
		{"negative timeout", -time.Second, 0},
		{"negative retries", bound, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, out, warn, err := datagrams(t, addr, "one\ntwo\n", tc.timeout, tc.retries)
			want := client.DatagramResult{Sent: 2, Answered: 2}
			if err != nil || res != want || out != "ONE\nTWO\n" {
				t.Errorf("got %+v, %v, out %q, warn %q; want %+v", res, err, out, warn, want)
			}
		})
	}
}

// Handshake with a nil config checks the server as the defaults do (the
// system's roots), as bench.Config.TLS's nil does; it panicked.
func TestHandshakeNilConfig(t *testing.T) {
	cfg := selfSignedServer(t)
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(bound))
		tls.Server(c, cfg).Handshake() // fails: the client does not trust it
	})
	c := dial(t, "tcp", addr)
	_, err := client.Handshake(context.Background(), c, addr, nil, bound)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("Handshake with a nil config: %v; want the self-signed certificate refused as of an unknown authority", err)
	}
	// And what to do about it said, which crypto/tls does not.
	if err == nil || !strings.Contains(err.Error(), "TLSOptions.CA FILE, or TLSOptions.Insecure") {
		t.Errorf("Handshake: %v; want a hint of TLSOptions.CA and TLSOptions.Insecure", err)
	}
}

// A certificate out of its dates, from an authority trusted, is refused
// with the option that accepts it, as curl names its -k: it said
// crypto/tls's "certificate has expired or is not yet valid" alone.
func TestHandshakeOutOfDateNamesInsecure(t *testing.T) {
	serverCfg := selfSignedServer(t)
	c, err := serverCfg.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	// With authorities given (--ca), --insecure alone was named, and
	// added to them was refused: "--ca or --insecure, not both".
	const alone, inPlace = " (TLSOptions.Insecure accepts it, to try things out)", " (TLSOptions.Insecure in place of TLSOptions.CA accepts it, to try things out)"
	for _, tc := range []struct {
		name  string
		now   time.Time
		roots *x509.CertPool
		want  string
	}{
		{"expired", leaf.NotAfter.Add(time.Hour), roots, inPlace},
		{"not yet valid", leaf.NotBefore.Add(-time.Hour), roots, inPlace},
		{"expired, the system's authorities", leaf.NotAfter.Add(time.Hour), nil, alone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := shouttest.StreamServer(t, func(c net.Conn) {
				c.SetDeadline(time.Now().Add(bound))
				tls.Server(c, serverCfg).Handshake() // fails: the client refuses it
			})
			cfg := &tls.Config{RootCAs: tc.roots, Time: func() time.Time { return tc.now }}
			_, err := client.Handshake(context.Background(), dial(t, "tcp", addr), addr, cfg, bound)
			want := tc.want
			var invalid x509.CertificateInvalidError
			if !errors.As(err, &invalid) || invalid.Reason != x509.Expired || !strings.HasSuffix(err.Error(), want) {
				t.Errorf("Handshake: %v; want a certificate out of date, and %s", err, want)
			}
		})
	}
}

// A certificate that the authority given with TLSOptions.CA did not sign
// is said so, naming the file: the hint to pass the authority with
// TLSOptions.CA FILE was given to those who had, and sent them looking for
// the option.
func TestHandshakeUntrustedWithCA(t *testing.T) {
	cfg := selfSignedServer(t)
	// Another authority, which signed nothing the server has.
	other, err := certs.SelfSigned([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	otherCert, err := other.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	withCA := func(name string) (string, *tls.Config) {
		ca := filepath.Join(dir, name)
		if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: otherCert.Certificate[0]}), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := client.TLSOptions{CA: ca}.Config()
		if err != nil {
			t.Fatal(err)
		}
		return ca, cfg
	}
	ca, caCfg := withCA("other-ca.pem")
	// A file name with a character that is not printable (a no-break
	// space, as pasted), which the error shows escaped.
	_, oddCACfg := withCA("other\u00a0ca.pem")
	oddShown := filepath.Join(dir, `other\u00a0ca.pem`)
	// The same pool in a config the caller made: the file is not known.
	byHand := &tls.Config{RootCAs: caCfg.RootCAs.Clone()}
	flags := func(f string) string {
		return map[string]string{"TLSOptions.CA": "--ca", "TLSOptions.Insecure": "--insecure"}[f]
	}
	byFlags := strings.NewReplacer("TLSOptions.CA", "--ca", "TLSOptions.Insecure", "--insecure")
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
		want string
	}{
		{"TLSOptions.CA", caCfg, "(no authority in " + ca + " signed it: pass the one that did with TLSOptions.CA FILE, or TLSOptions.Insecure to try things out)"},
		{"TLSOptions.CA, its name escaped", oddCACfg, "(no authority in " + oddShown + " signed it: pass the one that did with TLSOptions.CA FILE, or TLSOptions.Insecure to try things out)"},
		{"RootCAs", byHand, "(no authority given signed it: pass the one that did with TLSOptions.CA FILE, or TLSOptions.Insecure to try things out)"},
		{"system's", nil, "(pass the authority that signed it with TLSOptions.CA FILE, or TLSOptions.Insecure to try things out)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := shouttest.StreamServer(t, func(c net.Conn) {
				c.SetDeadline(time.Now().Add(bound))
				tls.Server(c, cfg).Handshake() // fails: the client does not trust it
			})
			_, err := client.Handshake(context.Background(), dial(t, "tcp", addr), addr, tc.cfg, bound)
			var unknown x509.UnknownAuthorityError
			if !errors.As(err, &unknown) || !strings.HasSuffix(err.Error(), tc.want) {
				t.Errorf("Handshake: %v; want an unknown authority, and %s", err, tc.want)
			}
			// A program names the options its own way (shout: --ca),
			// whatever the text around them: escaping it for the
			// terminal left the fields' names in it.
			if got, want := named.Text(err, flags), byFlags.Replace(err.Error()); got != want {
				t.Errorf("named by flags: %s\nwant %s", got, want)
			}
		})
	}
}

// TLSOptions.Config's errors name the options by their fields: a
// program using the client has no flag of shout connect's (--ca), which
// shout's errors name instead.
func TestTLSOptionsErrorsNameFields(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "text.pem")
	if err := os.WriteFile(text, []byte("not PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		name string
		o    client.TLSOptions
		want string
	}{
		{"CA and Insecure", client.TLSOptions{CA: text, Insecure: true},
			"TLSOptions.CA or TLSOptions.Insecure, not both: TLSOptions.Insecure accepts any server certificate, TLSOptions.CA's authorities included"},
		{"no CA file", client.TLSOptions{CA: missing}, "TLSOptions.CA: open " + missing + ": no such file or directory"},
		{"CA not PEM", client.TLSOptions{CA: text}, "TLSOptions.CA " + text + ": no PEM certificate in it"},
		{"Cert alone", client.TLSOptions{Cert: text}, "TLSOptions.Cert and TLSOptions.Key go together"},
		{"Cert not PEM", client.TLSOptions{Cert: text, Key: text}, "TLSOptions.Cert " + text + ": no PEM certificate in it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if runtime.GOOS == "windows" && tc.name == "no CA file" {
				t.Skip("Windows words a missing file otherwise")
			}
			_, err := tc.o.Config()
			if err == nil || err.Error() != tc.want {
				t.Errorf("Config: %v, want %s", err, tc.want)
			}
		})
	}
}

// TestTerminalRunLeavesConfig: Run filled its default Timeout into the
// caller's Terminal, so a Terminal used again, or read after, had 2 s
// where its owner had left zero.
func TestTerminalRunLeavesConfig(t *testing.T) {
	notTTY, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer notTTY.Close()
	c, s := net.Pipe()
	defer s.Close()
	var errs bytes.Buffer
	term := &client.Terminal{Addr: "pipe", In: notTTY, Out: io.Discard, Err: &errs}
	if code := term.Run(c); code != 1 {
		t.Errorf("Run on %s: exit status %d, want 1", os.DevNull, code)
	}
	if !strings.Contains(errs.String(), "shout: terminal:") {
		t.Errorf("Run on %s said %q, want a terminal error", os.DevNull, errs.String())
	}
	if term.Timeout != 0 {
		t.Errorf("Timeout after Run: %v, want the 0 the caller set", term.Timeout)
	}
}

// A tls:// address whose server speaks plain text, the mistake shout's
// own plain server invites, was told in crypto/tls's words: "error
// decoding message", or "received unexpected handshake message of type
// *tls.clientHelloMsg", as the uppercase changed the hello it sent back
// or did not; a server with a greeting, "first record does not look like
// a TLS handshake"; one that closed, "EOF".
func TestHandshakePlainServer(t *testing.T) {
	for _, tc := range []struct {
		name, addr, want string
	}{
		{"shout", startShout(t), "the server sent the TLS hello back, as an echo or uppercase server does: it does not speak TLS (connect without tls://)"},
		{"echo", shouttest.StreamServer(t, func(c net.Conn) { io.Copy(c, c) }), "the server sent the TLS hello back"},
		{"greeting", shouttest.StreamServer(t, func(c net.Conn) {
			c.Write([]byte("220 ready\r\nmore\r\n"))
			io.Copy(io.Discard, c)
		}), `the server does not speak TLS: it sent "220 ready\r\n" (connect without tls://)`},
		{"closes", shouttest.StreamServer(t, func(c net.Conn) {
			c.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, c)
		}), "the server closed the connection before it answered the TLS hello"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 5 { // the uppercase changes a different hello each time
				_, err := client.DialTLS(context.Background(), endpoint.Endpoint{Network: "tcp", Address: tc.addr, TLS: true}, bound, &tls.Config{InsecureSkipVerify: true})
				want := "tls handshake with " + tc.addr + ": " + tc.want
				if err == nil || !strings.HasPrefix(err.Error(), want) {
					t.Fatalf("DialTLS to a plain-text server: %v; want %q", err, want)
				}
			}
		})
	}
}

// A TLS server's first bytes are not taken for a plain server's.
func TestHandshakeTLSServerErrorKept(t *testing.T) {
	cfg := selfSignedServer(t)
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(bound))
		tls.Server(c, cfg).Handshake() // fails: the client does not trust it
	})
	_, err := client.DialTLS(context.Background(), endpoint.Endpoint{Network: "tcp", Address: addr, TLS: true}, bound, nil)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) || strings.Contains(err.Error(), "TLS:") {
		t.Errorf("DialTLS to an untrusted TLS server: %v; want the certificate refused", err)
	}
}

// A server's certificate names are its own to choose, and a dNSName may
// hold any ASCII byte, ESC and newlines included: crypto/tls's "certificate
// is valid for NAMES, not HOST" put them raw in the error that connect and
// bench print, so a server anyone connects to by name (no --insecure
// needed: the name is checked before the authority) could retitle the
// user's terminal, clear it, or forge a line under "shout: ".
func TestHandshakeServerNamesEscaped(t *testing.T) {
	evil := "evil\x1b]0;owned\x07\x1b[2J\r\nshout: all right\x7f"
	msg := refusedForNames(t, []string{evil}, "localhost", false).Error()
	if strings.ContainsFunc(msg, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		t.Errorf("Handshake's error holds control characters: %q", msg)
	}
	if want := `evil\x1b]0;owned\a\x1b[2J\r\nshout: all right\x7f, not localhost`; !strings.Contains(msg, want) {
		t.Errorf("Handshake: %s; want it to hold %s", msg, want)
	}
}

// A certificate for names, from a server dialled by its address (a load
// balancer poked at its IP), or one for addresses, dialled by a name:
// crypto/tls's "cannot validate certificate for 127.0.0.1 because it
// doesn't contain any IP SANs" and "certificate is not valid for any
// names, but wanted to match localhost" named none of the names the
// certificate holds, where the README says a certificate that names
// other hosts is refused naming them. Each refusal says what to do, as
// one out of date does: it said the names, and not that a name of them
// is the way in, nor the option that tries things out without one.
func TestHandshakeOtherKindOfNameNamed(t *testing.T) {
	const insecure, inPlace = "TLSOptions.Insecure", "TLSOptions.Insecure in place of TLSOptions.CA"
	for _, tc := range []struct {
		name       string
		names      []string
		serverName string // "": the address dialled, 127.0.0.1
		ca         bool   // authorities given (TLSOptions.CA)
		want       string
	}{
		{"names, dialled by address", []string{"example.com", "www.example.com"}, "", false, "x509: certificate is valid for example.com, www.example.com, not 127.0.0.1 (it names no IP address: connect by one of its names, or " + insecure + " to try things out)"},
		{"addresses, dialled by name", []string{"127.0.0.1", "::1"}, "localhost", false, "x509: certificate is valid for 127.0.0.1, ::1, not localhost (it names no host name: connect by one of its addresses, or " + insecure + " to try things out)"},
		{"other names", []string{"example.com", "www.example.com"}, "localhost", false, "x509: certificate is valid for example.com, www.example.com, not localhost (connect by a name it holds, or " + insecure + " to try things out)"},
		{"other names, CA given", []string{"example.com"}, "localhost", true, "x509: certificate is valid for example.com, not localhost (connect by a name it holds, or " + inPlace + " to try things out)"},
		// crypto/tls names the addresses alone.
		{"other address, and names", []string{"example.com", "127.0.0.2"}, "", false, "x509: certificate is valid for 127.0.0.2, not 127.0.0.1 (it names example.com too: connect by a name it holds, or " + insecure + " to try things out)"},
		{"other name, and addresses", []string{"example.com", "127.0.0.2", "::2"}, "localhost", true, "x509: certificate is valid for example.com, not localhost (it names 127.0.0.2, ::2 too: connect by a name it holds, or " + inPlace + " to try things out)"},
		// No name to connect by.
		{"no names", nil, "localhost", false, "x509: certificate is not valid for any names, but wanted to match localhost (it holds no name to connect by: " + insecure + " accepts it, to try things out)"},
		{"no names, dialled by address", nil, "", true, "x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs (it holds no name to connect by: " + inPlace + " accepts it, to try things out)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := refusedForNames(t, tc.names, tc.serverName, tc.ca); !strings.HasSuffix(err.Error(), tc.want) {
				t.Errorf("Handshake: %v; want it to end %s", err, tc.want)
			}
		})
	}
}

// refusedForNames is Handshake's error with serverName (the address
// dialled if ""), and authorities given if ca, of a server whose
// certificate is for names; the test fails unless it refused the
// certificate for its names.
func refusedForNames(t *testing.T, names []string, serverName string, ca bool) error {
	t.Helper()
	store, err := certs.SelfSigned(names)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := certs.ServerConfig(store, "")
	if err != nil {
		t.Fatal(err)
	}
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(bound))
		tls.Server(c, cfg).Handshake() // fails: the name is not the one asked for
	})
	clientCfg := &tls.Config{ServerName: serverName}
	if ca {
		clientCfg.RootCAs = x509.NewCertPool() // the name is checked first
	}
	_, err = client.Handshake(context.Background(), dial(t, "tcp", addr), addr, clientCfg, bound)
	var hostname x509.HostnameError
	if !errors.As(err, &hostname) {
		t.Fatalf("Handshake: %v; want the certificate refused for its names", err)
	}
	return err
}

// failAfter is an input that gives first, then, once shown is closed (at
// once if it is nil), fails with err, as a read of a directory does.
type failAfter struct {
	first []byte
	shown chan struct{}
	err   error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if len(f.first) > 0 {
		n := copy(p, f.first)
		f.first = f.first[n:]
		return n, nil
	}
	if f.shown != nil {
		select {
		case <-f.shown:
		case <-time.After(bound):
		}
	}
	return 0, f.err
}

// Input that fails (shout connect ADDR < /) ends the exchange at once
// with its error: it waited out the silence window (--timeout) for a
// server that owed nothing, or had answered all that was sent.
func TestPipeInputErrorEndsAtOnce(t *testing.T) {
	errIsDir := &os.PathError{Op: "read", Path: "/dev/stdin", Err: syscall.EISDIR}
	for _, tc := range []struct {
		name, sent, want string
	}{
		{"nothing sent", "", ""},
		{"a line answered", "a\n", "A\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := neverClosingServer(t)
			out := newShown(tc.want)
			in := &failAfter{first: []byte(tc.sent), err: errIsDir}
			if tc.want != "" {
				in.shown = out.shown
			}
			type result struct {
				res client.PipeResult
				err error
			}
			c := dial(t, "tcp", addr)
			t.Cleanup(func() { c.Close() }) // (before the server's, which waits for its handler)
			done := make(chan result, 1)
			go func() {
				res, err := client.Pipe(c, in, out, time.Hour)
				done <- result{res, err}
			}()
			select {
			case r := <-done:
				if !errors.Is(r.err, syscall.EISDIR) || out.String() != tc.want {
					t.Errorf("got %q, %+v, %v; want %q and the input's error", out.String(), r.res, r.err, tc.want)
				}
			case <-time.After(bound):
				t.Fatalf("still waiting %v after the input failed (silence window 1h)", bound)
			}
		})
	}
}

// neverClosingServer is a stand-in server that answers each line in
// uppercase and never closes a connection: only the client (or the
// test's end) ends it.
func neverClosingServer(t *testing.T) string {
	release := make(chan struct{})
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			c.Write(append(bytes.ToUpper(sc.Bytes()), '\n'))
		}
		<-release
	})
	// Registered after StreamServer's cleanup, so that it runs before it
	// (cleanups run last first): that one waits for its handlers, which
	// wait for this.
	t.Cleanup(func() { close(release) })
	return addr
}

// An input failure the sender stores between the reader's two looks at
// it (is input done; did it fail) ends the exchange at once: looked at
// as sendFailed, then inputDone, it was missed, and the silence's
// deadline set over the sender's wake-up (CI waited out --timeout). The
// input fails only once the reader has made its first look.
func TestPipeInputErrorBetweenTheReadersLooks(t *testing.T) {
	errIsDir := &os.PathError{Op: "read", Path: "/dev/stdin", Err: syscall.EISDIR}
	looked, stored := make(chan struct{}), make(chan struct{})
	var first, done sync.Once
	client.SetPipeLooks(t,
		func() {
			first.Do(func() {
				close(looked)
				select { // (bounded: a hook that never ran held Pipe, and the test, for ever)
				case <-stored:
				case <-time.After(bound):
					t.Errorf("the sender never said its input was done, %v after it failed", bound)
				}
			})
		},
		func() { done.Do(func() { close(stored) }) })
	addr := neverClosingServer(t)
	c := dial(t, "tcp", addr)
	t.Cleanup(func() { c.Close() }) // (before the server's, which waits for its handler)
	in := readerFunc(func([]byte) (int, error) { <-looked; return 0, errIsDir })
	ended := make(chan error, 1)
	go func() {
		_, err := client.Pipe(c, in, io.Discard, time.Hour)
		ended <- err
	}()
	select {
	case err := <-ended:
		if !errors.Is(err, syscall.EISDIR) {
			t.Errorf("Pipe: %v; want the input's error", err)
		}
	case <-time.After(bound):
		c.Close()
		<-ended
		t.Fatalf("still waiting %v after the input failed between the reader's looks (silence window 1h)", bound)
	}
}

// readerFunc is an io.Reader that is a function.
type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
