package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
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

	"github.com/creack/pty"

	"shout/internal/shouttest"
	"shout/server"
)

// acceptOne listens on 127.0.0.1 and returns its address and a channel
// that gets the first connection.
func acceptOne(t *testing.T) (string, <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		ln.Close()
		if err == nil {
			conns <- c
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), conns
}

func accepted(t *testing.T, conns <-chan net.Conn) (net.Conn, *bufio.Reader) {
	t.Helper()
	select {
	case c := <-conns:
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	case <-time.After(bound):
		t.Fatal("shout connect did not connect")
		return nil, nil
	}
}

func readLine(t *testing.T, r *bufio.Reader, want string) {
	t.Helper()
	line, err := r.ReadString('\n')
	if err != nil || line != want+"\n" {
		t.Fatalf("server read %q, %v; want %q", line, err, want+"\n")
	}
}

// Lines pasted at once to a server that does not answer are said late
// together, not one message each: a paste of a thousand lines said "no
// reply within 2s" a thousand times.
func TestConnectTerminalPasteLateSaidTogether(t *testing.T) {
	addr, conns := acceptOne(t)
	cmd, f, scr := startTerminal(t, "connect", "--history", "-", "--timeout", "100ms", addr)
	_, r := accepted(t, conns)
	scr.expect(t, addr+"> ")
	const lines = 20
	var paste strings.Builder
	for i := range lines {
		fmt.Fprintf(&paste, "l%02d\r", i)
	}
	f.WriteString(paste.String())
	for i := range lines {
		readLine(t, r, fmt.Sprintf("l%02d", i))
	}
	f.WriteString("\x04") // leave once every line is answered or said late
	waitExit(t, cmd)
	screen := scr.all(t)
	said := regexp.MustCompile(`no reply within 100ms(?: to (\d+) lines)?`).FindAllStringSubmatch(screen, -1)
	late := 0
	for _, m := range said {
		if m[1] == "" {
			late++
		} else {
			n, _ := strconv.Atoi(m[1])
			late += n
		}
	}
	if late != lines || len(said) >= lines {
		t.Errorf("%d messages for %d late lines; want %d lines in fewer messages:\n%s", len(said), late, lines, screen)
	}
}

// A reply that comes after "no reply within" is printed when it comes,
// above the prompt, with the line being typed drawn again after it.
func TestConnectTerminalLateReplyTCP(t *testing.T) {
	addr, conns := acceptOne(t)
	cmd, f, scr := startTerminal(t, "connect", "--history", "-", "--timeout", "100ms", addr)
	c, r := accepted(t, conns)
	scr.expect(t, addr+"> ")
	f.WriteString("first\r")
	readLine(t, r, "first")
	scr.expect(t, "no reply within 100ms")
	scr.expect(t, addr+"> ")
	f.WriteString("hal")
	scr.expect(t, "hal")
	c.Write([]byte("FIRST\n"))
	scr.expect(t, "FIRST")
	scr.expect(t, addr+"> ")
	scr.expect(t, "hal") // the half-typed line, drawn again
	f.WriteString("f\r")
	readLine(t, r, "half")
	c.Write([]byte("HALF\n"))
	scr.expect(t, "HALF")
	f.WriteString("\x04")
	if code := waitExit(t, cmd); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
}

// A late reply cut short by the server closing is shown, and the error
// starts on a line of its own.
func TestConnectTerminalLateReplyThenClose(t *testing.T) {
	addr, conns := acceptOne(t)
	cmd, f, scr := startTerminal(t, "connect", "--history", "-", "--timeout", "100ms", addr)
	c, r := accepted(t, conns)
	scr.expect(t, addr+"> ")
	f.WriteString("first\r")
	readLine(t, r, "first")
	scr.expect(t, "no reply within 100ms")
	scr.expect(t, addr+"> ")
	c.Write([]byte("FIR"))
	c.Close()
	scr.expect(t, "FIR")
	if before := scr.expect(t, "shout: "+addr+" closed the connection"); !strings.Contains(before, "\n") {
		t.Errorf("the error is on the line of the reply cut short: %q", "FIR"+before)
	}
	if code := waitExit(t, cmd); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
}

// The same while the line's wait is on: "LINEshout: ..." no more.
func TestConnectTerminalReplyCutShort(t *testing.T) {
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		c.Write([]byte("LINE"))
	})
	cmd, f, scr := startTerminal(t, "connect", "--history", "-", addr)
	scr.expect(t, addr+"> ")
	f.WriteString("line\r")
	scr.expect(t, "LINE")
	if before := scr.expect(t, "closed the connection"); !strings.Contains(before, "\n") {
		t.Errorf("the error is on the line of the reply cut short: %q", "LINE"+before)
	}
	if code := waitExit(t, cmd); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
}

