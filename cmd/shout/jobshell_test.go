//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"reflect"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

func init() { commands["jobshell"] = jobShell }

// jobShell is a job-control shell cut down to what the tests of a stopped
// program need. Run on a terminal, as the session leader, it runs its
// arguments as a job in the foreground, in a process group of its own,
// and says on the terminal what happens to it, with whether the terminal
// is as it was when the job began ("as before") or not ("changed"):
//
//	stopped (SIGTSTP); terminal as before
//	exit 0; terminal as before
//
// Once the job stops it takes the terminal back and reads a line; "fg"
// gives the terminal to the job again and continues it; "kill" sends it
// SIGTERM and continues it in the background, as bash's kill %1 does. It
// exits as the job does.
func jobShell() {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "jobshell:", err)
		os.Exit(2)
	}
	before, err := term.GetState(0)
	if err != nil {
		fail(err)
	}
	mode := func() string {
		if now, err := term.GetState(0); err == nil && reflect.DeepEqual(now, before) {
			return "as before"
		}
		return "changed"
	}
	job := exec.Command(os.Args[1], os.Args[2:]...)
	job.Stdin, job.Stdout, job.Stderr = os.Stdin, os.Stdout, os.Stderr
	job.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Foreground: true, Ctty: 0}
	if err := job.Start(); err != nil {
		fail(err)
	}
	// Taking the terminal back from the background, as a shell does
	// (after Start: the job must not inherit it).
	signal.Ignore(syscall.SIGTTOU)
	pid := job.Process.Pid
	in := bufio.NewReader(os.Stdin)
	for {
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(pid, &ws, syscall.WUNTRACED, nil); err == syscall.EINTR {
			continue
		} else if err != nil {
			fail(err)
		}
		switch {
		case ws.Stopped():
			if err := unix.IoctlSetPointerInt(0, unix.TIOCSPGRP, syscall.Getpgrp()); err != nil {
				fail(err)
			}
			fmt.Printf("stopped (%s); terminal %s\n", unix.SignalName(ws.StopSignal()), mode())
			line, err := in.ReadString('\n')
			if err != nil {
				fail(err)
			}
			switch strings.TrimSpace(line) {
			case "fg":
				if err := unix.IoctlSetPointerInt(0, unix.TIOCSPGRP, pid); err != nil {
					fail(err)
				}
			case "kill":
				syscall.Kill(-pid, syscall.SIGTERM)
			default:
				fail(fmt.Errorf("%q: only fg and kill are understood", line))
			}
			syscall.Kill(-pid, syscall.SIGCONT)
		case ws.Exited():
			fmt.Printf("exit %d; terminal %s\n", ws.ExitStatus(), mode())
			os.Exit(ws.ExitStatus())
		case ws.Signaled():
			fmt.Printf("killed (%s); terminal %s\n", unix.SignalName(ws.Signal()), mode())
			os.Exit(128 + int(ws.Signal()))
		}
	}
}
