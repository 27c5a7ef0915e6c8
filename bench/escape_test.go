package bench_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"shout/bench"
	"shout/endpoint"
	"shout/internal/certs"
	"shout/internal/shouttest"
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

// What a server chose reaches the report as it is, as a Unix socket's
// name does: its JSON holds ESC as JSON does (\u001b), and the text
// report and the page escape it as \x1b. A TLS handshake's error, which
// package client escapes for callers that print it, reached first_error
// escaped: ESC as the four characters \x1b, which a program reading the
// JSON cannot tell from a name that holds them (and the page escaped
// only what client had). Here the server's certificate, after the first
// connection's, is for a name with ESC in it, and a churning run's
// handshakes fail on it.
func TestReportHoldsHandshakeTextAsItIs(t *testing.T) {
	const evil = "evil\x1b[31m.example"
	good, err := certs.SelfSigned([]string{"good.example"})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := certs.SelfSigned([]string{evil})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	for _, s := range []*certs.Store{good, bad} {
		leaf, _ := s.GetCertificate(nil)
		cert, err := x509.ParseCertificate(leaf.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		pool.AddCert(cert)
	}
	var hellos atomic.Int64
	srvCfg := &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if hellos.Add(1) == 1 { // bench's first connection, which finds the server
			return good.GetCertificate(h)
		}
		return bad.GetCertificate(h)
	}}
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(bound))
		tls.Server(c, srvCfg).Handshake() // (the client refuses the certificate)
	})
	cfg := bench.Config{Endpoint: endpoint.Endpoint{Network: "tcp", Address: addr, TLS: true},
		TLS: &tls.Config{RootCAs: pool, ServerName: "good.example"}, Churn: true,
		Conns: 1, Warmup: -1, Duration: busyWindow, Timeout: 5 * time.Second}
	// Again, up to three times, while no handshake failed while measuring
	// (a stall past the window).
	var rep *bench.Report
	for range 3 {
		hellos.Store(0)
		if rep, err = bench.Run(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		if rep.Errors > 0 {
			break
		}
	}
	if !strings.Contains(rep.FirstError, evil) {
		t.Errorf("first error %q; want the name the server chose in it as it is, %q", rep.FirstError, evil)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `evil\u001b[31m.example`) {
		t.Errorf("JSON %.300s...; want the name with ESC as JSON writes it, evil\\u001b[31m.example", b[strings.Index(string(b), `"first_error"`):])
	}
	var text, page strings.Builder
	rep.WriteText(&text)
	if !strings.Contains(text.String(), `evil\x1b[31m.example`) || strings.Contains(text.String(), "\x1b") {
		t.Errorf("text report:\n%s\nwant the name escaped, evil\\x1b[31m.example, and no ESC", text.String())
	}
	// The page too, which showed it escaped only as client had.
	if err := rep.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), `evil\x1b[31m.example`) || strings.Contains(page.String(), "\x1b") {
		t.Errorf("the page holds ESC, or not the name escaped, evil\\x1b[31m.example")
	}
}
