package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"shout/internal/shouttest"
)

// benchProc is a `shout bench` process whose stdout and stderr are read
// line by line as they come.
type benchProc struct {
	t       *testing.T
	cmd     *exec.Cmd
	stdout  chan string // closed at end of output
	stderr  chan string
	readers sync.WaitGroup // the two that read stdout and stderr
	// exited is closed once cmd.Wait has returned, err what it returned
	// (see wait).
	waitOnce sync.Once
	exited   chan struct{}
	err      error
}

func startBench(t *testing.T, args ...string) *benchProc {
	t.Helper()
	return startCmd(t, exec.Command("shout", append([]string{"bench"}, args...)...))
}

// startCmd starts cmd (a shout bench) as a benchProc.
func startCmd(t *testing.T, cmd *exec.Cmd) *benchProc {
	t.Helper()
	p := &benchProc{t: t, cmd: cmd, stdout: make(chan string, 64), stderr: make(chan string, 64), exited: make(chan struct{})}
	out, _ := p.cmd.StdoutPipe()
	errp, _ := p.cmd.StderrPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		for _, ch := range []chan string{p.stdout, p.stderr} {
			go func() { // what the test left unread, so the readers end
				for range ch {
				}
			}()
		}
		select {
		case <-p.wait():
		case <-time.After(bound):
			t.Errorf("%v: its output still open %v after it was killed", p.cmd.Args, bound)
		}
	})
	lines := func(r io.Reader, ch chan string) {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			ch <- sc.Text()
		}
		close(ch)
	}
	p.readers.Add(2)
	go func() { defer p.readers.Done(); lines(out, p.stdout) }()
	go func() { defer p.readers.Done(); lines(errp, p.stderr) }()
	return p
}

// wait returns a channel closed once p has exited and its output was read
// to the end (whoever takes the lines), p.err then how it ended. It is
// the one caller of cmd.Wait, which may be called once, and only once
// the pipes are read: a test's wait and its cleanup both called it, at
// once when the test failed on a process that did not end (a race).
func (p *benchProc) wait() <-chan struct{} {
	p.waitOnce.Do(func() {
		go func() {
			p.readers.Wait()
			p.err = p.cmd.Wait()
			close(p.exited)
		}()
	})
	return p.exited
}

// line waits for the next line from ch, failing the test after bound.
func (p *benchProc) line(ch chan string, what string) string {
	p.t.Helper()
	select {
	case l, ok := <-ch:
		if !ok {
			p.t.Fatalf("%s: the output ended", what)
		}
		return l
	case <-time.After(bound):
		p.t.Fatalf("%s: nothing within %v", what, bound)
	}
	return ""
}

// settings waits for bench's settings line, which says it catches its
// signals: on stdout, or with --json on stderr, stdout being the JSON's.
func (p *benchProc) settings() string {
	p.t.Helper()
	ch := p.stdout
	if slices.Contains(p.cmd.Args, "--json") {
		ch = p.stderr
	}
	return p.line(ch, "the settings line")
}

// rest reads stdout to its end and returns the exit status.
func (p *benchProc) rest() (string, int) {
	p.t.Helper()
	var b strings.Builder
	deadline := time.After(bound)
	for {
		select {
		case l, ok := <-p.stdout:
			if !ok {
				select {
				case <-p.wait():
				case <-deadline:
					p.t.Fatalf("bench did not end within %v; stdout:\n%s", bound, b.String())
				}
				var ee *exec.ExitError
				if errors.As(p.err, &ee) {
					return b.String(), ee.ExitCode()
				}
				return b.String(), 0
			}
			b.WriteString(l + "\n")
		case <-deadline:
			p.t.Fatalf("bench did not end within %v; stdout so far:\n%s", bound, b.String())
		}
	}
}

// answering is when a stand-in lineServer answers the lines it reads.
type answering int

const (
	answerAtOnce    answering = iota // each line as it comes
	answerNever                      // none, reading on: replies owed for ever
	answerOnRelease                  // once release is called; until then, reading stops at the first line
)

// lineServer is a stand-in server that answers lines in uppercase as
// when says, and closes got when the first message arrives.
func lineServer(t *testing.T, when answering) (addr string, got chan struct{}, release func()) {
	got, held := make(chan struct{}), make(chan struct{})
	release = sync.OnceFunc(func() { close(held) })
	if when == answerAtOnce {
		release()
	}
	var once sync.Once
	addr = shouttest.StreamServer(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			once.Do(func() { close(got) })
			if when == answerNever {
				continue
			}
			<-held
			if _, err := io.WriteString(c, strings.ToUpper(line)); err != nil {
				return
			}
		}
	})
	t.Cleanup(release) // first: the server's waits for its handlers
	return addr, got, release
}

func waitFor(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(bound):
		t.Fatalf("%s: not within %v", what, bound)
	}
}

