package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"shout/internal/shouttest"
	"shout/server"
)

// screen collects what a program writes to its terminal, for tests to
// wait on.
type screen struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
	ended   chan struct{} // closed when the terminal's last byte is read
}

func newScreen(f *os.File) *screen {
	s := &screen{changed: make(chan struct{}), ended: make(chan struct{})}
	go func() {
		defer close(s.ended)
		b := make([]byte, 4096)
		for {
			n, err := f.Read(b)
			s.mu.Lock()
			s.buf.Write(b[:n])
			close(s.changed)
			s.changed = make(chan struct{})
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return s
}

// expect waits until the screen shows want after what earlier calls
// consumed, and consumes up to it. It returns what came before want.
func (s *screen) expect(t *testing.T, want string) (before string) {
	t.Helper()
	return s.expectWithin(t, want, bound)
}

// pasteBound limits expect after a paste of about a megabyte: the race
// build of the line editor spends some 2 µs of CPU on each byte typed,
// and on a loaded machine the seconds such a paste takes grew past bound.
// It is a net for a hang, not a measure of speed.
const pasteBound = time.Minute

// expectWithin is expect with its own time limit.
func (s *screen) expectWithin(t *testing.T, want string, d time.Duration) (before string) {
	t.Helper()
	timeout := time.After(d)
	for {
		s.mu.Lock()
		// Searched in place: a copy of the screen for every read of the
		// terminal made a paste of a megabyte cost the test half as much CPU
		// as the program it watches.
		i := bytes.Index(s.buf.Bytes(), []byte(want))
		if i >= 0 {
			before = string(s.buf.Next(i))
			s.buf.Next(len(want))
			s.mu.Unlock()
			return before
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-timeout:
			s.mu.Lock()
			defer s.mu.Unlock()
			t.Fatalf("terminal never showed %q; it shows %q", want, s.buf.String())
			return ""
		}
	}
}

// all waits until the program has written its last byte to the terminal
// (it has exited, and the terminal is read to its end), and returns what
// expect has not consumed. After the program's exit alone, its last
// lines may be unread still.
func (s *screen) all(t *testing.T) string {
	t.Helper()
	select {
	case <-s.ended:
	case <-time.After(bound):
		t.Fatalf("the terminal did not end within %v", bound)
	}
	return s.String()
}

// String is what the screen shows that expect has not consumed.
func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func startTerminal(t *testing.T, args ...string) (*exec.Cmd, *os.File, *screen) {
	t.Helper()
	return startOnTerminal(t, "shout", args...)
}

// startTerminalErrFile is startTerminal with standard error to a file of
// its own, as `2>err` gives it; it returns the file's path too.
func startTerminalErrFile(t *testing.T, args ...string) (*exec.Cmd, *os.File, *screen, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "err")
	errFile, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close() // shout has its own copy once started
	cmd, f, scr := startCmdOnTerminal(t, exec.Command("shout", args...), errFile)
	return cmd, f, scr, path
}

// startOnTerminal runs name, a command on $PATH, on a terminal of its own.
func startOnTerminal(t *testing.T, name string, args ...string) (*exec.Cmd, *os.File, *screen) {
	t.Helper()
	return startCmdOnTerminal(t, exec.Command(name, args...), nil)
}

// startCmdOnTerminal starts cmd on a terminal of its own, with standard
// error to stderr if that is not nil.
func startCmdOnTerminal(t *testing.T, cmd *exec.Cmd, stderr *os.File) (*exec.Cmd, *os.File, *screen) {
	t.Helper()
	cmd.Env = append(os.Environ(), "TERM=xterm")
	if stderr != nil {
		cmd.Stderr = stderr
	}
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 120})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); f.Close() })
	return cmd, f, newScreen(f)
}

func waitExit(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return exitCode(err)
	case <-time.After(bound):
		t.Fatal("shout connect did not exit")
		return -1
	}
}

func TestConnectTerminal(t *testing.T) {
	var log shouttest.Log
	addr := shouttest.Start(t, &server.Server{Logger: log.Logger()})
	history := filepath.Join(t.TempDir(), "history")
	cmd, f, scr := startTerminal(t, "connect", "--history", history, addr)

	scr.expect(t, addr+"> ")
	f.WriteString("hello egon 哈哈哈\r")
	scr.expect(t, "HELLO EGON 哈哈哈")
	scr.expect(t, addr+"> ")
	f.WriteString("   \r") // blank: not sent
	scr.expect(t, addr+"> ")
	f.WriteString("straße\r")
	scr.expect(t, "STRASSE")
	scr.expect(t, addr+"> ")
	f.WriteString("\x1b[A\r") // arrow up: the last line again
	scr.expect(t, "STRASSE")
	scr.expect(t, addr+"> ")
	f.WriteString("\x04") // Ctrl-D
	if code := waitExit(t, cmd); code != 0 {
		t.Errorf("exit status %d after Ctrl-D, want 0", code)
	}
	// The server got exactly the three lines, nothing for the blank one.
	want := len("hello egon 哈哈哈\n") + 2*len("straße\n")
	if !log.WaitFor("bytes_in="+strconv.Itoa(want)+" ", bound) {
		t.Errorf("server log has no bytes_in=%d:\n%s", want, log.String())
	}
	h, err := os.ReadFile(history)
	if err != nil || !strings.Contains(string(h), "hello egon 哈哈哈\nstraße\n") {
		t.Errorf("history %q, %v", h, err)
	}
}