// Lines typed in one burst, whatever arrives meanwhile, all go out, in
// order: the burst (a blank line, a line of spaces, straße) right
// after a reply, several times, then fifty lines at once.
func TestConnectTerminalTypeAhead(t *testing.T) {
	var log shouttest.Log
	addr := shouttest.Start(t, &server.Server{Logger: log.Logger()})
	const rounds = 5
	for i := range rounds {
		cmd, f, scr := startTerminal(t, "connect", "--history", "-", addr)
		scr.expect(t, addr+"> ")
		f.WriteString("hello\r")
		scr.expect(t, "HELLO")
		f.WriteString("\r   \rstraße\r")
		scr.expect(t, "STRASSE")
		var burst strings.Builder
		for j := range 50 {
			fmt.Fprintf(&burst, "line %d-%d\r", i, j)
		}
		f.WriteString(burst.String() + "\x04")
		for j := range 50 {
			scr.expect(t, fmt.Sprintf("LINE %d-%d\r\n", i, j))
		}
		if code := waitExit(t, cmd); code != 0 {
			t.Fatalf("exit status %d, want 0; the terminal shows %q", code, scr.String())
		}
	}
	want := len("hello\nstraße\n")
	for j := range 50 {
		want += len(fmt.Sprintf("line 0-%d\n", j))
	}
	if !log.WaitFor("bytes_in="+strconv.Itoa(want)+" ", bound) {
		t.Errorf("server log has no bytes_in=%d:\n%s", want, log.String())
	}
}

// A server's escape sequences are shown, not obeyed, unless --raw.
func TestConnectTerminalEscapes(t *testing.T) {
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			if _, err := r.ReadString('\n'); err != nil {
				return
			}
			c.Write([]byte("\x1b[2JCLEARED\x07\x9b\xc2\x9b\r\n"))
		}
	})
	for _, tc := range []struct {
		flags []string
		shown string
	}{
		{nil, "^[[2JCLEARED^GM-^[M-^[\r\n"},
		{[]string{"--raw"}, "\x1b[2JCLEARED\x07\x9b\xc2\x9b"},
	} {
		t.Run(fmt.Sprint(tc.flags), func(t *testing.T) {
			cmd, f, scr := startTerminal(t, append([]string{"connect", "--history", "-", addr}, tc.flags...)...)
			scr.expect(t, addr+"> ")
			f.WriteString("clear\r")
			if before := scr.expect(t, tc.shown); strings.Contains(before, "CLEARED") {
				t.Errorf("shown otherwise: %q", before)
			}
			f.WriteString("\x04")
			if code := waitExit(t, cmd); code != 0 {
				t.Errorf("exit status %d", code)
			}
		})
	}
}

// In a pipe the server's bytes reach standard output unchanged.
func TestConnectPipeEscapesUnchanged(t *testing.T) {
	const reply = "\x1b[2JCLEARED\x07\x9b\r\n"
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		c.Write([]byte(reply))
	})
	cmd := exec.Command("shout", "connect", addr)
	cmd.Stdin = strings.NewReader("clear\n")
	out, err := cmd.Output()
	if err != nil || string(out) != reply {
		t.Errorf("got %q, %v; want %q", out, err, reply)
	}
}

// Typed on a terminal with standard output redirected (> out.txt, | tee
// log), connect streams: the replies reach the file as plain lines, with
// no prompt and no escape codes, and the terminal shows what is typed,
// by its own echo. (The prompt was chosen from standard input alone: it
// drew on the file, and the user typed blind.)
func TestConnectTerminalOutputRedirected(t *testing.T) {
	addr := shouttest.Start(t, &server.Server{Logger: new(shouttest.Log).Logger()})
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	cmd := exec.Command("shout", "connect", "--history", "-", addr)
	cmd.Env = append(os.Environ(), "TERM=xterm")
	cmd.Stdout = pw // pty.Start makes the terminal only what is not set
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 120})
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); f.Close() })
	scr := newScreen(f)
	lines := make(chan string, 8)
	go func() {
		defer close(lines)
		r := bufio.NewReader(pr)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				lines <- line
			}
			if err != nil {
				return
			}
		}
	}()
	next := func(want string) {
		t.Helper()
		select {
		case line := <-lines:
			if line != want {
				t.Fatalf("standard output got %q, want %q; the terminal shows %q", line, want, scr.String())
			}
		case <-time.After(bound):
			t.Fatalf("standard output got no %q; the terminal shows %q", want, scr.String())
		}
	}
	f.WriteString("hello\r")
	next("HELLO\n")
	f.WriteString("world\r")
	next("WORLD\n")
	f.WriteString("\x04")
	if code := waitExit(t, cmd); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	select {
	case line, ok := <-lines:
		if ok {
			t.Errorf("standard output got %q after the replies", line)
		}
	case <-time.After(bound):
		t.Error("standard output did not end")
	}
	before := scr.expect(t, "hello\r\nworld\r\n") // the terminal's echo
	if shown := before + scr.all(t); strings.Contains(shown, addr+"> ") {
		t.Errorf("the terminal shows a prompt: %q", shown)
	}
}

