package admin_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"

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
	m := admin.NewMetrics(admin.Config{})
	var logs shouttest.Log
	srv := &server.Server{Observer: server.Observers(server.NewLogObserver(slog.New(slog.NewTextHandler(&logs, nil))), m)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := handshaking{Listener: ln, started: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(h) }()
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
	if strings.Contains(logs.String(), "connection refused") {
		t.Errorf("a handshake the stop cut short was logged as refused:\n%s", logs.String())
	}
}
