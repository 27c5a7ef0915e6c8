package endpoint

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want []Endpoint
	}{
		{"127.0.0.1:8080", []Endpoint{{Network: "tcp", Address: "127.0.0.1:8080"}, {Network: "udp", Address: "127.0.0.1:8080"}}},
		{"8080", []Endpoint{{Network: "tcp", Address: "127.0.0.1:8080"}, {Network: "udp", Address: "127.0.0.1:8080"}}},
		{"tcp://[::1]:0", []Endpoint{{Network: "tcp", Address: "[::1]:0"}}},
		{"udp://localhost:9", []Endpoint{{Network: "udp", Address: "localhost:9"}}},
		{"unix:///tmp/shout.sock", []Endpoint{{Network: "unix", Address: "/tmp/shout.sock"}}},
		{"tls://127.0.0.1:8443", []Endpoint{{Network: "tcp", Address: "127.0.0.1:8443", TLS: true}}},
		{":8080", []Endpoint{{Network: "tcp", Address: ":8080"}, {Network: "udp", Address: ":8080"}}},
		// A socket's path is a path, whatever is in it: no URL's path,
		// query, fragment or user is cut from it.
		{"unix:///tmp/x.sock/?v=1#a", []Endpoint{{Network: "unix", Address: "/tmp/x.sock/?v=1#a"}}},
		{"UNIX://./rel/s", []Endpoint{{Network: "unix", Address: "./rel/s"}}},
		{"unix://u@h/s", []Endpoint{{Network: "unix", Address: "u@h/s"}}},
	}
	for _, tc := range tests {
		got, err := Parse(tc.in, "tcp", "udp")
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Parse(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "localhost", "http://x:1", "unix://", "127.0.0.1:99999", "127.0.0.1:", "[::1:80", "127.0.0.1:nope"} {
		if got, err := Parse(in, "tcp"); !errors.Is(err, ErrBadAddress) {
			t.Errorf("Parse(%q) = %v, %v; want ErrBadAddress", in, got, err)
		}
	}
	// A socket path longer than the system's sockaddr holds is refused
	// here, saying so: bind and connect said only "invalid argument".
	longest := "/" + strings.Repeat("s", maxUnixPath("/")-1)
	if _, err := Parse("unix://"+longest, "tcp"); err != nil {
		t.Errorf("the longest socket path (%d bytes): %v", len(longest), err)
	}
	if _, err := Parse("unix://"+longest+"s", "tcp"); !errors.Is(err, ErrBadAddress) || !strings.Contains(err.Error(), "at most") {
		t.Errorf("a socket path of %d bytes: %v; want ErrBadAddress saying how long a path may be", len(longest)+1, err)
	}
	// An abstract name (Linux) needs no NUL: one byte more. Elsewhere "@"
	// is a file's name's first character, and the file's limit holds.
	abstract := "@" + strings.Repeat("a", maxUnixPath("/"))
	_, err := Parse("unix://"+abstract, "tcp")
	if linux := runtime.GOOS == "linux"; linux != (err == nil) {
		t.Errorf("an abstract name of %d bytes on %s: %v", len(abstract), runtime.GOOS, err)
	}
	// A port past 2^32 whose digits wrap Go's own port lookup to a port
	// number (4294967377 to 81, 4294967376 to 80) is refused as the
	// number it is: shout serve 127.0.0.1:4294967377 listened on port 81.
	for _, in := range []string{"127.0.0.1:4294967377", "tcp://[::1]:4294967376", "localhost:4294967377"} {
		if got, err := Parse(in, "tcp"); !errors.Is(err, ErrBadAddress) || !strings.Contains(err.Error(), "is not a number from 0 to 65535") {
			t.Errorf("Parse(%q) = %v, %v; want the port named out of range", in, got, err)
		}
	}
	// A port with a sign is no port, as a service name cannot begin with
	// one: Go's lookup took +80 for 80 and -0 for 0, which shout connect
	// then dialled, past its check that port 0 is for listening.
	for _, in := range []string{"127.0.0.1:+80", "127.0.0.1:-0", "udp://[::1]:-0", "localhost:+0080"} {
		if got, err := Parse(in, "tcp"); !errors.Is(err, ErrBadAddress) || !strings.Contains(err.Error(), "is not a number from 0 to 65535") {
			t.Errorf("Parse(%q) = %v, %v; want the port refused", in, got, err)
		}
	}
	// A bare port too large says so, not "missing port in address".
	for _, port := range []string{"99999", "99999999999999999999"} { // the second past 64 bits
		if _, err := Parse(port, "tcp"); err == nil || !strings.Contains(err.Error(), "port "+port+" is not a number from 0 to 65535") {
			t.Errorf("Parse(%q): %v; want the port named out of range", port, err)
		}
	}
	tooLong := "/" + strings.Repeat("s", maxUnixPath("/")+1)
	// A scheme with one slash or none, and a host no lookup can find, say
	// what is wrong with the address, not that a port is not a number or
	// that the name does not resolve.
	for in, want := range map[string]string{
		"unix:/tmp/s.sock":      `did you mean "unix:///tmp/s.sock"?`,
		"unix:s.sock":           `did you mean "unix://s.sock"?`,
		"tcp:127.0.0.1:8080":    `did you mean "tcp://127.0.0.1:8080"?`,
		"udp:/127.0.0.1:8080":   `did you mean "udp://127.0.0.1:8080"?`,
		"tls:[::1]:8443":        `did you mean "tls://[::1]:8443"?`,
		"tcp:///127.0.0.1:8080": `host "/127.0.0.1" is not a name or an address`,
		"127.0.0.1 :8080":       `host "127.0.0.1 " is not a name or an address`,
		"TCP:127.0.0.1:8080":    `did you mean "tcp://127.0.0.1:8080"?`,

		// socat's syntax: TCP-LISTEN:8080 was host TCP-LISTEN, port 8080,
		// looked up and not found; TCP4:host:port too many colons.
		"TCP-LISTEN:8080":                 `did you mean "tcp://:8080", every interface as socat listens, or "tcp://127.0.0.1:8080", this machine only?`,
		"tcp4-listen:8080,reuseaddr,fork": `did you mean "tcp://:8080"`,
		"UDP-RECVFROM:9000":               `did you mean "udp://:9000"`,
		"TCP4:127.0.0.1:8080":             `did you mean "tcp://127.0.0.1:8080"?`,
		"UDP6:[::1]:9000":                 `did you mean "udp://[::1]:9000"?`,
		"UNIX-CONNECT:/tmp/s.sock":        `did you mean "unix:///tmp/s.sock"?`,
		// A socket's listener is its path, as its connector's: no
		// "every interface" or "this machine only" to choose from.
		"UNIX-LISTEN:/tmp/s.sock": `socat's syntax (did you mean "unix:///tmp/s.sock"?)`,
		// With a URL's path as tcp:127.0.0.1:8080/ has: the address, as
		// without it, not socat's form alone.
		"TCP4:127.0.0.1:8080/": `socat's syntax (did you mean "tcp://127.0.0.1:8080"?)`,
		"udp6:[::1]:53?x":      `socat's syntax (did you mean "udp://[::1]:53"?)`,
		"TCP4:127.0.0.1:99999": `socat's syntax; port "99999" is not a number from 0 to 65535`,
		// A port out of range before a URL's path is named as written:
		// it was quoted "65536/", the path in the port.
		"TCP4:127.0.0.1:65536/":   `socat's syntax; a URL's path "/" is not part of an address; port "65536" is not a number from 0 to 65535`,
		"tcp://127.0.0.1:65536/":  `a URL's path "/" is not part of an address; port "65536" is not a number from 0 to 65535`,
		"127.0.0.1:65536?x":       `a URL's query "?x" is not part of an address; port "65536" is not a number from 0 to 65535`,
		"https://h:99999/":        `unknown scheme "https"; port "99999" is not a number from 0 to 65535`,
		"tcp://me@127.0.0.1:nope": `a URL's user "me@" is not part of an address; port "nope" is not a number from 0 to 65535`,
		// A path alone, as nc -U takes it: not a host missing its port.
		"/tmp/s.sock":            `a Unix socket's path goes after unix:// (did you mean "unix:///tmp/s.sock"?)`,
		"./s.sock":               `did you mean "unix://./s.sock"?`,
		"../run/s:8080":          `did you mean "unix://../run/s:8080"?`,
		"OPENSSL:127.0.0.1:8443": `did you mean "tls://127.0.0.1:8443"?`,
		"TCP6:fe80::1:80":        `socat's syntax (shout takes tcp://[IPV6]:PORT)`, // no address to offer
		// Another tool's scheme, or the web's: the one meant, where
		// the rest is an address.
		"https://127.0.0.1:8443": `unknown scheme "https" (did you mean "tls://127.0.0.1:8443"?)`,
		"http://127.0.0.1:8080":  `unknown scheme "http" (did you mean "tcp://127.0.0.1:8080"?)`,
		"tcp4://127.0.0.1:8080":  `unknown scheme "tcp4" (did you mean "tcp://127.0.0.1:8080"?)`,
		"UDP6://[::1]:9000":      `unknown scheme "udp6" (did you mean "udp://[::1]:9000"?)`,
		"ssl://localhost:8443":   `unknown scheme "ssl" (did you mean "tls://localhost:8443"?)`,
		// A web URL without a port means its scheme's: it offered none,
		// "want tcp://, udp://, tls:// or unix://".
		"http://127.0.0.1/":   `unknown scheme "http" (did you mean "tcp://127.0.0.1:80"?)`,
		"https://localhost/":  `unknown scheme "https" (did you mean "tls://localhost:443"?)`,
		"HTTPS://localhost":   `unknown scheme "https" (did you mean "tls://localhost:443"?)`,
		"wss://me@[::1]/x?y":  `unknown scheme "wss" (did you mean "tls://[::1]:443"?)`,
		"ws://localhost:/":    `unknown scheme "ws"; no port`, // a port left empty: none to offer
		"https://[::1:443/":   `unknown scheme "https" (want tcp://, udp://, tls:// or unix://)`,
		"https://:443/":       `unknown scheme "https" (did you mean "tls://:443"?)`,
		"tcp://localhost/":    `(missing port in address)`, // tcp:// has no port of its own
		"https://localhost:0": `unknown scheme "https" (did you mean "tls://localhost:0"?)`,
		// A URL pasted with its path: the address is what comes before it.
		"http://127.0.0.1:8080/":        `unknown scheme "http" (did you mean "tcp://127.0.0.1:8080"?)`,
		"HTTPS://localhost:8443/x?y=1":  `unknown scheme "https" (did you mean "tls://localhost:8443"?)`,
		"tcp://127.0.0.1:8080/":         `a URL's path "/" is not part of an address (did you mean "tcp://127.0.0.1:8080"?)`,
		"udp://[::1]:9000/#top":         `a URL's path "/#top" is not part of an address (did you mean "udp://[::1]:9000"?)`,
		"tls://127.0.0.1:8443?insecure": `a URL's query "?insecure" is not part of an address (did you mean "tls://127.0.0.1:8443"?)`,
		"tcp://127.0.0.1/8080":          `(missing port in address)`, // no address before it: as ever
		"tcp://h:1#":                    `a URL's fragment "#" is not part of an address (did you mean "tcp://h:1"?)`,
		"tcp://[fe80::1%lo]:80/x?y":     `a URL's path "/x?y" is not part of an address (did you mean "tcp://[fe80::1%lo]:80"?)`,
		// Without its scheme too: the port was "8080/".
		"127.0.0.1:8080/":    `a URL's path "/" is not part of an address (did you mean "127.0.0.1:8080"?)`,
		"[::1]:8080/":        `a URL's path "/" is not part of an address (did you mean "[::1]:8080"?)`,
		"localhost:8080?x#y": `a URL's query "?x#y" is not part of an address (did you mean "localhost:8080"?)`,
		"me@[::1]:80/x":      `a URL's user "me@" is not part of an address (did you mean "[::1]:80"?)`,
		"127.0.0.1/":         `(missing port in address)`, // no address before it
		// A scheme with one colon, and a path: the address offered is
		// the one that parses, not "tcp://127.0.0.1:8080/", which
		// itself offered "tcp://127.0.0.1:8080".
		"tcp:127.0.0.1:8080/": `a scheme ends in :// (did you mean "tcp://127.0.0.1:8080"?)`,
		"udp:[::1]:53?x":      `a scheme ends in :// (did you mean "udp://[::1]:53"?)`,
		"run/s.sock":          `(missing port in address)`,
		// A URL's user: the address is what comes after it. The
		// suggestion kept it, and the one tried failed, "unknown host
		// user@127.0.0.1".
		"http://user@127.0.0.1:8080/": `unknown scheme "http" (did you mean "tcp://127.0.0.1:8080"?)`,
		"tcp://user:pw@[::1]:8080":    `a URL's user "user:xxxxx@" is not part of an address (did you mean "tcp://[::1]:8080"?)`,
		"tls://me@localhost:8443/x":   `a URL's user "me@" is not part of an address (did you mean "tls://localhost:8443"?)`,
		"me@127.0.0.1:8080":           `a URL's user "me@" is not part of an address (did you mean "127.0.0.1:8080"?)`,
		"@127.0.0.1:8080":             `a URL's user "@" is not part of an address (did you mean "127.0.0.1:8080"?)`,
		"tcp://user@":                 `a URL's user "user@" is not part of an address (shout takes tcp://HOST:PORT)`, // no address after it
		"ftp://127.0.0.1:21":          `unknown scheme "ftp" (want tcp://, udp://, tls:// or unix://)`,
		// An address that would be refused in turn is not offered: what
		// it lacks is said with the scheme's hint. tcp:/127.0.0.1 offered
		// "tcp://127.0.0.1" (missing port), a path too long for a socket
		// "unix:///…" (too long).
		"tcp:/127.0.0.1": `a scheme ends in :// (shout takes tcp://HOST:PORT)`,
		"udp:[::1]":      `a scheme ends in :// (shout takes udp://[IPV6]:PORT)`,
		// An IPv6 address's brackets are said, as for tcp://::1:8080:
		// the hint said HOST:PORT alone.
		"tcp:::1:8080":            `a scheme ends in :// (shout takes tcp://[IPV6]:PORT)`,
		"tcp:fe80::1%lo:8080":     `a scheme ends in :// (shout takes tcp://[IPV6]:PORT)`,
		"tcp:a:b:c":               `a scheme ends in :// (shout takes tcp://HOST:PORT)`,
		"tls:127.0.0.1:99999":     `a scheme ends in ://; port "99999" is not a number from 0 to 65535`,
		"unix:" + tooLong:         fmt.Sprintf("a scheme ends in ://; a socket path of %d bytes: this system's sockets take at most", len(tooLong)),
		tooLong:                   fmt.Sprintf("a Unix socket's path goes after unix://; a socket path of %d bytes: this system's sockets take at most", len(tooLong)),
		"UNIX-CONNECT:" + tooLong: fmt.Sprintf("socat's syntax; a socket path of %d bytes", len(tooLong)),
	} {
		_, err := Parse(in, "tcp")
		if !errors.Is(err, ErrBadAddress) || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q): %v; want ErrBadAddress saying %s", in, err, want)
			continue
		}
		// The one address offered is Meant's, and only it.
		offers := strings.HasSuffix(err.Error(), "?)") && strings.Contains(err.Error(), "did you mean ") && !strings.Contains(err.Error(), ", or ")
		if m := Meant(err); offers != (m != "") || m != "" && !strings.HasSuffix(err.Error(), fmt.Sprintf(" (did you mean %q?)", m)) {
			t.Errorf("Meant(Parse(%q)) = %q; the error says %v", in, m, err)
		} else if _, err := Parse(m, "tcp"); m != "" && err != nil {
			t.Errorf("Meant(Parse(%q)) = %q, which Parse refuses: %v", in, m, err)
		}
	}
	// Where no address is offered, or two, the error says so once: it
	// said socat's form, then "(shout takes HOST:PORT)" after it.
	for in, want := range map[string]string{
		"TCP6:fe80::1:80":           `socat's syntax (shout takes tcp://[IPV6]:PORT)`,
		"TCP-LISTEN:8080/":          `socat's syntax (shout takes tcp://HOST:PORT)`,
		"TCP-LISTEN:127.0.0.1:8080": `socat's syntax (shout takes tcp://HOST:PORT)`,
		// A port out of range is said as such, as TCP4:127.0.0.1:99999's
		// is: it said the form alone, which the port was written in.
		"TCP-LISTEN:99999": `socat's syntax; port "99999" is not a number from 0 to 65535`,
		"TCP-LISTEN:nope":  `socat's syntax; port "nope" is not a number from 0 to 65535`,
		"tcp-listen:8080":  `socat's syntax (did you mean "tcp://:8080", every interface as socat listens, or "tcp://127.0.0.1:8080", this machine only?)`,
	} {
		if _, err := Parse(in, "tcp"); err == nil || !strings.HasSuffix(err.Error(), ": "+want) {
			t.Errorf("Parse(%q): %v; want it to end %s", in, err, want)
		}
	}
	// An IPv6 address without brackets reads as 127.0.0.1 does without
	// a port, not as "too many colons", and its last group, which may
	// be the port meant, is offered as one.
	for in, want := range map[string]string{
		"::1":                   "(missing port in address; an IPv6 address goes in brackets before its port: [::1]:PORT)",
		"::1:8080":              "(missing port in address; an IPv6 address goes in brackets before its port: [::1:8080]:PORT, or [::1]:8080 if 8080 is the port)",
		"::8080":                "(missing port in address; an IPv6 address goes in brackets before its port: [::8080]:PORT, or [::]:8080 if 8080 is the port)",
		":::8080":               "(an IPv6 address goes in brackets before its port: [::]:8080)",
		"tcp://2001:db8::1":     "(missing port in address; an IPv6 address goes in brackets before its port: [2001:db8::1]:PORT)",
		"::ffff:127.0.0.1:8080": "(an IPv6 address goes in brackets before its port: [::ffff:127.0.0.1]:8080)",
		"fe80::1%lo:8080":       "(an IPv6 address goes in brackets before its port: [fe80::1%lo]:8080)",
		"127.0.0.1":             "(missing port in address)",
		"[::1]":                 "(missing port in address)",
		"a:b:c":                 "(too many colons in address)",

		// A zone may hold any byte: the hint quotes what a terminal would
		// not show as it is (ESC, here).
		"fe80::1%\x1b[2J": `(missing port in address; an IPv6 address goes in brackets before its port: "[fe80::1%\x1b[2J]:PORT")`,
	} {
		if _, err := Parse(in, "tcp"); !errors.Is(err, ErrBadAddress) || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("Parse(%q): %v; want ErrBadAddress ending %s", in, err, want)
		}
	}
	// A scheme is a URL's, in any case.
	if got, err := Parse("TCP://127.0.0.1:8080", "tcp", "udp"); err != nil || len(got) != 1 || got[0] != (Endpoint{Network: "tcp", Address: "127.0.0.1:8080"}) {
		t.Errorf(`Parse("TCP://127.0.0.1:8080") = %v, %v; want tcp 127.0.0.1:8080`, got, err)
	}
	// A host may be called tcp: with a port, it is a host.
	if got, err := Parse("tcp:8080", "tcp"); err != nil || got[0].Address != "tcp:8080" {
		t.Errorf(`Parse("tcp:8080") = %v, %v; want host tcp, port 8080`, got, err)
	}
	// So may tcp4, ssl or tcp-connect: socat's connecting addresses take
	// host:port after the type, never a port alone. They were refused as
	// socat's, offering tcp://8080 (127.0.0.1), which was not meant.
	for _, s := range []string{"tcp4:8080", "UDP6:53", "ssl:443", "openssl:https", "tcp-connect:80"} {
		if got, err := Parse(s, "tcp"); err != nil || len(got) != 1 || got[0] != (Endpoint{Network: "tcp", Address: s}) {
			t.Errorf(`Parse(%q) = %v, %v; want a host and its port`, s, got, err)
		}
	}
	// An IPv6 zone is an interface's name, which on Windows has spaces
	// ("Ethernet 2"): the host is what comes before it. (This machine
	// may have no such interface, which is said otherwise.)
	if _, err := Parse("[fe80::1%Ethernet 2]:8080", "tcp"); err != nil && !strings.Contains(err.Error(), `zone "Ethernet 2" names no network interface`) {
		t.Errorf(`Parse("[fe80::1%%Ethernet 2]:8080"): %v; want it taken, or its zone said to be no interface`, err)
	}
	// So with a port named, as any host's may be (localhost:http).
	if got, err := Parse("tcp:http", "tcp"); err != nil || got[0].Address != "tcp:http" {
		t.Errorf(`Parse("tcp:http") = %v, %v; want host tcp, port http`, got, err)
	}
	if s := (Endpoint{Network: "unix", Address: "/tmp/s"}).String(); s != "unix:///tmp/s" {
		t.Errorf("String = %q", s)
	}
	if s := (Endpoint{Network: "tcp", Address: "127.0.0.1:8443", TLS: true}).String(); s != "tls://127.0.0.1:8443" {
		t.Errorf("String = %q", s)
	}
}