// In a pipe over UDP a line too long for a datagram is reported by its
// number and the next lines are sent; the status is 1 at the end, as
// with lost lines. (It ended the run, status 1, the lines after it unsent.)
func TestConnectPipeUDPLongLine(t *testing.T) {
	addr := shouttest.PacketServer(t, func(_ int, b []byte) [][]byte { return [][]byte{bytes.ToUpper(b)} })
	cmd := exec.Command("shout", "connect", "udp://"+addr)
	cmd.Stdin = strings.NewReader("x\n" + strings.Repeat("a", 70000) + "\ny\n")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if code := exitCode(err); code != 1 || string(out) != "X\nY\n" {
		t.Errorf("status %d, output %q; want 1 and X, Y", code, out)
	}
	want := "shout: line 2: longer than 65507 bytes, the most one datagram carries: not sent\n" +
		"shout: 1 line longer than 65507 bytes not sent\n"
	if stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
}

// udpStandIn is a UDP server whose replies the test sends.
type udpStandIn struct {
	pc  net.PacketConn
	got chan datagram
}

type datagram struct {
	from net.Addr
	text string
}

func startUDPStandIn(t *testing.T) *udpStandIn {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &udpStandIn{pc: pc, got: make(chan datagram, 100)}
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			select {
			case u.got <- datagram{from, string(buf[:n])}:
			default:
			}
		}
	}()
	return u
}

func (u *udpStandIn) addr() string { return u.pc.LocalAddr().String() }

func (u *udpStandIn) next(t *testing.T, want string) datagram {
	t.Helper()
	select {
	case d := <-u.got:
		if d.text != want {
			t.Fatalf("server got %q, want %q", d.text, want)
		}
		return d
	case <-time.After(bound):
		t.Fatalf("server got no %q", want)
		return datagram{}
	}
}

// nextAfter is next, passing over retries of the lines in answered.
func (u *udpStandIn) nextAfter(t *testing.T, want string, answered []string) datagram {
	t.Helper()
	timeout := time.After(bound)
	for {
		select {
		case d := <-u.got:
			if slices.Contains(answered, d.text) {
				continue
			}
			if d.text != want {
				t.Fatalf("server got %q, want %q", d.text, want)
			}
			return d
		case <-timeout:
			t.Fatalf("server got no %q", want)
			return datagram{}
		}
	}
}

func (u *udpStandIn) answer(d datagram) {
	u.pc.WriteTo([]byte(strings.ToUpper(d.text)), d.from)
}

// A reply that comes after its retry's is not the next line's answer.
func TestConnectTerminalUDPDuplicateReply(t *testing.T) {
	u := startUDPStandIn(t)
	cmd, f, scr := startTerminal(t, "connect", "--history", "-", "--timeout", "300ms", "udp://"+u.addr())
	prompt := u.addr() + " (udp)> "
	scr.expect(t, prompt)
	f.WriteString("first\r")
	held := u.next(t, "first")
	retry := u.next(t, "first") // sent after the timeout
	u.answer(retry)
	u.answer(held) // the first try's answer, late
	shown := scr.expect(t, "FIRST")
	shown += scr.expect(t, prompt)
	// A test late to answer (a busy machine) gets more retries than the
	// one it waits for, passed over ('server got "first", want
	// "second"'), and, later still, the line said lost, its answer a
	// late reply, and status 1.
	answered := []string{"first"}
	for _, line := range []string{"second", "third"} {
		f.WriteString(line + "\r")
		u.answer(u.nextAfter(t, line, answered))
		answered = append(answered, line)
		before := scr.expect(t, strings.ToUpper(line))
		if strings.Contains(before, "FIRST") {
			t.Fatalf("%s answered with FIRST: %q", line, before)
		}
		shown += before
	}
	f.WriteString("\x04")
	code := waitExit(t, cmd)
	shown += scr.all(t)
	want := 0
	if strings.Contains(shown, ": lost") {
		want = 1
	}
	if code != want {
		t.Errorf("exit status %d, want %d:\n%s", code, want, shown)
	}
}

