package admin_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"go.uber.org/goleak"

	"shout/admin"
	"shout/internal/promtest"
	"shout/internal/shouttest"
	"shout/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const bound = 10 * time.Second

// serve starts srv with m among its observers, and m's handler; it
// returns the server's address and the handler's URL.
func serve(t *testing.T, srv *server.Server, m *admin.Metrics, h *admin.Handler) (addr, url string) {
	t.Helper()
	srv.Observer = server.Observers(server.NewLogObserver(slog.New(slog.DiscardHandler)), m)
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return shouttest.Start(t, srv), hs.URL
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	return shouttest.Dial(t, "tcp", addr, bound).(*net.TCPConn)
}

// roundTrip sends msg, reads want back, and closes, reading end of file.
func roundTrip(t *testing.T, addr, msg, want string) {
	t.Helper()
	c := dial(t, addr)
	io.WriteString(c, msg)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
	c.CloseWrite()
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
		t.Fatalf("after the reply: %q, %v; want end of file", rest, err)
	}
}

// engines are the server's engines: auto's choice (the event loops on
// Linux), and a goroutine for each connection.
var engines = []server.Engine{server.EngineAuto, server.EngineGoroutine}

// The counters agree with a known run, under each engine: connections,
// bytes and messages each way, datagrams answered and dropped.
func TestMetricsCountARun(t *testing.T) {
	for _, e := range engines {
		t.Run(e.String(), func(t *testing.T) { testMetricsCountARun(t, e) })
	}
}

func testMetricsCountARun(t *testing.T, e server.Engine) {
	m := admin.NewMetrics(admin.Config{Version: "v9.9.9", Revision: "abcdef", LogDropped: func() int64 { return 42 }})
	addr, url := serve(t, &server.Server{Engine: e}, m, admin.NewHandler(m, false))
	const conns = 5
	msg, want := "hello straße\n", "HELLO STRASSE\n" // 14 bytes in, 14 out
	for range conns {
		roundTrip(t, addr, msg, want)
	}
	u, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.SetDeadline(time.Now().Add(bound))
	const datagrams = 3
	for range datagrams {
		io.WriteString(u, "ﬁ") // 3 bytes in, "FI" 2 out
		buf := make([]byte, 16)
		if n, err := u.Read(buf); err != nil || string(buf[:n]) != "FI" {
			t.Fatalf("udp: %q, %v", buf[:n], err)
		}
	}
	n := float64(len(msg))
	s := promtest.Await(t, url+"/metrics", bound, []promtest.Want{
		promtest.V("shout_connections_accepted_total", conns, "transport", "tcp"),
		promtest.V("shout_connections_open", 0, "transport", "tcp"),
		promtest.V("shout_connections_closed_total", conns, "transport", "tcp", "reason", "eof"),
		promtest.V("shout_connections_rejected_total", 0, "transport", "tcp", "reason", "max_conns"),
		promtest.V("shout_received_bytes_total", conns*n, "transport", "tcp"),
		promtest.V("shout_sent_bytes_total", conns*float64(len(want)), "transport", "tcp"),
		promtest.V("shout_received_messages_total", conns, "transport", "tcp"),
		promtest.V("shout_sent_messages_total", conns, "transport", "tcp"),
		promtest.V("shout_received_bytes_total", datagrams*3, "transport", "udp"),
		promtest.V("shout_sent_bytes_total", datagrams*2, "transport", "udp"),
		promtest.V("shout_received_messages_total", datagrams, "transport", "udp"),
		promtest.V("shout_sent_messages_total", datagrams, "transport", "udp"),
		promtest.V("shout_datagrams_answered_total", datagrams),
		promtest.V("shout_datagrams_dropped_total", 0, "reason", "over_budget"),
		promtest.V("shout_handshake_failures_total", 0, "reason", "tls"),
		promtest.V("shout_handshake_failures_total", 0, "reason", "proxy"),
		promtest.V("shout_log_records_dropped_total", 42),
	})
	if _, ok := s.Value("shout_build_info", "version", "v9.9.9", "revision", "abcdef", "goversion", goVersion(s)); !ok {
		t.Errorf("no shout_build_info for v9.9.9 abcdef:\n%s", grep(s.Text, "shout_build_info"))
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "process_cpu_seconds_total"} {
		if _, ok := s.Families[name]; !ok {
			t.Errorf("no %s: the Go and process collectors are missing", name)
		}
	}
	lint(t, s.Text)
}

func goVersion(s *promtest.Scrape) string {
	for _, m := range s.Families["shout_build_info"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "goversion" {
				return l.GetValue()
			}
		}
	}
	return ""
}

