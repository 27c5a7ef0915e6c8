package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"shout/endpoint"
	"shout/internal/shouttest"
	"shout/server"
	"shout/upper"
)

const bound = 10 * time.Second

// serveProc is a `shout serve` process started by a test.
type serveProc struct {
	t     *testing.T
	cmd   *exec.Cmd
	mu    sync.Mutex
	addrs map[string]string // network → address it listens on
	log   shouttest.Log     // what it wrote to stderr, as far as it was read
	done  chan struct{}     // closed when it has exited and err is set
	err   error             // from Wait
}

var listening = regexp.MustCompile(`listening on (\w+)://(\S+?)["\s]`)

// startServe runs shout serve with args and waits for its listeners,
// reading its stderr until it exits.
func startServe(t *testing.T, env []string, args ...string) *serveProc {
	t.Helper()
	return start(t, env, false, args)
}

// startStuck runs shout serve with args and a stderr that nobody reads
// once it has said where it listens, as when whatever collects the log
// hangs: the pipe fills and every write to it blocks.
func startStuck(t *testing.T, args ...string) *serveProc {
	t.Helper()
	return start(t, nil, true, args)
}

func start(t *testing.T, env []string, stuck bool, args []string) *serveProc {
	t.Helper()
	return startUnder(t, env, stuck, nil, nil, args)
}

// startUnder is start, shout run by the command line under (timeout 1h)
// if it is not empty, and setup, if not nil, called before the start.
func startUnder(t *testing.T, env []string, stuck bool, under []string, setup func(*exec.Cmd), args []string) *serveProc {
	t.Helper()
	p := &serveProc{t: t, addrs: map[string]string{}, done: make(chan struct{})}
	line := append(append(slices.Clone(under), "shout", "serve"), args...)
	p.cmd = exec.Command(line[0], line[1:]...)
	if setup != nil {
		setup(p.cmd)
	}
	p.cmd.Env = append(os.Environ(), env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		readySent := false
		for !(stuck && readySent) && sc.Scan() {
			line := sc.Text()
			p.log.Write([]byte(line + "\n"))
			p.mu.Lock()
			if m := listening.FindStringSubmatch(line + " "); m != nil {
				p.addrs[m[1]] = m[2]
			}
			// serving datagrams is logged at debug only; the last listener
			// line is followed by nothing we can wait on, so count them.
			if !readySent && len(p.addrs) == p.want(args) {
				close(ready)
				readySent = true
			}
			p.mu.Unlock()
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	select {
	case <-ready:
	case <-p.done:
		t.Fatalf("shout serve exited: %v\n%s", p.err, p.logText())
	case <-time.After(bound):
		t.Fatalf("shout serve did not listen within %v\n%s", bound, p.logText())
	}
	return p
}

// want is how many distinct networks the arguments listen on.
func (p *serveProc) want(args []string) int {
	n := map[string]bool{}
	plain := true
	serve := serveNode(p.t)
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			if flagTakesNext(serve, a) {
				i++ // --mode echo: echo is no address
			}
			continue
		}
		plain = false
		switch {
		case strings.HasPrefix(a, "tcp://"):
			n["tcp"] = true
		case strings.HasPrefix(a, "udp://"):
			n["udp"] = true
		case strings.HasPrefix(a, "unix://"):
			n["unix"] = true
		case strings.HasPrefix(a, "tls://"):
			n["tls"] = true
		default:
			n["tcp"], n["udp"] = true, true
		}
	}
	if plain {
		return 2
	}
	return len(n)
}

func (p *serveProc) logText() string { return p.log.String() }

// waitLog waits until the log says s, failing the test after bound.
func (p *serveProc) waitLog(s string) {
	p.t.Helper()
	if !p.log.WaitFor(s, bound) {
		p.t.Fatalf("shout serve did not log %q within %v:\n%s", s, bound, p.logText())
	}
}

func (p *serveProc) addr(network string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addrs[network]
}