// A reply that ends in a newline is shown on a line of its own, with no
// empty line after it: one more newline was added after the server's.
func TestConnectTerminalUDPReplyEndingInNewline(t *testing.T) {
	u := startUDPStandIn(t)
	cmd, f, scr := startTerminal(t, "connect", "--history", "-", "udp://"+u.addr())
	prompt := u.addr() + " (udp)> "
	scr.expect(t, prompt)
	f.WriteString("first\r")
	d := u.next(t, "first")
	u.pc.WriteTo([]byte("FIRST\n"), d.from)
	scr.expect(t, "FIRST")
	if between := scr.expect(t, prompt); strings.Count(between, "\n") != 1 {
		t.Errorf("between the reply and the prompt %q; want one line end", between)
	}
	f.WriteString("\x04")
	if code := waitExit(t, cmd); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
}

// A reply to a line reported lost is shown as late for that line; the
// next line gets its own answer, and the status is 1.
func TestConnectTerminalUDPLateReply(t *testing.T) {
	u := startUDPStandIn(t)
	cmd, f, scr := startTerminal(t, "connect", "--history", "-", "--timeout", "100ms", "--retries", "1", "udp://"+u.addr())
	prompt := u.addr() + " (udp)> "
	scr.expect(t, prompt)
	f.WriteString("first\r")
	held := u.next(t, "first")
	u.next(t, "first")
	scr.expect(t, "no reply after 2 tries of 100ms: lost")
	u.answer(held)
	scr.expect(t, `late reply to line 1 "first": FIRST`)
	f.WriteString("second\r")
	u.answer(u.next(t, "second"))
	if before := scr.expect(t, "SECOND"); strings.Contains(before, "FIRST") {
		t.Errorf("second answered with FIRST: %q", before)
	}
	f.WriteString("\x04")
	if code := waitExit(t, cmd); code != 1 {
		t.Errorf("exit status %d after a lost line, want 1", code)
	}
}

// An ICMP port unreachable is reported for its line; the session goes on.
func TestConnectTerminalUDPRefused(t *testing.T) {
	addr := shouttest.RefusingUDP(t) // nothing listens there
	cmd, f, scr := startTerminal(t, "connect", "--history", "-", "--timeout", "5s", "udp://"+addr)
	prompt := addr + " (udp)> "
	scr.expect(t, prompt)
	for i, line := range []string{"one", "two"} {
		f.WriteString(line + "\r")
		if before := scr.expect(t, "connection refused"); !strings.Contains(before, fmt.Sprintf("line %d: ", i+1)) {
			t.Errorf("refusal not reported for line %d: %q", i+1, before)
		}
		scr.expect(t, prompt)
	}
	f.WriteString("\x04")
	if code := waitExit(t, cmd); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
}

// Lines typed over UDP while a line waits for its reply are said not
// sent when the user leaves with Ctrl-C, or shout with SIGINT, with
// status 1, as they are over TCP: they were dropped without a word, and
// the session left with 0.
func TestConnectTerminalUDPLeaveSaysNotSent(t *testing.T) {
	for _, how := range []string{"Ctrl-C", "SIGINT"} {
		t.Run(how, func(t *testing.T) {
			u := startUDPStandIn(t)
			cmd, f, scr := startTerminal(t, "connect", "--history", "-", "--timeout", "1h", "udp://"+u.addr())
			prompt := u.addr() + " (udp)> "
			scr.expect(t, prompt)
			f.WriteString("first\r")
			u.next(t, "first") // never answered
			f.WriteString("second\rthird\r")
			// The prompt after third: the session has it (the editor
			// reads the next line once the session took the last).
			scr.expect(t, "third\r\n")
			scr.expect(t, prompt)
			if how == "SIGINT" {
				cmd.Process.Signal(syscall.SIGINT)
			} else {
				f.WriteString("\x03")
			}
			scr.expect(t, "2 lines not sent: line 1 had no reply yet")
			if code := waitExit(t, cmd); code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
		})
	}
}