// A PROXY sender is trusted by its address whatever its zone: a balancer
// on a link-local address comes as fe80::1%eth0, which no prefix
// contains as it is.
func TestProxyTrustsZonedAddress(t *testing.T) {
	p := &Proxy{From: []netip.Prefix{netip.MustParsePrefix("fe80::/10"), netip.MustParsePrefix("10.0.0.0/8")}}
	for addr, want := range map[string]bool{
		"[fe80::1%eth0]:5000": true,
		"[fe80::1]:5000":      true,
		"10.1.2.3:5000":       true,
		"[::ffff:10.1.2.3]:1": true,
		"[fe90::1%eth0]:5000": true, // fe80::/10 runs to febf::
		"[fec0::1%eth0]:5000": false,
		"192.0.2.1:5000":      false,
	} {
		ap := netip.MustParseAddrPort(addr)
		a := &net.TCPAddr{IP: ap.Addr().AsSlice(), Zone: ap.Addr().Zone(), Port: int(ap.Port())}
		if got := p.trusts(a); got != want {
			t.Errorf("trusts(%v) = %v, want %v", a, got, want)
		}
	}
}

// A zone that names no interface is refused, saying so: Go takes it for
// none, and connect and bind said only "invalid argument", or dropped it
// unsaid on an address that needs none. One that names an interface, by
// name or by index, is taken.
func TestParseZone(t *testing.T) {
	ifs, err := net.Interfaces()
	if err != nil || len(ifs) == 0 {
		t.Skipf("no interfaces to name: %v", err)
	}
	for _, zone := range []string{ifs[0].Name, strconv.Itoa(ifs[0].Index)} {
		in := "[fe80::1%" + zone + "]:8080"
		if got, err := Parse(in, "tcp"); err != nil || got[0].Address != in {
			t.Errorf("Parse(%q) = %v, %v; want it as it is", in, got, err)
		}
	}
	for _, in := range []string{"[fe80::1%no-such-if9]:8080", "udp://[::1%no-such-if9]:9", "[fe80::1%]:8080"} {
		if _, err := Parse(in, "tcp"); !errors.Is(err, ErrBadAddress) || !strings.Contains(err.Error(), "names no network interface of this machine") {
			t.Errorf("Parse(%q): %v; want ErrBadAddress saying the zone names no interface", in, err)
		}
	}
}