// wait waits for the process to exit and returns its exit status.
func (p *serveProc) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
		var ee *exec.ExitError
		if errors.As(p.err, &ee) {
			return ee.ExitCode()
		}
		if p.err != nil {
			p.t.Fatal(p.err)
		}
		return 0
	case <-time.After(bound):
		p.t.Fatalf("shout serve did not exit within %v\n%s", bound, p.logText())
		return -1
	}
}

// exchange sends msg to addr over network and returns the reply, within
// bound. Over UDP it sends msg again when no reply came and the kernel
// counted a drop meanwhile (see exchangeDatagram).
func exchange(t *testing.T, network, addr, msg string) string {
	t.Helper()
	c, err := net.DialTimeout(network, addr, bound)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if network == "udp" {
		return exchangeDatagram(t, c, msg)
	}
	c.SetDeadline(time.Now().Add(bound))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4*len(msg))
	n, err := io.ReadAtLeast(c, buf, 1)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

// datagramSends bounds how many times exchangeDatagram sends msg.
const datagramSends = 3

// exchangeDatagram sends msg on c, a UDP socket dialed to shout, and
// returns the first reply, within bound. A datagram the kernel dropped,
// at the machine's loopback backlog (a burst of other packages' tests
// fills it) or at either socket, its receive buffer full, never comes
// back, and the kernel counts it: when no reply has come and those
// counters rose since the last send, msg is sent again, datagramSends
// times at most. A reply that does not come while they hold still is
// shout's loss, and fails t. (A reply that comes twice, to msg sent
// again, is one the test no longer reads.)
func exchangeDatagram(t *testing.T, c net.Conn, msg string) string {
	t.Helper()
	local, remote := c.LocalAddr().(*net.UDPAddr).Port, c.RemoteAddr().(*net.UDPAddr).Port
	drops := func() int64 {
		return shouttest.BacklogDrops() + shouttest.UDPSocketDrops(local) + shouttest.UDPSocketDrops(remote)
	}
	end := time.Now().Add(bound)
	buf := make([]byte, 4*len(msg)+1)
	sends, first := 0, drops()
	for before := first; ; {
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		sends++
		for {
			// Looks at the counters ten times a second; only a reply
			// or the bound ends the wait.
			wait := time.Now().Add(100 * time.Millisecond)
			if wait.After(end) {
				wait = end
			}
			c.SetReadDeadline(wait)
			n, err := c.Read(buf)
			if err == nil {
				return string(buf[:n])
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal(err)
			}
			if !time.Now().Before(end) {
				t.Fatalf("no reply to %q in %v, sent %d times; the kernel dropped %d datagrams meanwhile (the loopback backlog, the sockets on ports %d and %d)",
					msg, bound, sends, drops()-first, local, remote)
			}
			if now := drops(); now > before && sends < datagramSends {
				before = now
				break // send again
			}
		}
	}
}

// serveEngines are the engines the tests of serve's stop, signals and
// limits run under, as the server package's tests run under both: the
// event loops (auto, where they serve) and a goroutine per connection.
var serveEngines = []string{"auto", "goroutine"}

func TestServeSIGTERMThenRestart(t *testing.T) {
	for _, engine := range serveEngines {
		t.Run(engine, func(t *testing.T) { testServeSIGTERMThenRestart(t, engine) })
	}
}

