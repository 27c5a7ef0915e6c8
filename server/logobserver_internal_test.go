package server

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuf is a log writer safe for a timer's goroutine and the test's.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The line for warnings held back is armed a second after the last line
// let through; if, as it comes due, the limiter's second has passed and
// another warning is let through first (its CompareAndSwap of last before
// heldBack loads last), that warning's own line tells the total. heldBack
// logged a line as well, at the same moment, breaking the once a second
// and counting the warning let through among the "unlogged": A let
// through, B held, C let through at A+1s just before the timer's
// heldBack ran: "rejected_total=3 unlogged=2" beside C's
// "rejected_total=3". Here the state is set as C's allowAt left it, and
// heldBack run as its timer would.
func TestHeldBackAfterALineLetThrough(t *testing.T) {
	var buf syncBuf
	o := NewLogObserver(slog.New(slog.NewTextHandler(&buf, nil))).(*logObserver)
	l := &o.warns[ReasonRejected]
	l.total.Store(3)           // A, B and C
	l.shown.Store(1)           // A's line; C's is about to be written
	l.last.Store(limiterNow()) // C let through just now
	l.due.Store(true)          // B's timer, armed for A's second
	o.heldBack(ReasonRejected)
	if s := buf.String(); s != "" {
		t.Errorf("heldBack logged within a second of a line let through:\n%s", s)
	}
	// C's own line shows its total; D, held after it, gets the line a
	// second after C's.
	l.claim(3)
	l.total.Store(4)
	want := "rejected_total=4 unlogged=1"
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(buf.String(), want); {
		if time.Now().After(deadline) {
			t.Fatalf("no line with %q for the one held after the line let through:\n%s", want, buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Errorf("%d lines, want the one:\n%s", n, buf.String())
	}
}

// A client certificate's subject is the client's to choose (an authority
// the server trusts signed it, but what it holds is the client's), and it
// was logged as crypto/x509 writes it: JSON escapes control characters
// below 0x20 alone, so a C1 control and a bidi override reached the log
// raw. It is escaped as the client's data is, in both formats.
func TestLogClientCertEscaped(t *testing.T) {
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: "alice\u202egpj.exe\u0085\x1b[2J"}}
	for _, format := range []string{"text", "json"} {
		var buf syncBuf
		h := slog.Handler(slog.NewTextHandler(&buf, nil))
		if format == "json" {
			h = slog.NewJSONHandler(&buf, nil)
		}
		o := NewLogObserver(slog.New(h))
		o.ConnOpen(&ConnInfo{
			Remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000},
			Local:  &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8443},
			TLS:    &tls.ConnectionState{Version: tls.VersionTLS13, PeerCertificates: []*x509.Certificate{cert}},
		})
		line := buf.String()
		if strings.ContainsAny(line, "\u202e\u0085\x1b") || !strings.Contains(line, `gpj.exe\\u0085`) {
			t.Errorf("%s: %q; want the subject escaped", format, line)
		}
	}
}