// helloConn is a connection whose every read is a TLS client's first
// bytes, for heard's cost per connection.
type helloConn struct{ net.Conn }

func (helloConn) Read(p []byte) (int, error) {
	return copy(p, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 a client hello"), nil
}

var heardSink *heard

// BenchmarkHeard is what heard costs a TLS connection: itself, and the
// first bytes it keeps from the handshake's first read.
func BenchmarkHeard(b *testing.B) {
	b.ReportAllocs()
	p := make([]byte, 1024)
	for b.Loop() {
		h := &heard{Conn: helloConn{}}
		h.Read(p)
		heardSink = h // as tls.Server keeps it: on the heap
	}
}

// The sentinel carries the package's name, as every sentinel does, but
// what a user reads after "shout: " does not repeat it.
func TestBadAddressReadsWithoutThePackageName(t *testing.T) {
	if got, want := ErrBadAddress.Error(), "endpoint: bad address"; got != want {
		t.Errorf("ErrBadAddress = %q, want %q", got, want)
	}
	_, err := Parse("127.0.0.1:nope", "tcp")
	if want := `bad address "127.0.0.1:nope": `; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Parse: %v; want it to begin %s", err, want)
	}
}

// A URL's password is never said back: the error ends up in a CI log or
// a ticket. It is written xxxxx, as net/url's URL.Redacted writes it, and
// the rest of the error helps as it did. Parse said the whole address,
// password and all, and where no port followed the host, the password
// again as the port: port "secret@127.0.0.1" is not a number.
func TestParseHidesPassword(t *testing.T) {
	for in, want := range map[string]string{
		"tls://user:secret@127.0.0.1:1":       `bad address "tls://user:xxxxx@127.0.0.1:1": a URL's user "user:xxxxx@" is not part of an address (did you mean "tls://127.0.0.1:1"?)`,
		"user:secret@127.0.0.1:1":             `bad address "user:xxxxx@127.0.0.1:1": a URL's user "user:xxxxx@" is not part of an address (did you mean "127.0.0.1:1"?)`,
		"tcp://user:secret@127.0.0.1:1/x?y=1": `bad address "tcp://user:xxxxx@127.0.0.1:1/x?y=1": a URL's user "user:xxxxx@" is not part of an address (did you mean "tcp://127.0.0.1:1"?)`,
		"tcp://user:@127.0.0.1:1":             `bad address "tcp://user:xxxxx@127.0.0.1:1": a URL's user "user:xxxxx@" is not part of an address (did you mean "tcp://127.0.0.1:1"?)`,
		"http://user:secret@127.0.0.1:1":      `bad address "http://user:xxxxx@127.0.0.1:1": unknown scheme "http" (did you mean "tcp://127.0.0.1:1"?)`,
		"ftp://user:secret@127.0.0.1:1":       `bad address "ftp://user:xxxxx@127.0.0.1:1": unknown scheme "ftp" (want tcp://, udp://, tls:// or unix://)`,
		"tcp:user:secret@127.0.0.1:1":         `bad address "tcp:xxxxx@127.0.0.1:1": a scheme ends in :// (did you mean "tcp://127.0.0.1:1"?)`,
		"TCP4:user:secret@127.0.0.1:1":        `bad address "TCP4:xxxxx@127.0.0.1:1": socat's syntax (did you mean "tcp://127.0.0.1:1"?)`,
		"tcp://user:secret@localhost:99999":   `bad address "tcp://user:xxxxx@localhost:99999": a URL's user "user:xxxxx@" is not part of an address; port "99999" is not a number from 0 to 65535`,
		// No port after the host: the user is said, and the form, not
		// the password as the port.
		"tcp://user:secret@127.0.0.1": `bad address "tcp://user:xxxxx@127.0.0.1": a URL's user "user:xxxxx@" is not part of an address (shout takes tcp://HOST:PORT)`,
		"udp://user:secret@127.0.0.1": `bad address "udp://user:xxxxx@127.0.0.1": a URL's user "user:xxxxx@" is not part of an address (shout takes udp://HOST:PORT)`,
		"tls://user:secret@[::1:1":    `bad address "tls://user:xxxxx@[::1:1": a URL's user "user:xxxxx@" is not part of an address (shout takes tls://[IPV6]:PORT)`,
		"tcp://user:secret@":          `bad address "tcp://user:xxxxx@": a URL's user "user:xxxxx@" is not part of an address (shout takes tcp://HOST:PORT)`,
		// A password with '/', '?' or '#' in it (base64's '/') is one
		// too, not the start of a path: it was said whole, and again as
		// a path and a port (a URL's path "/ss@127.0.0.1:1" is not part
		// of an address; port "pa" is not a number). A port before the
		// path (127.0.0.1:1/a:b@c) is a path's, as it was.
		"tcp://u:pa/ss@127.0.0.1:1": `bad address "tcp://u:xxxxx@127.0.0.1:1": a URL's user "u:xxxxx@" is not part of an address (did you mean "tcp://127.0.0.1:1"?)`,
		"u:pa#ss@127.0.0.1:1":       `bad address "u:xxxxx@127.0.0.1:1": a URL's user "u:xxxxx@" is not part of an address (did you mean "127.0.0.1:1"?)`,
		"tls://u:p?w@localhost:1/x": `bad address "tls://u:xxxxx@localhost:1/x": a URL's user "u:xxxxx@" is not part of an address (did you mean "tls://localhost:1"?)`,
		"https://u:a/b@localhost/":  `bad address "https://u:xxxxx@localhost/": unknown scheme "https" (did you mean "tls://localhost:443"?)`,
		"tcp://127.0.0.1:1/a:b@c":   `bad address "tcp://127.0.0.1:1/a:b@c": a URL's path "/a:b@c" is not part of an address (did you mean "tcp://127.0.0.1:1"?)`,
	} {
		_, err := Parse(in, "tcp")
		if !errors.Is(err, ErrBadAddress) || err.Error() != want {
			t.Errorf("Parse(%q):\n%v\nwant\n%s", in, err, want)
		}
	}
	for in, want := range map[string]string{
		"tcp://user:secret@127.0.0.1:1": "tcp://user:xxxxx@127.0.0.1:1",
		"user:secret@[::1]:1":           "user:xxxxx@[::1]:1",
		"tcp://me@127.0.0.1:1":          "tcp://me@127.0.0.1:1",    // no password
		"tcp://[fe80::1%a:b@c]:1":       "tcp://[fe80::1%a:b@c]:1", // a zone's @
		"tcp://127.0.0.1:1/a:b@c":       "tcp://127.0.0.1:1/a:b@c", // a path's
		"unix:///tmp/a:b@c":             "unix:///tmp/a:b@c",
		"unix://a:b@c":                  "unix://a:b@c", // a socket's path, @ and all
		"unix:a:b@c":                    "unix:a:b@c",
		"UNIX-CONNECT:a:b@c":            "UNIX-CONNECT:a:b@c",
		"127.0.0.1:8080":                "127.0.0.1:8080",
		"tcp://u:pa/ss@127.0.0.1:1/x@y": "tcp://u:xxxxx@127.0.0.1:1/x@y",
		"u:a/b?c#d@[::1]:1":             "u:xxxxx@[::1]:1",
		"tcp://localhost:1/a:b@c":       "tcp://localhost:1/a:b@c",
		"tcp://[::1]:1/a:b@c":           "tcp://[::1]:1/a:b@c",
		"tcp://localhost/a:b@c":         "tcp://localhost/a:b@c",
		"tcp://u:p@h/a:b@c":             "tcp://u:xxxxx@h/a:b@c", // the first @ ends the user
		"tcp://h:/a:b@c":                "tcp://h:/a:b@c",
	} {
		if got := Redacted(in); got != want {
			t.Errorf("Redacted(%q) = %q, want %q", in, got, want)
		}
	}
}