func testServeSIGTERMThenRestart(t *testing.T, engine string) {
	p := startServe(t, nil, "--engine="+engine, "127.0.0.1:0")
	addr := p.addr("tcp")
	if p.addr("udp") != addr {
		t.Fatalf("tcp on %s, udp on %s: want the same port", addr, p.addr("udp"))
	}
	if got := exchange(t, "udp", addr, "hello egon 哈哈哈"); got != "HELLO EGON 哈哈哈" {
		t.Errorf("udp: got %q", got)
	}
	c, err := net.DialTimeout("tcp", addr, bound)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(bound))
	io.WriteString(c, "hello egon 哈哈哈\n")
	got := make([]byte, len("HELLO EGON 哈哈哈\n"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "HELLO EGON 哈哈哈\n" {
		t.Fatalf("tcp: got %q, %v", got, err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Errorf("exit status %d after SIGTERM with a client connected, want 0\n%s", code, p.logText())
	}
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
		t.Errorf("client after shutdown: %q, %v; want EOF", rest, err)
	}
	if !strings.Contains(p.logText(), "reason=shutdown") || !strings.Contains(p.logText(), "stopped") {
		t.Errorf("no close with reason shutdown, or no stopped line:\n%s", p.logText())
	}
	// At once, on the same port.
	q := startServe(t, nil, "--engine="+engine, addr)
	if got := exchange(t, "tcp", q.addr("tcp"), "again"); got != "AGAIN" {
		t.Errorf("after restart: got %q", got)
	}
}

func TestServeSecondSignalStopsAtOnce(t *testing.T) {
	for _, engine := range serveEngines {
		for _, timeout := range []string{"1h", "0"} {
			t.Run(engine+", shutdown-timeout="+timeout, func(t *testing.T) {
				p := startServe(t, nil, "--engine="+engine, "--shutdown-timeout="+timeout, "tcp://127.0.0.1:0")
				busyClient(t, p.addr("tcp"))
				p.cmd.Process.Signal(syscall.SIGTERM)
				p.cmd.Process.Signal(syscall.SIGINT)
				p.wait()
				if !strings.Contains(p.logText(), "second signal") {
					t.Errorf("no second-signal line:\n%s", p.logText())
				}
			})
		}
	}
}

// A second SIGTERM is the same request as the first, not a plea to hurry:
// a supervisor sends one and then SIGKILL, and one sent again asks for
// the same stop. (GNU timeout's copy of its own is a copy: see echoes.) The stop stays graceful: the
// client busy when it began gets every reply, then end of file.
func TestServeSecondSIGTERMStaysGraceful(t *testing.T) {
	p := startServe(t, nil, "--shutdown-timeout=0", "tcp://127.0.0.1:0")
	c := busyClient(t, p.addr("tcp"))
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitLog("shutting down")
	// Sent again, not a relay's copy (see echoes): not the wait for
	// something, but what makes it a second.
	time.Sleep(echoWindow)
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitLog("already stopping")
	p.cmd.Process.Signal(syscall.SIGTERM) // logged once
	checkGracefulStop(t, p, c)
	if n := strings.Count(p.logText(), "already stopping"); n != 1 {
		t.Errorf("%d already-stopping lines, want 1:\n%s", n, p.logText())
	}
}

// checkGracefulStop checks that c, a busyClient of p, which was
// signalled to stop, reads every reply and then end of file, and that
// p exits 0 and logs no stop cut short.
func checkGracefulStop(t *testing.T, p *serveProc, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(bound))
	got, err := io.ReadAll(c)
	if err != nil || len(got) == 0 || len(bytes.Trim(got, "Z")) != 0 {
		t.Errorf("client read %d bytes (%d not Z), %v; want its replies, then end of file", len(got), len(bytes.Trim(got, "Z")), err)
	}
	if code := p.wait(); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	if log := p.logText(); strings.Contains(log, "stopping now") || strings.Contains(log, "still busy") {
		t.Errorf("a stop cut short:\n%s", log)
	}
}

// busyClient connects to addr and sends until the server is stuck writing
// replies it never reads, so that the connection holds up a graceful stop.
func busyClient(t *testing.T, addr string) net.Conn {
	t.Helper()
	// A small receive buffer, set before connecting: shrunk after the
	// handshake, below the window already offered, it makes loopback TCP
	// crawl through retransmissions (1 MB in 30 s), and reading the replies
	// later would take longer than any bound.
	d := net.Dialer{Timeout: bound, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { setRcvbuf(fd, 4<<10) })
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// Served first, not only queued in the listener's backlog: the
	// writes below go there as well, for 300 ms, and a server that a
	// busy machine kept from accepting meanwhile reset the connection
	// with its listener when signalled to stop (the stop tests read
	// "connection reset by peer", the server's log had no open line).
	c.SetDeadline(time.Now().Add(bound))
	if _, err := io.WriteString(c, "z"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatalf("busy client: no reply: %v", err)
	}
	c.SetDeadline(time.Time{})
	c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	chunk := bytes.Repeat([]byte("z"), 64<<10)
	for range 4096 {
		if _, err := c.Write(chunk); err != nil {
			break
		}
	}
	c.SetWriteDeadline(time.Time{})
	return c
}

