package admin_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"shout/admin"
	"shout/internal/shouttest"
	"shout/server"
)

// handshaking is a listener whose connections are wrapped as a TLS
// handshake is: the wrap reads from the client, which sends nothing, so
// it lasts until the server's stop cuts it short.
type handshaking struct {
	net.Listener
	started chan struct{}
}

func (h handshaking) WrapConn(c net.Conn) (net.Conn, error) {
	h.started <- struct{}{}
	_, err := c.Read(make([]byte, 1))
	return nil, &server.WrapError{Reason: server.ReasonHandshake, Err: err}
}

// A graceful stop cuts short a handshake under way: that is no handshake
// failure. Every such connection was counted in
// shout_handshake_failures_total and logged as a refused connection, so
// an alert on the counter fired at every rolling restart.
func TestStopIsNoHandshakeFailure(t *testing.T) {
	var h handshaking
	srv, m, logs, ln, done := observedServer(t, func(ln net.Listener) net.Listener {
		h = handshaking{Listener: ln, started: make(chan struct{}, 1)}
		return h
	})
	c, err := net.DialTimeout("tcp", ln.Addr().String(), bound)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-h.started
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, server.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
	if v, _ := gather(t, m, "shout_handshake_failures_total", "reason", "tls"); v > 0 {
		t.Errorf("shout_handshake_failures_total{reason=\"tls\"} = %v after a stop with one handshake under way; want 0", v)
	}
	if strings.Contains(logs.String(), "TLS handshake failed") {
		t.Errorf("a handshake the stop cut short was logged as failed:\n%s", logs.String())
	}
}

// stopping is a listener whose first connection's wrap lasts until the
// server's stop cuts it short, as handshaking's, and whose second does a
// TLS handshake with bytes its client sent before the stop, once the
// stop has cut the first one short: a handshake that fails on its own
// merits while the stop is under way.
type stopping struct {
	net.Listener
	n             atomic.Int32
	started, read chan struct{} // the first is waiting; the second has read its client's bytes
	cut, judge    chan struct{} // the first was cut short; the second may judge them
}

func (s *stopping) WrapConn(c net.Conn) (net.Conn, error) {
	if s.n.Add(1) == 1 {
		close(s.started)
		_, err := c.Read(make([]byte, 1))
		close(s.cut)
		return nil, &server.WrapError{Reason: server.ReasonHandshake, Err: err}
	}
	br := bufio.NewReader(c)
	if _, err := br.Peek(len(garbage)); err != nil {
		return nil, err
	}
	close(s.read)
	<-s.judge
	tc := tls.Server(readAhead{c, br}, &tls.Config{})
	if err := tc.Handshake(); err != nil {
		return nil, &server.WrapError{Reason: server.ReasonHandshake, Err: err}
	}
	return tc, nil
}

// readAhead is a connection whose first bytes were read into r.
type readAhead struct {
	net.Conn
	r *bufio.Reader
}

func (c readAhead) Read(p []byte) (int, error) { return c.r.Read(p) }

// garbage is what a client that does not speak TLS sends to a TLS port.
const garbage = "GET / HTTP/1.0\r\n\r\n"

// A handshake that fails on its own (here: a client that does not speak
// TLS) while a graceful stop is under way is a handshake failure, counted
// and logged; only the one that the stop cut short is not. Every wrap
// that failed during a stop was taken for one the stop cut short.
func TestHandshakeFailureDuringStop(t *testing.T) {
	var l *stopping
	srv, m, logs, ln, done := observedServer(t, func(ln net.Listener) net.Listener {
		l = &stopping{Listener: ln, started: make(chan struct{}), read: make(chan struct{}), cut: make(chan struct{}), judge: make(chan struct{})}
		return l
	})
	waiting, err := net.DialTimeout("tcp", ln.Addr().String(), bound)
	if err != nil {
		t.Fatal(err)
	}
	defer waiting.Close()
	await(t, l.started, "the first handshake")
	bad, err := net.DialTimeout("tcp", ln.Addr().String(), bound)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if _, err := io.WriteString(bad, garbage); err != nil {
		t.Fatal(err)
	}
	await(t, l.read, "the second handshake's bytes")
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		stopped <- srv.Shutdown(ctx)
	}()
	await(t, l.cut, "the stop") // the stop is under way
	close(l.judge)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, server.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
	if v, _ := gather(t, m, "shout_handshake_failures_total", "reason", "tls"); v != 1 {
		t.Errorf("shout_handshake_failures_total{reason=\"tls\"} = %v after a stop that cut one handshake short while another failed; want 1", v)
	}
	if n := strings.Count(logs.String(), "TLS handshake failed"); n != 1 || !strings.Contains(logs.String(), "first record does not look like a TLS handshake") {
		t.Errorf("%d connections logged as failed handshakes, want 1, the one that sent no TLS:\n%s", n, logs.String())
	}
}

// observedServer serves wrap(a listener on 127.0.0.1) with a server that
// logs to logs and counts in m; done gets what Serve returns.
func observedServer(t *testing.T, wrap func(net.Listener) net.Listener) (srv *server.Server, m *admin.Metrics, logs *shouttest.Log, ln net.Listener, done chan error) {
	t.Helper()
	m, logs = admin.NewMetrics(admin.Config{}), new(shouttest.Log)
	srv = &server.Server{Observer: server.Observers(server.NewLogObserver(slog.New(slog.NewTextHandler(logs, nil))), m)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done = make(chan error, 1)
	l := wrap(ln)
	go func() { done <- srv.Serve(l) }()
	return srv, m, logs, ln, done
}

func await(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(bound):
		t.Fatalf("no sign of %s within %v", what, bound)
	}
}
