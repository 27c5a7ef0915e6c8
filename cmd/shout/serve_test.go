package main

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"shout/endpoint"
)

func TestServeFlagsMakeServer(t *testing.T) {
	tests := []struct {
		args   []string
		perIP  int
		linger time.Duration
	}{
		{nil, 1000, 2 * time.Second},
		{[]string{"--max-conns-per-ip=0", "--linger=0"}, 0, -1}, // no limit; close at once
		{[]string{"--max-conns-per-ip=3", "--linger=250ms"}, 3, 250 * time.Millisecond},
	}
	for _, tc := range tests {
		var c cli
		parser, err := kong.New(&c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parser.Parse(append([]string{"serve"}, tc.args...)); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		srv := c.Serve.server(nil, nil)
		if srv.MaxConnsPerIP != tc.perIP || srv.Linger != tc.linger {
			t.Errorf("%v: MaxConnsPerIP %d, Linger %v; want %d, %v", tc.args, srv.MaxConnsPerIP, srv.Linger, tc.perIP, tc.linger)
		}
	}
}

// --engine loop where the loops cannot serve (--trace, TLS, the PROXY
// protocol) is a usage error before anything is bound: it was found only
// after listening, so a taken port came first, as a listen failure.
func TestServeEngineLoopRefusedBeforeListening(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	for _, tc := range []struct {
		args []string
		why  string // in the flags' terms, naming the address
	}{
		{[]string{"--trace", "tcp://" + addr}, "tcp://" + addr + " with --trace"},
		{[]string{"--tls-self-signed", "tls://" + addr}, "tls://" + addr + ": its bytes pass through crypto/tls"},
		{[]string{"--proxy-protocol", "--proxy-from", "127.0.0.1", "tcp://" + addr}, "tcp://" + addr + " with --proxy-protocol"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"serve", "--engine", "loop"}, tc.args...), strings.NewReader(""), &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), "--engine loop: the event-loop engine cannot serve "+tc.why) ||
			!strings.Contains(stderr.String(), "--engine auto serves it") {
			t.Errorf("%v: status %d, %q; want 2, why the loops cannot serve %q, and what can", tc.args, code, stderr.String(), tc.why)
		}
	}
}