// In a pipe whose output is a terminal, the error still starts on a line
// of its own after a reply cut short.
func TestConnectPipeToTerminalReplyCutShort(t *testing.T) {
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		c.Write([]byte("LINE"))
	})
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	scr := newScreen(ptmx)
	cmd := exec.Command("shout", "connect", addr)
	cmd.Stdin = strings.NewReader("line\n")
	cmd.Stdout, cmd.Stderr = tty, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	scr.expect(t, "LINE")
	if before := scr.expect(t, "shout: "); !strings.Contains(before, "\n") {
		t.Errorf("the error is on the line of the reply cut short: %q", "LINE"+before+"shout: ")
	}
	if code := waitExit(t, cmd); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
}

// --history with standard input a terminal but standard output not one
// (| tee log), where there is no prompt, is not used and says so, naming
// standard output: it said nothing.
func TestConnectHistoryStdoutNotTerminal(t *testing.T) {
	addr := shouttest.Start(t, &server.Server{})
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	newScreen(ptmx) // takes the terminal's echo
	history := filepath.Join(t.TempDir(), "history")
	cmd := exec.Command("shout", "connect", "--history", history, addr)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	ptmx.WriteString("hello\n\x04") // a line, then Ctrl-D: the end of input
	want := "shout: --history " + history + ": not used: standard output is not a terminal, and only the prompt keeps a history\n"
	if code := waitExit(t, cmd); code != 0 || stdout.String() != "HELLO\n" || stderr.String() != want {
		t.Errorf("status %d, stdout %q, stderr %q; want 0, %q and %q", code, stdout.String(), stderr.String(), "HELLO\n", want)
	}
	if _, err := os.Stat(history); !os.IsNotExist(err) {
		t.Errorf("history file: %v; want none made", err)
	}
}

// So it does where standard output and standard error are one pipe
// (2>&1 | tee log), with the server's bytes unchanged: the error was
// glued to the reply, "LINEshout: ...".
func TestConnectPipeStdoutIsStderrReplyCutShort(t *testing.T) {
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		c.Write([]byte("LINE"))
	})
	cmd := exec.Command("shout", "connect", addr)
	cmd.Stdin = strings.NewReader("line\n")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = cmd.Stdout // one pipe for both
	err := cmd.Run()
	if code := exitCode(err); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	want := "LINE\nshout: " + addr + " closed the connection with 1 of 1 lines unanswered\n"
	if out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
}

