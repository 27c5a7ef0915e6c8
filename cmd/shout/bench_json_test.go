package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"shout/internal/shouttest"
	"shout/server"
)

// jsonAlone fails t unless stdout is one JSON object and nothing else,
// every line of it JSON too, as `| jq .`, `> run.json` and a JSON-lines
// reader take it; it returns the object. Nothing before it either, not
// even the white space JSON allows: a space that tried stdout led it,
// and a reader that looks for "{" at the start (or compares files) did
// not take it.
func jsonAlone(t *testing.T, stdout string) map[string]any {
	t.Helper()
	if !strings.HasPrefix(stdout, "{") {
		t.Errorf("stdout does not begin with the JSON object: %.20q", stdout)
	}
	for i, l := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		if !json.Valid([]byte(l)) {
			t.Errorf("stdout's line %d is not JSON: %q\nstdout:\n%s", i+1, l, stdout)
		}
	}
	d := json.NewDecoder(strings.NewReader(stdout))
	var v map[string]any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\nstdout:\n%s", err, stdout)
	}
	if err := d.Decode(new(any)); !errors.Is(err, io.EOF) {
		t.Errorf("stdout has more than one JSON value (%v)\nstdout:\n%s", err, stdout)
	}
	return v
}

// With --json standard output is the JSON alone, whatever the run's end,
// so that `shout bench --json | jq .` and `> run.json` take it; the text
// (the settings, the report) goes to stderr, for the person at the
// terminal. It was the settings line and the text report, then the JSON
// as the last line: jq failed at the first.
func TestBenchJSONStdoutIsJSONAlone(t *testing.T) {
	for _, tc := range []struct {
		name   string
		addr   func(t *testing.T) string
		args   []string
		code   int
		stderr []string // in the text, in order
		check  func(t *testing.T, v map[string]any)
	}{
		{"all right", func(t *testing.T) string {
			return shouttest.Start(t, &server.Server{Logger: slog.New(slog.DiscardHandler)})
		}, nil, 0, []string{" measured after ", "  messages  ", "every reply checked: all right"}, func(t *testing.T, v map[string]any) {
			if n, _ := v["messages"].(float64); n == 0 || v["ok"] != true || v["verdict"] != "every reply checked: all right" {
				t.Errorf("messages %v, ok %v, verdict %q; want some, true, all right", v["messages"], v["ok"], v["verdict"])
			}
		}},
		{"not all right", func(t *testing.T) string {
			addr, _, _ := lineServer(t, answerNever) // never answers
			return addr
		}, []string{"--timeout", "2s"}, 1, []string{" measured after ", "not all right: no reply came back"}, func(t *testing.T, v map[string]any) {
			// Why, in the JSON too, as the text report's last line says.
			verdict, _ := v["verdict"].(string)
			if n, _ := v["lost"].(float64); n == 0 || v["ok"] != false || !strings.HasPrefix(verdict, "not all right: no reply came back") {
				t.Errorf("lost %v, ok %v, verdict %q; want some, false, and why not", v["lost"], v["ok"], verdict)
			}
		}},
		{"no report", func(t *testing.T) string { return shouttest.Refusing(t) }, nil, 1, []string{" measured after ", "shout: connect "}, func(t *testing.T, v map[string]any) {
			if e, _ := v["error"].(string); !strings.Contains(e, "refused") {
				t.Errorf("error %q, want it to say the connection was refused", e)
			}
			// A CI job's jq '.ok == false' took a run with no report
			// for one that had not failed: it had no "ok".
			if ok, has := v["ok"]; ok != false {
				t.Errorf("ok %v (there: %v), want false", ok, has)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.addr(t)
			var stdout, stderr strings.Builder
			args := append([]string{"bench", addr, "--json", "--conns", "1", "--duration", "1s", "--warmup", "0"}, tc.args...)
			code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
			if code != tc.code {
				t.Errorf("status %d, want %d\nstderr:\n%s", code, tc.code, stderr.String())
			}
			tc.check(t, jsonAlone(t, stdout.String()))
			rest := stderr.String()
			for _, want := range tc.stderr {
				_, after, ok := strings.Cut(rest, want)
				if !ok {
					t.Errorf("stderr lacks %q (or has it out of order):\n%s", want, stderr.String())
					break
				}
				rest = after
			}
		})
	}
}

// With --json and stdout and stderr one file (2>&1, or both a terminal),
// the text and then the JSON, whole on the last line, as before: `2>&1 |
// tail -1 | jq .` works, and the settings line starts the file.
func TestBenchJSONWithStderrInStdout(t *testing.T) {
	addr := shouttest.Start(t, &server.Server{Logger: slog.New(slog.DiscardHandler)})
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command("shout", "bench", addr, "--json", "--conns", "1", "--duration", "1s", "--warmup", "0")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if !strings.HasPrefix(lines[0], "tcp://"+addr+": ") {
		t.Errorf("first line %q, want the settings", lines[0])
	}
	jsonAlone(t, lines[len(lines)-1])
}

// The JSON says which shout made it and when, for a CI job that keeps
// it: shout_version as shout version says it, and started, the run's
// start in RFC 3339. A report kept had neither: which build, on which
// day, was the figure of? The run without a report says them too.
func TestBenchJSONSaysWhichShoutAndWhen(t *testing.T) {
	version, revision := buildVersion() // as shout_build_info has them
	for _, tc := range []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"report", func(t *testing.T) string {
			return shouttest.Start(t, &server.Server{Logger: slog.New(slog.DiscardHandler)})
		}},
		{"no report", func(t *testing.T) string { return shouttest.Refusing(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.addr(t)
			before := time.Now().Truncate(time.Second) // RFC 3339 may say whole seconds
			var stdout, stderr strings.Builder
			run(context.Background(), []string{"bench", addr, "--json", "--conns", "1", "--duration", "1ms", "--warmup", "0"}, strings.NewReader(""), &stdout, &stderr)
			after := time.Now()
			v := jsonAlone(t, stdout.String())
			if got, _ := v["shout_version"].(string); got != version {
				t.Errorf("shout_version %q, want %q (shout version's)", v["shout_version"], version)
			}
			if got, _ := v["shout_revision"].(string); got != revision {
				t.Errorf("shout_revision %q, want %q", v["shout_revision"], revision)
			}
			s, _ := v["started"].(string)
			started, err := time.Parse(time.RFC3339, s)
			if err != nil || started.Before(before) || started.After(after) {
				t.Errorf("started %q (%v); want RFC 3339, between %v and %v", v["started"], err, before, after)
			}
		})
	}
}