// serveNode is shout serve's node in the model of shout's command line.
func serveNode(t *testing.T) *kong.Node {
	t.Helper()
	parser, err := kong.New(&cli{}, kong.Name("shout"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range parser.Model.Children {
		if n.Name == "serve" {
			return n
		}
	}
	t.Fatal("no command serve")
	return nil
}

// parseArgs parses args as run does, into c.
func parseArgs(t *testing.T, c *cli, args ...string) error {
	t.Helper()
	parser, err := kong.New(c, kong.Name("shout"), serveEnvars())
	if err != nil {
		t.Fatal(err)
	}
	_, err = parser.Parse(flagsFirst(parser.Model, args))
	return err
}

// The usage line is "shout serve [<addr> ...] [flags]", and flags may
// come between the addresses as well: kong read the addresses up to the
// first flag only, and one after it was an "unexpected argument".
func TestServeAddrsBetweenFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		addrs   []string
		mode    string // --mode
		verbose bool   // -v
		trace   bool   // --trace
		admin   string // --admin
		from    []string
	}{
		{[]string{"a", "--mode", "echo", "b"}, []string{"a", "b"}, "echo", false, false, "", nil},
		{[]string{"a", "-v", "b"}, []string{"a", "b"}, "upper", true, false, "", nil},
		{[]string{"a", "--trace", "b", "c"}, []string{"a", "b", "c"}, "upper", false, true, "", nil},
		{[]string{"--mode", "echo", "a", "b"}, []string{"a", "b"}, "echo", false, false, "", nil},
		{[]string{"a", "b", "--mode", "echo"}, []string{"a", "b"}, "echo", false, false, "", nil},
		{[]string{"a", "--mode=ascii", "b", "--proxy-from", "10.0.0.0/8", "c", "-v"}, []string{"a", "b", "c"}, "ascii", true, false, "", []string{"10.0.0.0/8"}},
		{[]string{"--admin", "127.0.0.1:9090", "a"}, []string{"a"}, "upper", false, false, "127.0.0.1:9090", nil}, // a flag's value is not an address
		{[]string{"a", "--admin", "127.0.0.1:9090", "b"}, []string{"a", "b"}, "upper", false, false, "127.0.0.1:9090", nil},
		{[]string{"a", "-v", "--", "b"}, []string{"a", "b"}, "upper", true, false, "", nil},
		{[]string{"-v"}, []string{"127.0.0.1:8080"}, "upper", true, false, "", nil},
	} {
		var c cli
		if err := parseArgs(t, &c, append([]string{"serve"}, tc.args...)...); err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		s := c.Serve
		if !slices.Equal(s.Addrs, tc.addrs) || s.Mode != tc.mode || s.Verbose != tc.verbose || s.Trace != tc.trace ||
			s.Admin != tc.admin || !slices.Equal(s.ProxyFrom, tc.from) {
			t.Errorf("%q: addrs %q, mode %s, verbose %v, trace %v, admin %q, proxy-from %q; want %q, %s, %v, %v, %q, %q",
				tc.args, s.Addrs, s.Mode, s.Verbose, s.Trace, s.Admin, s.ProxyFrom,
				tc.addrs, tc.mode, tc.verbose, tc.trace, tc.admin, tc.from)
		}
	}
	// What was wrong stays wrong, and says so as before.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"a", "--bogus", "b"}, "unknown flag --bogus"},
		{[]string{"a", "--mode", "loud", "b"}, `--mode must be one of "upper","simple","ascii","echo" but got "loud"`},
		{[]string{"a", "b", "--mode"}, "--mode: expected string value but got"},
	} {
		var c cli
		err := parseArgs(t, &c, append([]string{"serve"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v; want %q", tc.args, err, tc.want)
		}
	}
}

// connect and bench take one address, which kong reads between flags.
func TestClientAddrBetweenFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--conns", "2", "a", "--duration", "1s"},
		{"a", "--conns", "2", "--duration", "1s"},
		{"--conns", "2", "--duration", "1s", "a"},
	} {
		var c cli
		if err := parseArgs(t, &c, append([]string{"bench"}, args...)...); err != nil {
			t.Errorf("bench %q: %v", args, err)
		} else if b := c.Bench; b.Addr != "a" || b.Conns != 2 || b.Duration != time.Second {
			t.Errorf("bench %q: addr %q, conns %d, duration %v; want a, 2, 1s", args, b.Addr, b.Conns, b.Duration)
		}
	}
	for _, args := range [][]string{
		{"--timeout", "1s", "a", "--trace"},
		{"--trace", "a", "--timeout", "1s"},
		{"a", "--trace", "--timeout=1s"},
	} {
		var c cli
		if err := parseArgs(t, &c, append([]string{"connect"}, args...)...); err != nil {
			t.Errorf("connect %q: %v", args, err)
		} else if cc := c.Connect; cc.Addr != "a" || cc.Timeout != time.Second || !cc.Trace {
			t.Errorf("connect %q: addr %q, timeout %v, trace %v; want a, 1s, true", args, cc.Addr, cc.Timeout, cc.Trace)
		}
	}
}

// shout serve listens on every address, whichever flags come between.
func TestServeListensOnAddrsBetweenFlags(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	p := startServe(t, nil, "tcp://127.0.0.1:0", "--mode", "echo", "unix://"+sock, "-v", "udp://127.0.0.1:0")
	for _, network := range []string{"tcp", "unix", "udp"} {
		if got := exchange(t, network, p.addr(network), "echo me"); got != "echo me" {
			t.Errorf("%s: got %q; want it echoed", network, got)
		}
	}
}

