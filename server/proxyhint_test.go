package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"shout/internal/shouttest"
	"shout/server"
)

// proxyV2 is a version 2 PROXY header: the signature, PROXY over TCP4,
// and its addresses (127.0.0.1:8000 to 127.0.0.1:8001), every byte ASCII,
// so that its reply is its uppercase.
const proxyV2 = "\r\n\r\n\x00\r\nQUIT\n" + "\x21\x11\x00\x0c" + "\x7f\x00\x00\x01\x7f\x00\x00\x01\x1f\x40\x1f\x41"

// proxyHints are the log's lines that say a connection's data began with
// a PROXY header.
func proxyHints(t *testing.T, log *shouttest.Log) []map[string]any {
	t.Helper()
	var hints []map[string]any
	for line := range strings.Lines(log.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "PROXY header answered as data" {
			hints = append(hints, m)
		}
	}
	return hints
}

// A balancer in front that sends a PROXY header to a server that does not
// read one had its header answered, uppercased, as a line of data, and the
// log said nothing: its operator, who left out --proxy-protocol, saw only
// odd first lines at the clients. The server logs it (once a connection,
// and at most once a second, with a total), however the network cut the
// header into reads, and answers the header as data still, as it does
// every message. Data that merely begins as a header may ("PROX", a line
// that begins with the word PROXY, version 2's first bytes) is not one.
func TestProxyHeaderAsDataIsLogged(t *testing.T) {
	v1 := "PROXY TCP4 192.0.2.7 127.0.0.1 4242 8080\r\n"
	for _, tc := range []struct {
		name    string
		parts   []string // written one after another, each once the last is answered
		version float64  // the header's, 0 for none
	}{
		{"v1", []string{v1 + "hello\n"}, 1},
		{"v1 TCP6", []string{"PROXY TCP6 2001:db8::1 ::1 4242 8080\r\nhello\n"}, 1},
		{"v1 UNKNOWN", []string{"PROXY UNKNOWN\r\nhello\n"}, 1},
		{"v1 in two reads, at PROX", []string{"PROX", v1[4:] + "hello\n"}, 1},
		{"v1 in two reads, at PROXY TCP", []string{"PROXY TCP", v1[9:]}, 1},
		{"v1 a byte a read", strings.SplitAfter(v1[:12], ""), 1},
		{"v1, then another", []string{v1, v1}, 1},
		{"v2", []string{proxyV2 + "hello\n"}, 2},
		{"v2 in two reads", []string{proxyV2[:5], proxyV2[5:] + "hello\n"}, 2},
		{"v2 a byte a read", strings.SplitAfter(proxyV2[:13], ""), 2},
		{"PROX alone", []string{"PROX"}, 0},
		{"PROXIMITY", []string{"PROXIMITY alert\n"}, 0},
		{"the word PROXY", []string{"PROXY is a word\n"}, 0},
		{"the word PROXY in two reads", []string{"PROX", "Y TCP5 is not a protocol\n"}, 0},
		{"v2's first bytes, then text", []string{"\r\n\r\n", "\x00\r\nQUI", "et\n"}, 0},
		{"a header after the first line", []string{"hello\n", v1}, 0},
		{"lower case", []string{"proxy tcp4 192.0.2.7 127.0.0.1 4242 8080\r\n"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log shouttest.Log
			srv := &server.Server{Logger: slogJSON(&log), Observer: server.NewLogObserver(discard())}
			addr := shouttest.Start(t, srv)
			c := shouttest.Dial(t, "tcp", addr, bound)
			r := bufio.NewReader(c)
			for _, p := range tc.parts {
				if _, err := io.WriteString(c, p); err != nil {
					t.Fatal(err)
				}
				// Its reply, whole: the server has read it (apart from the
				// next part) before the next is written.
				got := make([]byte, len(p))
				if _, err := io.ReadFull(r, got); err != nil {
					t.Fatalf("reply to %q: %v (got %q)", p, err, got)
				}
				if want := bytes.ToUpper([]byte(p)); !bytes.Equal(got, want) {
					t.Errorf("reply to %q is %q; want %q, answered as data", p, got, want)
				}
			}
			client := c.LocalAddr().String()
			if tc.version == 0 {
				// A header on another connection, whose line shows that the
				// first's, had it come, was not held back by the once a
				// second: written before its reply, as any would have been.
				d := shouttest.Dial(t, "tcp", addr, bound)
				io.WriteString(d, v1)
				if _, err := io.ReadFull(d, make([]byte, len(v1))); err != nil {
					t.Fatal(err)
				}
				client = d.LocalAddr().String()
			}
			// The line is logged before the reply that carries its last byte.
			hints := proxyHints(t, &log)
			if len(hints) != 1 {
				t.Fatalf("%d lines of a PROXY header answered as data; want 1, of %s\n%s", len(hints), client, log.String())
			}
			h := hints[0]
			want := map[string]any{"level": "WARN", "remote": client, "version": max(tc.version, 1), "total": float64(1),
				"why": "the client's data begins with a PROXY protocol header, which is answered as data: a listener reads one only with endpoint.Options.Proxy, from a source in endpoint.Options.Proxy.From"}
			for k, v := range want {
				if h[k] != v {
					t.Errorf("%s=%v; want %v\n%s", k, h[k], v, log.String())
				}
			}
		})
	}
}

// Any client can send a PROXY header: a flood of connections that each
// begin with one is logged at most once a second (the first at once),
// each line with the total so far; nothing of it is kept per connection.
func TestProxyHeaderFloodIsLoggedAtMostOnceASecond(t *testing.T) {
	var log shouttest.Log
	srv := &server.Server{Logger: slogJSON(&log), Observer: server.NewLogObserver(discard())}
	addr := shouttest.Start(t, srv)
	const conns = 50
	v1 := "PROXY TCP4 192.0.2.7 127.0.0.1 4242 8080\r\n"
	start := time.Now()
	for range conns {
		c := shouttest.Dial(t, "tcp", addr, bound)
		io.WriteString(c, v1)
		// The line, if any, is logged before the reply.
		if _, err := io.ReadFull(c, make([]byte, len(v1))); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	// Lines come a second apart at least, the first after start: more
	// than this many in elapsed is more than one a second.
	most := 1 + int(time.Since(start)/time.Second)
	hints := proxyHints(t, &log)
	if len(hints) == 0 || len(hints) > most {
		t.Fatalf("%d lines of a PROXY header answered as data for %d connections; want 1 to %d\n%s", len(hints), conns, most, log.String())
	}
	last := 0.0
	for _, h := range hints {
		if n, _ := h["total"].(float64); n <= last || n > conns || last == 0 && n != 1 {
			t.Fatalf("totals not 1 first and then rising, to at most %d:\n%s", conns, log.String())
		} else {
			last = n
		}
	}
}