// A history line over 64 KiB no longer cuts the history short: the file
// was read up to it, and written back from what had been read, so it and
// every line after it were lost at the end of the session.
func TestConnectTerminalHistoryLongLine(t *testing.T) {
	addr := shouttest.Start(t, &server.Server{Logger: new(shouttest.Log).Logger()})
	history := filepath.Join(t.TempDir(), "history")
	if err := os.WriteFile(history, []byte("old\n"+strings.Repeat("y", 70000)+"\nrecent\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, f, scr := startTerminal(t, "connect", "--history", history, addr)
	scr.expect(t, addr+"> ")
	f.WriteString("new\r")
	scr.expect(t, "NEW")
	f.WriteString("\x04")
	waitExit(t, cmd)
	h, err := os.ReadFile(history)
	if err != nil {
		t.Fatal(err)
	}
	if want := "old\n" + strings.Repeat("y", 70000) + "\nrecent\nnew\n"; string(h) != want {
		t.Errorf("history is %d bytes, ends %q; want the old lines and the new one", len(h), h[max(len(h)-40, 0):])
	}
}

// Two sessions sharing a history file each add their lines: the one that
// left last wrote the file over with its own view, and the other's lines
// were lost.
func TestConnectTerminalHistoryShared(t *testing.T) {
	addr := shouttest.Start(t, &server.Server{Logger: new(shouttest.Log).Logger()})
	history := filepath.Join(t.TempDir(), "history")
	a, fa, sa := startTerminal(t, "connect", "--history", history, addr)
	b, fb, sb := startTerminal(t, "connect", "--history", history, addr)
	sa.expect(t, addr+"> ")
	sb.expect(t, addr+"> ")
	fa.WriteString("from-a\r")
	sa.expect(t, "FROM-A")
	fb.WriteString("from-b\r")
	sb.expect(t, "FROM-B")
	fa.WriteString("\x04")
	waitExit(t, a)
	fb.WriteString("\x04")
	waitExit(t, b)
	h, err := os.ReadFile(history)
	if err != nil {
		t.Fatal(err)
	}
	if string(h) != "from-a\nfrom-b\n" {
		t.Errorf("history %q, want both sessions' lines", h)
	}
}

// A paste of many lines is sent, every line, in order. The line editor
// stashed keys while it waited for the answer to its cursor query, which
// came after the whole paste: past 128 Ki characters it panicked, and
// shout left with the terminal raw.
func TestConnectTerminalBigPaste(t *testing.T) {
	addr := shouttest.Start(t, &server.Server{Logger: new(shouttest.Log).Logger()})
	cmd, f, scr := startTerminal(t, "connect", "--history", "-", addr)
	scr.expect(t, addr+"> ")
	go f.WriteString(strings.Repeat(strings.Repeat("x", 99)+"\r", 1500) + "last\r")
	scr.expectWithin(t, "LAST", 60*time.Second)
	f.WriteString("\x04")
	if code := waitExit(t, cmd); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
}

// A paste of one long line is sent whole, and soon: the line editor
// worked out where its line ended on the screen from the whole line for
// every character typed, and a pasted line of 64 KB took minutes of CPU
// before it went out (8 KB 3.5 s, 32 KB 94 s). Now it takes well under a
// second; the bound only catches the quadratic editor again.
func TestConnectTerminalLongLinePaste(t *testing.T) {
	var log shouttest.Log
	addr := shouttest.Start(t, &server.Server{Logger: log.Logger()})
	cmd, f, scr := startTerminal(t, "connect", "--history", "-", addr)
	scr.expect(t, addr+"> ")
	const n = 64000
	go f.WriteString(strings.Repeat("x", n) + "END\r")
	before := scr.expectWithin(t, "XEND", 20*time.Second)
	if got := strings.Count(before, "X"); got != n-1 {
		t.Errorf("the reply has %d X before XEND, want %d", got, n-1)
	}
	f.WriteString("\x04")
	if code := waitExit(t, cmd); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	if want := n + len("END\n"); !log.WaitFor("bytes_in="+strconv.Itoa(want)+" ", bound) {
		t.Errorf("server log has no bytes_in=%d:\n%s", want, log.String())
	}
}

// A paste goes in at the cursor, wide characters and all, and while
// searching the history (Ctrl-R) it goes to the search, as keys typed
// one by one do.
func TestConnectTerminalPasteMidLineAndSearch(t *testing.T) {
	addr := shouttest.Start(t, &server.Server{Logger: new(shouttest.Log).Logger()})
	cmd, f, scr := startTerminal(t, "connect", "--history", "-", addr)
	scr.expect(t, addr+"> ")
	f.WriteString("alpha one\r")
	scr.expect(t, "ALPHA ONE")
	scr.expect(t, addr+"> ")
	f.WriteString("ab\x1b[D" + "x哈y\r") // arrow left between the two pastes
	scr.expect(t, "AX哈YB")
	scr.expect(t, addr+"> ")
	f.WriteString("\x12alp\r") // Ctrl-R: the line found is sent
	scr.expect(t, "ALPHA ONE")
	scr.expect(t, addr+"> ")
	f.WriteString("\x04")
	if code := waitExit(t, cmd); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
}

// Ctrl-C leaves at once also after Ctrl-D, while the session waits for
// the replies owed: nothing read the key, and it waited out --timeout.
func TestConnectTerminalCtrlCAfterCtrlD(t *testing.T) {
	addr, conns := acceptOne(t)
	cmd, f, scr := startTerminal(t, "connect", "--history", "-", "--timeout", "1h", addr)
	_, r := accepted(t, conns)
	scr.expect(t, addr+"> ")
	f.WriteString("first\r")
	readLine(t, r, "first") // never answered
	f.WriteString("\x04\x03")
	if code := waitExit(t, cmd); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
}

// --reconnect against a server that closes every connection at once backs
// off: it dialled again at once each time, about a thousand connections a
// second, for ever. Each wait the client says is checked against the
// test's clock from the close it followed to the next accept: the client
// sees the close after the test noted it and the test notes the accept
// after the dial, so a late test (a busy machine) makes the gap only
// longer. (Counted when the test read the third wait, the connections
// were 5 once the test had not run for over a second.)
func TestConnectTerminalReconnectBacksOff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var accepted, closed []time.Time // one of each a connection
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted = append(accepted, time.Now())
			closed = append(closed, time.Now()) // before the close the client sees
			mu.Unlock()
			c.Close()
		}
	}()
	addr := ln.Addr().String()
	cmd, f, scr := startTerminal(t, "connect", "--reconnect", "--history", "-", addr)
	var shown strings.Builder
	for _, wait := range []string{"100ms", "200ms", "400ms"} {
		shown.WriteString(scr.expect(t, "reconnecting in "+wait))
		shown.WriteString("reconnecting in " + wait)
	}
	f.WriteString("\x03")
	waitExit(t, cmd)
	shown.WriteString(scr.all(t))
	mu.Lock()
	defer mu.Unlock()
	// The i-th "reconnecting" follows the i-th connection's close; each
	// connection but the last (Ctrl-C) was followed by one.
	said := regexp.MustCompile(`reconnecting(?: in ([0-9.]+(?:ms|s)))?`).FindAllStringSubmatch(shown.String(), -1)
	if len(accepted) > len(said)+1 {
		t.Fatalf("%d connections, %d said reconnecting:\n%s", len(accepted), len(said), shown.String())
	}
	for i := 0; i+1 < len(accepted); i++ {
		wait := time.Duration(0)
		if said[i][1] != "" {
			if wait, err = time.ParseDuration(said[i][1]); err != nil {
				t.Fatal(err)
			}
		}
		if gap := accepted[i+1].Sub(closed[i]); gap < wait {
			t.Errorf("connection %d came %v after connection %d closed, which said %q", i+2, gap, i+1, said[i][0])
		}
	}
}