// An address given twice is found however it is written, a name as it
// resolves; port 0, a new port each time, and one port over TCP and UDP
// are no repeat. On Linux an address within another's wildcard (the
// same port) is refused too, unless --reuse-port: the bind fails.
// "address already in use" followed, status 1, sending one to look for
// another program.
func TestServeAddressTwice(t *testing.T) {
	lookup := func(host string) (netip.Addr, bool) {
		switch host {
		case "localhost":
			return netip.MustParseAddr("127.0.0.1"), true
		case "ip6-localhost":
			return netip.MustParseAddr("::1"), true
		}
		return netip.Addr{}, false
	}
	for _, tc := range []struct {
		addrs    []string
		overlaps bool   // refused
		want     string // the error, or "" for none
	}{
		{[]string{"127.0.0.1:8080", "tcp://127.0.0.1:8080"}, true, "tcp://127.0.0.1:8080 is given twice"},
		{[]string{"tls://127.0.0.1:8443", "127.0.0.1:8443"}, true, "tls://127.0.0.1:8443 and tcp://127.0.0.1:8443 are one address, 127.0.0.1:8443, given twice"},
		{[]string{"udp://[::1]:53", "[0:0::1]:053"}, true, "udp://[::1]:53 and udp://[0:0::1]:053 are one address, [::1]:53, given twice"},
		{[]string{"localhost:8080", "localhost:8080"}, true, "tcp://localhost:8080 is given twice"},
		{[]string{"unix:///tmp/s", "unix:///tmp/s"}, true, "unix:///tmp/s is given twice"},
		// Spelled apart, listened on as one: an empty host is [::] (every
		// address, both families), an IPv4-mapped address its IPv4 one, a
		// name the address it resolves to.
		{[]string{":8080", "[::]:8080"}, true, "tcp://:8080 and tcp://[::]:8080 are one address, [::]:8080, given twice"},
		{[]string{"udp://[::ffff:127.0.0.1]:53", "udp://127.0.0.1:53"}, true, "udp://[::ffff:127.0.0.1]:53 and udp://127.0.0.1:53 are one address, 127.0.0.1:53, given twice"},
		{[]string{"[::ffff:0.0.0.0]:8080", "0.0.0.0:8080"}, true, "tcp://[::ffff:0.0.0.0]:8080 and tcp://0.0.0.0:8080 are one address, 0.0.0.0:8080, given twice"},
		{[]string{"localhost:8080", "127.0.0.1:8080"}, true, "tcp://localhost:8080 and tcp://127.0.0.1:8080 are one address, 127.0.0.1:8080, given twice"},
		{[]string{"tcp://[::1]:8080", "tcp://ip6-localhost:8080"}, false, "tcp://[::1]:8080 and tcp://ip6-localhost:8080 are one address, [::1]:8080, given twice"},
		// A port by its service's name, which Go listens on as its number:
		// the second bind failed, "address already in use", status 1.
		{[]string{"tcp://127.0.0.1:http", "tcp://127.0.0.1:80"}, true, "tcp://127.0.0.1:http and tcp://127.0.0.1:80 are one address, 127.0.0.1:80, given twice"},
		{[]string{"tcp://:80", "tcp://localhost:http"}, true, "tcp://:80 and tcp://localhost:http overlap: tcp://:80 listens on every address, IPv4 and IPv6, localhost:http included, and Linux lets only one socket bind a port there (both take --reuse-port); give one of them"},
		{[]string{"tcp://127.0.0.1:http", "tcp://127.0.0.1:https"}, true, ""},
		// A socket's path as bind takes it: the second bound nothing,
		// "address already in use", status 1, after the first's bind.
		{[]string{"unix:///tmp/s", "unix:///tmp/./s"}, true, "unix:///tmp/s and unix:///tmp/./s are one address, /tmp/s, given twice"},
		{[]string{"unix:///tmp//s", "unix:///run/../tmp/s"}, true, "unix:///tmp//s and unix:///run/../tmp/s are one address, /tmp/s, given twice"},
		{[]string{"unix://@s", "unix://@./s"}, true, ""}, // Linux's abstract names, not paths
		// Within another's wildcard: one socket on a port there.
		{[]string{"0.0.0.0:8080", "127.0.0.1:8080"}, true, "tcp://0.0.0.0:8080 and tcp://127.0.0.1:8080 overlap: tcp://0.0.0.0:8080 listens on every IPv4 address, 127.0.0.1:8080 included, and Linux lets only one socket bind a port there (both take --reuse-port); give one of them"},
		{[]string{"udp://localhost:53", "udp://[::]:53"}, true, "udp://localhost:53 and udp://[::]:53 overlap: udp://[::]:53 listens on every address, IPv4 and IPv6, localhost:53 included, and Linux lets only one socket bind a port there (both take --reuse-port); give one of them"},
		{[]string{"tcp://:8080", "tcp://0.0.0.0:8080"}, true, "tcp://:8080 and tcp://0.0.0.0:8080 overlap: tcp://:8080 listens on every address, IPv4 and IPv6, 0.0.0.0:8080 included, and Linux lets only one socket bind a port there (both take --reuse-port); give one of them"},
		{[]string{"0.0.0.0:8080", "127.0.0.1:8080"}, false, ""}, // --reuse-port, or not Linux
		{[]string{"tcp://0.0.0.0:8080", "tcp://[::1]:8080", "tcp://127.0.0.1:8081", "udp://127.0.0.1:8080"}, true, ""},
		{[]string{"127.0.0.1:0", "127.0.0.1:0", "localhost:0", "localhost:00", "0.0.0.0:0"}, true, ""},
		{[]string{"tcp://127.0.0.1:8080", "udp://127.0.0.1:8080", "127.0.0.2:8080", "[::1]:8080"}, true, ""},
		{[]string{":0", "[::]:0"}, true, ""},
		{[]string{"nosuchname.invalid:8080", "127.0.0.1:8080"}, true, ""}, // the listen says why
	} {
		if strings.HasPrefix(tc.addrs[0], "unix:") && runtime.GOOS == "windows" {
			continue // C:\tmp\s
		}
		var eps []endpoint.Endpoint
		for _, a := range tc.addrs {
			e, err := endpoint.Parse(a, "tcp", "udp")
			if err != nil {
				t.Fatal(err)
			}
			eps = append(eps, e...)
		}
		got, ok := clashing(eps, 0, lookup, tc.overlaps)
		if ok != (tc.want != "") || ok && got.Error() != tc.want {
			t.Errorf("%v, overlaps %v: clashing = %q, %v; want %q", tc.addrs, tc.overlaps, got.Error(), ok, tc.want)
		}
	}
}

