//go:build unix

package main

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGQUIT (Ctrl-\ in a pipeline) stops shout at once with status 131,
// 128 + SIGQUIT, as a shell reports a program the signal stopped, and as
// serve stops at once on it. Left to Go's default, connect and bench wrote
// every goroutine's stack to stderr and exited 2, a usage error's status.

// noDump fails t if stderr holds Go's goroutine dump.
func noDump(t *testing.T, stderr string) {
	t.Helper()
	if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "SIGQUIT:") {
		t.Errorf("stderr has Go's goroutine dump:\n%s", stderr[:min(len(stderr), 600)])
	}
}

// exitWithin waits for cmd, failing t if it still runs after bound; it
// returns the exit status.
func exitWithin(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(bound):
		t.Fatalf("still running %v after SIGQUIT", bound)
		return -1
	}
}

// outputs reads p's stdout and stderr to their ends, both at once (a
// full stderr would keep p from exiting), failing t if they have not
// ended within bound.
func (p *benchProc) outputs() (stdout, stderr string) {
	p.t.Helper()
	var out, errs strings.Builder
	outs, errc := p.stdout, p.stderr
	deadline := time.After(bound)
	for outs != nil || errc != nil {
		select {
		case l, ok := <-outs:
			if !ok {
				outs = nil
				continue
			}
			out.WriteString(l + "\n")
		case l, ok := <-errc:
			if !ok {
				errc = nil
				continue
			}
			errs.WriteString(l + "\n")
		case <-deadline:
			p.t.Fatalf("still writing %v after SIGQUIT; stdout:\n%s\nstderr:\n%s", bound, out.String(), errs.String())
		}
	}
	return out.String(), errs.String()
}

func TestBenchSIGQUITStopsAtOnce(t *testing.T) {
	addr, got, _ := lineServer(t, answerNever) // replies owed for ever
	p := startBench(t, addr, "--conns", "1", "--warmup", "0", "--timeout", "10m", "--json")
	p.settings()
	waitFor(t, got, "a message at the server")
	p.cmd.Process.Signal(syscall.SIGQUIT)
	out, errs := p.outputs()
	if code := exitWithin(t, p.cmd); code != 131 {
		t.Errorf("exit status %d, want 131", code)
	}
	noDump(t, errs)
	// --json's stdout says why there is no report, as for a second Ctrl-C.
	if e, _ := jsonAlone(t, out)["error"].(string); !strings.Contains(e, "SIGQUIT") {
		t.Errorf("stdout:\n%s\nwant {\"error\": …} alone, that says SIGQUIT stopped it", out)
	}
}

func TestConnectPipeSIGQUIT(t *testing.T) {
	addr, conns := acceptOne(t)
	cmd := exec.Command("shout", "connect", addr)
	in, _ := cmd.StdinPipe() // held open: shout waits for more
	defer in.Close()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	_, r := accepted(t, conns)
	io.WriteString(in, "hi\n")
	readLine(t, r, "hi") // connect runs its pipe: past its start
	cmd.Process.Signal(syscall.SIGQUIT)
	if code := exitWithin(t, cmd); code != 131 {
		t.Errorf("exit status %d, want 131", code)
	}
	noDump(t, stderr.String())
}

// Before the prompt, while connect still connects (to a server slow to
// finish the TLS handshake here), SIGQUIT stops it at once too: the
// prompt catches it only once it runs, and before it was Go's default,
// every goroutine's stack on the terminal and status 2.
func TestConnectTerminalSIGQUITWhileConnecting(t *testing.T) {
	addr, conns := acceptOne(t) // accepts, and says nothing: no handshake
	cmd, _, scr := startTerminal(t, "connect", "--history", "-", "--insecure", "tls://"+addr)
	accepted(t, conns)
	cmd.Process.Signal(syscall.SIGQUIT)
	if code := waitExit(t, cmd); code != 131 {
		t.Errorf("exit status %d, want 131", code)
	}
	noDump(t, scr.all(t))
}

// A SIGQUIT that a command took (serve, which stops on it and exits 0)
// is that command's alone. The catch-all got it too, and acted on it
// when its goroutine came to it: if that was only after the command had
// let go, it stopped shout with 131. Here the catch-all is held on an
// earlier SIGQUIT while the command takes, gets and lets go of another;
// none may then be waiting for the catch-all.
func TestSIGQUITTakenIsNotTheCatchAlls(t *testing.T) {
	caught := make(chan os.Signal, 1)
	hold := make(chan struct{})
	end := startCatching(func(s os.Signal) {
		caught <- s
		<-hold
	})
	t.Cleanup(end)
	t.Cleanup(func() { close(hold) }) // (before end: cleanups run last first)
	quitSelf := func() {
		if err := syscall.Kill(os.Getpid(), syscall.SIGQUIT); err != nil {
			t.Fatal(err)
		}
	}
	quitSelf()
	waitSignal(t, caught) // the catch-all, held from here

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGQUIT)
	release := takeQuit()
	quitSelf()
	waitSignal(t, sigs) // the command's; os/signal notifies every channel at once
	release()
	signal.Stop(sigs)
	quit.mu.Lock()
	pending := len(quit.c)
	quit.mu.Unlock()
	if pending != 0 {
		t.Errorf("the catch-all has the SIGQUIT the command took, to act on it now that the command let go")
	}
}

// waitSignal waits for a signal on c, for at most bound.
func waitSignal(t *testing.T, c <-chan os.Signal) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(bound):
		t.Fatalf("no signal within %v", bound)
	}
}
