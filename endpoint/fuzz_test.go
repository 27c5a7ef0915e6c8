package endpoint

import (
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzParse checks Parse on any string, as shout serve and shout connect
// get it from the command line: it fails with ErrBadAddress in one line
// that shows what it was given safely (quoted: no control character
// reaches the terminal), or it returns one endpoint per plain network
// (one for a scheme) whose address a listener or dialer takes as
// host:port, and whose String parses back to the same endpoint. An
// address it offers instead (did you mean "tcp://127.0.0.1:8080"?) is
// one it takes.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1:8080", "8080", "0", "99999", "tcp://[::1]:0", "udp://localhost:9",
		"unix:///tmp/shout.sock", "unix://@abstract", "tls://127.0.0.1:8443", ":8080",
		"tcp:8080", "tcp:http", "tcp:127.0.0.1:8080", "unix:s.sock", "http://x:1",
		"::1", "::1:8080", ":::8080", "fe80::1%lo:8080", "[fe80::1%lo]:8080",
		"[fe80::1%1]:8080", "[::ffff:127.0.0.1]:80", "127.0.0.1 :8080", "[::1]", "a:b:c",
		"TCP://127.0.0.1:1", "TCP-LISTEN:8080,fork", "UDP4:[::1]:9", "UNIX-CONNECT:/s", "OPENSSL-listen:",
		"tcp4:8080", "ssl:https", "tcp:/127.0.0.1", "/" + strings.Repeat("s", 120),
	} {
		f.Add(s, uint8(0))
	}
	plains := [][]string{{"tcp"}, {"tcp", "udp"}, {"udp"}}
	f.Fuzz(func(t *testing.T, s string, which uint8) {
		plain := plains[int(which)%len(plains)]
		eps, err := Parse(s, plain...)
		if err != nil {
			if !errors.Is(err, ErrBadAddress) {
				t.Fatalf("Parse(%q): %v, not ErrBadAddress", s, err)
			}
			if msg := err.Error(); !utf8.ValidString(msg) || strings.ContainsFunc(msg, unicode.IsControl) {
				t.Fatalf("Parse(%q): the error %q is not one line of text", s, msg)
			}
			if m := Meant(err); m != "" {
				if _, err := Parse(m, plain...); err != nil {
					t.Fatalf("Parse(%q) offers %q, which it refuses: %v", s, m, err)
				}
			}
			return
		}
		want := len(plain)
		if strings.Contains(s, "://") {
			want = 1
		}
		if len(eps) != want {
			t.Fatalf("Parse(%q, %q) = %v: %d endpoints, want %d", s, plain, eps, len(eps), want)
		}
		for _, e := range eps {
			switch e.Network {
			case "unix":
				if e.Address == "" || e.TLS {
					t.Fatalf("Parse(%q) = %+v", s, e)
				}
			case "tcp", "udp":
				if e.TLS && e.Network != "tcp" {
					t.Fatalf("Parse(%q) = %+v: TLS over %s", s, e, e.Network)
				}
				host, port, err := net.SplitHostPort(e.Address)
				if err != nil || !isPort(port) || strings.ContainsAny(host, "/ \t") && !strings.Contains(host, "%") {
					t.Fatalf("Parse(%q) = %+v: address not host:port (%v)", s, e, err)
				}
			default:
				t.Fatalf("Parse(%q) = %+v: network %q", s, e, e.Network)
			}
			back, err := Parse(e.String(), "tcp", "udp")
			if err != nil || !reflect.DeepEqual(back, []Endpoint{e}) {
				t.Fatalf("Parse(%q) = %+v, whose String %q parses as %+v, %v", s, e, e.String(), back, err)
			}
		}
	})
}