// idleClient connects to addr and checks that it is served, so that a
// graceful stop will end it with end of file.
func idleClient(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, bound)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(bound))
	io.WriteString(c, "idle\n")
	got := make([]byte, len("IDLE\n"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "IDLE\n" {
		t.Fatalf("idle client: got %q, %v", got, err)
	}
	return c
}

// With --shutdown-timeout 0 a graceful stop waits for every connection,
// here one whose client reads its replies only after the signal.
func TestServeShutdownTimeoutZeroWaits(t *testing.T) {
	for _, engine := range serveEngines {
		t.Run(engine, func(t *testing.T) { testServeShutdownTimeoutZeroWaits(t, engine) })
	}
}

func testServeShutdownTimeoutZeroWaits(t *testing.T, engine string) {
	p := startServe(t, nil, "--engine="+engine, "--shutdown-timeout=0", "tcp://127.0.0.1:0")
	c := busyClient(t, p.addr("tcp"))
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitLog("shutting down")
	c.SetReadDeadline(time.Now().Add(bound))
	got, err := io.ReadAll(c)
	if err != nil || len(got) == 0 || len(bytes.Trim(got, "Z")) != 0 {
		t.Errorf("client after SIGTERM read %d bytes (%d not Z), %v; want its replies, then end of file", len(got), len(bytes.Trim(got, "Z")), err)
	}
	if code := p.wait(); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	if log := p.logText(); strings.Contains(log, "still busy") || !strings.Contains(log, "reason=shutdown") {
		t.Errorf("want a graceful close and no forced one:\n%s", log)
	}
}

// Over --max-conns or --max-conns-per-ip a connection reads end of file,
// not a reset, even if it has sent something; the log names the flag.
func TestServeMaxConns(t *testing.T) {
	for _, flag := range []string{"--max-conns", "--max-conns-per-ip"} {
		for _, engine := range serveEngines {
			t.Run(flag[2:]+"/"+engine, func(t *testing.T) { testServeMaxConns(t, engine, flag) })
		}
	}
}

func testServeMaxConns(t *testing.T, engine, flag string) {
	p := startServe(t, nil, "--engine="+engine, flag+"=1", "tcp://127.0.0.1:0")
	addr := p.addr("tcp")
	idleClient(t, addr) // served, so counted
	c, err := net.DialTimeout("tcp", addr, bound)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(bound))
	io.WriteString(c, "let me in\n")
	if got, err := io.ReadAll(c); err != nil || len(got) != 0 {
		t.Errorf("second connection: read %q, %v; want end of file", got, err)
	}
	c.Close() // the server lingers until the client is done
	p.waitLog("connection rejected")
	// By the flag that sets it, not the server's Go field (MaxConns).
	if !strings.Contains(p.logText(), "reached ("+flag+")") || strings.Contains(p.logText(), "MaxConns") {
		t.Errorf("rejection does not name the limit's flag %s:\n%s", flag, p.logText())
	}
}

// --trace names a limit as the log does, by the flag that sets it, not the
// server's Go field (MaxConns, SourceRate): a learner knows the flags.
func TestServeTraceNamesLimitFlags(t *testing.T) {
	p := startServe(t, nil, "--trace", "--max-conns=1", "--source-rate=1", "tcp://127.0.0.1:0", "udp://127.0.0.1:0")
	idleClient(t, p.addr("tcp")) // served, so counted
	c, err := net.DialTimeout("tcp", p.addr("tcp"), bound)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(bound))
	io.ReadAll(c) // rejected: end of file
	c.Close()
	p.waitLog("close(): rejected")
	u, err := net.Dial("udp", p.addr("udp"))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	io.WriteString(u, "over a budget of one byte\n")
	p.waitLog("no sendto: over budget")
	for _, want := range []string{"connection limit reached (--max-conns)", "spent its bytes for now (--source-rate)"} {
		if !strings.Contains(p.logText(), want) {
			t.Errorf("trace lacks %q:\n%s", want, p.logText())
		}
	}
	if strings.Contains(p.logText(), "(MaxConns)") || strings.Contains(p.logText(), "(SourceRate)") {
		t.Errorf("trace names a Server field, not a flag:\n%s", p.logText())
	}
}

