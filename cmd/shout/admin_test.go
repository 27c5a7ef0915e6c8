package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"shout/internal/promtest"
)

var adminURLRE = regexp.MustCompile(`admin listening at (http://\S+?/)"`)

// adminOf waits for p to say where its admin listener is, and returns
// its URL, ending in a slash.
func adminOf(p *serveProc) string {
	p.t.Helper()
	p.waitLog("admin listening at ")
	m := adminURLRE.FindStringSubmatch(p.logText())
	if m == nil {
		p.t.Fatalf("no admin URL in the log:\n%s", p.logText())
	}
	return m[1]
}

var httpClient = &http.Client{Timeout: bound}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// The real binary's /metrics passes promtool check metrics (Debian's
// promtool, installed if missing), and its counters agree with a known
// run, under each engine: conns connections of msgSize bytes each way,
// and datagrams.
func TestServeAdminMetrics(t *testing.T) {
	for _, engine := range []string{"auto", "goroutine"} {
		t.Run(engine, func(t *testing.T) { testServeAdminMetrics(t, engine) })
	}
}

func testServeAdminMetrics(t *testing.T, engine string) {
	p := startServe(t, nil, "--admin=127.0.0.1:0", "--admin-pprof", "--engine="+engine, "127.0.0.1:0")
	url := adminOf(p)
	addr := p.addr("tcp")

	const conns, datagrams, msgSize = 25, 9, 100
	for i := range conns {
		// One write of less than the server's first read (1 KiB): one
		// read, one message, on loopback. 100 bytes (ß is two), and as
		// many back (SS).
		msg := fmt.Sprintf("%-*s\n", msgSize-2, fmt.Sprintf("message %d, straße", i))
		want := strings.ReplaceAll(strings.ToUpper(msg), "ß", "SS")
		c, err := net.DialTimeout("tcp", addr, bound)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(bound))
		io.WriteString(c, msg)
		got := make([]byte, len(want))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
			t.Fatalf("connection %d: got %q, %v; want %q", i, got, err, want)
		}
		c.(*net.TCPConn).CloseWrite()
		if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
			t.Fatalf("connection %d: %q, %v; want end of file", i, rest, err)
		}
		c.Close()
	}
	u, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.SetDeadline(time.Now().Add(bound))
	for i := range datagrams {
		msg := fmt.Sprintf("datagram %d", i) // 10 bytes, each way
		io.WriteString(u, msg)
		buf := make([]byte, 64)
		if n, err := u.Read(buf); err != nil || string(buf[:n]) != strings.ToUpper(msg) {
			t.Fatalf("datagram %d: %q, %v", i, buf[:n], err)
		}
	}

	s := promtest.Await(t, url+"metrics", bound, []promtest.Want{
		promtest.V("shout_connections_accepted_total", conns, "transport", "tcp"),
		promtest.V("shout_connections_open", 0, "transport", "tcp"),
		promtest.V("shout_connections_closed_total", conns, "transport", "tcp", "reason", "eof"),
		promtest.V("shout_connections_closed_total", 0, "transport", "tcp", "reason", "reset"),
		promtest.V("shout_connections_rejected_total", 0, "transport", "tcp", "reason", "max_conns"),
		promtest.V("shout_received_bytes_total", conns*msgSize, "transport", "tcp"),
		promtest.V("shout_sent_bytes_total", conns*msgSize, "transport", "tcp"),
		promtest.V("shout_received_messages_total", conns, "transport", "tcp"),
		promtest.V("shout_sent_messages_total", conns, "transport", "tcp"),
		promtest.V("shout_received_bytes_total", datagrams*10, "transport", "udp"),
		promtest.V("shout_sent_bytes_total", datagrams*10, "transport", "udp"),
		promtest.V("shout_received_messages_total", datagrams, "transport", "udp"),
		promtest.V("shout_sent_messages_total", datagrams, "transport", "udp"),
		promtest.V("shout_datagrams_answered_total", datagrams),
		promtest.V("shout_datagrams_dropped_total", 0, "reason", "over_budget"),
		promtest.V("shout_handshake_failures_total", 0, "reason", "tls"),
		promtest.V("shout_log_records_dropped_total", 0),
	})
	for _, name := range []string{"shout_build_info", "go_goroutines", "process_resident_memory_bytes", "process_open_fds"} {
		if _, ok := s.Families[name]; !ok {
			t.Errorf("/metrics has no %s", name)
		}
	}
	t.Run("promtool check metrics", func(t *testing.T) {
		promtest.Lint(t, promtest.Promtool(t), s.Text) // skips, saying why, without promtool
	})

	if code, _ := httpGet(t, url+"debug/pprof/cmdline"); code != http.StatusOK {
		t.Errorf("--admin-pprof: /debug/pprof/cmdline says %d", code)
	}
	// Said at once: it was a 30 s profile, and an empty reply after it.
	if code, body := httpGet(t, url+"debug/pprof/profile?seconds=0"); code != http.StatusBadRequest || !strings.Contains(body, `"seconds"`) {
		t.Errorf("--admin-pprof: /debug/pprof/profile?seconds=0 says %d %q; want 400, saying what is wrong", code, body)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Errorf("exit status %d", code)
	}
}

