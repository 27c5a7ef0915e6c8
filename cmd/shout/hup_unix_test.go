//go:build unix

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"shout/internal/shouttest"
)

// A SIGHUP that comes while shout serve is still starting (here while it
// reads its certificate) must not end it: Go's default for a signal not
// yet caught is to die of it, and a certificate renewer may signal a
// server it has just started. The certificate comes through a FIFO, so
// the test knows shout is reading it when its own open returns.
func TestServeSIGHUPWhileStarting(t *testing.T) {
	p := newPKI(t)
	fifo := filepath.Join(t.TempDir(), "cert.pem")
	shouttest.NamedPipe(t, fifo)
	cert, err := os.ReadFile(p.serverCert)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("shout", "serve", "tls://127.0.0.1:0", "--cert", fifo, "--key", p.serverKey)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		// An open of the FIFO for writing still waiting for a reader ends
		// when one comes.
		if f, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
		for range lines {
		}
	})

	// Opening the FIFO for writing returns once shout has opened it to read.
	feed := func(what string) {
		t.Helper()
		opened := make(chan *os.File, 1)
		go func() {
			f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
			if err != nil {
				t.Error(err)
				f = nil
			}
			opened <- f
		}()
		select {
		case w := <-opened:
			if what == "start" {
				cmd.Process.Signal(syscall.SIGHUP)
			}
			if w != nil {
				w.Write(cert)
				w.Close()
			}
		case <-time.After(bound):
			t.Fatalf("%s: shout did not open its certificate within %v", what, bound)
		}
	}
	var log strings.Builder
	waitLog := func(want string) {
		t.Helper()
		deadline := time.After(bound)
		for !strings.Contains(log.String(), want) {
			select {
			case l, ok := <-lines:
				if !ok {
					err := <-exited
					var ee *exec.ExitError
					if errors.As(err, &ee) {
						err = errors.New(ee.String())
					}
					t.Fatalf("shout serve ended (%v) after a SIGHUP while starting\n%s", err, log.String())
				}
				log.WriteString(l + "\n")
			case <-deadline:
				t.Fatalf("no %q within %v\n%s", want, bound, log.String())
			}
		}
	}
	feed("start")
	waitLog("listening on tls://")
	// The SIGHUP is served once shout runs: the certificate is read again
	// (a renewer may have just replaced it).
	feed("reload")
	waitLog("certificate reloaded")
}

// A file's name in serve's log is escaped once, by the log's handler:
// the text format quotes a value holding ESC or a newline (strconv's
// escapes), JSON escapes it as JSON does, and either reads back as the
// name. certs escaped it too, so the text log said a\\x1b[31m and a
// program reading the JSON log could not tell the file's real name.
func TestServeLogsTheFileNameEscapedOnce(t *testing.T) {
	p := newPKI(t)
	pem, err := os.ReadFile(p.serverCert)
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			cert := filepath.Join(t.TempDir(), "a\x1b[31m\nb.pem")
			if err := os.WriteFile(cert, pem, 0o600); err != nil {
				t.Fatal(err)
			}
			srv := startServe(t, nil, "tls://127.0.0.1:0", "--cert="+cert, "--key="+p.serverKey, "--log-format="+format)
			if err := os.Remove(cert); err != nil {
				t.Fatal(err)
			}
			srv.cmd.Process.Signal(syscall.SIGHUP)
			why := "--cert: open " + cert + ": no such file or directory"
			want := "err=" + strconv.Quote(why)
			if format == "json" {
				b, err := json.Marshal(why)
				if err != nil {
					t.Fatal(err)
				}
				want = `"err":` + string(b)
			}
			srv.waitLog(want)
			if log := srv.logText(); strings.ContainsAny(log, "\x1b") {
				t.Errorf("log %q; want no ESC in it", log)
			}
		})
	}
}