// SchemeOf names the scheme of what Parse refuses too, for a caller that
// takes fewer schemes (serve --admin: no udp://), where Parse's error
// offers the scheme's form (udp:127.0.0.1, "shout takes udp://HOST:PORT").
func TestSchemeOf(t *testing.T) {
	for in, want := range map[string]string{
		"udp:127.0.0.1":   "udp",
		"UDP://127.0.0.1": "udp",
		"udp4:127.0.0.1":  "udp",
		"UDP-LISTEN:9090": "udp",
		"OPENSSL:h:1":     "tls",
		"https://h/":      "tls",
		"ws://h:1":        "tcp",
		"unix:/tmp/s":     "unix",
		"tcp:8080":        "tcp",
		"127.0.0.1:8080":  "",
		"localhost:http":  "",
		"/tmp/s":          "",
		"ftp://h:21":      "",
		"https:127.0.0.1": "", // a host named https, with a port
		"":                "",
	} {
		if got := SchemeOf(in); got != want {
			t.Errorf("SchemeOf(%q) = %q; want %q", in, got, want)
		}
	}
}

// Listener is the two addresses offered for socat's listener, which
// Meant, one address, does not give: for shout serve alone.
func TestListener(t *testing.T) {
	for in, want := range map[string][2]string{
		"OPENSSL-LISTEN:8443":      {"tls://:8443", "tls://127.0.0.1:8443"},
		"udp6-recvfrom:53,fork":    {"udp://:53", "udp://127.0.0.1:53"},
		"TCP-LISTEN:99999":         {},
		"TCP4:127.0.0.1:8080/":     {},
		"UNIX-LISTEN:/tmp/s.sock/": {},
	} {
		_, err := Parse(in, "tcp")
		if every, local := Listener(err); every != want[0] || local != want[1] {
			t.Errorf("Listener(Parse(%q)) = %q, %q (%v); want %q, %q", in, every, local, err, want[0], want[1])
		}
	}
}