// A reconnect the prompt makes, refused by a server whose certificate no
// --ca authority signed (a replica back with another), names shout's
// flags in the hint (named.Text), as shout connect's own error does, not
// the client's fields: TLSOptions.CA FILE, or TLSOptions.Insecure.
func TestConnectTerminalReconnectHintNamesFlags(t *testing.T) {
	p, other := newPKI(t), newPKI(t)
	load := func(p *pki) *tls.Config {
		c, err := tls.LoadX509KeyPair(p.serverCert, p.serverKey)
		if err != nil {
			t.Fatal(err)
		}
		return &tls.Config{Certificates: []tls.Certificate{c}}
	}
	trusted, untrusted := load(p), load(other)
	var n atomic.Int64
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(bound))
		cfg := trusted
		if n.Add(1) > 1 {
			cfg = untrusted
		}
		tls.Server(c, cfg).Handshake() // the first then closes: a reconnect
	})
	cmd, f, scr := startTerminal(t, "connect", "--reconnect", "--history", "-", "--ca", p.caFile, "tls://"+addr)
	scr.expect(t, "no authority in "+p.caFile+" signed it: pass the one that did with --ca FILE, or --insecure to try things out); trying again until it answers")
	f.WriteString("\x03")
	waitExit(t, cmd)
}

// A history file that cannot be written is said so when shout connect
// leaves; the lines were lost without a word. The error names the file
// escaped (here where an ESC can be in a name): its ESC reached the
// terminal raw.
func TestConnectTerminalHistoryNotSaved(t *testing.T) {
	addr := shouttest.Start(t, &server.Server{Logger: new(shouttest.Log).Logger()})
	// Under a file: no directory can be made for it. (A directory, as
	// any file that is not a regular one, is said so at the start.)
	dir, name, shown := t.TempDir(), "fi\x1b[31mle", `fi\x1b[31mle`
	if runtime.GOOS == "windows" {
		name, shown = "file", "file"
	}
	notDir := filepath.Join(dir, name)
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	history := filepath.Join(notDir, "history")
	cmd, f, scr := startTerminal(t, "connect", "--history", history, addr)
	scr.expect(t, addr+"> ")
	f.WriteString("hi\r")
	scr.expect(t, "HI")
	f.WriteString("\x04")
	scr.expect(t, "history not saved: mkdir "+filepath.Join(dir, shown)+": ")
	waitExit(t, cmd)
}

// With --trace on a terminal, a trace line is printed above the prompt,
// as a reply is, and in order with the replies: it went straight to the
// terminal, after the line being typed.
func TestConnectTerminalTrace(t *testing.T) {
	addr, conns := acceptOne(t)
	cmd, f, scr := startTerminal(t, "connect", "--history", "-", "--trace", addr)
	c, r := accepted(t, conns)
	scr.expect(t, "trace fd=")
	scr.expect(t, "connect("+addr+") → connected from ")
	scr.expect(t, addr+"> ")
	f.WriteString("one\r")
	readLine(t, r, "one")
	scr.expect(t, `send(4) "one\n"`)
	c.Write([]byte("ONE\n"))
	scr.expect(t, `recv(65536) → 4 bytes "ONE\n"`)
	scr.expect(t, "ONE\r\n")
	scr.expect(t, addr+"> ")
	f.WriteString("hal")
	scr.expect(t, "hal")
	c.Write([]byte("LATE\n"))
	if before := scr.expect(t, "trace fd="); !strings.Contains(before, "\x1b[J") {
		t.Errorf("the trace line went after the line being typed, not above the prompt: %q", "hal"+before+"trace fd=")
	}
	scr.expect(t, `recv(65536) → 5 bytes "LATE\n"`)
	scr.expect(t, "LATE\r\n")
	scr.expect(t, addr+"> ")
	scr.expect(t, "hal") // the half-typed line, drawn again
	f.WriteString("f\r")
	readLine(t, r, "half")
	c.Write([]byte("HALF\n"))
	scr.expect(t, "HALF\r\n")
	f.WriteString("\x04")
	if code := waitExit(t, cmd); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
}

