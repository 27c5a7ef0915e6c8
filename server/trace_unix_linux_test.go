package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"shout/internal/shouttest"
	"shout/server"
)

// A Unix client chooses its own address (an abstract name is any bytes),
// and the trace printed it raw: escape sequences from it reached the
// terminal, and a bidi override reached JSON logs, which escape only
// control characters. It is escaped, as the client's data is.
func TestUnixClientAddressEscaped(t *testing.T) {
	var trace shouttest.Log
	var logs bytes.Buffer
	logged := make(chan struct{}, 4)
	srv := &server.Server{Observer: server.Observers(
		server.NewTraceObserver(&trace),
		server.NewLogObserver(slog.New(slog.NewJSONHandler(notify{&logs, logged}, nil))),
	)}
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	shouttest.Serve(t, srv, ln)
	evil := "@\x1b]0;PWNED\x07\x1b[2J\u202eevil" // abstract: a leading NUL, shown as @
	c, err := net.DialUnix("unix", &net.UnixAddr{Name: evil, Net: "unix"}, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(bound))
	io.WriteString(c, "hi\n")
	io.ReadFull(c, make([]byte, 3))
	c.Close()
	if !trace.WaitFor("close()", bound) {
		t.Fatalf("no close in the trace:\n%s", trace.String())
	}
	for range 2 { // open and close
		select {
		case <-logged:
		case <-time.After(bound):
			t.Fatalf("not two log lines within %v:\n%s", bound, logs.String())
		}
	}
	for _, l := range strings.Split(trace.String(), "\n") {
		if strings.ContainsAny(l, "\x1b\x07\u202e") {
			t.Errorf("trace line carries the client's raw control characters: %q", l)
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if r, _ := rec["remote"].(string); strings.ContainsAny(r, "\x1b\x07\u202e") {
			t.Errorf("log line's remote carries the client's raw characters: %q", r)
		}
	}
}

// notify is a writer that says when it was written to.
type notify struct {
	w  io.Writer
	ch chan struct{}
}

func (n notify) Write(p []byte) (int, error) {
	k, err := n.w.Write(p)
	n.ch <- struct{}{}
	return k, err
}

// A Unix listener's SO_REUSEADDR, which Go sets on it too, was explained
// as a TCP one is, "while old connections wait out TIME_WAIT": a Unix
// socket has none, and what stops a restart is its file.
func TestTraceUnixListenerReuseAddr(t *testing.T) {
	var trace shouttest.Log
	srv := &server.Server{Logger: slog.New(slog.DiscardHandler), Observer: server.NewTraceObserver(&trace)}
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	shouttest.Serve(t, srv, ln)
	if !trace.WaitFor("listen(", bound) {
		t.Fatalf("no listen in the trace:\n%s", trace.String())
	}
	var reuse string
	for _, l := range strings.Split(trace.String(), "\n") {
		if strings.Contains(l, "SO_REUSEADDR") {
			reuse = l
		}
	}
	if reuse == "" {
		t.Skipf("no SO_REUSEADDR on a Unix listener here:\n%s", trace.String())
	}
	if strings.Contains(reuse, "wait out TIME_WAIT") || !strings.Contains(reuse, "a Unix socket has no TIME_WAIT") {
		t.Errorf("%q: want it said that a Unix socket has no TIME_WAIT", reuse)
	}
}

// A Unix socket's name is the user's, and may hold ESC and a newline:
// the bind line printed it raw (shout serve --trace unix://…), where
// the client's address on the accept line is escaped. A name in any
// script, emoji sequences too, reads as it is.
func TestTraceEscapesTheListenerName(t *testing.T) {
	var trace shouttest.Log
	srv := &server.Server{Logger: slog.New(slog.DiscardHandler), Observer: server.NewTraceObserver(&trace)}
	path := filepath.Join(t.TempDir(), "中文👩\u200d💻\x1b[31m\nt")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	shouttest.Serve(t, srv, ln)
	if !trace.WaitFor("listen(", bound) {
		t.Fatalf("no listen in the trace:\n%s", trace.String())
	}
	want := "bind(" + filepath.Join(filepath.Dir(path), "中文👩\u200d💻"+`\x1b[31m\nt`) + ")"
	if got := trace.String(); strings.Contains(got, "\x1b") || !strings.Contains(got, want) {
		t.Errorf("trace %q: want %q in it, and no ESC", got, want)
	}
}
