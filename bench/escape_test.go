package bench_test

import (
	"encoding/json"
	"strings"
	"testing"

	"shout/bench"
)

// The text report and its header escape what a terminal would obey: a
// Unix socket's name may hold ESC and newlines, and the server's name
// and an error naming it reached the terminal raw (shout bench
// unix:///…), a colour turned on and a line of the report forged. The
// JSON keeps the texts as they are, for the program that reads it.
func TestTextReportEscapes(t *testing.T) {
	const name = "/tmp/a\x1b[31m\nb"
	const shown = `/tmp/a\x1b[31m\nb`
	why := "connect " + name + ": connection reset by peer"
	r := &bench.Report{
		Settings:         bench.Settings{Network: "unix", Addr: name, Conns: 1},
		Errors:           1,
		FirstError:       why,
		WarmupErrors:     1,
		FirstWarmupError: why,
		CutShort:         "every connection failed: " + why,
	}
	var header, text strings.Builder
	r.WriteHeader(&header)
	r.WriteText(&text)
	for _, tc := range []struct{ name, got, want string }{
		{"header", header.String(), "unix://" + shown + ": "},
		{"first error", text.String(), "first error: connect " + shown + ": connection reset"},
		{"warm-up", text.String(), "the first: connect " + shown + ": connection reset"},
		{"cut short", text.String(), "cut short: every connection failed: connect " + shown + ": "},
	} {
		if !strings.Contains(tc.got, tc.want) || strings.Contains(tc.got, "\x1b") {
			t.Errorf("%s: %q; want %q in it, and no ESC", tc.name, tc.got, tc.want)
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back bench.Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Addr != name || back.FirstError != why {
		t.Errorf("JSON's addr %q, first_error %q; want them as they are, %q and %q", back.Addr, back.FirstError, name, why)
	}
}
