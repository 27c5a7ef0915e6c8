package main

import (
	"io"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// shout serve --trace, as a learner runs it: the lesson's own Python
// client, lines sent together and apart, UDP. The trace lines are marked,
// the log's are not, and the replies are what they are without a trace.
func TestServeTrace(t *testing.T) {
	p := startServe(t, nil, "--trace", "127.0.0.1:0")
	addr := p.addr("tcp")
	p.waitLog("listen(")

	c, err := net.DialTimeout("tcp", addr, bound)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(bound))
	for _, step := range []struct{ send, reply string }{
		{"hello egon\nstraße\n", "HELLO EGON\nSTRASSE\n"},
		{"哈", "哈"},
	} {
		io.WriteString(c, step.send)
		buf := make([]byte, len(step.reply))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != step.reply {
			t.Fatalf("sent %q, got %q, %v", step.send, buf, err)
		}
	}
	c.(*net.TCPConn).CloseWrite()
	io.ReadAll(c)
	if got := exchange(t, "udp", p.addr("udp"), "straße"); got != "STRASSE" {
		t.Errorf("udp: got %q", got)
	}
	p.waitLog(`sendto(`)
	p.waitLog(`close(): eof`)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Errorf("exit status %d", code)
	}

	log := p.logText()
	for _, want := range []string{
		`(?m)^trace fd=\d+ socket\(AF_INET, SOCK_STREAM\) → fd \d+: the tcp socket to listen on$`,
		`(?m)^trace fd=\d+ setsockopt\(SOL_SOCKET, SO_REUSEADDR, 1\)`,
		`(?m)^trace fd=\d+ listen\(\d+\): `,
		`(?m)^trace fd=\d+ accept\(\) → fd \d+, client 127\.0\.0\.1:\d+`,
		`(?m)^trace fd=\d+ recv\(1024\) → 19 bytes "hello egon\\nstraße\\n": 2 lines in one read: TCP is a byte stream, not messages$`,
		`(?m)^trace fd=\d+ send\(19\) → 19 bytes "HELLO EGON\\nSTRASSE\\n"$`,
		`(?m)^trace fd=\d+ recv\(1024\) → 0 bytes: end of file`,
		`(?m)^trace fd=\d+ socket\(AF_INET, SOCK_DGRAM\)`,
		`(?m)^trace fd=\d+ recvfrom\(65535\) → 7 bytes from 127\.0\.0\.1:\d+ "straße"$`,
		`(?m)^trace fd=\d+ sendto\(127\.0\.0\.1:\d+, 7\) → 7 bytes "STRASSE"$`,
		`(?m)^time=\S+ level=INFO msg=open `,
		`(?m)^time=\S+ level=INFO msg=stopped`,
	} {
		if !regexp.MustCompile(want).MatchString(log) {
			t.Errorf("stderr lacks %s:\n%s", want, log)
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		if !strings.HasPrefix(l, "trace fd=") && !strings.HasPrefix(l, "time=") {
			t.Errorf("a line neither trace nor log: %q", l)
		}
	}
}

// The lesson's TCP client (section 3: the communication loop, its input
// replaced by a list) against shout serve --trace.
func TestServeTraceLessonClient(t *testing.T) {
	py := python(t)
	p := startServe(t, nil, "--trace", "tcp://127.0.0.1:0")
	host, port, _ := net.SplitHostPort(p.addr("tcp"))
	out, err := exec.Command(py, "-c", lessonTCPClient, host, port).CombinedOutput()
	if err != nil || string(out) != "HELLO EGON 哈哈哈\nSTRASSE\n" {
		t.Fatalf("lesson client: %q, %v", out, err)
	}
	p.waitLog("close(): eof")
	for _, want := range []string{
		`recv(1024) → 20 bytes "hello egon 哈哈哈"`,
		`send(20) → 20 bytes "HELLO EGON 哈哈哈"`,
		`recv(1024) → 7 bytes "straße"`,
		`send(7) → 7 bytes "STRASSE"`,
	} {
		if !strings.Contains(p.logText(), want) {
			t.Errorf("trace lacks %q:\n%s", want, p.logText())
		}
	}
}

const lessonTCPClient = `
import socket, sys
phone = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
phone.connect((sys.argv[1], int(sys.argv[2])))
for msg in ["hello egon 哈哈哈", "  ", "straße"]:
    msg = msg.strip()
    if not msg:
        continue
    phone.send(msg.encode("utf-8"))
    data = phone.recv(1024)
    print(data.decode("utf-8"))
phone.close()
`

// --trace with --admin traces as without it, and the connections are
// served by the goroutine the listening line names: the admin's metrics
// observer replaced the tracer, so that nothing was traced and the loops
// served.
func TestServeTraceWithAdmin(t *testing.T) {
	p := startServe(t, nil, "--trace", "--admin=127.0.0.1:0", "tcp://127.0.0.1:0")
	adminOf(p)
	c, err := net.DialTimeout("tcp", p.addr("tcp"), bound)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(bound))
	io.WriteString(c, "hello\n")
	buf := make([]byte, 6)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "HELLO\n" {
		t.Fatalf("got %q, %v", buf, err)
	}
	c.(*net.TCPConn).CloseWrite()
	io.ReadAll(c)
	c.Close()
	p.waitLog("msg=close")
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Errorf("exit status %d", code)
	}
	log := p.logText()
	for _, want := range []string{"engine=goroutine", "accept() → fd", `recv(1024) → 6 bytes "hello\n"`, `send(6) → 6 bytes "HELLO\n"`} {
		if !strings.Contains(log, want) {
			t.Errorf("--trace --admin: stderr lacks %q:\n%s", want, log)
		}
	}
}