// Ctrl-C during the measured time ends the run with the report of what
// was measured, and the usual status; the settings come first, at once.
func TestBenchInterruptKeepsReport(t *testing.T) {
	addr, got, _ := lineServer(t, answerAtOnce)
	p := startBench(t, addr, "--conns", "2", "--duration", "10m", "--warmup", "0", "--text", "ascii", "--mode", "ascii")
	if h := p.settings(); !strings.Contains(h, "10m0s measured") && !strings.Contains(h, "600s measured") {
		t.Errorf("first line %q, want the settings", h)
	}
	waitFor(t, got, "a message at the server")
	p.cmd.Process.Signal(syscall.SIGINT)
	if l := p.line(p.stderr, "the interrupt notice"); !strings.Contains(l, "interrupt: stopping") {
		t.Errorf("stderr %q, want it to say it is stopping", l)
	}
	out, code := p.rest()
	if code != 0 || !strings.Contains(out, "interrupted") || !strings.Contains(out, "every reply checked: all right") {
		t.Errorf("status %d, want 0 and a report that says interrupted and all right:\n%s", code, out)
	}
}

// SIGHUP (the terminal closed, the report going to a file) ends the run
// with the report of what was measured, as Ctrl-C does; it killed bench,
// and the file had no report. Under nohup, which ignores it, it changes
// nothing: bench runs on, and only the Ctrl-C after it stops the run.
func TestBenchHangupKeepsReport(t *testing.T) {
	const bench = `exec shout bench "$0" --conns 1 --duration 10m --warmup 0 --text ascii --mode ascii`
	for _, tc := range []struct {
		name, shell string
		sigs        []syscall.Signal // sent together
		notice      string           // what bench says it took
	}{
		{"caught", bench, []syscall.Signal{syscall.SIGHUP}, "hangup: stopping"},
		// Ignored, the SIGHUP sent first is not what stops it.
		{"ignored at start", `trap '' HUP; ` + bench, []syscall.Signal{syscall.SIGHUP, syscall.SIGINT}, "interrupt: stopping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, got, _ := lineServer(t, answerAtOnce)
			p := startCmd(t, exec.Command("sh", "-c", tc.shell, addr))
			p.settings()
			waitFor(t, got, "a message at the server")
			for _, sig := range tc.sigs {
				p.cmd.Process.Signal(sig)
			}
			if l := p.line(p.stderr, "the stop notice"); !strings.Contains(l, tc.notice) {
				t.Errorf("stderr %q, want %q", l, tc.notice)
			}
			out, code := p.rest()
			if code != 0 || !strings.Contains(out, "interrupted") || !strings.Contains(out, "every reply checked: all right") {
				t.Errorf("status %d, want 0 and a report that says interrupted and all right:\n%s", code, out)
			}
		})
	}
}

// A second SIGHUP, while bench waits for the replies owed, is not
// someone asking again (a closing terminal may send two: the shell's to
// its jobs, the kernel's to the foreground): bench goes on waiting, and
// only a second Ctrl-C stops it at once. The second SIGHUP stopped it,
// without its report.
func TestBenchSecondHangupIsNotAskingAgain(t *testing.T) {
	addr, got, _ := lineServer(t, answerNever)
	p := startBench(t, addr, "--conns", "1", "--warmup", "0", "--timeout", "10m", "--text", "ascii", "--mode", "ascii")
	p.settings()
	waitFor(t, got, "a message at the server")
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.line(p.stderr, "the stop notice")
	// Sent together, as a closing terminal's may come in a burst: the
	// SIGHUPs took the one place the signals had, and the SIGINT was
	// lost (a race: this caught it about one run in ten).
	for range 3 {
		p.cmd.Process.Signal(syscall.SIGHUP)
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	go func() {
		for range p.stdout {
		}
	}()
	select {
	case <-p.wait():
		if !stoppedBySIGINT(p.err) {
			t.Errorf("exit %v, want to be stopped by the SIGINT, not the second SIGHUP", p.err)
		}
	case <-time.After(bound):
		t.Fatalf("still running %v after SIGHUP, SIGHUP and SIGINT", bound)
	}
}

// Ctrl-C before anything was measured (here in the warm-up) exits 130.
func TestBenchInterruptBeforeMeasuring(t *testing.T) {
	addr, got, _ := lineServer(t, answerAtOnce)
	p := startBench(t, addr, "--conns", "2", "--warmup", "10m")
	p.settings()
	waitFor(t, got, "a message at the server")
	p.cmd.Process.Signal(syscall.SIGINT)
	out, code := p.rest()
	var errs bytes.Buffer
	for l := range p.stderr {
		errs.WriteString(l + "\n")
	}
	if code != 130 || !strings.Contains(errs.String(), "shout: interrupted before anything was measured") {
		t.Errorf("status %d, want 130 and a line that says nothing was measured\nstdout:\n%s\nstderr:\n%s", code, out, errs.String())
	}
}

// A second Ctrl-C stops at once, while the replies owed are still
// awaited.
func TestBenchSecondInterruptStopsAtOnce(t *testing.T) {
	addr, got, _ := lineServer(t, answerNever)
	p := startBench(t, addr, "--conns", "1", "--warmup", "0", "--timeout", "10m", "--text", "ascii", "--mode", "ascii")
	_, err := interruptTwice(t, p, got)
	if !stoppedBySIGINT(err) {
		t.Errorf("exit %v, want to be stopped by SIGINT", err)
	}
}

// With --json, the second Ctrl-C still leaves stdout a JSON object that
// says why there is no report, as every other run without one does; it
// printed nothing, and a pipeline's jq found no JSON at all.
func TestBenchSecondInterruptJSON(t *testing.T) {
	addr, got, _ := lineServer(t, answerNever)
	p := startBench(t, addr, "--conns", "1", "--warmup", "0", "--timeout", "10m", "--json")
	out, err := interruptTwice(t, p, got)
	if !stoppedBySIGINT(err) {
		t.Errorf("exit %v, want to be stopped by SIGINT", err)
	}
	if e, _ := jsonAlone(t, out)["error"].(string); !strings.Contains(e, "second") {
		t.Errorf("stdout:\n%s\nwant {\"error\": …} alone, that says a second interrupt stopped it", out)
	}
}

// A second Ctrl-C stops bench at once also when it started with SIGINT
// ignored (a background job in a script, nohup): it left the second to
// Go's default, which then ignored it, and bench waited out --timeout.
func TestBenchSecondInterruptWhenIgnoredAtStart(t *testing.T) {
	addr, got, _ := lineServer(t, answerNever)
	p := startCmd(t, exec.Command("sh", "-c", `trap '' INT; exec shout bench "$0" --conns 1 --warmup 0 --timeout 10m`, addr))
	_, err := interruptTwice(t, p, got)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("exit %v, want status 130", err)
	}
}

