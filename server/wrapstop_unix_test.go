//go:build unix

package server_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"shout/endpoint"
	"shout/internal/certs"
	"shout/internal/shouttest"
	"shout/server"
)

// A wrap is how a client begins on a wrapped listener (shout's TLS and
// PROXY protocol listeners): the options that make the listener, and what
// the client does on its connection before its first message.
type wrap struct {
	name  string
	opts  endpoint.Options
	tls   bool
	start func(c net.Conn) (net.Conn, error)
}

// begin begins w on c, and fails the test if that fails.
func (w wrap) begin(t *testing.T, c net.Conn) net.Conn {
	cc, err := w.start(c)
	if err != nil {
		t.Errorf("%s: %v", w.name, err)
	}
	return cc
}

// wraps are a TLS listener's and a PROXY protocol listener's that trusts
// loopback.
func wraps(t *testing.T) []wrap {
	store, err := certs.SelfSigned([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := certs.ServerConfig(store, "")
	if err != nil {
		t.Fatal(err)
	}
	// No session ticket after the handshake: the server sends nothing
	// until it answers, or ends the connection.
	cfg.SessionTicketsDisabled = true
	leaf, _ := store.GetCertificate(nil)
	cert, err := x509.ParseCertificate(leaf.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	return []wrap{
		{"tls", endpoint.Options{TLS: cfg, HandshakeTimeout: bound}, true, func(c net.Conn) (net.Conn, error) {
			tc := tls.Client(c, client)
			if err := tc.Handshake(); err != nil {
				return tc, fmt.Errorf("handshake: %w", err)
			}
			return tc, nil
		}},
		{"proxy", endpoint.Options{Proxy: &endpoint.Proxy{From: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, HandshakeTimeout: bound}, false, func(c net.Conn) (net.Conn, error) {
			if _, err := io.WriteString(c, "PROXY TCP4 203.0.113.7 192.0.2.1 4242 8080\r\n"); err != nil {
				return c, fmt.Errorf("header: %w", err)
			}
			return c, nil
		}},
	}
}

// listen is w's listener on loopback.
func (w wrap) listen(t *testing.T) net.Listener {
	lns, _, err := w.opts.Listen([]endpoint.Endpoint{{Network: "tcp", Address: "127.0.0.1:0", TLS: w.tls}})
	if err != nil {
		t.Fatal(err)
	}
	return lns[0]
}

// A graceful stop lets a TLS handshake or a PROXY header still under way
// finish, and answers the client's first message after it: that client
// connected just before the stop (a rolling restart's), and is a
// newcomer (see TestShutdownAnswersANewcomersFirstMessage), whose wrap may
// go on until it is a second old (here longer, for a slow test). The stop
// cut it short: the client's handshake failed, or it read end of file in
// place of its reply. Here the client begins its wrap only once the stop
// has begun, and sends its message a moment after the wrap.
func TestShutdownLetsAWrapUnderWayFinish(t *testing.T) {
	for _, w := range wraps(t) {
		t.Run(w.name, func(t *testing.T) {
			srv := &server.Server{Logger: new(shouttest.Log).Logger(), Linger: bound}
			srv.SetNewcomerWait(bound) // however slow the test, its client sends in time
			c, served := startWrap(t, srv, w, false)
			defer c.Close()
			stopped := shutdown(t, srv)
			if err := <-served; err != server.ErrServerClosed { // the stop has begun
				t.Fatalf("Serve: %v, want ErrServerClosed", err)
			}
			cc := w.begin(t, c)
			// A stop that closed it at once has sent its end of file by
			// now, unless the machine is very slow (then this passes
			// regardless).
			early := readable(t, c, 200*time.Millisecond)
			if _, err := io.WriteString(cc, "late\n"); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(cc)
			if err != nil || string(got) != "LATE\n" {
				t.Errorf("got %q, %v; want %q, then end of file (the server's end of file came before it sent: %v)", got, err, "LATE\n", early)
			}
			cc.Close()
			shutdownReturned(t, stopped)
		})
	}
}

// wrapSignalled is a wrapped listener that says when it begins to wrap a
// connection.
type wrapSignalled struct {
	net.Listener
	wrapping chan struct{}
}

func (l wrapSignalled) WrapConn(c net.Conn) (net.Conn, error) {
	select {
	case l.wrapping <- struct{}{}:
	default:
	}
	return l.Listener.(server.ConnWrapper).WrapConn(c)
}

// A graceful stop answers the clients queued on a TLS or PROXY listener
// (see TestShutdownAnswersQueuedClients): it accepts them, and each
// finishes its handshake or header and is answered. Closed with its
// queue, the listener reset them.
func TestShutdownAnswersQueuedWrappedClients(t *testing.T) {
	for _, w := range wraps(t) {
		t.Run(w.name, func(t *testing.T) {
			srv := &server.Server{Logger: new(shouttest.Log).Logger(), Linger: bound}
			srv.SetNewcomerWait(bound)
			ln := w.listen(t)
			served := serveListenerHeld(t, srv, ln)
			const n = 4
			results := make(chan string, n)
			for i := range n {
				c := shouttest.Dial(t, "tcp", ln.Addr().String(), bound)
				t.Cleanup(func() { c.Close() })
				// A TLS client waits in its handshake until it is accepted.
				go func() {
					cc := w.begin(t, c)
					if _, err := fmt.Fprintf(cc, "queued %d\n", i); err != nil {
						results <- fmt.Sprintf("client %d: %v", i, err)
						return
					}
					got, err := io.ReadAll(cc)
					cc.Close() // the server's linger ends on this end of file
					if want := fmt.Sprintf("QUEUED %d\n", i); err != nil || string(got) != want {
						results <- fmt.Sprintf("client %d: got %q, %v; want %q, then end of file", i, got, err, want)
						return
					}
					results <- ""
				}()
			}
			u, ok := ln.(interface{ Unwrap() net.Listener })
			if !ok {
				t.Fatalf("%T has no Unwrap: the stop cannot drain it", ln)
			}
			backlogHolds(t, u.Unwrap().(*net.TCPListener), n)
			stopped := shutdown(t, srv)
			for range n {
				select {
				case r := <-results:
					if r != "" {
						t.Error(r)
					}
				case <-time.After(2 * bound):
					t.Fatalf("a client had no reply nor error within %v", 2*bound)
				}
			}
			shutdownReturned(t, stopped)
			if err := <-served; err != server.ErrServerClosed {
				t.Errorf("Serve: %v, want ErrServerClosed", err)
			}
		})
	}
}
