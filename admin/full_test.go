package admin_test

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"shout/admin"
)

// limited serves hs, as HTTPServer made it, on LimitListener(wrap(a
// loopback listener)) (wrap may be nil). full is closed once it has
// accepted n connections.
func limited(t *testing.T, hs *http.Server, wrap func(net.Listener) net.Listener, n int32) (addr string, full <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener = ln
	if wrap != nil {
		l = wrap(l)
	}
	accepted := make(chan struct{})
	var count atomic.Int32
	prev := hs.ConnState
	hs.ConnState = func(c net.Conn, s http.ConnState) {
		prev(c, s)
		if s == http.StateNew && count.Add(1) == n {
			close(accepted)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(admin.LimitListener(l))
	}()
	t.Cleanup(func() {
		hs.Close()
		<-done
	})
	return ln.Addr().String(), accepted
}

// probe asks addr for path as a kubelet does, on a connection of its own,
// and returns the status and body; an error if no answer came within
// bound.
func probe(addr, path string) (int, string, error) {
	client := &http.Client{Timeout: bound, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// Connections that hold a place on the admin listener while they wait on
// their clients do not keep a probe out, however many and however long:
// once the listener serves admin.MaxConns, a new connection closes the one
// that has waited on its client longest. A client that opened MaxConns of
// them kept /healthz from answering for as long as they lasted: 10 s for
// one that sent nothing (ReadHeaderTimeout, here an hour, as a client
// that reconnects at once makes it), 30 s for a slow body or an answer
// not read, 2 minutes between requests, and for ever for a client that
// asks again now and then; a kubelet gives a probe a second or two.
func TestProbeGetsThroughFullListener(t *testing.T) {
	get := "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, tc := range []struct {
		name string
		// hold sends what holds c's place; it may read what comes back.
		hold     func(t *testing.T, c net.Conn)
		slowSend bool // the server sends through small buffers
		pprof    bool // /debug/pprof/ is served
	}{
		{"sends nothing", func(*testing.T, net.Conn) {}, false, false},
		{"sends its headers slowly", func(t *testing.T, c net.Conn) { admin.Send(t, c, "GET /healthz HTTP/1.1\r\nHo") }, false, false},
		{"idles between requests", func(t *testing.T, c net.Conn) { admin.Send(t, c, get); admin.Answered(t, c) }, false, false},
		{"asks OPTIONS * and idles", func(t *testing.T, c net.Conn) {
			admin.Send(t, c, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
			admin.Answered(t, c)
		}, false, false},
		{"sends its body slowly", func(t *testing.T, c net.Conn) {
			admin.Send(t, c, "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab")
		}, false, false},
		{"sends a body to OPTIONS * slowly", func(t *testing.T, c net.Conn) {
			admin.Send(t, c, "OPTIONS * HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab")
		}, false, false},
		{"sends its body slowly to an answer of more than a buffer", func(t *testing.T, c net.Conn) {
			admin.Send(t, c, "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab")
		}, false, false},
		{"sends slowly a body that its handler reads", func(t *testing.T, c net.Conn) {
			admin.Send(t, c, "POST /debug/pprof/symbol HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0x1")
		}, false, true},
		{"does not read its answers", func(t *testing.T, c net.Conn) {
			c.(*net.TCPConn).SetReadBuffer(4096)
			// Far more than the sockets' buffers hold; the requests fit.
			admin.Send(t, c, strings.Repeat("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 200))
		}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := admin.NewMetrics(admin.Config{})
			hs := admin.NewHandler(m, tc.pprof).HTTPServer(slog.New(slog.DiscardHandler))
			hs.ReadHeaderTimeout = time.Hour
			var wrap func(net.Listener) net.Listener
			if tc.slowSend {
				wrap = func(ln net.Listener) net.Listener { return smallSendBuffers{ln} }
			}
			addr, full := limited(t, hs, wrap, admin.MaxConns)
			for range admin.MaxConns {
				c := dial(t, addr)
				tc.hold(t, c)
			}
			await(t, full, "the admin listener full")
			if code, body, err := probe(addr, "/healthz"); err != nil || code != http.StatusOK {
				t.Errorf("/healthz: %d %q, %v; want 200", code, body, err)
			}
		})
	}
}