func grep(text []byte, s string) string {
	var out []string
	for l := range strings.Lines(string(text)) {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

// lint checks text as promtool check metrics does (the same linter, from
// client_golang); the process test runs promtool itself.
func lint(t *testing.T, text []byte) {
	t.Helper()
	problems, err := promlint.New(bytes.NewReader(text)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// Rejections count by the limit, under each engine, and are not closes
// of served connections; a datagram the guard drops counts by its reason.
func TestMetricsRejectedAndDropped(t *testing.T) {
	for _, e := range engines {
		t.Run(e.String(), func(t *testing.T) { testMetricsRejectedAndDropped(t, e) })
	}
}

func testMetricsRejectedAndDropped(t *testing.T, e server.Engine) {
	m := admin.NewMetrics(admin.Config{})
	addr, url := serve(t, &server.Server{Engine: e, MaxConnsPerIP: 1, Linger: -1}, m, admin.NewHandler(m, false))
	first := dial(t, addr)
	io.WriteString(first, "a")
	if _, err := io.ReadFull(first, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	second := dial(t, addr)
	if rest, err := io.ReadAll(second); err != nil || len(rest) != 0 {
		t.Fatalf("rejected connection: %q, %v; want end of file", rest, err)
	}
	// A reply too large for a datagram: ΐ's uppercase is three times
	// as long.
	u, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if _, err := u.Write([]byte(strings.Repeat("ΐ", 30000))); err != nil {
		t.Fatal(err)
	}
	s := promtest.Await(t, url+"/metrics", bound, []promtest.Want{
		promtest.V("shout_connections_accepted_total", 1, "transport", "tcp"),
		promtest.V("shout_connections_open", 1, "transport", "tcp"),
		promtest.V("shout_connections_rejected_total", 1, "transport", "tcp", "reason", "max_conns_per_ip"),
		promtest.V("shout_connections_rejected_total", 0, "transport", "tcp", "reason", "max_conns"),
		promtest.V("shout_datagrams_dropped_total", 1, "reason", "reply_too_large"),
		promtest.V("shout_datagrams_answered_total", 0),
		promtest.V("shout_received_messages_total", 1, "transport", "udp"),
		promtest.V("shout_sent_messages_total", 0, "transport", "udp"),
	})
	lint(t, s.Text)
}

// A WrapConn failure is a handshake failure, by the kind its error
// names, or unknown; never an open or a close.
func TestMetricsHandshakeFailures(t *testing.T) {
	m := admin.NewMetrics(admin.Config{})
	srv := &server.Server{WrapConn: func(c net.Conn) (net.Conn, error) {
		b := make([]byte, 1)
		if _, err := io.ReadFull(c, b); err != nil {
			return nil, err
		}
		switch b[0] {
		case 't':
			return nil, fmt.Errorf("wrapped: %w", &server.WrapError{Reason: server.ReasonHandshake, Err: errors.New("tls handshake failed")})
		case 'p':
			return nil, &server.WrapError{Reason: server.ReasonProxyHeader, Err: errors.New("bad PROXY header")}
		}
		return nil, errors.New("something else")
	}}
	addr, url := serve(t, srv, m, admin.NewHandler(m, false))
	for _, b := range []string{"t", "t", "p", "x"} {
		c := dial(t, addr)
		io.WriteString(c, b)
		io.ReadAll(c) // closed once the wrapper fails
	}
	s := promtest.Await(t, url+"/metrics", bound, []promtest.Want{
		promtest.V("shout_handshake_failures_total", 2, "reason", "tls"),
		promtest.V("shout_handshake_failures_total", 1, "reason", "proxy"),
		promtest.V("shout_handshake_failures_total", 1, "reason", "unknown"),
		promtest.V("shout_connections_accepted_total", 0, "transport", "tcp"),
		promtest.V("shout_connections_open", 0, "transport", "tcp"),
	})
	lint(t, s.Text)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestHandlerEndpoints(t *testing.T) {
	m := admin.NewMetrics(admin.Config{})
	for _, pprof := range []bool{false, true} {
		t.Run(fmt.Sprintf("pprof=%v", pprof), func(t *testing.T) {
			h := admin.NewHandler(m, pprof)
			hs := httptest.NewServer(h)
			defer hs.Close()
			wantPprof := http.StatusNotFound
			if pprof {
				wantPprof = http.StatusOK
			}
			steps := []struct {
				ready     *bool
				path      string
				code      int
				bodyStart string
			}{
				{nil, "/healthz", 200, "ok"},
				{nil, "/readyz", 503, "not ready: starting"},
				{new(true), "/readyz", 200, "ready"},
				{nil, "/healthz", 200, "ok"},
				{new(false), "/readyz", 503, "not ready: stopping"},
				{nil, "/healthz", 200, "ok"},
				{new(true), "/readyz", 200, "ready"}, // ready again after a stop
				{new(false), "/readyz", 503, "not ready: stopping"},
				{nil, "/metrics", 200, "# HELP"},
				{nil, "/debug/pprof/", wantPprof, ""},
				{nil, "/debug/pprof/cmdline", wantPprof, ""},
				{nil, "/", 200, "/metrics"},
				{nil, "/nosuch", 404, ""},
			}
			for _, st := range steps {
				if st.ready != nil {
					h.SetReady(*st.ready)
				}
				code, body := get(t, hs.URL+st.path)
				if code != st.code || !strings.HasPrefix(body, st.bodyStart) {
					t.Errorf("GET %s: %d %q, want %d %q...", st.path, code, body, st.code, st.bodyStart)
				}
			}
		})
	}
}

// /healthz and /readyz answer HEAD and OPTIONS with their status, as GET:
// OPTIONS is the method of HAProxy's `option httpchk /readyz`, which got
// 405 and so marked every shout down, ready or not; HEAD, of checkers
// that want no body.
func TestHealthAnswersHeadAndOptions(t *testing.T) {
	for _, method := range []string{http.MethodHead, http.MethodOptions} {
		t.Run(method, func(t *testing.T) {
			h := admin.NewHandler(admin.NewMetrics(admin.Config{}), false)
			hs := httptest.NewServer(h)
			defer hs.Close()
			ask := func(path string) int {
				t.Helper()
				req, _ := http.NewRequest(method, hs.URL+path, nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			if code := ask("/healthz"); code != http.StatusOK {
				t.Errorf("%s /healthz: %d, want 200", method, code)
			}
			if code := ask("/readyz"); code != http.StatusServiceUnavailable {
				t.Errorf("%s /readyz, not ready: %d, want 503", method, code)
			}
			h.SetReady(true)
			if code := ask("/readyz"); code != http.StatusOK {
				t.Errorf("%s /readyz, ready: %d, want 200", method, code)
			}
		})
	}
}