func TestConnectTerminalCtrlC(t *testing.T) {
	addr := shouttest.Start(t, &server.Server{Logger: new(shouttest.Log).Logger()})
	cmd, f, scr := startTerminal(t, "connect", "--history", "-", addr)
	scr.expect(t, addr+"> ")
	f.WriteString("\x03")
	if code := waitExit(t, cmd); code != 0 {
		t.Errorf("exit status %d after Ctrl-C, want 0", code)
	}
}

// The server closes while the user is at the prompt: one line, status 1.
func TestConnectTerminalServerCloses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd, _, scr := startTerminal(t, "connect", "--history", "-", ln.Addr().String())
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	scr.expect(t, "> ")
	c.Close()
	scr.expect(t, "shout: "+ln.Addr().String()+" closed the connection")
	if code := waitExit(t, cmd); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
}

// On a terminal, shout bench shows a line a second while it measures.
func TestBenchProgressOnTerminal(t *testing.T) {
	addr := shouttest.Start(t, &server.Server{Logger: new(shouttest.Log).Logger()})
	cmd, _, scr := startTerminal(t, "bench", addr, "--conns", "2", "--warmup", "0", "--duration", "1500ms")
	scr.expect(t, "in the last 1.0s: ")        // the progress line, of that second alone
	scr.expect(t, "0 wrong  0 errors  0 lost") // the report says "0 wrong; 0 errors"
	scr.expect(t, "every reply checked: all right")
	if code := waitExit(t, cmd); code != 0 {
		t.Errorf("exit status %d", code)
	}
}

// With --reconnect, a server that closes is dialled again and the session
// goes on.
func TestConnectTerminalReconnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	cmd, f, scr := startTerminal(t, "connect", "--reconnect", "--history", "-", addr)
	first, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	scr.expect(t, addr+"> ")
	first.Close()
	scr.expect(t, "reconnecting")
	second, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	scr.expect(t, "reconnected to "+addr)
	// The prompt, drawn again.
	scr.expect(t, addr+"> ")
	go func() { // an uppercase server on the new connection
		buf := make([]byte, 1024)
		for {
			n, err := second.Read(buf)
			if err != nil {
				return
			}
			second.Write(bytes.ToUpper(buf[:n]))
		}
	}()
	f.WriteString("again\r")
	scr.expect(t, "AGAIN")
	f.WriteString("\x04")
	if code := waitExit(t, cmd); code != 0 {
		t.Errorf("exit status %d", code)
	}
}

// startReconnectToOne starts connect --reconnect at a terminal against a
// server that takes its first connection and no more: every redial is
// refused. It returns at the prompt, with the server's side of that
// connection. The port stays the test's (shouttest.ListenHeld): let go,
// a listener of the tests running at once could take it, and a redial
// reach that server.
func startReconnectToOne(t *testing.T) (addr string, c net.Conn, cmd *exec.Cmd, f *os.File, scr *screen) {
	t.Helper()
	ln := shouttest.ListenHeld(t)
	addr = ln.Addr().String()
	cmd, f, scr = startTerminal(t, "connect", "--reconnect", "--history", "-", addr)
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	scr.expect(t, addr+"> ")
	return addr, c, cmd, f, scr
}

// With --reconnect, a line the server closed on without answering is
// said so, and lines typed while no connection could be made are said
// not sent when the user leaves, with status 1: both were dropped
// without a word, and the session left with 0.
func TestConnectTerminalReconnectSaysWhatWasLost(t *testing.T) {
	_, c, cmd, f, scr := startReconnectToOne(t)
	f.WriteString("one\r")
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	c.Close() // read, and not answered
	if before := scr.expect(t, "reconnecting"); !strings.Contains(before, "1 line sent and not answered") {
		t.Errorf("the unanswered line not said: %q", before)
	}
	f.WriteString("two\r") // no connection: queued
	f.WriteString("\x04")
	scr.expect(t, "1 line not sent: no connection")
	if code := waitExit(t, cmd); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
}