// Meant is the one address an error of Parse's offers, for a caller that
// takes fewer schemes (serve --admin: no tls://) to check before passing
// it on; "" where none is offered, or two.
func TestMeant(t *testing.T) {
	for in, want := range map[string]string{
		"wss://127.0.0.1:9090/":  "tls://127.0.0.1:9090",
		"tcp://me@[::1]:80":      "tcp://[::1]:80",
		"/tmp/s.sock":            "unix:///tmp/s.sock",
		"tcp-listen:9090":        "",                    // two offered
		"https://localhost":      "tls://localhost:443", // the web port
		"ftp://localhost":        "",                    // none
		"udp://[fe80::1%\"]:1/x": "",
	} {
		_, err := Parse(in, "tcp")
		if got := Meant(err); got != want {
			t.Errorf("Meant(Parse(%q)) = %q (%v); want %q", in, got, err, want)
		}
	}
	if got := Meant(errors.New(`did you mean "x"?)`)); got != "" {
		t.Errorf("Meant of another error = %q; want none", got)
	}
	// What the user typed, said back in the error, is no offer, however
	// it reads: an IPv6 zone may hold any text.
	_, err := Parse(`fe80::1%did you mean "x"?)`, "tcp")
	if got := Meant(err); got != "" {
		t.Errorf("Meant(%v) = %q; want none", err, got)
	}
}