// interruptTwice sends p two SIGINTs once the server got a message (the
// second after bench says it took the first) and returns its stdout after
// the settings line and how it ended, failing t if it still runs after
// bound.
func interruptTwice(t *testing.T, p *benchProc, got chan struct{}) (string, error) {
	t.Helper()
	p.settings()
	waitFor(t, got, "a message at the server")
	p.cmd.Process.Signal(syscall.SIGINT)
	p.line(p.stderr, "the interrupt notice")
	// A person's second Ctrl-C, not a copy of the first (see echoes):
	// not the wait for something, but what makes it a second.
	time.Sleep(echoWindow)
	p.cmd.Process.Signal(syscall.SIGINT)
	var out strings.Builder
	read := make(chan struct{})
	go func() {
		for l := range p.stdout {
			out.WriteString(l + "\n")
		}
		close(read)
	}()
	select {
	case <-p.wait():
		<-read // (wait's end comes after the reader's)
		return out.String(), p.err
	case <-time.After(bound):
		t.Fatalf("still running %v after the second Ctrl-C", bound)
		return "", nil
	}
}

// A second SIGTERM, while bench waits for the replies owed, is the same
// request as the first (a supervisor's, sent again): bench goes on
// waiting and reports. It stopped at once, without a report, status 143.
func TestBenchSecondSIGTERMKeepsReport(t *testing.T) {
	addr, got, release := lineServer(t, answerOnRelease)
	p := startBench(t, addr, "--conns", "1", "--duration", "10m", "--warmup", "0", "--timeout", "10m", "--text", "ascii", "--mode", "ascii")
	checkSIGTERMTwice(t, p, got, release, func() { p.cmd.Process.Signal(syscall.SIGTERM) })
}

// checkSIGTERMTwice has term send p (a bench whose server got a message
// and answers once release is called) SIGTERM twice, and checks that
// p still reports what it measured.
func checkSIGTERMTwice(t *testing.T, p *benchProc, got chan struct{}, release, term func()) {
	t.Helper()
	p.settings()
	waitFor(t, got, "a message at the server")
	term()
	if l := p.line(p.stderr, "the stop notice"); !strings.Contains(l, "terminated: stopping") {
		t.Errorf("stderr %q, want it to say it is stopping", l)
	}
	// Sent again, not a relay's copy (see echoes): not the wait for
	// something, but what makes it a second.
	time.Sleep(echoWindow)
	term()
	if l := p.line(p.stderr, "the notice of the second"); !strings.Contains(l, "already stopping") {
		t.Errorf("stderr %q, want it to say it is already stopping", l)
	}
	release()
	out, code := p.rest()
	if code != 0 || !strings.Contains(out, "interrupted") || !strings.Contains(out, "every reply checked: all right") {
		t.Errorf("status %d, want 0 and a report that says interrupted and all right:\n%s", code, out)
	}
}

// stoppedBySIGINT reports whether err, from a shout process's wait, says
// that SIGINT ended it.
func stoppedBySIGINT(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGINT
}