// clashing looks a name up only where another address has its port (on
// the same network): shout serve example.com:8080 waits for no lookup
// before its listen's own. And listenAddr resolves as Go listens, an
// IPv6 address too.
func TestServeClashLooksUpOnlyShared(t *testing.T) {
	var looked []string
	lookup := func(host string) (netip.Addr, bool) {
		looked = append(looked, host)
		return netip.MustParseAddr("127.0.0.1"), true
	}
	var eps []endpoint.Endpoint
	for _, a := range []string{"a.invalid:8080", "tcp://b.invalid:8081", "udp://127.0.0.1:8081"} {
		e, err := endpoint.Parse(a, "tcp", "udp")
		if err != nil {
			t.Fatal(err)
		}
		eps = append(eps, e...)
	}
	if _, ok := clashing(eps, 0, lookup, true); ok || len(looked) > 0 {
		t.Errorf("clashing found a clash %v, looking up %q; want none, and nothing looked up", ok, looked)
	}
	for _, host := range []string{"127.0.0.1", "::1", "localhost"} {
		if ip, ok := listenAddr(context.Background())(host); !ok || !ip.IsLoopback() {
			t.Errorf("listenAddr(%q) = %v, %v; want a loopback address", host, ip, ok)
		}
	}
}

// Addresses spelt apart that listen on one socket are refused as the
// same one given twice is, status 2, naming both, before any bind: shout
// serve localhost:8080 127.0.0.1:8080 listened on the first and failed
// on the second, "address already in use", status 1. So is --admin on
// an address served. (The port is held here: a listen tried fails.)
func TestServeOneAddressSpeltTwice(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"localhost:" + port, "127.0.0.1:" + port}, "tcp://localhost:P and tcp://127.0.0.1:P are one address, 127.0.0.1:P, given twice"},
		{[]string{"tcp://127.0.0.1:" + port, "--admin", "localhost:" + port}, "--admin tcp://localhost:P: an address to serve as well"},
		{[]string{"tcp://127.0.0.1:" + port, "tcp://0.0.0.0:" + port}, "tcp://127.0.0.1:P and tcp://0.0.0.0:P overlap: tcp://0.0.0.0:P listens on every IPv4 address, 127.0.0.1:P included, and Linux lets only one socket bind a port there (both take --reuse-port); give one of them"},
		{[]string{"--reuse-port", "tcp://0.0.0.0:" + port, "tcp://127.0.0.1:" + port, "--admin", "localhost:" + port}, "--admin tcp://localhost:P: it overlaps tcp://0.0.0.0:P, an address to serve, on a wildcard's addresses, where Linux lets only one socket bind a port; give --admin another port"},
	} {
		if strings.Contains(tc.want, "Linux") && runtime.GOOS != "linux" {
			continue
		}
		var stdout, stderr strings.Builder
		code := run(context.Background(), append([]string{"serve"}, tc.args...), strings.NewReader(""), &stdout, &stderr)
		if want := "shout: " + strings.ReplaceAll(tc.want, ":P", ":"+port) + "\n"; code != 2 || stderr.String() != want {
			t.Errorf("serve %v: status %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), want)
		}
	}
}

