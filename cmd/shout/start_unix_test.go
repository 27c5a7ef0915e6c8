//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"shout/endpoint"
	"shout/internal/certs"
	"shout/internal/shouttest"
)

// serveExit runs shout serve with args, calls signal once shout waits
// as the test wants (ready closed), and returns its exit status and all
// it wrote. A wait that shout ends by itself, with an error, fails the
// test with it.
func serveExit(t *testing.T, ready <-chan struct{}, sig syscall.Signal, args ...string) (int, string) {
	t.Helper()
	return serveExitAs(t, "shout", new(shouttest.Log), ready, sig, args...)
}

// serveExitAs is serveExit, shout run as command (one of commands),
// writing to out, which the test may watch for ready.
func serveExitAs(t *testing.T, command string, out *shouttest.Log, ready <-chan struct{}, sig syscall.Signal, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(command, append([]string{"serve"}, args...)...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var err error
	go func() {
		err = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	status := func() int {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		return 0
	}
	select {
	case <-ready:
	case <-exited:
		t.Fatalf("shout serve ended before it waited, status %d:\n%s", status(), out.String())
	case <-time.After(bound):
		t.Fatalf("shout serve did not come to wait within %v", bound)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	// Longer than the wait itself (10 s a file), so that a signal left
	// for later shows as what shout did then.
	select {
	case <-exited:
		return status(), out.String()
	case <-time.After(3 * bound):
		t.Fatalf("shout serve still running %v after %v", 3*bound, sig)
	}
	return 0, ""
}

func init() {
	// shout whose waits on PEM files are logged at once: "a while" (1 s)
	// passes without a test waiting it out.
	commands["shout-pem-notice-at-once"] = func() {
		pemWaitNotice = 0
		main()
	}
}

// A start that waits on a PEM file says so, once, in serve's log format,
// and what it waits for: it was silent for up to 10 s a file. (This
// test's shout says so at once, not after pemWaitNotice.) The file's
// name, ESC and newline in it, is escaped once, by the log's handler:
// certs escaped it too, and the text log said a\\x1b[31m.
func TestServeLogsItWaitsForPEM(t *testing.T) {
	p := newPKI(t)
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			pipe := filepath.Join(t.TempDir(), "a\x1b[31m\nb.pem")
			pipeOpenedToRead(t, pipe)
			msg := strconv.Quote("waiting for --cert " + pipe + ": a pipe with nothing written yet")
			if format == "json" {
				b, err := json.Marshal("waiting for --cert " + pipe + ": a pipe with nothing written yet")
				if err != nil {
					t.Fatal(err)
				}
				msg = string(b)
			}
			var out shouttest.Log
			said := make(chan struct{})
			go func() {
				if out.WaitFor(msg, bound) {
					close(said)
				}
			}()
			code, log := serveExitAs(t, "shout-pem-notice-at-once", &out, said, syscall.SIGINT,
				"tls://127.0.0.1:0", "--cert", pipe, "--key", p.serverKey, "--log-format", format)
			var lines []string
			for l := range strings.Lines(log) {
				if strings.Contains(l, msg) {
					lines = append(lines, l)
				}
			}
			if len(lines) != 1 || code != 130 {
				t.Fatalf("status %d, log:\n%s\nwant 130, and %s said once", code, log, msg)
			}
			want := "level=INFO msg=" + msg + " timeout=10s\n"
			if format == "json" {
				want = `"level":"INFO","msg":` + msg + `,"timeout":"10s"}` + "\n"
			}
			if !strings.HasSuffix(lines[0], want) {
				t.Errorf("logged %q; want it to end %q", lines[0], want)
			}
		})
	}
}

// A wait on a PEM file with no time limit (a pipe on macOS, which Go's
// poller cannot wait on) is logged with no timeout: it said
// timeout=10s, and the wait went on past it.
func TestLogPEMWaitTimeout(t *testing.T) {
	for _, tc := range []struct {
		timeout time.Duration
		want    string
	}{
		{10 * time.Second, `level=INFO msg="waiting for --cert p.pem: …" timeout=10s` + "\n"},
		{0, `level=INFO msg="waiting for --cert p.pem: …"` + "\n"},
	} {
		var b bytes.Buffer
		noTime := func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
		logPEMWait(slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{ReplaceAttr: noTime})))("waiting for --cert p.pem: …", tc.timeout)
		if b.String() != tc.want {
			t.Errorf("timeout %v: logged %q, want %q", tc.timeout, b.String(), tc.want)
		}
	}
}

// openedToRead makes a named pipe and opens it to write, which returns
// once shout has opened it to read: ready is closed then, and shout
// waits for the pipe to be written to its end (nothing is).
func openedToRead(t *testing.T) (path string, ready <-chan struct{}) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "pipe.pem")
	return path, pipeOpenedToRead(t, path)
}

