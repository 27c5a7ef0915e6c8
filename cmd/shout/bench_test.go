package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"shout/internal/shouttest"
	"shout/server"
)

// TestBenchSilentServerFails: against a server that never answers, a run
// shorter than --timeout exits 1 and its last line says why.
func TestBenchSilentServerFails(t *testing.T) {
	addr := shouttest.StreamServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"bench", addr, "--conns", "2", "--duration", "1s",
		"--warmup", "0", "--timeout", "2s"}, strings.NewReader(""), &stdout, &stderr)
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if last := lines[len(lines)-1]; code != 1 || last != "  not all right: no reply came back, 2 lost" {
		t.Errorf("status %d, last line %q; want 1, %q\nstdout:\n%s\nstderr:\n%s",
			code, last, "  not all right: no reply came back, 2 lost", stdout.String(), stderr.String())
	}
}

// TestBenchDefaultTextCatches: with default flags, bench fails servers that
// keep "ß", upper-case only ASCII, or lowercase, and its report names the
// text it sent.
func TestBenchDefaultTextCatches(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func(string) string
	}{
		// Go's strings.ToUpper maps rune by rune: ß stays ß.
		{"keeps ß", strings.ToUpper},
		{"ascii only", func(s string) string {
			b := []byte(s)
			for i, c := range b {
				if 'a' <= c && c <= 'z' {
					b[i] = c - 32
				}
			}
			return string(b)
		}},
		{"lowercase", strings.ToLower},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := shouttest.StreamServer(t, func(c net.Conn) {
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := io.WriteString(c, tc.f(line)); err != nil {
						return
					}
				}
			})
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"bench", addr, "--conns", "2", "--duration", "200ms",
				"--warmup", "0", "--timeout", "1s"}, strings.NewReader(""), &stdout, &stderr)
			if code != 1 || !strings.Contains(stdout.String(), "not all right") {
				t.Errorf("status %d; want 1 and a report not all right\nstdout:\n%s\nstderr:\n%s",
					code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), "-byte utf8 messages") {
				t.Errorf("report does not name the utf8 text:\n%s", stdout.String())
			}
		})
	}
}

// TestBenchWarmupWrongReplyFails: a server that answers one message of
// the warm-up wrong, and every measured one right, fails the check (exit
// status 1), the report saying so on a warm-up line, the measured counts
// as right replies make them, and the JSON counting it apart
// (warmup_wrong). It exited 0, "every reply checked: all right", the
// wrong reply counted and shown nowhere.
func TestBenchWarmupWrongReplyFails(t *testing.T) {
	const (
		line = "  warm-up   1 wrong reply before measuring, in no count above; the first: got \"NOT THE REPLY\\n\", want "
		last = "  not all right: 1 wrong in the warm-up"
	)
	for _, asJSON := range []bool{false, true} {
		var code int
		var stdout, stderr bytes.Buffer
		// Again, at most five times in all, while the first message
		// was not the warm-up's (a stall as long as the warm-up; the
		// report then has no warm-up line).
		for try := range 5 {
			var answered atomic.Bool
			addr := shouttest.StreamServer(t, func(c net.Conn) {
				r := bufio.NewReader(c)
				for {
					got, err := r.ReadString('\n')
					if err != nil {
						return
					}
					reply := strings.ToUpper(got)
					if answered.CompareAndSwap(false, true) {
						reply = "NOT THE REPLY\n"
					}
					if _, err := io.WriteString(c, reply); err != nil {
						return
					}
				}
			})
			args := []string{"bench", addr, "--conns", "1", "--duration", "1s", "--warmup", "300ms", "--timeout", "10s", "--text", "ascii", "--mode", "ascii"}
			if asJSON {
				args = append(args, "--json")
			}
			stdout.Reset()
			stderr.Reset()
			code = run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
			text := stdout.String()
			if asJSON {
				text = stderr.String()
			}
			if strings.Contains(text, line) {
				break
			}
			t.Logf("run %d of at most 5 has no warm-up line (the first message measured after a stall?):\n%s", try+1, text)
		}
		text, lastLine := stdout.String(), strings.TrimRight(stdout.String(), "\n")
		if asJSON {
			text, lastLine = stderr.String(), strings.TrimRight(stderr.String(), "\n")
		}
		lastLine = lastLine[strings.LastIndex(lastLine, "\n")+1:]
		if code != 1 || !strings.Contains(text, line) || !strings.Contains(text, "  replies   0 wrong; 0 errors\n") || lastLine != last {
			t.Errorf("JSON %v: status %d, last line %q; want 1, %q, a line %q and the measured replies right\nstdout:\n%s\nstderr:\n%s",
				asJSON, code, lastLine, last, line, stdout.String(), stderr.String())
		}
		if asJSON && (!strings.Contains(stdout.String(), `"warmup_wrong":1,"first_warmup_wrong":"got \"NOT THE REPLY\\n\", want `) ||
			!strings.Contains(stdout.String(), `"ok":false,"verdict":"not all right: 1 wrong in the warm-up"`) ||
			!strings.Contains(stdout.String(), `"mismatches":0,`)) {
			t.Errorf("the JSON lacks warmup_wrong 1, its first, mismatches 0, ok false and the verdict:\n%s", stdout.String())
		}
	}
}

