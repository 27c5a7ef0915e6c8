//go:build linux

package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"shout/internal/shouttest"
)

// kill -TSTP stops shout connect with the terminal as it was before shout
// made it raw, and fg makes it raw again and draws the prompt and the line
// being typed again, each time: it stopped with the terminal raw, and the
// shell got it back so.
func TestConnectTerminalStop(t *testing.T) {
	addr, conns := acceptOne(t)
	sh, f, scr := startOnTerminal(t, "jobshell", "shout", "connect", "--history", "-", addr)
	c, r := accepted(t, conns)
	scr.expect(t, addr+"> ")
	raw := ptyState(t, f)
	pid := ptyForeground(t, f) // shout's, the leader of the job's group
	stopAndGo := func() {
		t.Helper()
		if err := syscall.Kill(pid, syscall.SIGTSTP); err != nil {
			t.Fatal(err)
		}
		scr.expect(t, "stopped (")
		if line := scr.expect(t, "\n"); !strings.Contains(line, "terminal as before") {
			t.Fatalf("shout stopped with the terminal not as it found it: %q", "stopped ("+line)
		}
		f.WriteString("fg\n")
		scr.expect(t, "fg\r\n") // the terminal's echo
	}

	f.WriteString("hal")
	scr.expect(t, "hal")
	stopAndGo()
	scr.expect(t, addr+"> ")
	scr.expect(t, "hal") // the half-typed line, drawn again
	if got := ptyState(t, f); !reflect.DeepEqual(got, raw) {
		t.Errorf("after fg the terminal is not raw again")
	}
	f.WriteString("f\r")
	readLine(t, r, "half")
	c.Write([]byte("HALF\n"))
	scr.expect(t, "HALF\r\n")
	scr.expect(t, addr+"> ")

	stopAndGo() // again: shout still catches the signal
	scr.expect(t, addr+"> ")
	f.WriteString("\x04")
	scr.expect(t, "exit 0; terminal as before")
	if code := waitExit(t, sh); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
}

// A stopped shout connect ends when the shell kills it (kill %1: SIGTERM,
// then SIGCONT, shout left in the background), with the terminal as the
// shell has it: it stopped again, on SIGTTOU, trying to restore from the
// background a terminal it had given back as it stopped.
func TestConnectTerminalStopThenKill(t *testing.T) {
	addr, conns := acceptOne(t)
	sh, f, scr := startOnTerminal(t, "jobshell", "shout", "connect", "--history", "-", addr)
	accepted(t, conns)
	scr.expect(t, addr+"> ")
	pid := ptyForeground(t, f)
	defer syscall.Kill(pid, syscall.SIGKILL) // should it stay stopped
	if err := syscall.Kill(pid, syscall.SIGTSTP); err != nil {
		t.Fatal(err)
	}
	scr.expect(t, "stopped (")
	scr.expect(t, "\n")
	f.WriteString("kill\n")
	scr.expect(t, "kill\r\n") // the terminal's echo
	if line := scr.expect(t, "\n"); !strings.Contains(line, "exit") && !strings.Contains(line, "killed") {
		t.Fatalf("after kill: %q; want shout to have ended", line)
	} else if !strings.Contains(line, "terminal as before") {
		t.Errorf("after kill: %q; want the terminal as the shell has it", line)
	}
	waitExit(t, sh)
}

// At the prompt SIGQUIT leaves as SIGTERM does: the terminal restored
// (Go's default left it raw), no goroutine dump, status 1.
func TestConnectTerminalSIGQUIT(t *testing.T) {
	addr, conns := acceptOne(t)
	sh, f, scr := startOnTerminal(t, "jobshell", "shout", "connect", "--history", "-", addr)
	accepted(t, conns)
	scr.expect(t, addr+"> ")
	syscall.Kill(ptyForeground(t, f), syscall.SIGQUIT)
	line := scr.expect(t, "; terminal ")
	rest := scr.expect(t, "\n")
	if !strings.HasSuffix(line, "exit 1") || !strings.HasPrefix(rest, "as before") {
		t.Errorf("after SIGQUIT: %q; want exit 1, terminal as before", line[max(len(line)-300, 0):]+rest)
	}
	noDump(t, line)
	waitExit(t, sh)
}

