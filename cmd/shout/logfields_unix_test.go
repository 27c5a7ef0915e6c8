//go:build unix

package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// logFields is README's table of the log's fields: each field's JSON
// type (string, number or boolean) and what its unit cell says.
func logFields(t *testing.T) (types, units map[string]string) {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "**The log's fields**")
	if !ok {
		t.Fatal(`README has no "**The log's fields**" table`)
	}
	types, units = map[string]string{}, map[string]string{}
	name := regexp.MustCompile("`([a-z_0-9]+)`")
	for _, line := range strings.Split(table, "\n")[1:] {
		if strings.HasPrefix(line, "|---") || strings.HasPrefix(line, "| Field ") {
			continue
		}
		if !strings.HasPrefix(line, "| `") {
			if len(types) > 0 {
				break // the table's end
			}
			continue
		}
		cells := strings.Split(line, " | ")
		if len(cells) < 4 {
			t.Fatalf("README's log field row has %d cells: %s", len(cells), line)
		}
		for _, m := range name.FindAllStringSubmatch(cells[0], -1) {
			types[m[1]], units[m[1]] = cells[1], cells[2]
		}
	}
	if len(types) == 0 {
		t.Fatal("README's table of the log's fields has no rows")
	}
	return types, units
}

// textFields reads a line of slog's text format: key=value, the value
// quoted (Go's quoting) where it has a space or a quote.
func textFields(line string) (map[string]string, bool) {
	f := map[string]string{}
	for line = strings.TrimSpace(line); line != ""; line = strings.TrimLeft(line, " ") {
		k, rest, ok := strings.Cut(line, "=")
		if !ok {
			return nil, false
		}
		v := rest
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return nil, false
			}
			v, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else {
			v, rest, _ = strings.Cut(rest, " ")
			rest = " " + rest
		}
		f[k] = v
		line = rest
	}
	return f, true
}

// Every field shout serve logs, in text and in JSON, is in README's table
// of them with the type it has: a log pipeline is set up from it (a
// duration is integer nanoseconds in JSON, timeout a string in both). No
// table said what each field held, of what type, and when.
func TestLogFieldsAsREADMESays(t *testing.T) {
	types, units := logFields(t)
	// Each field of the table is one shout logs: a name mistyped there
	// is no field at all. (time, level and msg are slog's own.)
	var src bytes.Buffer
	for _, glob := range []string{"*.go", "../../server/*.go", "../../internal/asynclog/*.go", "../../admin/*.go"} {
		files, _ := filepath.Glob(glob)
		for _, f := range files {
			if !strings.HasSuffix(f, "_test.go") {
				b, _ := os.ReadFile(f)
				src.Write(b)
			}
		}
	}
	for k := range types {
		if k != "time" && k != "level" && k != "msg" && !bytes.Contains(src.Bytes(), []byte(strconv.Quote(k))) {
			t.Errorf("README's log field %q is logged nowhere in shout's source", k)
		}
	}
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			srv := startServe(t, nil, "-v", "--log-format="+format, "tcp://127.0.0.1:0", "udp://127.0.0.1:0", "tls://127.0.0.1:0", "--tls-self-signed", "--admin=127.0.0.1:0")
			// Open, a message cut at 96 bytes (more), close; a datagram; a
			// TLS connection's open (tls).
			if got := exchange(t, "tcp", srv.addr("tcp"), strings.Repeat("a", 100)+"\n"); got == "" {
				t.Fatal("no reply over TCP")
			}
			if got := exchange(t, "udp", srv.addr("udp"), "hi"); got != "HI" {
				t.Fatalf("over UDP: %q", got)
			}
			c, err := tls.Dial("tcp", srv.addr("tls"), &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(bound))
			io.WriteString(c, "tls\n")
			if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
				t.Fatal(err)
			}
			c.Close()
			srv.cmd.Process.Signal(syscall.SIGTERM) // shutting down, with its timeout
			if code := srv.wait(); code != 0 {
				t.Fatalf("shout serve: status %d\n%s", code, srv.logText())
			}
			seen := map[string]bool{}
			for _, line := range strings.Split(strings.TrimSpace(srv.logText()), "\n") {
				var kinds map[string]string // field → the type its value has
				if format == "json" {
					var v map[string]any
					d := json.NewDecoder(strings.NewReader(line))
					d.UseNumber()
					if err := d.Decode(&v); err != nil {
						t.Errorf("not a JSON line: %q", line)
						continue
					}
					kinds = map[string]string{}
					for k, x := range v {
						kinds[k] = jsonKind(x)
					}
				} else {
					f, ok := textFields(line)
					if !ok {
						t.Errorf("not a text log line: %q", line)
						continue
					}
					kinds = map[string]string{}
					for k, v := range f {
						kinds[k] = textKind(types[k], units[k], v)
					}
				}
				for k, kind := range kinds {
					seen[k] = true
					switch want, ok := types[k]; {
					case !ok:
						t.Errorf("field %q (in %q) is not in README's table of the log's fields", k, line)
					case kind != want:
						t.Errorf("field %q is a %s in %s (%q); README's table says %s", k, kind, format, line, want)
					}
				}
			}
			// The run logged what it was meant to: else the checks above
			// passed over the fields that matter.
			for _, k := range []string{"remote", "local", "tls", "duration", "bytes_in", "bytes", "data", "more", "timeout", "signal", "pprof", "engine", "workers", "names", "not_after"} {
				if !seen[k] {
					t.Errorf("the run logged no %q:\n%s", k, srv.logText())
				}
			}
		})
	}
}

// jsonKind is the JSON type of x, decoded with UseNumber.
func jsonKind(x any) string {
	switch x.(type) {
	case json.Number:
		return "number"
	case string:
		return "string"
	case bool:
		return "boolean"
	}
	return "object or array"
}

// textKind is the JSON type that v, a text line's value of a field whose
// JSON type README says is want, stands for: a number is an integer in
// text, or Go's duration where README says nanoseconds; a boolean true
// or false; any text may be a string.
func textKind(want, unit, v string) string {
	switch want {
	case "number":
		if strings.Contains(unit, "nanoseconds") {
			if _, err := time.ParseDuration(v); err == nil {
				return want
			}
		} else if _, err := strconv.ParseInt(v, 10, 64); err == nil {
			return want
		}
	case "boolean":
		if v == "true" || v == "false" {
			return want
		}
	}
	return "string"
}