// An empty datagram is a reply: it was taken for none, and the line sent
// again, reported lost and the status made 1 (in a pipe it was an empty
// line, as it should be).
func TestConnectTerminalUDPEmptyReply(t *testing.T) {
	u := startUDPStandIn(t)
	cmd, f, scr := startTerminal(t, "connect", "--history", "-", "--timeout", "1m", "--retries", "0", "--trace", "udp://"+u.addr())
	prompt := u.addr() + " (udp)> "
	scr.expect(t, prompt)
	f.WriteString("first\r")
	d := u.next(t, "first")
	u.pc.WriteTo(nil, d.from)
	scr.expect(t, "recvfrom(65536) → 0 bytes: an empty datagram")
	f.WriteString("second\r")
	u.answer(u.next(t, "second")) // not before the first line is done
	if before := scr.expect(t, "SECOND"); strings.Contains(before, "lost") {
		t.Errorf("the empty reply was taken for none: %q", before)
	}
	f.WriteString("\x04")
	if code := waitExit(t, cmd); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
}

// --timeout 0, which in a pipe waits for the server as long as it takes,
// was taken at the prompt for 2 s without a word ("no reply within 2s").
func TestConnectTerminalZeroTimeout(t *testing.T) {
	addr, _ := acceptOne(t)
	cmd, _, scr := startTerminal(t, "connect", "--history", "-", "--timeout", "0", addr)
	scr.expect(t, "shout: --timeout must be more than 0 at the prompt")
	if code := waitExit(t, cmd); code != 2 {
		t.Errorf("exit status %d, want 2", code)
	}
}

// In a pipe whose output is a terminal (printf 'x\n' | shout connect
// HOST, shout connect HOST < file), what a server sends is shown as at the
// prompt, as cat -v shows it, unless --raw: the server's bytes were
// written raw, so any server could clear the screen, retitle the
// terminal or, with the terminal's answerback sequences, type into the
// shell. Standard output a file or a pipe still gets them unchanged
// (TestConnectPipeEscapesUnchanged).
func TestConnectPipeToTerminalEscapes(t *testing.T) {
	const reply = "\x1b[2JCLEARED\x07\x9b\xc2\x9b\u202e\r\n"
	stream := shouttest.StreamServer(t, func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		c.Write([]byte(reply))
	})
	packet := shouttest.PacketServer(t, func(int, []byte) [][]byte { return [][]byte{[]byte(reply)} })
	for _, tc := range []struct {
		name, addr string
		flags      []string
		shown      string
	}{
		{"tcp", stream, nil, "^[[2JCLEARED^GM-^[M-^[M-bM-^@M-.\r\n"},
		{"udp", "udp://" + packet, nil, "^[[2JCLEARED^GM-^[M-^[M-bM-^@M-.\r\n"},
		{"tcp --raw", stream, []string{"--raw"}, "\x1b[2JCLEARED\x07\x9b\xc2\x9b\u202e\r"},
		{"udp --raw", "udp://" + packet, []string{"--raw"}, "\x1b[2JCLEARED\x07\x9b\xc2\x9b\u202e\r"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ptmx, tty, err := pty.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer ptmx.Close()
			scr := newScreen(ptmx)
			cmd := exec.Command("shout", append([]string{"connect", tc.addr}, tc.flags...)...)
			cmd.Stdin = strings.NewReader("clear\n")
			cmd.Stdout, cmd.Stderr = tty, tty
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			tty.Close()
			if before := scr.expect(t, tc.shown); strings.Contains(before, "CLEARED") {
				t.Errorf("shown otherwise: %q", before+tc.shown)
			}
			if code := waitExit(t, cmd); code != 0 {
				t.Errorf("exit status %d, want 0; the terminal shows %q", code, scr.all(t))
			}
		})
	}
}