// /readyz turns 503 at SIGTERM while a connection is still being
// answered, /healthz stays 200, and the admin listener stops only when
// the server has.
func TestServeAdminReadyzDuringDrain(t *testing.T) {
	p := startServe(t, nil, "--admin=127.0.0.1:0", "--shutdown-timeout=0", "tcp://127.0.0.1:0")
	url := adminOf(p)
	if code, body := httpGet(t, url+"readyz"); code != http.StatusOK {
		t.Fatalf("/readyz while serving: %d %q", code, body)
	}
	if code, _ := httpGet(t, url+"debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ without --admin-pprof: %d, want 404", code)
	}
	c := busyClient(t, p.addr("tcp")) // its replies wait for it to read them
	p.cmd.Process.Signal(syscall.SIGTERM)
	// 503 is set first thing on the signal, before the log says so. (A
	// thousand tries, about a second, were too few on a loaded machine:
	// the signal had not been handled yet.)
	p.waitLog("shutting down")
	code, body := httpGet(t, url+"readyz")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz after SIGTERM: %d, want 503\n%s", code, p.logText())
	}
	// Whoever looks is told why: stopping, not yet to start.
	if body != "not ready: stopping\n" {
		t.Errorf("/readyz after SIGTERM: %q, want %q", body, "not ready: stopping\n")
	}
	if code, _ := httpGet(t, url+"healthz"); code != http.StatusOK {
		t.Errorf("/healthz while draining: %d, want 200", code)
	}
	select {
	case <-p.done:
		t.Fatalf("shout exited before its busy client read a reply\n%s", p.logText())
	default:
	}
	// Still answered: the replies arrive, then end of file.
	c.SetReadDeadline(time.Now().Add(3 * bound))
	got, err := io.ReadAll(c)
	if err != nil || len(got) == 0 || len(bytes.Trim(got, "Z")) != 0 {
		t.Errorf("busy client after /readyz said 503: %d bytes (%d not Z), %v; want its replies, then end of file", len(got), len(bytes.Trim(got, "Z")), err)
	}
	if code := p.wait(); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	if _, err := http.Get(url + "healthz"); err == nil {
		t.Error("the admin listener still answers after exit")
	}
}

// An admin address that is taken stops shout before it serves, saying
// which flag.
func TestServeAdminAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	out, err := exec.Command("shout", "serve", "--admin", ln.Addr().String(), "tcp://127.0.0.1:0").CombinedOutput()
	if code := exitCode(err); code != 1 || !regexp.MustCompile(`^shout: --admin: listen tcp 127.0.0.1:\d+: bind: address already in use\n$`).Match(out) {
		t.Errorf("status %d, output %q", code, out)
	}
}

// --reuse-port shares the server's ports, not the admin listener's
// (whose /readyz and /metrics must be each shout's own): a new shout on
// the old one's addresses, --admin and all, is told to pick another
// --admin, not only that the address is in use.
func TestServeAdminReusePortTaken(t *testing.T) {
	old := startServe(t, nil, "tcp://127.0.0.1:0", "--reuse-port", "--admin=127.0.0.1:0")
	admin := strings.TrimSuffix(strings.TrimPrefix(adminOf(old), "http://"), "/")
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	out, err := exec.CommandContext(ctx, "shout", "serve", "tcp://"+old.addr("tcp"), "--reuse-port", "--admin="+admin).CombinedOutput()
	if code := exitCode(err); code != 1 || !strings.Contains(string(out), "address already in use") ||
		!strings.Contains(string(out), "another --admin") {
		t.Errorf("a second shout with --reuse-port on the first's --admin: status %d, output %q; want 1, and to be told to give another --admin", code, out)
	}
}