// So are they when shout is stopped with SIGINT (kill -INT, not Ctrl-C,
// which the raw terminal makes a key): it left with status 0 and no word.
func TestConnectTerminalReconnectSIGINTSaysNotSent(t *testing.T) {
	addr, c, cmd, f, scr := startReconnectToOne(t)
	c.Close()
	scr.expect(t, "reconnecting")
	f.WriteString("two\r") // no connection: queued
	// The prompt after it: the session has the line (the editor reads
	// the next once the session took the last).
	scr.expect(t, "two\r\n")
	scr.expect(t, addr+"> ")
	cmd.Process.Signal(syscall.SIGINT)
	scr.expect(t, "1 line not sent: no connection")
	if code := waitExit(t, cmd); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
}

// With --reconnect, a server that stays down is said so, once, with why:
// after "reconnecting in 100ms" the prompt came back and nothing more
// was said while every dial was refused, as if the server were up and
// slow.
func TestConnectTerminalReconnectSaysServerDown(t *testing.T) {
	addr, c, cmd, f, scr := startReconnectToOne(t)
	c.Close()
	scr.expect(t, "reconnecting")
	scr.expect(t, "connect "+addr+": connection refused; trying again until it answers")
	f.WriteString("\x03")
	if code := waitExit(t, cmd); code != 0 {
		t.Errorf("exit status %d", code)
	}
}

// The prompt, and what it says, are escaped, as shout's last line is: a
// Unix socket's name with ESC and a newline in it, in the prompt and in
// the error of a redial, reached the terminal raw, a colour turned on
// and a line of shout's forged.
func TestConnectTerminalSaysTheNameEscaped(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no ESC or newline in a Windows file name")
	}
	dir := t.TempDir()
	ln, err := net.Listen("unix", filepath.Join(dir, "s\x1b[31m\nt"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd, f, scr := startTerminal(t, "connect", "--reconnect", "--history", "-", "unix://"+filepath.Join(dir, "s\x1b[31m\nt"))
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // and its socket's file removed: the redial finds none
	shown := filepath.Join(dir, `s\x1b[31m\nt`)
	before := scr.expect(t, shown+"> ") // the prompt
	c.Close()
	before += scr.expect(t, "connect "+shown+": no such socket; trying again until it answers")
	if strings.Contains(before, "\x1b[31m") {
		t.Errorf("the terminal got the name's ESC raw: %q", before)
	}
	f.WriteString("\x03")
	if code := waitExit(t, cmd); code != 0 {
		t.Errorf("exit status %d", code)
	}
}

// A server that stops reading holds up the lines typed, not the prompt:
// Ctrl-C and Ctrl-D still leave, and say the lines the server never took
// not sent. The session wrote each line itself, and once the socket's
// buffer was full it waited in that write for ever: deaf to Ctrl-C, to
// --timeout and to SIGTERM, with the terminal left raw.
func TestConnectTerminalServerStopsReading(t *testing.T) {
	for _, leave := range []struct{ name, key string }{{"Ctrl-C", "\x03"}, {"Ctrl-D", "\x04"}} {
		t.Run(leave.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s")
			ln, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			cmd, f, scr := startTerminal(t, "connect", "--history", "-", "--timeout", "100ms", "unix://"+path)
			c, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close() // and never read: a Unix socket's writer blocks once some 200 KB wait
			scr.expect(t, "> ")
			line := strings.Repeat("x", 60000) + "\r"
			f.WriteString(strings.Repeat(line, 16) + leave.key)
			before := scr.expectWithin(t, " not sent", pasteBound)
			if !regexp.MustCompile(`shout: [0-9]+ lines?$`).MatchString(before) {
				t.Errorf("not said how many lines were not sent: %q", before[max(len(before)-200, 0):])
			}
			if code := waitExit(t, cmd); code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
		})
	}
}