// SIGQUIT stops at once, without the Go runtime's stack dump.
func TestServeSIGQUIT(t *testing.T) {
	for _, engine := range serveEngines {
		t.Run(engine, func(t *testing.T) { testServeSIGQUIT(t, engine) })
	}
}

func testServeSIGQUIT(t *testing.T, engine string) {
	p := startServe(t, nil, "--engine="+engine, "--shutdown-timeout=1h", "tcp://127.0.0.1:0")
	busyClient(t, p.addr("tcp"))
	p.cmd.Process.Signal(syscall.SIGQUIT)
	if code := p.wait(); code != 0 {
		t.Errorf("exit status %d after SIGQUIT, want 0", code)
	}
	if log := p.logText(); strings.Contains(log, "goroutine ") || !strings.Contains(log, "signal=quit") || !strings.Contains(log, "stopped") {
		t.Errorf("want a line for the signal, the stopped line and no stack dump:\n%s", log)
	}
}

// stuckConns is enough connections, each logged twice, to fill a pipe's
// 64 KiB and the log's buffer of 512 KiB behind it (asynclog), some
// 900 KB of lines.
const stuckConns = 4000

// A stderr nobody reads must not stop the server: it serves, and it stops
// on a signal.
func TestServeStuckStderr(t *testing.T) {
	p := startStuck(t, "tcp://127.0.0.1:0")
	connectMany(t, p.addr("tcp"), stuckConns)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
}

func TestServeStuckStderrStopsAtOnce(t *testing.T) {
	tests := []struct {
		name    string
		signals []os.Signal
	}{
		{"SIGINT after SIGTERM", []os.Signal{syscall.SIGTERM, syscall.SIGINT}},
		{"SIGQUIT", []os.Signal{syscall.SIGQUIT}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := startStuck(t, "--shutdown-timeout=1h", "tcp://127.0.0.1:0")
			addr := p.addr("tcp")
			connectMany(t, addr, stuckConns/4)
			idle := idleClient(t, addr)
			busyClient(t, addr) // holds up a graceful stop for an hour
			for i, s := range tc.signals {
				if i > 0 {
					// The idle client's end of file says the signal before
					// was taken: two pending SIGTERMs would be one.
					idle.SetReadDeadline(time.Now().Add(bound))
					if _, err := io.ReadAll(idle); err != nil {
						t.Fatalf("idle client after %v: %v; want end of file", tc.signals[i-1], err)
					}
				}
				p.cmd.Process.Signal(s)
			}
			if code := p.wait(); code != 0 {
				t.Errorf("exit status %d, want 0", code)
			}
		})
	}
}

