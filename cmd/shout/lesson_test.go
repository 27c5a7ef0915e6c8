package main

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The lesson's servers, as it writes them, but for binding port 0 and
// printing the port so the test knows where they are.
const lessonTCPServer = `
import socket
phone = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
phone.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
phone.bind(("127.0.0.1", 0))
phone.listen(5)
print(phone.getsockname()[1], flush=True)
while True:
    conn, client_addr = phone.accept()
    while True:
        try:
            data = conn.recv(1024)
            if not data:
                break
            conn.send(data.upper())
        except ConnectionResetError:
            break
    conn.close()
`

const lessonUDPServer = `
import socket
server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server.bind(("127.0.0.1", 0))
print(server.getsockname()[1], flush=True)
while True:
    data, client_addr = server.recvfrom(1024)
    server.sendto(data.upper(), client_addr)
`

func startPython(t *testing.T, script string) string {
	t.Helper()
	py := python(t)
	path := filepath.Join(t.TempDir(), "server.py")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	port, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("python server: %v", err)
	}
	return "127.0.0.1:" + strings.TrimSpace(port)
}

func TestConnectLessonServers(t *testing.T) {
	var in bytes.Buffer
	for i := range 20000 {
		in.WriteString("line of the lesson hello egon 哈哈哈 ")
		in.WriteString(strings.Repeat("x", i%50))
		in.WriteString("\n")
	}
	want := bytes.ToUpper(in.Bytes()) // bytes.upper(): ASCII only, as the lesson's server does

	t.Run("tcp pipe", func(t *testing.T) {
		addr := startPython(t, lessonTCPServer)
		cmd := exec.Command("shout", "connect", addr)
		cmd.Stdin = bytes.NewReader(in.Bytes())
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("%v: %s", err, errb.String())
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("got %d bytes, want %d", out.Len(), len(want))
		}
	})
	t.Run("udp", func(t *testing.T) {
		addr := startPython(t, lessonUDPServer)
		cmd := exec.Command("shout", "connect", "udp://"+addr)
		cmd.Stdin = strings.NewReader("hello egon 哈哈哈\n\nstraße\n")
		out, err := cmd.Output()
		if err != nil || string(out) != "HELLO EGON 哈哈哈\nSTRAßE\n" {
			t.Errorf("got %q, %v", out, err)
		}
	})
}

// lessonBlock is the first ```python block of docs/<doc> after the line
// heading, without its comments (the translations differ only in them).
func lessonBlock(t *testing.T, doc, heading string) string {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("..", "..", "docs", doc))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(text), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("%s: no %q", doc, heading)
	}
	_, after, ok = strings.Cut(after, "```python\n")
	block, _, ok2 := strings.Cut(after, "```\n")
	if !ok || !ok2 {
		t.Fatalf("%s: no python block after %q", doc, heading)
	}
	var code strings.Builder
	for _, l := range strings.Split(block, "\n") {
		if i := strings.Index(l, "  # "); i >= 0 {
			l = strings.TrimRight(l[:i], " ")
		}
		code.WriteString(l + "\n")
	}
	return code.String()
}

// The sticky packets program of the lesson (section 3, "TCP carries bytes,
// not messages"), as both translations write it, against shout serve
// --trace: it ends, prints what its comments say, and the server reads
// and holds back what the trace shown after it says. A client that sent
// both pieces of straße before reading could get both replies in one recv
// and wait for ever at the next; the deadline makes that a failure.
func TestLessonStickyPackets(t *testing.T) {
	py := python(t)
	prog := lessonBlock(t, "lesson.md", "### TCP carries bytes, not messages")
	if zh := lessonBlock(t, "lesson.zh-CN.md", "### TCP 传的是字节，不是消息"); zh != prog {
		t.Errorf("the translations' programs differ:\n%s\n%s", prog, zh)
	}
	if !strings.Contains(prog, "('127.0.0.1', 8080)") {
		t.Fatalf("the program does not connect to 127.0.0.1:8080:\n%s", prog)
	}
	p := startServe(t, nil, "--trace", "tcp://127.0.0.1:0")
	_, port, _ := net.SplitHostPort(p.addr("tcp"))
	prog = strings.Replace(prog, "8080", port, 1)

	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "-u", "-c", prog).CombinedOutput() // unbuffered: a timeout shows how far it got
	if ctx.Err() != nil {
		t.Fatalf("the program did not end within %v: %q", bound, out)
	}
	want := "b'ONE\\nTWO\\n'\nb'STRA'\nb'SSE\\n'\n1024 bytes in the first recv(1024)\n"
	if err != nil || string(out) != want {
		t.Fatalf("got %q, %v; want %q", out, err, want)
	}
	// How the connection ends (a reset, with the last reply unread, as the
	// lesson shows it) depends on whether the program's close came before
	// the server's last reply, which its 0.2 s sleep makes likely, not sure.
	p.waitLog("3016 bytes in")
	for _, want := range []string{
		`recv(1024) → 8 bytes "one\ntwo\n": 2 lines in one read`,
		`recv(1024) → 5 bytes "stra\xc3": ends inside a character`,
		`send(4) → 4 bytes "STRA"`,
		`holds back 1 byte "\xc3"`,
		`recv(1023) → 3 bytes "\x9fe\n": its first byte completes 'ß'`,
		`send(4) → 4 bytes "SSE\n"`,
		`recv(1024) → 1024 bytes`,
		`recv(32768) → 1976 bytes`,
	} {
		if !strings.Contains(p.logText(), want) {
			t.Errorf("trace lacks %q:\n%s", want, p.logText())
		}
	}
}

// python is the Python 3 interpreter's own executable, as it names
// itself (sys.executable), or the test is skipped if there is none. Found
// once, without a tight bound: python3 on PATH may be a shim (pyenv's is
// a shell script that runs several more) that on a loaded machine took
// the whole of a lesson program's 10 s to start it (CI: "the program did
// not end within 10s", the shim's "pyenv-which: echo: write error:
// Broken pipe" its only output).
func python(t *testing.T) string {
	t.Helper()
	pythonOnce.Do(func() {
		py, err := exec.LookPath("python3")
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, py, "-c", "import sys; print(sys.executable)").Output()
		pythonPath = py
		if exe := strings.TrimSpace(string(out)); err == nil && filepath.IsAbs(exe) {
			pythonPath = exe
		}
	})
	if pythonPath == "" {
		t.Skip("python3 is not installed")
	}
	return pythonPath
}

var (
	pythonOnce sync.Once
	pythonPath string
)