// pipeOpenedToRead is openedToRead, the named pipe made at path.
func pipeOpenedToRead(t *testing.T, path string) (ready <-chan struct{}) {
	t.Helper()
	shouttest.NamedPipe(t, path)
	opened := make(chan struct{})
	writer := make(chan *os.File, 1)
	go func() {
		w, err := os.OpenFile(path, os.O_WRONLY, 0)
		writer <- w
		if err == nil {
			close(opened)
		}
	}()
	t.Cleanup(func() {
		// An open still waiting for a reader returns when one comes.
		if r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			defer r.Close()
		}
		if w := <-writer; w != nil {
			w.Close()
		}
	})
	return opened
}

// A signal while shout serve waits for a PEM file to be written stops
// it then, saying so: it was caught and left for once shout served, so
// Ctrl-C did nothing until the wait ended, 10 s later for each file
// (then status 2, the file's error, as if Ctrl-C had never come).
// Ctrl-C and SIGQUIT end it with 128 + the signal and a line on stderr;
// SIGTERM, a supervisor's stop (systemctl stop), with 0 and a log line:
// its 143 made systemd mark the unit failed.
func TestServeSignalWhileWaitingForPEM(t *testing.T) {
	p := newPKI(t)
	for _, tc := range []struct {
		sig  syscall.Signal
		flag string
		code int
		last string // the output's last line; %s: the flag and its file
	}{
		{syscall.SIGINT, "--cert", 130, "shout: interrupt: stopped while starting: %s: not written to its end yet\n"},
		{syscall.SIGTERM, "--key", 0, `level=INFO msg="stopped while starting" signal=terminated cut_short="%s: not written to its end yet"` + "\n"},
		{syscall.SIGQUIT, "--client-ca", 131, "shout: quit: stopped while starting: %s: not written to its end yet\n"},
	} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			t.Parallel()
			pipe, ready := openedToRead(t)
			files := map[string]string{"--cert": p.serverCert, "--key": p.serverKey, "--client-ca": p.caFile}
			files[tc.flag] = pipe
			code, out := serveExit(t, ready, tc.sig, "tls://127.0.0.1:0",
				"--cert", files["--cert"], "--key", files["--key"], "--client-ca", files["--client-ca"])
			want := fmt.Sprintf(tc.last, tc.flag+" "+pipe)
			if code != tc.code || !strings.HasSuffix(out, want) || strings.Contains(out, "listening on") {
				t.Errorf("status %d, output:\n%s\nwant status %d, no listening, and the last line %q", code, out, tc.code, want)
			}
		})
	}
}

func init() {
	// shout whose listen sends it the signal $SHOUT_TEST_SIGNAL (a
	// number) and waits for its start to have taken it, then listens.
	commands["shout-signalled-then-listens"] = func() {
		sig, _ := strconv.Atoi(os.Getenv("SHOUT_TEST_SIGNAL"))
		listen = func(ctx context.Context, opts endpoint.Options, eps []endpoint.Endpoint) ([]net.Listener, []net.PacketConn, error) {
			syscall.Kill(os.Getpid(), syscall.Signal(sig))
			select {
			case <-ctx.Done():
			case <-time.After(bound):
			}
			return opts.Listen(eps)
		}
		main()
	}
}

// A signal during the start, then the start's failure (the port in
// use), ends serve as the signal does: it came first. The failure's
// status and error hid it (1, "address already in use" after Ctrl-C).
// The failure is still said: the signal may as well have come just
// after it, and a stop that said nothing of it left the operator to
// find the port in use on the next start (SIGTERM's status 0 said
// nothing at all).
func TestServeSignalBeforeStartFails(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	inUse := "listen tcp " + taken.Addr().String() + ": bind: address already in use"
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
		last string
	}{
		{syscall.SIGINT, 130, "shout: interrupt: stopped while starting; the start failed too: " + inUse + "\n"},
		{syscall.SIGTERM, 0, `level=WARN msg="stopped while starting" signal=terminated err="` + inUse + `"` + "\n"},
	} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			cmd := exec.Command("shout-signalled-then-listens", "serve", "tcp://"+taken.Addr().String())
			cmd.Env = append(os.Environ(), fmt.Sprintf("SHOUT_TEST_SIGNAL=%d", tc.sig))
			out, err := cmd.CombinedOutput()
			if code := exitCode(err); code != tc.code || !strings.HasSuffix(string(out), tc.last) {
				t.Errorf("status %d, output:\n%s\nwant status %d and the last line %q", code, out, tc.code, tc.last)
			}
		})
	}
}

// A PEM file not written in time is a failure, status 1, not a usage
// error (2): the flag is right, the pipe's writer late, and a
// supervisor that restarts on failures but not on bad flags gave up on
// it. (Each waits 10 s.)
func TestPEMNotWrittenIsNoUsageError(t *testing.T) {
	p := newPKI(t)
	for _, tc := range []struct {
		name string
		args func(pipe string) []string
		flag string
	}{
		{"serve", func(pipe string) []string {
			return []string{"serve", "tls://127.0.0.1:0", "--cert", pipe, "--key", p.serverKey}
		}, "--cert"},
		{"connect", func(pipe string) []string { return []string{"connect", "tls://127.0.0.1:1", "--ca", pipe} }, "--ca"},
		{"bench", func(pipe string) []string { return []string{"bench", "tls://127.0.0.1:1", "--ca", pipe} }, "--ca"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pipe, _ := openedToRead(t)
			cmd := exec.Command("shout", tc.args(pipe)...)
			cmd.Stdin = strings.NewReader("")
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			want := "shout: " + tc.flag + " " + pipe + ": nothing written to it within 10s"
			if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), want) {
				t.Errorf("%v, output:\n%s\nwant status 1 and %q", err, out, want)
			}
		})
	}
}

