package main

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"shout/endpoint"
)

// FuzzProxyFrom checks serve's reading of a --proxy-from value, any
// string: it is refused in one line that shows it safely (quoted: no
// control character reaches the terminal), or taken as one masked range
// that holds the address it names, and that the range's own text is
// taken as the same range again.
func FuzzProxyFrom(f *testing.F) {
	for _, s := range []string{
		"10.0.0.0/8", " 192.168.0.0/16", "127.0.0.1", "::1", "fd00::/8", "::ffff:10.0.0.0/104",
		"::ffff:10.1.2.3", "fe80::1%eth0", "[::1]", "[fe80::1%eth0]", "[fd00::]/8", "[::1]:80", "ten", "10.0.0.1/33",
	} {
		f.Add(s)
	}
	from := func(s string) ([]netip.Prefix, error) {
		cmd := &serveCmd{ProxyProtocol: true, ProxyFrom: []string{s}, HandshakeTimeout: time.Second}
		opts, _, err := cmd.listenOptions(context.Background(), []endpoint.Endpoint{{Network: "tcp", Address: "127.0.0.1:0"}})
		if err != nil {
			return nil, err
		}
		return opts.Proxy.From, nil
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := from(s)
		if err != nil {
			if msg := err.Error(); !utf8.ValidString(msg) || strings.ContainsFunc(msg, unicode.IsControl) {
				t.Fatalf("--proxy-from %q: the error %q is not one line of text", s, msg)
			}
			return
		}
		if len(got) != 1 || !got[0].IsValid() || got[0] != got[0].Masked() || got[0].Addr().Zone() != "" {
			t.Fatalf("--proxy-from %q: %v, want one masked range", s, got)
		}
		p := got[0]
		v := strings.TrimSpace(s)
		if a, err := netip.ParseAddr(v); err == nil && !p.Contains(a.Unmap().WithZone("")) {
			t.Fatalf("--proxy-from %q: %v does not hold the address", s, p)
		}
		if q, err := netip.ParsePrefix(v); err == nil && !p.Contains(q.Addr().Unmap()) {
			t.Fatalf("--proxy-from %q: %v does not hold the range's address", s, p)
		}
		if again, err := from(p.String()); err != nil || len(again) != 1 || again[0] != p {
			t.Fatalf("--proxy-from %q is %v, and --proxy-from %v is %v, %v", s, p, p, again, err)
		}
	})
}