// A log on a pipe read slowly (`shout serve 2>&1 | jq`, here one not read
// at all) loses its last lines at exit, when a second after the signal is
// not enough, but leaves whole lines: the process exited while its log's
// write waited for the reader, and the reader got half a line last.
func TestServeExitLeavesWholeLogLines(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command("shout", "serve", "--log-format=json", "tcp://127.0.0.1:0")
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()
	var log bytes.Buffer // what the test read
	in := bufio.NewReader(r)
	listens := make(chan string, 1)
	go func() {
		defer close(listens)
		for {
			line, err := in.ReadString('\n')
			log.WriteString(line)
			if m := listening.FindStringSubmatch(line + " "); m != nil {
				listens <- m[2]
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var addr string
	select {
	case addr = <-listens:
	case <-time.After(bound):
	}
	if addr == "" {
		cmd.Process.Kill()
		for range listens { // the reader's end of file
		}
		t.Fatalf("shout serve did not listen within %v:\n%s", bound, log.String())
	}
	// Nobody reads: 1,000 connections' lines, some 250 KB, fill the pipe,
	// and wait in the log's buffer.
	connectMany(t, addr, 1000)
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("after SIGTERM: %v, want status 0", err)
		}
	case <-time.After(bound):
		t.Fatalf("shout serve did not exit within %v of SIGTERM", bound)
	}
	rest, err := io.ReadAll(in)
	if err != nil {
		t.Fatal(err)
	}
	log.Write(rest)
	lines := strings.SplitAfter(log.String(), "\n")
	if last := lines[len(lines)-1]; last != "" {
		t.Fatalf("the log ends in half a line, after %d bytes: %q", log.Len(), last)
	}
	lines = lines[:len(lines)-1]
	for i, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Fatalf("line %d of %d is not JSON: %q", i, len(lines), l)
		}
	}
	if strings.Contains(lines[len(lines)-1], `"msg":"stopped"`) {
		t.Fatalf("the whole log was written (%d lines): the pipe did not fill", len(lines))
	}
}

// connectMany opens n connections to addr one after another and checks
// each is served: a line answered on every hundredth, end of file for end
// of file on all.
func connectMany(t *testing.T, addr string, n int) {
	t.Helper()
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, bound)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		c.SetDeadline(time.Now().Add(bound))
		if i%100 == 0 {
			msg := "line " + strconv.Itoa(i) + "\n"
			got := make([]byte, len(msg))
			io.WriteString(c, msg)
			if _, err := io.ReadFull(c, got); err != nil || string(got) != strings.ToUpper(msg) {
				c.Close()
				t.Fatalf("connection %d: got %q, %v; want %q", i, got, err, strings.ToUpper(msg))
			}
		}
		c.(*net.TCPConn).CloseWrite()
		rest, err := io.ReadAll(c)
		c.Close()
		if err != nil || len(rest) != 0 {
			t.Fatalf("connection %d: read %q, %v; want end of file", i, rest, err)
		}
	}
}

func TestServeAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	out, err := exec.Command("shout", "serve", "tcp://"+ln.Addr().String()).CombinedOutput()
	if code := exitCode(err); code != 1 || !regexp.MustCompile(`^shout: listen tcp 127.0.0.1:\d+: bind: address already in use\n$`).Match(out) {
		t.Errorf("status %d, output %q", code, out)
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestServeUnixSocketAfterKill(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "shout.sock")
	p := startServe(t, nil, "unix://"+sock)
	if got := exchange(t, "unix", sock, "über"); got != "ÜBER" {
		t.Errorf("got %q", got)
	}
	p.cmd.Process.Kill() // leaves the socket file behind
	p.wait()
	q := startServe(t, nil, "unix://"+sock)
	if got := exchange(t, "unix", sock, "again"); got != "AGAIN" {
		t.Errorf("after restart: got %q", got)
	}
	q.cmd.Process.Signal(syscall.SIGINT)
	if code := q.wait(); code != 0 {
		t.Errorf("exit status %d", code)
	}
}

func TestServeEnvAndJSONLogs(t *testing.T) {
	p := startServe(t, []string{"SHOUT_MODE=ascii", "SHOUT_LOG_FORMAT=json", "SHOUT_VERBOSE=true"}, "tcp://[::1]:0")
	if got := exchange(t, "tcp", p.addr("tcp"), "straße\x1b"); got != "STRAßE\x1b" {
		t.Errorf("ascii mode from SHOUT_MODE: got %q", got)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait()
	lines := strings.Split(strings.TrimSpace(p.logText()), "\n")
	var sawMessage bool
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("not a JSON log line: %q", l)
		}
		// Escaped before it is logged: even a viewer that decodes the
		// JSON shows the escape, not the control character.
		if rec["msg"] == "message" && rec["data"] == `straße\x1b` {
			sawMessage = true
		}
		// A string, as "none" is without one: it was a number of
		// nanoseconds, and a pipeline that fixes a field's type met both.
		if rec["msg"] == "shutting down" && rec["timeout"] != "10s" {
			t.Errorf("shutting down with timeout %#v, want \"10s\"", rec["timeout"])
		}
	}
	if !sawMessage || strings.ContainsRune(p.logText(), 0x1b) {
		t.Errorf("message not logged, or logged raw:\n%s", p.logText())
	}
}