// serve --reuse-port on a port a socket without SO_REUSEPORT holds (the
// shout to replace, started without it) says that both must set it: it
// said "address already in use" alone, and the restart README describes
// seemed not to work.
func TestServeReusePortTakenSaysBothMust(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("no SO_REUSEPORT here")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var stdout, stderr strings.Builder
	code := run(context.Background(), []string{"serve", "--reuse-port", "tcp://" + l.Addr().String()}, strings.NewReader(""), &stdout, &stderr)
	const want = "address already in use (--reuse-port shares a port only with sockets that set SO_REUSEPORT too: a shout there must have been started with --reuse-port)\n"
	if code != 1 || !strings.HasSuffix(stderr.String(), want) {
		t.Errorf("status %d, stderr %q; want 1 and an end %q", code, stderr.String(), want)
	}
}

// A --source-rate below the longest UDP reply is said at start: the
// budget holds one second's worth, so a longer reply is never sent,
// however seldom its source sends, and the server seemed to lose it.
// (With no UDP address it is refused: TestFlagsThatWouldDoNothing.)
func TestServeSourceRateBelowLongestReply(t *testing.T) {
	for _, tc := range []struct {
		args []string
		warn bool
	}{
		{[]string{"--source-rate", "100", "udp://127.0.0.1:0"}, true},
		{[]string{"--source-rate", "65527", "udp://127.0.0.1:0"}, false},
		{[]string{"--source-rate", "0", "udp://127.0.0.1:0"}, false},
		{[]string{"udp://127.0.0.1:0"}, false}, // 8 MiB
	} {
		p := startServe(t, nil, tc.args...)
		// (said before the listening lines startServe waited for)
		if got := strings.Contains(p.logText(), "is never sent"); got != tc.warn {
			t.Errorf("%v: warned %v, want %v:\n%s", tc.args, got, tc.warn, p.logText())
		}
	}
}