// What --admin is offered for a scheme or a URL it does not take is an
// address it takes; where Parse's own offer is one (tcp://), --admin
// passes it on, and never listens on what was given.
func TestAdminOffersWhatItTakes(t *testing.T) {
	for in, want := range map[string]string{
		"tcp://127.0.0.1:9090/": `--admin: bad address "tcp://127.0.0.1:9090/": a URL's path "/" is not part of an address (did you mean "tcp://127.0.0.1:9090"?)`,
		"ws://[::1]:9090":       `--admin: bad address "ws://[::1]:9090": unknown scheme "ws" (did you mean "tcp://[::1]:9090"?)`,
		"/tmp/admin.sock":       `(did you mean "unix:///tmp/admin.sock"?)`,
		"wss://127.0.0.1:9090/": `--admin serves plain HTTP: want host:port, tcp:// or unix://, not wss:// (did you mean "127.0.0.1:9090"?)`,
		// A scheme with nothing to offer: what --admin takes, not Parse's
		// "want tcp://, udp://, tls:// or unix://", two of them refused.
		"ftp://127.0.0.1:9090": `--admin: unknown scheme "ftp": want host:port, tcp:// or unix://`,
		"TCP4://nope":          `--admin: unknown scheme "tcp4": want host:port, tcp:// or unix://`,
		"http://127.0.0.1/":    `--admin takes the address to listen on, not a URL: want host:port, tcp:// or unix://`,
		"https://localhost":    `--admin serves plain HTTP, not HTTPS: want host:port, tcp:// or unix://`,
		"tcp://nope":           `--admin: bad address "tcp://nope": want host:port, [ipv6]:port or a scheme (missing port in address)`,
		// A port typed after another mark than ":": offered after it,
		// as to serve's addresses (serve's own port is not --admin's).
		"127.0.0.1：9090": `--admin: bad address "127.0.0.1：9090": want host:port, [ipv6]:port or a scheme (missing port in address); a port goes after ":", not "：": did you mean "127.0.0.1:9090"?`,
		"localhost":      `--admin: bad address "localhost": want host:port, [ipv6]:port or a scheme (missing port in address)`,
		// Parse's own schemes, and none before "://", are no unknown
		// scheme: what is wrong is said as Parse says it. "://" said
		// unknown scheme "".
		"unix://": `--admin: bad address "unix://": no socket path (want unix:///path/to/socket)`,
		"://":     `--admin: bad address "://": want host:port, [ipv6]:port or a scheme (missing port in address)`,
		// But not of a scheme refused here, or one that Parse's error
		// offered: udp:127.0.0.1 was told "shout takes udp://HOST:PORT".
		"udp://nope":      `--admin: HTTP needs a stream: want host:port, tcp:// or unix://, not udp://`,
		"tls://nope":      `--admin serves plain HTTP: want host:port, tcp:// or unix://, not tls://`,
		"udp:127.0.0.1":   `--admin: HTTP needs a stream: want host:port, tcp:// or unix://, not udp://`,
		"tls:127.0.0.1":   `--admin serves plain HTTP: want host:port, tcp:// or unix://, not tls://`,
		"UDP4:127.0.0.1":  `--admin: HTTP needs a stream: want host:port, tcp:// or unix://, not udp://`,
		"OPENSSL:h":       `--admin serves plain HTTP: want host:port, tcp:// or unix://, not tls://`,
		"UDP-LISTEN:9090": `--admin: HTTP needs a stream: want host:port, tcp:// or unix://, not udp://`,
		"tcp:127.0.0.1":   `--admin: bad address "tcp:127.0.0.1": a scheme ends in :// (shout takes tcp://HOST:PORT)`,
		// A web URL's port where it has none (Parse offers localhost:443
		// for https://localhost/) is not offered: --admin's own URL has
		// one, and plain HTTP on 443 is no fix.
		"https://localhost/": `--admin serves plain HTTP, not HTTPS: want host:port, tcp:// or unix://`,
		"http://[::1]":       `--admin takes the address to listen on, not a URL: want host:port, tcp:// or unix://`,
	} {
		eps, err := (&serveCmd{Admin: in}).adminEndpoints(func(string) bool { return true })
		if err == nil || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("--admin %s: %v, %v; want an error ending %s", in, eps, err, want)
		}
	}
}
