package main

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"shout/internal/shouttest"
)

// readmeHAProxy is the README's example of shout behind HAProxy: the
// shout serve line's arguments and the haproxy.cfg, as a reader copies
// them.
func readmeHAProxy(t *testing.T) (serve []string, cfg string) {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n    shout serve tcp://127.0.0.1:8080 --proxy-protocol")
	if !ok {
		t.Fatal("the README has no example of shout serve --proxy-protocol behind HAProxy: has the test lost it?")
	}
	line, rest, _ := strings.Cut(rest, "\n")
	serve = append([]string{"tcp://127.0.0.1:8080", "--proxy-protocol"}, strings.Fields(line)...)
	_, rest, ok = strings.Cut(rest, "    # haproxy.cfg\n")
	if !ok {
		t.Fatal("no haproxy.cfg after the README's shout serve --proxy-protocol")
	}
	var c strings.Builder
	for l := range strings.Lines(rest) {
		l, ok := strings.CutPrefix(l, "    ")
		if !ok {
			break
		}
		c.WriteString(l)
	}
	return serve, c.String()
}

var bindRE = regexp.MustCompile(`(?m)^\s*bind (\S+)`)

// The README's HAProxy example works as written: HAProxy's check of
// /readyz on shout's admin port passes, and a client through it is seen
// by shout as itself (PROXY v2). Its frontend binds loopback, as its
// shout serve does: copied to try it, `bind :9000` opened HAProxy, and
// shout behind it, to every network the machine is on.
func TestReadmeHAProxyExample(t *testing.T) {
	args, cfg := readmeHAProxy(t)
	binds := bindRE.FindAllStringSubmatch(cfg, -1)
	if len(binds) == 0 {
		t.Fatalf("the README's haproxy.cfg binds nothing:\n%s", cfg)
	}
	for _, b := range binds {
		ap, err := netip.ParseAddrPort(b[1])
		if err != nil || !ap.Addr().IsLoopback() {
			t.Errorf("the README's haproxy.cfg has `bind %s`, not on loopback: a reader who copies it to try it opens the port to every network the machine is on", b[1])
		}
	}

	haproxy := shouttest.Tool(t, "haproxy", "haproxy")
	for i, a := range args { // the README's ports, free ones here
		args[i] = strings.NewReplacer("127.0.0.1:8080", "127.0.0.1:0", "127.0.0.1:9090", "127.0.0.1:0").Replace(a)
	}
	srv := startServe(t, nil, args...)
	admin, err := url.Parse(adminOf(srv))
	if err != nil {
		t.Fatal(err)
	}
	_, adminPort, _ := net.SplitHostPort(admin.Host)
	fronts, addrs, files := haproxyFrontends(t, 1)
	socket := filepath.Join(t.TempDir(), "haproxy.sock")
	cfg = bindRE.ReplaceAllString(cfg, "  bind "+fronts[0])
	cfg = strings.NewReplacer("127.0.0.1:8080", srv.addr("tcp"), "port 9090", "port "+adminPort).Replace(cfg)
	// HAProxy logs each check whose result changed to its stderr, which
	// the test reads: the first is the one awaited.
	cfg = fmt.Sprintf("global\n  stats socket %s level admin\n  log stderr format raw local0\n", socket) + cfg
	if !strings.Contains(cfg, "\nbackend shout\n") {
		t.Fatalf("the README's haproxy.cfg has no backend shout:\n%s", cfg)
	}
	cfg = strings.Replace(cfg, "\nbackend shout\n", "\nbackend shout\n  log global\n  option log-health-checks\n", 1)
	var out shouttest.Log
	startHAProxy(t, haproxy, cfg, files, &out)

	// Layer7 check passed: the check asked /readyz and had 200.
	if !out.WaitFor("succeeded, reason: Layer7 check passed, code: 200", bound) {
		_, stat := haproxyUp(t, socket, "shout", 1)
		t.Fatalf("HAProxy's check of shout's /readyz did not pass within %v:\n%s\n%s\n%s", bound, stat, out.String(), cfg)
	}
	c := dialFrom(t, "127.0.0.2", addrs[0], &out)
	defer c.Close()
	if got := exchangeOn(t, c, "through haproxy\n"); got != "THROUGH HAPROXY\n" {
		t.Errorf("through HAProxy: got %q", got)
	}
	srv.waitLog(fmt.Sprintf("msg=open remote=127.0.0.2:%d", c.LocalAddr().(*net.TCPAddr).Port))
}
