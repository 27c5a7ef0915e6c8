package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
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