// A stop while a SIGHUP's reload waits for a PEM file to be written is
// not held up by it: shout stops as it does at any time, and the reload
// is dropped unlogged (not "certificate not reloaded" once it times out).
func TestServeStopWhileReloadWaits(t *testing.T) {
	p := newPKI(t)
	cert := copied(t, p.serverCert)
	srv := startServe(t, nil, "tls://127.0.0.1:0", "--cert", cert, "--key", p.serverKey)
	if err := os.Remove(cert); err != nil {
		t.Fatal(err)
	}
	reloading := pipeOpenedToRead(t, cert)
	srv.cmd.Process.Signal(syscall.SIGHUP)
	select {
	case <-reloading:
	case <-srv.done:
		t.Fatalf("shout serve ended on SIGHUP:\n%s", srv.logText())
	case <-time.After(bound):
		t.Fatalf("shout serve did not reload within %v:\n%s", bound, srv.logText())
	}
	srv.cmd.Process.Signal(syscall.SIGINT)
	if code := srv.wait(); code != 0 || strings.Contains(srv.logText(), "not reloaded") || !strings.Contains(srv.logText(), "msg=stopped") {
		t.Errorf("status %d, log:\n%s\nwant status 0, stopped, and no word of the reload", code, srv.logText())
	}
}

// copied is a copy of the file at path in a directory of t's own: one a
// test may remove, to put a pipe in its place.
func copied(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(cp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return cp
}

// reloadOnHUP ends with serve's context, a reload that waits on a PEM
// file included, and says nothing of that reload: run in-process it
// outlived serve, and a stop that cut the wait short was logged as the
// reload's failure. (Run as a process, shout's exit hid both.)
func TestReloadOnHUPEndsWithServe(t *testing.T) {
	p := newPKI(t)
	cert := copied(t, p.serverCert)
	store, err := certs.Load(context.Background(), cert, p.serverKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(cert); err != nil {
		t.Fatal(err)
	}
	reloading := pipeOpenedToRead(t, cert)
	var logged bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hup := make(chan os.Signal, 1)
	hup <- syscall.SIGHUP
	done := make(chan struct{})
	go func() {
		defer close(done)
		reloadOnHUP(ctx, hup, store, slog.New(slog.NewTextHandler(&logged, nil)))
	}()
	select {
	case <-reloading:
	case <-done:
		t.Fatalf("reloadOnHUP returned before it reloaded:\n%s", logged.String())
	case <-time.After(bound):
		t.Fatalf("reloadOnHUP did not reload within %v", bound)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(3 * bound):
		t.Fatalf("reloadOnHUP still running %v after serve's end", 3*bound)
	}
	if logged.Len() > 0 {
		t.Errorf("logged:\n%s\nwant nothing: the reload was serve's stop's, not a failure", logged.String())
	}
}

// While serve waits for a PEM file, the admin listener answers: /healthz
// 200 (the process lives) and /readyz 503 "not ready: starting", as the
// README's table says. It was not listening yet, so a start that waited
// for a pipe or a lease (up to 10 s a file) had every probe refused, a
// kubelet's liveness probe as a failure, and "starting" was never seen.
func TestServeAdminWhileWaitingForPEM(t *testing.T) {
	p := newPKI(t)
	pipe, opened := openedToRead(t)
	sock := filepath.Join(t.TempDir(), "admin.sock")
	c := &http.Client{Timeout: bound, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return new(net.Dialer).DialContext(ctx, "unix", sock)
		},
	}}
	get := func(path string) string {
		r, err := c.Get("http://admin" + path)
		if err != nil {
			return err.Error()
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return fmt.Sprintf("%d %s", r.StatusCode, strings.TrimSpace(string(b)))
	}
	got := map[string]string{}
	ready := make(chan struct{})
	go func() {
		defer close(ready)
		<-opened
		for _, path := range []string{"/healthz", "/readyz"} {
			got[path] = get(path)
		}
	}()
	code, out := serveExit(t, ready, syscall.SIGTERM, "tls://127.0.0.1:0",
		"--cert", pipe, "--key", p.serverKey, "--admin", "unix://"+sock)
	for path, want := range map[string]string{"/healthz": "200 ok", "/readyz": "503 not ready: starting"} {
		if got[path] != want {
			t.Errorf("GET %s while serve waited for --cert: %s, want %s", path, got[path], want)
		}
	}
	if code != 0 || !strings.Contains(out, `msg="stopped while starting"`) {
		t.Errorf("status %d, output:\n%s\nwant status 0 and stopped while starting", code, out)
	}
}