// UDP served on an address other machines reach (0.0.0.0 and [::]
// included) with the default --source-rate is warned of at start: the
// budget, sized for known clients, lets a forger aim 8 MiB of replies a
// second at a victim. Not on loopback, nor once a budget is given,
// whatever its value: the operator chose it. But --source-rate 0, no
// budget at all, is warned of, as worse than the default: it was
// silenced as a choice.
// (Nothing is sent: the servers only listen.)
func TestServeUDPBeyondLoopbackWarned(t *testing.T) {
	const none = "with --source-rate 0, no budget"
	for _, tc := range []struct {
		env  []string
		args []string
		warn string // what the warning must say; "" for none
	}{
		{nil, []string{"udp://127.0.0.1:0"}, ""},
		{nil, []string{"127.0.0.1:0"}, ""},
		{nil, []string{"tcp://0.0.0.0:0"}, ""},
		{nil, []string{"udp://0.0.0.0:0"}, "with the default --source-rate, 8388608 bytes"},
		{nil, []string{"0.0.0.0:0"}, "with the default --source-rate"},
		{nil, []string{"udp://127.0.0.1:0", "udp://0.0.0.0:0"}, "with the default --source-rate"},
		{nil, []string{"udp://0.0.0.0:0", "--source-rate", "65536"}, ""},
		{nil, []string{"udp://0.0.0.0:0", "--source-rate", "8388608"}, ""},
		{nil, []string{"udp://0.0.0.0:0", "--source-rate", "0"}, none},
		{nil, []string{"udp://127.0.0.1:0", "--source-rate", "0"}, ""},
		{[]string{"SHOUT_SOURCE_RATE=65536"}, []string{"udp://0.0.0.0:0"}, ""},
		{[]string{"SHOUT_SOURCE_RATE=0"}, []string{"udp://0.0.0.0:0"}, none},
	} {
		p := startServe(t, tc.env, tc.args...)
		// (said before the listening lines startServe waited for)
		var warning string
		for line := range strings.Lines(p.logText()) {
			if strings.Contains(line, "UDP served beyond loopback") {
				warning = line
			}
		}
		if got, want := warning != "", tc.warn != ""; got != want {
			t.Errorf("%v %v: warned %v, want %v:\n%s", tc.env, tc.args, got, want, p.logText())
		}
		if tc.warn != "" && (!strings.Contains(warning, tc.warn) || !strings.Contains(warning, "(udp://0.0.0.0:") || strings.Contains(warning, "127.0.0.1") || !strings.Contains(warning, "set --source-rate to what one client needs (65536")) {
			t.Errorf("%v %v: the warning does not say %q, or names no address beyond loopback, or names a loopback one, or does not say what to set: %s", tc.env, tc.args, tc.warn, warning)
		}
	}
}

// exposedUDP names every UDP listener that is not on loopback, IPv4 or
// IPv6, mapped or not.
func TestExposedUDP(t *testing.T) {
	for _, tc := range []struct {
		addr    string
		exposed bool
	}{
		{"127.0.0.1:8080", false},
		{"127.0.0.53:8080", false},
		{"[::1]:8080", false},
		{"[::ffff:127.0.0.1]:8080", false},
		{"0.0.0.0:8080", true},
		{"[::]:8080", true},
		{"192.0.2.1:8080", true},
		{"[2001:db8::1]:8080", true},
		{"[fe80::1%eth0]:8080", true},
	} {
		got := exposedUDP([]net.PacketConn{addrOnly{net.UDPAddrFromAddrPort(netip.MustParseAddrPort(tc.addr))}})
		if want := []string{"udp://" + net.UDPAddrFromAddrPort(netip.MustParseAddrPort(tc.addr)).String()}; tc.exposed && !slices.Equal(got, want) || !tc.exposed && len(got) != 0 {
			t.Errorf("%s: exposedUDP = %q, want exposed %v", tc.addr, got, tc.exposed)
		}
	}
}

// addrOnly is a net.PacketConn that has a local address and nothing else
// (its other methods are not called).
type addrOnly struct{ addr net.Addr }

func (a addrOnly) LocalAddr() net.Addr { return a.addr }

func (addrOnly) ReadFrom([]byte) (int, net.Addr, error) { return 0, nil, net.ErrClosed }
func (addrOnly) WriteTo([]byte, net.Addr) (int, error)  { return 0, net.ErrClosed }
func (addrOnly) Close() error                           { return nil }
func (addrOnly) SetDeadline(time.Time) error            { return nil }
func (addrOnly) SetReadDeadline(time.Time) error        { return nil }
func (addrOnly) SetWriteDeadline(time.Time) error       { return nil }
