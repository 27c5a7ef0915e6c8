package admin_test

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"shout/admin"
)

// smallSendBuffers accepts connections whose send buffer is small, so
// that a client that does not read blocks the server's writes soon.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

// startHTTP serves hs, as HTTPServer made it, on a loopback listener
// (made what wrap makes of it, if wrap is not nil).
func startHTTP(hs *http.Server, wrap func(net.Listener) net.Listener) *httptest.Server {
	ts := httptest.NewUnstartedServer(hs.Handler)
	ts.Config = hs
	if wrap != nil {
		ts.Listener = wrap(ts.Listener)
	}
	ts.Start()
	return ts
}

// A client that asks for /metrics again and again and never reads the
// answers does not hold a connection (and a goroutine, and the answers'
// memory) for ever: the write gives up, and the connection is closed.
func TestHTTPServerDropsClientThatDoesNotRead(t *testing.T) {
	defer admin.SetWriteTimeout(200 * time.Millisecond)()
	m := admin.NewMetrics(admin.Config{})
	hs := admin.NewHandler(m, false).HTTPServer(slog.New(slog.DiscardHandler))
	closed := make(chan struct{})
	hs.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			close(closed)
		}
	}
	ts := startHTTP(hs, func(ln net.Listener) net.Listener { return smallSendBuffers{ln} })
	defer ts.Close()

	c, err := net.DialTimeout("tcp", ts.Listener.Addr().String(), bound)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(4096)
	// Far more answers than the two sockets' buffers hold; the requests
	// themselves fit in the server's receive buffer.
	c.SetWriteDeadline(time.Now().Add(bound))
	if _, err := io.WriteString(c, strings.Repeat("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 200)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(bound):
		t.Fatalf("a client that reads nothing still holds its connection %v later", bound)
	}
}

// A profile longer than the write time is still written whole: the
// write time starts once it is made. (The write time is the spare a busy
// machine has to end the profile late and write it: 1 s was not, with the
// test's process stopped 1.5 s near the profile's end.)
func TestHTTPServerProfileLongerThanWriteTimeout(t *testing.T) {
	defer admin.SetWriteTimeout(3 * time.Second)()
	m := admin.NewMetrics(admin.Config{})
	hs := admin.NewHandler(m, true).HTTPServer(slog.New(slog.DiscardHandler))
	ts := startHTTP(hs, nil)
	defer ts.Close()
	client := &http.Client{Timeout: bound}
	resp, err := client.Get(ts.URL + "/debug/pprof/profile?seconds=4")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || len(body) == 0 {
		t.Fatalf("a 4 s profile with a 3 s write time: %d, %d bytes, %v; want 200 and a profile", resp.StatusCode, len(body), err)
	}
}

// A request's header may be 16 KiB at most (far more than a scraper's or
// a probe's, a bearer token's included): net/http's default, 1 MiB, let
// whoever fills the listener's 100 connections with headers not yet ended
// make the process hold 100 MiB (shout serve's resident memory went from
// 17 MB to 121 MB). A longer one is refused.
func TestHTTPServerRefusesLargeHeader(t *testing.T) {
	m := admin.NewMetrics(admin.Config{})
	hs := admin.NewHandler(m, false).HTTPServer(slog.New(slog.DiscardHandler))
	ts := startHTTP(hs, nil)
	defer ts.Close()
	for _, tc := range []struct {
		size int
		want int
	}{
		{8 << 10, http.StatusOK},
		// Past 16 KiB and the 4 KiB net/http reads beyond it before it
		// refuses: a limit of 40 KiB took this one.
		{24 << 10, http.StatusRequestHeaderFieldsTooLarge},
		{64 << 10, http.StatusRequestHeaderFieldsTooLarge},
	} {
		req, err := http.NewRequest(http.MethodGet, ts.URL+"/healthz", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Big", strings.Repeat("a", tc.size))
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatalf("a header of %d bytes: %v", tc.size, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("a header of %d bytes: %s, want %d", tc.size, resp.Status, tc.want)
		}
	}
}