// A history file that is a FIFO nobody writes to is not read, and says
// so: the prompt comes, and SIGTERM leaves as ever, the terminal
// restored. The open blocked until something wrote to the FIFO: no
// prompt, Ctrl-C a key of the raw terminal, and SIGTERM caught for a
// prompt that never ran, so only SIGKILL ended it, the terminal raw.
// The FIFO's name, with an escape in it, is said escaped.
func TestConnectTerminalHistoryFIFO(t *testing.T) {
	addr, conns := acceptOne(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "hist\x1b[31mory")
	shouttest.NamedPipe(t, fifo)
	sh, f, scr := startOnTerminal(t, "jobshell", "shout", "connect", "--history", fifo, addr)
	accepted(t, conns)
	scr.expect(t, "history "+filepath.Join(dir, `hist\x1b[31mory`)+" is not a regular file: not read, and not saved")
	scr.expect(t, addr+"> ")
	syscall.Kill(ptyForeground(t, f), syscall.SIGTERM)
	line := scr.expect(t, "; terminal ")
	rest := scr.expect(t, "\n")
	if !strings.HasSuffix(line, "exit 1") || !strings.HasPrefix(rest, "as before") {
		t.Errorf("after SIGTERM: %q; want exit 1, terminal as before", line[max(len(line)-300, 0):]+rest)
	}
	waitExit(t, sh)
}

// Ctrl-Z at the prompt stops shout connect as kill -TSTP does (raw mode
// makes it a key the editor gets); it was swallowed, and nothing
// happened.
func TestConnectTerminalCtrlZ(t *testing.T) {
	addr, conns := acceptOne(t)
	sh, f, scr := startOnTerminal(t, "jobshell", "shout", "connect", "--history", "-", addr)
	c, r := accepted(t, conns)
	scr.expect(t, addr+"> ")
	f.WriteString("hal")
	scr.expect(t, "hal")
	f.WriteString("\x1a") // Ctrl-Z
	if line := scr.expect(t, "\n"); !strings.Contains(line, "stopped (") || !strings.Contains(line, "terminal as before") {
		t.Fatalf("after Ctrl-Z: %q; want shout stopped with the terminal as it found it", line)
	}
	f.WriteString("fg\n")
	scr.expect(t, "fg\r\n")
	scr.expect(t, addr+"> ")
	scr.expect(t, "hal")
	f.WriteString("f\r")
	readLine(t, r, "half")
	c.Write([]byte("HALF\n"))
	scr.expect(t, "HALF\r\n")
	scr.expect(t, addr+"> ")
	f.WriteString("\x04")
	scr.expect(t, "exit 0; terminal as before")
	if code := waitExit(t, sh); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
}

// ptyState is the mode of the terminal whose master is f (on Linux the
// master's ioctls read the terminal's).
func ptyState(t *testing.T, f *os.File) *term.State {
	t.Helper()
	var st *term.State
	err := control(f, func(fd int) (err error) {
		st, err = term.GetState(fd)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// ptyForeground is the foreground process group of the terminal whose
// master is f.
func ptyForeground(t *testing.T, f *os.File) int {
	t.Helper()
	var pgrp int
	err := control(f, func(fd int) (err error) {
		pgrp, err = unix.IoctlGetInt(fd, unix.TIOCGPGRP)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return pgrp
}

// control runs do on f's descriptor (f.Fd would make f blocking, under
// the reader of the screen).
func control(f *os.File, do func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var doErr error
	if err := rc.Control(func(fd uintptr) { doErr = do(int(fd)) }); err != nil {
		return err
	}
	return doErr
}