// A 16 MiB message with no newline streams through in bounded memory:
// the server's peak resident memory grows by far less than the message.
// (Growth, not the peak itself: the process is this test binary, whose
// size at rest depends on what the tests link in and on -race.)
func TestServeLargeMessageBoundedMemory(t *testing.T) {
	p := startServe(t, nil, "tcp://127.0.0.1:0")
	rss := func(field string) int {
		status, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/status")
		if err != nil {
			t.Skip("no /proc: ", err)
		}
		m := regexp.MustCompile(field + `:\s+(\d+) kB`).FindSubmatch(status)
		if m == nil {
			t.Skip("no " + field)
		}
		kb, _ := strconv.Atoi(string(m[1]))
		return kb
	}
	before := rss("VmRSS")
	c, err := net.DialTimeout("tcp", p.addr("tcp"), bound)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * bound))
	msg := bytes.Repeat([]byte("streaming straße 哈 "), 16<<20/24)
	go func() {
		c.Write(msg)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.ReplaceAll(bytes.ToUpper(msg), []byte("ß"), []byte("SS"))
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d", len(got), len(want))
	}
	peak := rss("VmHWM")
	if grew := peak - before; grew > 8<<10 { // the message alone is 16 MiB, its reply 17
		t.Errorf("peak RSS %d KiB, %d KiB more than at rest, while streaming 16 MiB", peak, grew)
	}
	t.Logf("peak RSS %d KiB, %d KiB at rest", peak, before)
}

var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"shoutserve": cmdShoutServe,
	"execudp":    cmdExecUDP,
}

// cmdShoutServe starts an in-process shout server on a free port of
// 127.0.0.1, TCP and UDP, and sets $HOST, $PORT and $ADDR for the script.
// Its arguments are a mode and a language tag, both optional.
func cmdShoutServe(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! shoutserve")
	}
	mode, lang := "upper", ""
	if len(args) > 0 {
		mode = args[0]
	}
	if len(args) > 1 {
		lang = args[1]
	}
	m, err := upper.ParseMode(mode)
	ts.Check(err)
	tr, err := upper.New(m, lang)
	ts.Check(err)
	eps, err := endpoint.Parse("127.0.0.1:0", "tcp", "udp")
	ts.Check(err)
	lns, pcs, err := endpoint.Listen(eps)
	ts.Check(err)
	srv := &server.Server{Transformer: tr, Logger: slog.New(slog.DiscardHandler)}
	go srv.Serve(lns[0])
	go srv.ServePacket(pcs[0])
	ts.Defer(func() { srv.Close() })
	addr := lns[0].Addr().String()
	host, port, _ := net.SplitHostPort(addr)
	ts.Setenv("HOST", host)
	ts.Setenv("PORT", port)
	ts.Setenv("ADDR", addr)
}