// TestBenchHTML runs shout bench --html against a shout server and opens
// the page in headless Chromium: the settings and verdict of the run, and
// four charts drawn.
func TestBenchHTML(t *testing.T) {
	addr := shouttest.Start(t, &server.Server{Logger: slog.New(slog.DiscardHandler)})
	path := filepath.Join(t.TempDir(), "report.html")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"bench", addr, "--conns", "4", "--duration", "2s", "--warmup", "0", "--html", path},
		strings.NewReader(""), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("status %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	page, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"<title>shout bench: tcp://" + addr + "</title>",
		`<tr><th>connections</th><td>4 from 127.0.0.1-4</td></tr>`,
		`id="verdict">every reply checked: all right</p>`,
	} {
		if !strings.Contains(string(page), want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// The time measured: 2 s, and a little more if the machine was slow
	// to end it.
	if measured := regexp.MustCompile(`<tr><th>measured</th><td>2\.\d\d s, after 0s warm-up</td></tr>`); !measured.Match(page) {
		t.Errorf("page lacks %v", measured)
	}

	chromium := shouttest.Tool(t, "chromium", "chromium")
	dom := string(shouttest.Headless(t, chromium, "--dump-dom", "file://"+path))
	if n := strings.Count(dom, `<canvas `); n != 4 {
		t.Errorf("%d canvases in the page, want 4 charts", n)
	}
	if !strings.Contains(dom, `<div class="u-label">messages/s</div>`) {
		t.Error("the throughput chart's legend is missing")
	}
}

// Ctrl-C during the measured time still writes the page, marked
// interrupted; Ctrl-C before anything was measured leaves no page.
func TestBenchInterruptHTML(t *testing.T) {
	addr, got, _ := lineServer(t, answerAtOnce)
	dir := t.TempDir()
	page := filepath.Join(dir, "measured.html")
	p := startBench(t, addr, "--conns", "2", "--duration", "10m", "--warmup", "0", "--text", "ascii", "--mode", "ascii", "--html", page)
	p.settings()
	waitFor(t, got, "a message at the server")
	p.cmd.Process.Signal(syscall.SIGINT)
	if out, code := p.rest(); code != 0 {
		t.Fatalf("status %d, want 0:\n%s", code, out)
	}
	b, err := os.ReadFile(page)
	if err != nil || !strings.Contains(string(b), " of 10m0s, interrupted, after 0s warm-up</td>") ||
		!strings.Contains(string(b), `id="verdict">every reply checked: all right<`) {
		t.Errorf("page after Ctrl-C: %v; want it marked interrupted and all right:\n%.2000s", err, b)
	}

	addr, got, _ = lineServer(t, answerAtOnce)
	none := filepath.Join(dir, "none.html")
	p = startBench(t, addr, "--conns", "2", "--warmup", "10m", "--html", none)
	p.settings()
	waitFor(t, got, "a message at the server")
	p.cmd.Process.Signal(syscall.SIGINT)
	if _, code := p.rest(); code != 130 {
		t.Errorf("status %d after Ctrl-C in the warm-up, want 130", code)
	}
	if _, err := os.Stat(none); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Ctrl-C before measuring left %s: %v", none, err)
	}
}