// With --reconnect, the lines a server that stopped reading never took
// go out again on the next connection: each line once (one cut short by
// the close whole again), none lost, in the order typed, and the lines
// the first connection did take said sent and not answered.
func TestConnectTerminalReconnectSendsUnwritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd, f, scr := startTerminal(t, "connect", "--history", "-", "--timeout", "100ms", "--reconnect", "unix://"+path)
	c1, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	scr.expect(t, "> ")
	var want []string
	for i := range 16 {
		want = append(want, fmt.Sprintf("%02d%s", i, strings.Repeat("x", 59998)))
	}
	want[15] += "END"
	f.WriteString(strings.Join(want, "\r") + "\r")
	scr.expectWithin(t, "END", pasteBound)
	scr.expect(t, "> ") // the session has every line
	// The lines typed fill the socket's buffers (about 200 KB); the
	// server's end of file ends the connection while the writer waits.
	// Nothing is read until the client says so, its writer stopped: read
	// before, the writer went on into the room made while the client's
	// reader had still to see the end of file, on a busy machine to the
	// last line.
	c1.(*net.UnixConn).CloseWrite()
	said := scr.expect(t, "reconnecting")
	first, err := io.ReadAll(c1) // until the client has closed
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(string(first), "\n")
	partial := got[len(got)-1]
	taken := got[:len(got)-1]
	for i, line := range taken {
		if line != want[i] {
			t.Fatalf("first connection's line %d: %.20q..., want %.20q...", i, line, want[i])
		}
	}
	if len(taken) == len(want) || !strings.HasPrefix(want[len(taken)], partial) {
		t.Fatalf("first connection took %d lines, then %d bytes not of the next", len(taken), len(partial))
	}
	if len(taken) > 0 && !strings.Contains(said, fmt.Sprintf("%d line", len(taken))+map[bool]string{true: "", false: "s"}[len(taken) == 1]+" sent and not answered") {
		t.Errorf("not said that %d lines were sent and not answered: %q", len(taken), said[max(len(said)-200, 0):])
	}
	c2, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	r := bufio.NewReaderSize(c2, 1<<17)
	for i := len(taken); i < len(want); i++ {
		line, err := r.ReadString('\n')
		if err != nil || line != want[i]+"\n" {
			t.Fatalf("second connection: %.20q..., %v; want line %d, %.20q...", line, err, i, want[i])
		}
	}
	scr.expect(t, "reconnected")
	f.WriteString("\x03")
	if code := waitExit(t, cmd); code != 0 {
		t.Errorf("exit status %d, want 0: every line went out", code)
	}
}

// With standard error redirected, at the prompt, the messages reach the
// file as lines, "\n" ended: they were written as to the raw terminal,
// with "\r\n".
func TestConnectTerminalStderrToFile(t *testing.T) {
	addr, conns := acceptOne(t)
	cmd, f, scr, errPath := startTerminalErrFile(t, "connect", "--history", "-", "--timeout", "100ms", addr)
	_, r := accepted(t, conns)
	scr.expect(t, addr+"> ")
	f.WriteString("first\r")
	readLine(t, r, "first") // never answered
	f.WriteString("\x04")   // leaves once the line is reported late
	if code := waitExit(t, cmd); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	got, err := os.ReadFile(errPath)
	if err != nil {
		t.Fatal(err)
	}
	if want := "shout: no reply within 100ms\n"; string(got) != want {
		t.Errorf("standard error has %q, want %q", got, want)
	}
}

// How the end is said in a file that standard error goes to. A reply cut
// short on the terminal puts no empty line in the file: the newline that
// ends the terminal's line before a message is the terminal's, not the
// file's. A server that closes without a byte back after a line was sent
// is said to be perhaps a TLS server sent plain text; one that answered
// something first is not.
func TestConnectTerminalStderrToFileAtClose(t *testing.T) {
	for _, tc := range []struct {
		name, reply, want string
	}{
		{"partial reply", "FIR", ""},
		{"silence", "", "; nothing came back, as from a TLS server sent plain text (if it serves TLS, connect to tls://ADDR), a server at its connection limit or waiting for a PROXY header, or a proxy with no server up behind it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, conns := acceptOne(t)
			cmd, f, scr, errPath := startTerminalErrFile(t, "connect", "--history", "-", addr)
			c, r := accepted(t, conns)
			scr.expect(t, addr+"> ")
			f.WriteString("first\r")
			readLine(t, r, "first")
			c.Write([]byte(tc.reply)) // and closes: shown, then the end said
			c.Close()
			if code := waitExit(t, cmd); code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			got, err := os.ReadFile(errPath)
			if err != nil {
				t.Fatal(err)
			}
			want := "shout: " + addr + " closed the connection, 1 line sent and not answered" + strings.ReplaceAll(tc.want, "ADDR", addr) + "\n"
			if string(got) != want {
				t.Errorf("standard error has %q, want %q", got, want)
			}
		})
	}
}

// A line whose write fails (the server took no more input; the
// connection is not over until it closes) is said not sent: without
// --reconnect it was in neither count, and only "broken pipe" was said.
func TestConnectTerminalWriteFailedSaysNotSent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd, f, scr := startTerminal(t, "connect", "--history", "-", "unix://"+path)
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A Unix socket's writer fails at once (EPIPE) once its peer reads no
	// more, and its reader sees nothing of it: the write fails first.
	if err := c.(*net.UnixConn).CloseRead(); err != nil {
		t.Fatal(err)
	}
	scr.expect(t, "> ")
	f.WriteString("lost\r")
	scr.expect(t, "1 line not sent")
	if code := waitExit(t, cmd); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
}