// cmdExecUDP runs a shout bench over UDP as exec does, and tells the
// datagrams the kernel dropped from those bench miscounts lost. Those
// the kernel dropped since the run began, at the machine's loopback
// backlog (shouttest.BacklogDrops), the UDP socket on $PORT
// (shoutserve's) or bench's own sockets (which bench says), never reached
// shout or bench, and bench rightly counts them lost, status 1 (a burst
// of other packages' tests overflows the 1,000-packet backlog: a run at
// load 19 lost some). The run fails the script unless its stdout says
// none wrong and no more lost than those; a run that lost none must be
// all right, status 0.
func cmdExecUDP(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: execudp shout bench udp://$ADDR [flags]")
	}
	port, err := strconv.Atoi(ts.Getenv("PORT"))
	ts.Check(err)
	backlog, socket := shouttest.BacklogDrops(), shouttest.UDPSocketDrops(port)
	runErr := ts.Exec(args[0], args[1:]...)
	dropped := shouttest.BacklogDrops() - backlog + shouttest.UDPSocketDrops(port) - socket
	out := ts.ReadFile("stdout")
	m := regexp.MustCompile(`(\d+) wrong, (\d+) lost`).FindStringSubmatch(out)
	if m == nil {
		ts.Fatalf("no count of wrong and lost in bench's stdout (%v)", runErr)
	}
	wrong, _ := strconv.ParseInt(m[1], 10, 64)
	lost, _ := strconv.ParseInt(m[2], 10, 64)
	if m := regexp.MustCompile(`(\d+) dropped by bench's own sockets`).FindStringSubmatch(out); m != nil {
		byBench, _ := strconv.ParseInt(m[1], 10, 64)
		dropped += byBench
	}
	switch {
	case wrong != 0:
		ts.Fatalf("%d wrong", wrong)
	case lost > dropped:
		ts.Fatalf("%d lost, but the kernel dropped %d (socket buffers, the loopback backlog): %d lost that it did not drop", lost, dropped, lost-dropped)
	case lost == 0 && (runErr != nil || !strings.Contains(out, "every reply checked: all right")):
		ts.Fatalf("none lost, none wrong, and not all right (%v)", runErr)
	case lost > 0 && runErr == nil:
		ts.Fatalf("%d lost, and status 0", lost)
	case dropped > 0:
		ts.Logf("%d datagrams dropped by the kernel while bench ran (socket buffers, the loopback backlog); %d lost", dropped, lost)
	}
}

// With --trace each connection writes its lines to stderr itself, so a
// stderr that nobody reads holds the connections up (as the README says),
// but must not hold up the stop: after the shutdown timeout the
// connections are closed and shout exits. It waited for them for ever,
// whatever signal came.
func TestServeTraceStuckStderrStops(t *testing.T) {
	p := startStuck(t, "--trace", "--shutdown-timeout=1s", "tcp://127.0.0.1:0")
	addr := p.addr("tcp")
	held := 0        // connections in a row not answered: held up writing their trace
	for range 5000 { // bounded: each trace line is over 100 bytes, and the pipe holds 64 KiB
		c, err := net.DialTimeout("tcp", addr, bound)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(500 * time.Millisecond))
		io.WriteString(c, "a line to trace, long enough to fill the pipe soon\n")
		_, err = c.Read(make([]byte, 100))
		c.Close()
		if err == nil {
			held = 0
		} else if held++; held == 3 {
			break
		}
	}
	if held < 3 {
		t.Fatal("5,000 connections served with a stderr nobody reads")
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
}

// When whatever reads shout's stderr goes away (`shout serve 2>&1 | grep
// -m1 listening`), the log lines are lost, not the server: it died of
// SIGPIPE at the next log write, and every client after was refused.
func TestServeStderrReaderGone(t *testing.T) {
	cmd := exec.Command("shout", "serve", "tcp://127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	line, err := bufio.NewReader(stderr).ReadString('\n')
	m := listening.FindStringSubmatch(line)
	if err != nil || m == nil {
		t.Fatalf("first line %q, %v", line, err)
	}
	stderr.Close() // the reader is gone
	go func() { done <- cmd.Wait() }()
	// Each connection logs two lines; the log is written at most every
	// 100 ms, so half a second of them makes several writes.
	for start, i := time.Now(), 0; time.Since(start) < 500*time.Millisecond && i < 10000; i++ {
		if got := exchange(t, "tcp", m[2], "hello\n"); got != "HELLO\n" {
			t.Fatalf("exchange %d: got %q", i, got)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		done <- err // for the cleanup
		if err != nil {
			t.Errorf("after SIGTERM: %v, want exit status 0", err)
		}
	case <-time.After(bound):
		t.Fatalf("shout serve did not exit within %v of SIGTERM", bound)
	}
}
